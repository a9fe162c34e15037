//! [`KeyStore`]: the sharded map of key states, bounded in size.
//!
//! Keys come from traffic, so the map must not grow without limit. Two mechanisms keep
//! it small, both run by ordinary calls (there is no background task):
//!
//! - **Sweeping.** A key with no failure left in its window and no active backoff holds
//!   nothing worth keeping. Whenever the map has doubled since the last sweep, the
//!   insert that doubled it sweeps all such keys out, so sweeping costs amortised O(1)
//!   per insert and stale keys never make up more than half of a large map.
//! - **A hard cap.** When the map holds `max_keys` entries, an insert first makes room:
//!   it sweeps stale keys, then evicts healthy keys with the oldest activity, and only
//!   when nothing else is left keys in backoff, those ending soonest first. Room is
//!   made a batch at a time so that a flood of new keys pays for one scan per batch.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dashmap::mapref::entry::Entry;
use dashmap::mapref::one::RefMut;
use dashmap::DashMap;

use crate::filter::{CountingFilter, KeyHash};
use crate::hashing::{hash_text, Lookup, PassThrough, StoredKey};
use crate::state::{KeyState, TripSource, TripStamp};
use crate::time::Tick;

/// Default for [`max_keys`](crate::BackoffRegistryBuilder::max_keys).
pub const DEFAULT_MAX_KEYS: usize = 250_000;

/// Maps below this size are never swept lazily; sweeping them buys nothing.
const SWEEP_FLOOR: usize = 1_024;

/// What a key's state is worth keeping for, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// No failure inside the window, no active backoff: safe to drop.
    Stale,
    /// Failures inside the window but not in backoff; `last_active` is its newest
    /// failure.
    Healthy { last_active: Tick },
    /// In backoff until `until`.
    BackingOff { until: Tick },
}

/// A key dropped to make room, reported once the store's locks are released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evicted {
    pub(crate) key: Box<str>,
    /// The end of its backoff, if it was in one.
    pub(crate) until: Option<Tick>,
}

/// The key states of one registry.
///
/// Keys are hashed once per call (see [`crate::hashing`]); the map reuses the hash.
///
/// Two counting filters answer the commonest questions without the map. `present`
/// counts every key the map holds; `gated` counts the keys that have a deadline, the
/// only ones that can refuse a call. Every change to the map goes through the store,
/// which keeps both exact: a key is counted before anyone can see it in the set, and
/// uncounted only once it has left.
#[derive(Debug)]
pub(crate) struct KeyStore {
    map: DashMap<StoredKey, KeyState, PassThrough>,
    /// Which keys the map certainly does not hold.
    present: CountingFilter,
    /// Which keys certainly have no deadline, so cannot refuse a call.
    gated: CountingFilter,
    /// Entries counted by the store: a slot is reserved before an insert and released
    /// after a removal, so this is never below the map's true size and never above
    /// `max_keys`.
    len: AtomicUsize,
    max_keys: usize,
    /// The map's size after the last sweep.
    swept_len: AtomicUsize,
    /// Held while making room or sweeping, so that concurrent inserts into a full map
    /// do not each evict a batch.
    housekeeping: Mutex<()>,
}

