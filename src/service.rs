//! [`BackoffService`]: the middleware itself.

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use tower::{BoxError, Service};

use crate::classify::{Classify, DefaultClassifier};
use crate::config::{Admission, Config};
use crate::extract::{AuthorityKey, ExtractKey, RequestHead};
use crate::future::ResponseFuture;
use crate::key_cache::LastKey;
use crate::registry::{BackoffRegistry, Ticket};

/// Middleware that refuses requests to hosts in backoff and reports every outcome to
/// a [`BackoffRegistry`].
///
/// Usually made by [`BackoffLayer`](crate::BackoffLayer), which also sets the key
/// extractor, the classifier and the `Retry-After` handling.
///
/// # Which key a request counts against
///
/// By default the request URI's authority, normalised by
/// [`authority_key`](crate::authority_key): `https://API.example.com:443/x` counts
/// against `api.example.com`. A request without a usable key (a bare path, unless the
/// `Host` fallback is on; an invalid port) passes through untracked: it is never
/// refused and its outcome is not recorded. See [`ExtractKey`] to choose keys
/// yourself.
///
/// Each service (each clone, too) remembers the last authority it derived a key from,
/// so a run of requests to one host normalises and hashes its key once. It does so
/// only for extractors that promise the key depends on nothing but the URI's scheme and
/// authority ([`ExtractKey::depends_only_on_authority`]), as [`AuthorityKey`] does.
///
/// # Where a request is rejected
///
/// In [`call`](Service::call): when the key is in backoff, the inner service is not
/// called at all and the returned future fails at once with a [`BackoffError`]
/// (boxed as [`BoxError`]; find it with [`BackoffError::find`] or
/// `downcast_ref::<BackoffError>()`). Nothing is recorded for a refused request.
///
/// # What counts as a failure
///
/// What the classifier says; by default ([`DefaultClassifier`]):
///
/// - an error from the inner service: a failure;
/// - a response with a 5xx, 429 or 408 status: a failure;
/// - any other response: a success, which clears the key.
///
/// A success is news about the host as of when its request was sent. So a success
/// whose key had no record when the request was admitted clears nothing: every
/// failure its key has by then came later. (Its request's future then holds no
/// handle to the registry either, so the healthy path writes no shared memory; a
/// failure finds the registry again by the number it is listed under.)
///
/// A [`BackoffError`] from another backoff layer further in always counts as nothing.
/// A failed response with a valid `Retry-After` header also puts the key into backoff
/// until then at once, below the threshold, never shortening a deadline. A response
/// future dropped before it completes (by a timeout further out, for example) records
/// nothing.
///
/// # Layer order
///
/// The layer judges whatever comes out of the services inside it. A timeout *inside*
/// (`BackoffLayer` before `TimeoutLayer` in a `ServiceBuilder`) is an error, so a
/// failure; a timeout *outside* drops this service's future, so nothing is recorded. A
/// retry layer outside sees each refusal and must not retry it
/// ([`BackoffError::is_backoff`]).
///
/// # Readiness and sharing
///
/// [`poll_ready`](Service::poll_ready) delegates to the inner service unchanged. When
/// a call is refused, the capacity `poll_ready` reserved in the inner service (a
/// `ConcurrencyLimit` permit, a `Buffer` slot) is given back at once by swapping in a
/// fresh clone of the inner service, which is why the inner service must be `Clone`.
/// Clones of the service share one registry, so a host that trips through one clone is
/// in backoff for all of them (and for anything else using the registry).
///
/// [`BackoffError`]: crate::BackoffError
/// [`BackoffError::find`]: crate::BackoffError::find
/// [`BackoffError::is_backoff`]: crate::BackoffError::is_backoff
#[derive(Clone)]
pub struct BackoffService<S, K = AuthorityKey, C = DefaultClassifier> {
    inner: S,
    config: Config<K, C>,
    last_key: LastKey,
}

impl<S> BackoffService<S> {
    /// Wraps `inner`, recording outcomes in `registry` with the default settings.
    pub fn new(inner: S, registry: BackoffRegistry) -> Self {
        let config = Config::new(registry, AuthorityKey::new(), DefaultClassifier);
        Self::from_config(inner, config)
    }
}

