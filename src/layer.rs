//! [`BackoffLayer`]: applies [`BackoffService`] to an inner service.

use tower::Layer;

use crate::registry::BackoffRegistry;
use crate::service::BackoffService;

/// A [`tower::Layer`] that guards an HTTP client service with a [`BackoffRegistry`].
///
/// Every service it makes shares the layer's registry. See [`BackoffService`] for what
/// the middleware does.
///
/// ```
/// use tower::ServiceBuilder;
/// use url_backoff_registry::{BackoffLayer, BackoffRegistry};
///
/// # fn client() -> tower::util::BoxService<http::Request<String>, http::Response<String>, tower::BoxError> {
/// #     tower::util::BoxService::new(tower::service_fn(|_req| async {
/// #         Ok::<_, tower::BoxError>(http::Response::new(String::new()))
/// #     }))
/// # }
/// let registry = BackoffRegistry::new();
/// let service = ServiceBuilder::new()
///     .layer(BackoffLayer::new(registry.clone()))
///     .service(client());
/// # drop(service);
/// ```
#[derive(Debug, Clone)]
pub struct BackoffLayer {
    registry: BackoffRegistry,
}

impl BackoffLayer {
    /// Creates a layer backed by `registry`.
    pub fn new(registry: BackoffRegistry) -> Self {
        Self { registry }
    }

    /// Returns the registry the layer's services share.
    pub fn registry(&self) -> &BackoffRegistry {
        &self.registry
    }
}

impl<S> Layer<S> for BackoffLayer {
    type Service = BackoffService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BackoffService::new(inner, self.registry.clone())
    }
}