impl KeyStore {
    /// Creates an empty store holding at most `max_keys` (at least 1) keys.
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            map: DashMap::with_hasher(PassThrough::default()),
            present: CountingFilter::new(),
            gated: CountingFilter::new(),
            len: AtomicUsize::new(0),
            max_keys: max_keys.max(1),
            swept_len: AtomicUsize::new(0),
            housekeeping: Mutex::new(()),
        }
    }

    /// Returns how many keys the store holds.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Returns the largest number of keys the store holds.
    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Returns whether the store may hold a key with this hash; `false` is certain and
    /// costs one read of shared memory.
    #[inline]
    pub(crate) fn may_hold(&self, hash: KeyHash) -> bool {
        self.present.may_contain(hash)
    }

    /// Returns whether the store may hold a key with this hash that has a deadline;
    /// `false` is certain (the key cannot refuse a call) and costs one read of shared
    /// memory.
    #[inline]
    pub(crate) fn may_be_gated(&self, hash: KeyHash) -> bool {
        self.gated.may_contain(hash)
    }

    /// Runs `read` on a key's state under a shared lock on its shard; a key the store
    /// certainly does not hold takes no lock at all. `read` must not call back into the
    /// store.
    pub(crate) fn read<R>(&self, key: &str, read: impl FnOnce(&KeyState) -> R) -> Option<R> {
        self.read_by(&Lookup::new(key), read)
    }

    /// [`read`](Self::read) with the key already hashed.
    pub(crate) fn read_by<R>(
        &self,
        lookup: &Lookup<'_>,
        read: impl FnOnce(&KeyState) -> R,
    ) -> Option<R> {
        if !self.may_hold(KeyHash::from_hash(lookup.hash())) {
            return None;
        }

        // The map was built with a pass-through hasher, so the key's own hash picks
        // the shard and the bucket, and the text is compared directly.
        let shard = &self.map.shards()[self.map.determine_shard(lookup.hash() as usize)];
        let table = shard.read();
        let (_, state) = table.get(lookup.hash(), |(stored, _)| {
            stored.as_str() == lookup.text()
        })?;
        Some(read(state.get()))
    }

    /// Changes an existing key's state with `change`, which draws any trip stamp it
    /// needs from the source it is given; returns `None` for a key the store does not
    /// hold.
    pub(crate) fn modify_existing<R>(
        &self,
        key: &str,
        stamps: &dyn TripSource,
        change: impl FnOnce(&mut KeyState, &dyn TripSource) -> R,
    ) -> Option<R> {
        let lookup = Lookup::new(key);
        let hash = KeyHash::from_hash(lookup.hash());
        if !self.may_hold(hash) {
            return None;
        }
        let mut state = self.map.get_mut(lookup.as_dyn())?;
        Some(self.apply(hash, &mut state, stamps, change))
    }

    /// Changes a key's state with `change`, inserting a fresh state first if needed.
    ///
    /// Inserting may sweep the map or evict other keys first; `standing` ranks the
    /// candidates, and the keys evicted (not the stale ones swept) are added to
    /// `evicted`. The key text is copied only when the key is new.
    pub(crate) fn modify_or_insert<R>(
        &self,
        key: &str,
        standing: &dyn Fn(&str, &KeyState) -> Standing,
        evicted: &mut Vec<Evicted>,
        stamps: &dyn TripSource,
        change: impl FnOnce(&mut KeyState, &dyn TripSource) -> R,
    ) -> R {
        let lookup = Lookup::new(key);
        let hash = KeyHash::from_hash(lookup.hash());
        let mut state = self.get_or_insert(lookup, standing, evicted);
        self.apply(hash, &mut state, stamps, change)
    }

    /// Returns a key's state for writing, inserting a fresh one if needed.
    fn get_or_insert(
        &self,
        lookup: Lookup<'_>,
        standing: &dyn Fn(&str, &KeyState) -> Standing,
        evicted: &mut Vec<Evicted>,
    ) -> RefMut<'_, StoredKey, KeyState> {
        if let Some(state) = self.map.get_mut(lookup.as_dyn()) {
            return state;
        }

        self.sweep_if_doubled(standing);
        while !self.reserve_slot() {
            self.make_room(standing, evicted);
        }

        match self.map.entry(StoredKey::new(lookup.text())) {
            Entry::Occupied(existing) => {
                // Another thread inserted the key meanwhile: give the slot back.
                self.len.fetch_sub(1, Ordering::AcqRel);
                existing.into_ref()
            }
            Entry::Vacant(vacant) => {
                self.present.add(KeyHash::from_hash(lookup.hash()));
                vacant.insert(KeyState::default())
            }
        }
    }

    /// Runs `change` on a state held under its shard's exclusive lock, keeping the
    /// `gated` filter exact.
    ///
    /// A key that gains a deadline is counted before it takes its trip stamp (see
    /// [`GatedStamps`]); a key that loses one is uncounted after the change.
    fn apply<R>(
        &self,
        hash: KeyHash,
        state: &mut KeyState,
        stamps: &dyn TripSource,
        change: impl FnOnce(&mut KeyState, &dyn TripSource) -> R,
    ) -> R {
        let gated_stamps = GatedStamps {
            stamps,
            gated: &self.gated,
            hash,
            counted: Cell::new(state.has_deadline()),
        };
        let result = change(state, &gated_stamps);

        match (gated_stamps.counted.get(), state.has_deadline()) {
            // Every deadline comes with a stamp, so this cannot happen; counting late
            // still keeps the filter exact.
            (false, true) => self.gated.add(hash),
            (true, false) => self.gated.remove(hash),
            _ => {}
        }
        result
    }

    /// Removes a key if `condition` holds for its state.
    pub(crate) fn remove_if(
        &self,
        key: &str,
        condition: impl FnOnce(&KeyState) -> bool,
    ) -> Option<KeyState> {
        let lookup = Lookup::new(key);
        let (_, state) = self
            .map
            .remove_if(lookup.as_dyn(), |_, state| condition(state))?;
        self.forget(KeyHash::from_hash(lookup.hash()), &state);
        Some(state)
    }

    /// Removes every key whose state `standing` calls stale; returns how many.
    pub(crate) fn sweep(&self, standing: &dyn Fn(&str, &KeyState) -> Standing) -> usize {
        let _housekeeping = self.lock_housekeeping();
        self.sweep_locked(standing)
    }

    /// Calls `visit` for every key and state, one shard at a time.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&str, &KeyState)) {
        for entry in self.map.iter() {
            visit(entry.key().as_str(), entry.value());
        }
    }

    fn reserve_slot(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len < self.max_keys).then_some(len + 1)
            })
            .is_ok()
    }

    /// Frees at least one slot (a batch when it can): stale keys first, then the
    /// healthy keys idle longest, then the backoffs ending soonest.
    fn make_room(
        &self,
        standing: &dyn Fn(&str, &KeyState) -> Standing,
        evicted: &mut Vec<Evicted>,
    ) {
        let _housekeeping = self.lock_housekeeping();
        if self.len() < self.max_keys {
            return;
        }

        let batch = (self.max_keys / 16).max(1);
        let mut freed = self.sweep_locked(standing);
        freed += self.evict_lowest(
            batch.saturating_sub(freed),
            standing,
            |standing| match standing {
                Standing::Healthy { last_active } => Some(last_active),
                _ => None,
            },
            evicted,
        );
        self.evict_lowest(
            batch.saturating_sub(freed),
            standing,
            |standing| match standing {
                Standing::BackingOff { until } => Some(until),
                _ => None,
            },
            evicted,
        );
    }

    /// Sweeps when the map has doubled since the last sweep, unless another thread is
    /// already doing housekeeping.
    fn sweep_if_doubled(&self, standing: &dyn Fn(&str, &KeyState) -> Standing) {
        let len = self.len();
        let due = len >= SWEEP_FLOOR.max(2 * self.swept_len.load(Ordering::Acquire));
        if !due {
            return;
        }
        if let Ok(_housekeeping) = self.housekeeping.try_lock() {
            self.sweep_locked(standing);
        }
    }

    fn sweep_locked(&self, standing: &dyn Fn(&str, &KeyState) -> Standing) -> usize {
        let removed = self.retain(|key, state| standing(key, state) != Standing::Stale);
        self.swept_len.store(self.len(), Ordering::Release);
        removed
    }

    /// Evicts up to `count` keys with the lowest rank, adding them to `evicted`; keys
    /// `rank` gives no rank to are kept. Returns how many were evicted.
    fn evict_lowest(
        &self,
        count: usize,
        standing: &dyn Fn(&str, &KeyState) -> Standing,
        rank: impl Fn(Standing) -> Option<Tick>,
        evicted: &mut Vec<Evicted>,
    ) -> usize {
        if count == 0 {
            return 0;
        }

        let mut ranks = Vec::new();
        self.for_each(|key, state| ranks.extend(rank(standing(key, state))));
        if ranks.is_empty() {
            return 0;
        }
        let count = count.min(ranks.len());
        let (_, &mut cutoff, _) = ranks.select_nth_unstable(count - 1);

        let mut left = count;
        self.retain(|key, state| {
            let standing = standing(key, state);
            let evict = left > 0 && rank(standing).is_some_and(|r| r <= cutoff);
            if evict {
                left -= 1;
                let until = match standing {
                    Standing::BackingOff { until } => Some(until),
                    _ => None,
                };
                evicted.push(Evicted {
                    key: key.into(),
                    until,
                });
            }
            !evict
        })
    }

    /// Keeps the entries `keep` accepts; returns how many were removed.
    fn retain(&self, mut keep: impl FnMut(&str, &KeyState) -> bool) -> usize {
        let mut removed = 0;
        self.map.retain(|key, state| {
            let kept = keep(key.as_str(), state);
            if !kept {
                self.uncount(KeyHash::from_hash(hash_text(key.as_str())), state);
                removed += 1;
            }
            kept
        });
        self.len.fetch_sub(removed, Ordering::AcqRel);
        removed
    }

    /// Uncounts a key that was just removed, with its last `state`, from the filters
    /// and the store's length.
    fn forget(&self, hash: KeyHash, state: &KeyState) {
        self.uncount(hash, state);
        self.len.fetch_sub(1, Ordering::AcqRel);
    }

    /// Uncounts a removed key from the filters.
    fn uncount(&self, hash: KeyHash, state: &KeyState) {
        if state.has_deadline() {
            self.gated.remove(hash);
        }
        self.present.remove(hash);
    }

    /// Checks both filters against the keys the map holds.
    #[cfg(test)]
    pub(crate) fn assert_filters_exact(&self) {
        let mut present = Vec::new();
        let mut gated = Vec::new();
        self.for_each(|key, state| {
            let hash = KeyHash::from_hash(hash_text(key));
            present.push(hash);
            if state.has_deadline() {
                gated.push(hash);
            }
        });
        let expected = CountingFilter::expected_counts;
        assert!(
            self.present.counts() == expected(present),
            "present filter drifted"
        );
        assert!(
            self.gated.counts() == expected(gated),
            "gated filter drifted"
        );
    }

    fn lock_housekeeping(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot have left it inconsistent.
        self.housekeeping
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The trip stamps a state change draws, handed out only once the key is counted as
/// gated.
///
/// A call admitted to a key the `gated` filter does not count takes the registry's
/// latest stamp as its ticket (see `BackoffRegistry::admit`), reading the stamp before
/// the filter. Counting the key before its trip draws a stamp means such a call never
/// holds a stamp as new as a trip it did not see, so the trip still marks its outcome
/// as late.
struct GatedStamps<'a> {
    stamps: &'a dyn TripSource,
    gated: &'a CountingFilter,
    hash: KeyHash,
    /// Whether the key is counted in `gated`.
    counted: Cell<bool>,
}

impl TripSource for GatedStamps<'_> {
    fn next_stamp(&self) -> TripStamp {
        if !self.counted.replace(true) {
            self.gated.add(self.hash);
        }
        self.stamps.next_stamp()
    }

    fn jitter(&self) -> f64 {
        self.stamps.jitter()
    }
}
