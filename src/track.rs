//! [`Track`]: any fallible future guarded by the registry.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use crate::classify::Outcome;
use crate::error::TrackError;
use crate::hashing::Lookup;
use crate::key_buf::KeyBuf;
use crate::pending::Pending;
use crate::registry::{BackoffRegistry, Mode};

pin_project! {
    /// A future guarded by a key's backoff state; made by
    /// [`BackoffRegistry::track`].
    ///
    /// The key is checked on the first poll, not when the `Track` is created. After it
    /// resolves, a `Track` must not be polled again: doing so panics, as it would for
    /// the future it wraps.
    #[must_use = "futures do nothing unless awaited"]
    pub struct Track<F> {
        #[pin]
        future: F,
        registry: BackoffRegistry,
        key: KeyBuf,
        clear_on_success: bool,
        phase: Phase,
    }
}

#[derive(Debug)]
enum Phase {
    NotStarted,
    /// Admitted; dropping the `Pending` unfinished records nothing.
    Running(Pending),
    Finished,
}

impl<F> Track<F> {
    pub(crate) fn new(registry: BackoffRegistry, key: &str, future: F) -> Self {
        Self {
            future,
            registry,
            key: KeyBuf::new(key),
            clear_on_success: true,
            phase: Phase::NotStarted,
        }
    }

    /// Chooses whether a successful call clears the key (default `true`).
    ///
    /// Turn it off when success of this call says little about the key's health, for
    /// example a cheap call that succeeds while the expensive ones keep failing. A
    /// successful probe still ends its key's probing.
    pub fn clear_on_success(mut self, clear: bool) -> Self {
        self.clear_on_success = clear;
        self
    }
}

impl<F, T, E> Future for Track<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, TrackError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();

        if let Phase::Finished = this.phase {
            panic!("`Track` polled after it resolved");
        }
        if let Phase::NotStarted = this.phase {
            match this.registry.admit(Lookup::new(this.key), Mode::Enforce) {
                Ok(ticket) => {
                    let pending = Pending::new(this.registry, this.key.clone(), ticket);
                    *this.phase = Phase::Running(pending);
                }
                Err(backoff) => {
                    *this.phase = Phase::Finished;
                    return Poll::Ready(Err(TrackError::Backoff(backoff)));
                }
            }
        }

        let result = ready!(this.future.poll(cx));
        let Phase::Running(mut pending) = std::mem::replace(this.phase, Phase::Finished) else {
            unreachable!("a `Track` that is not finished has been admitted above");
        };

        let outcome = match &result {
            Err(_) => Outcome::Failure,
            Ok(_) => Outcome::Success,
        };
        pending.finish(outcome, *this.clear_on_success, |_| None);
        Poll::Ready(result.map_err(TrackError::Inner))
    }
}

impl<F> fmt::Debug for Track<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track")
            .field("key", &self.key)
            .field("clear_on_success", &self.clear_on_success)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}
