//! [`BackoffLayer`]: applies [`BackoffService`] to an inner service.

use std::fmt;
use std::time::Duration;

use tower::Layer;

use crate::classify::DefaultClassifier;
use crate::config::Config;
use crate::extract::AuthorityKey;
use crate::registry::BackoffRegistry;
use crate::service::BackoffService;

/// A [`tower::Layer`] that guards an HTTP client service with a [`BackoffRegistry`].
///
/// Every service it makes shares the layer's registry. See [`BackoffService`] for what
/// the middleware does. The defaults: the key is the URI authority ([`AuthorityKey`]),
/// outcomes follow the [`DefaultClassifier`], a success clears the key, and a
/// `Retry-After` hint on a failure is respected up to
/// [`DEFAULT_MAX_RETRY_AFTER`](crate::DEFAULT_MAX_RETRY_AFTER) (one hour).
///
/// ```
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use url_backoff_registry::{BackoffLayer, BackoffRegistry};
///
/// # use http::{Request, Response};
/// # use tower::{util::BoxCloneService, BoxError};
/// # type Client = BoxCloneService<Request<String>, Response<String>, BoxError>;
/// # fn client() -> Client {
/// #     BoxCloneService::new(tower::service_fn(|_req| async {
/// #         Ok::<_, BoxError>(Response::new(String::new()))
/// #     }))
/// # }
/// let registry = BackoffRegistry::new();
/// let service = ServiceBuilder::new()
///     .layer(
///         BackoffLayer::new(registry.clone())
///             .host_fallback(true)
///             .max_retry_after(Duration::from_secs(300)),
///     )
///     .service(client());
/// # drop(service);
/// ```
#[derive(Clone)]
pub struct BackoffLayer<K = AuthorityKey, C = DefaultClassifier> {
    config: Config<K, C>,
}

impl BackoffLayer {
    /// Creates a layer backed by `registry`, with the default key, classifier and
    /// `Retry-After` handling.
    pub fn new(registry: BackoffRegistry) -> Self {
        Self {
            config: Config::new(registry, AuthorityKey::new(), DefaultClassifier),
        }
    }
}

impl<C> BackoffLayer<AuthorityKey, C> {
    /// Chooses whether a request whose URI has no authority counts against its `Host`
    /// header (default `false`); see [`AuthorityKey::host_fallback`].
    #[must_use]
    pub fn host_fallback(mut self, enabled: bool) -> Self {
        self.config.extractor = self.config.extractor.host_fallback(enabled);
        self
    }
}

impl<K, C> BackoffLayer<K, C> {
    /// Returns the registry the layer's services share.
    pub fn registry(&self) -> &BackoffRegistry {
        &self.config.registry
    }

    /// Replaces the key extractor; see [`ExtractKey`](crate::ExtractKey).
    #[must_use]
    pub fn key_extractor<L>(self, extractor: L) -> BackoffLayer<L, C> {
        BackoffLayer {
            config: self.config.with_extractor(extractor),
        }
    }

    /// Replaces the classifier; see [`Classify`](crate::Classify).
    #[must_use]
    pub fn classifier<D>(self, classifier: D) -> BackoffLayer<K, D> {
        BackoffLayer {
            config: self.config.with_classifier(classifier),
        }
    }

    /// Chooses whether a success clears the key (default `true`). When off, a success
    /// records nothing, except that a successful probe ends its key's probing: failures
    /// age out of the window and backoffs run their course.
    #[must_use]
    pub fn clear_on_success(mut self, clear: bool) -> Self {
        self.config = self.config.clear_on_success(clear);
        self
    }

    /// Chooses whether a `Retry-After` header on a failed response puts the key into
    /// backoff until then (default `true`).
    #[must_use]
    pub fn respect_retry_after(mut self, respect: bool) -> Self {
        self.config = self.config.respect_retry_after(respect);
        self
    }

    /// Sets the longest backoff a `Retry-After` hint can impose (default one hour,
    /// [`DEFAULT_MAX_RETRY_AFTER`](crate::DEFAULT_MAX_RETRY_AFTER)). Longer hints are
    /// cut to this; zero turns hints off.
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config = self.config.max_retry_after(max);
        self
    }
}

impl<K, C> BackoffLayer<K, C> {
    /// Runs the layer in shadow mode (default off): it records outcomes, logs and
    /// reports events exactly as usual, but never refuses a call.
    ///
    /// A call that would have been refused goes through, and its
    /// [`BackoffEvent::ShortCircuited`](crate::BackoffEvent::ShortCircuited) event has
    /// `shadow: true`. Its outcome is not recorded: in enforcing mode it would not have
    /// happened, so the registry evolves exactly as it would if the layer were on. Use
    /// it to watch what the layer would do before turning it on.
    #[must_use]
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.config = self.config.shadow(shadow);
        self
    }
}

impl<S, K: Clone, C: Clone> Layer<S> for BackoffLayer<K, C> {
    type Service = BackoffService<S, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BackoffService::from_config(inner, self.config.clone())
    }
}

impl<K, C> fmt::Debug for BackoffLayer<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffLayer")
            .field("config", &self.config)
            .finish()
    }
}
