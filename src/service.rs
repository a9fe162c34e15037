//! [`BackoffService`]: the middleware itself.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{BoxError, Service};

use crate::future::ResponseFuture;
use crate::key::authority_key;
use crate::registry::BackoffRegistry;

/// Middleware that refuses requests to hosts in backoff and reports every outcome to
/// a [`BackoffRegistry`].
///
/// Usually made by [`BackoffLayer`](crate::BackoffLayer).
///
/// # Which key a request counts against
///
/// The key is the request URI's authority, normalised by
/// [`authority_key`](crate::authority_key): `https://API.example.com:443/x` counts
/// against `api.example.com`. A request whose URI has no authority (a bare path)
/// passes through untracked: it is never refused and its outcome is not recorded.
///
/// # Where a request is rejected
///
/// In [`call`](Service::call): when the key is in backoff, the inner service is not
/// called at all and the returned future fails at once with a [`BackoffError`]
/// (boxed as [`BoxError`]; find it with `downcast_ref::<BackoffError>()`). Nothing is
/// recorded for a refused request.
///
/// # What counts as a failure
///
/// - an error from the inner service: a failure (except a [`BackoffError`] from another
///   backoff layer further in, which counts as nothing);
/// - a response with a 5xx or 429 status: a failure;
/// - any other response: a success, which clears the key.
///
/// A response future dropped before it completes records nothing.
///
/// # Readiness and sharing
///
/// [`poll_ready`](Service::poll_ready) delegates to the inner service unchanged. Clones
/// of the service share one registry, so a host that trips through one clone is in
/// backoff for all of them (and for anything else using the registry).
///
/// [`BackoffError`]: crate::BackoffError
#[derive(Debug, Clone)]
pub struct BackoffService<S> {
    inner: S,
    registry: BackoffRegistry,
}

impl<S> BackoffService<S> {
    /// Wraps `inner`, recording outcomes in `registry`.
    pub fn new(inner: S, registry: BackoffRegistry) -> Self {
        Self { inner, registry }
    }

    /// Returns the registry this service reports to.
    pub fn registry(&self) -> &BackoffRegistry {
        &self.registry
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BackoffService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(key) = authority_key(request.uri()) else {
            return ResponseFuture::untracked(self.inner.call(request));
        };

        match self.registry.admit(&key) {
            Ok(ticket) => {
                let key = key.into();
                let registry = self.registry.clone();
                ResponseFuture::tracked(self.inner.call(request), registry, key, ticket)
            }
            Err(backoff) => ResponseFuture::rejected(backoff),
        }
    }
}