impl<S, K, C> BackoffService<S, K, C> {
    pub(crate) fn from_config(inner: S, config: Config<K, C>) -> Self {
        Self {
            inner,
            config,
            last_key: LastKey::default(),
        }
    }

    /// Returns the registry this service reports to.
    pub fn registry(&self) -> &BackoffRegistry {
        &self.config.registry
    }

    /// Returns a reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Returns a mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Returns the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, K, C, ReqBody, ResBody> Service<Request<ReqBody>> for BackoffService<S, K, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    K: ExtractKey,
    C: Classify + Clone,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The common case is inlined whole, so that the response future is built where
        // the caller keeps it: a request to the authority the service saw last, whose
        // key has no deadline. Only the authority's text, which lives outside the
        // request, is looked at, so the request moves into the inner service uncopied.
        //
        // The report is written after the inner call, straight into the future: built
        // before it, it would wait on the stack and be copied in.
        if let Some(ticket) = self.admit_remembered(request.uri()) {
            let future = self.inner.call(request);
            let report = self.last_key.remembered().map(|last| {
                let key = last.key_buf();
                self.config.report(key, ticket)
            });
            return ResponseFuture::running(future, report);
        }
        self.derive_and_call(request)
    }
}

impl<S, K, C> BackoffService<S, K, C> {
    /// [`call`](Service::call) for every request but the common case: one whose key
    /// the service does not remember, or whose key may have a deadline.
    #[inline(never)]
    fn derive_and_call<ReqBody, ResBody>(
        &mut self,
        request: Request<ReqBody>,
    ) -> ResponseFuture<S::Future, C>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
        K: ExtractKey,
        C: Clone,
    {
        match self.admit(&request) {
            Ok(report) => ResponseFuture::running(self.inner.call(request), report),
            Err(refusal) => {
                self.release_inner();
                ResponseFuture::rejected(refusal)
            }
        }
    }
}

impl<S, K: ExtractKey, C: Clone> BackoffService<S, K, C> {
    /// Admits a request to the authority the service remembers a key for, if that key
    /// certainly has no deadline; `None` sends the request the long way.
    #[inline]
    fn admit_remembered(&self, uri: &Uri) -> Option<Ticket> {
        let authority = uri.authority()?.as_str();
        if !self.config.extractor.depends_only_on_authority() {
            return None;
        }

        let scheme = uri.scheme_str().unwrap_or("");
        let last = self.last_key.recall(scheme, authority)?;
        self.config.registry.admit_ungated(last.lookup())
    }

    /// Derives the request's key and admits the request.
    fn admit<B>(&mut self, request: &Request<B>) -> Admission<C> {
        let head = RequestHead::from_request(request);
        match self.last_key.derive(&self.config.extractor, head) {
            Some(key) => self.config.admit(key),
            None => Ok(None),
        }
    }
}

impl<S: Clone, K, C> BackoffService<S, K, C> {
    /// Gives back whatever the inner service reserved in `poll_ready` for a call that
    /// will not be made: dropping a service releases its reservation, and a fresh
    /// clone holds none.
    fn release_inner(&mut self) {
        let fresh = self.inner.clone();
        drop(std::mem::replace(&mut self.inner, fresh));
    }
}

impl<S: fmt::Debug, K, C> fmt::Debug for BackoffService<S, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{ready, Ready};

    use super::*;

    fn answer(_request: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
        ready(Ok(Response::new(())))
    }

    fn request() -> Request<()> {
        Request::get("http://api.example.com/").body(()).unwrap()
    }

    #[test]
    fn only_a_call_to_a_key_with_a_record_takes_a_registry_handle() {
        let registry = BackoffRegistry::new();
        let mut service = BackoffService::new(tower::service_fn(answer), registry.clone());
        let before = registry.handles();

        // The first call derives the key, the second finds it remembered.
        let derived = service.call(request());
        let remembered = service.call(request());
        assert_eq!(registry.handles(), before);
        drop((derived, remembered));

        registry.record_failure("api.example.com");
        let tracked = service.call(request());
        assert_eq!(registry.handles(), before + 1);
        drop(tracked);
        assert_eq!(registry.handles(), before);
    }
}
