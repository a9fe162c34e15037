//! [`BackoffMiddleware`]: the same backoff for `reqwest` clients, as a
//! `reqwest-middleware` middleware.

use std::fmt;
use std::time::Duration;

use ::reqwest::{Request, Response, Url};
use http::{Extensions, Uri};
use reqwest_middleware::{Error, Middleware, Next};

use crate::classify::{Classify, DefaultClassifier};
use crate::config::Config;
use crate::error::BackoffError;
use crate::extract::{AuthorityKey, ExtractKey, RequestHead};
use crate::hashing::Lookup;
use crate::judge::Verdict;
use crate::key_buf::KeyBuf;
use crate::pending::Pending;
use crate::registry::{BackoffRegistry, Mode};

/// A [`reqwest_middleware::Middleware`] that refuses requests to hosts in backoff and
/// reports every outcome to a [`BackoffRegistry`]. Needs the `reqwest` feature.
///
/// It follows the same rules as [`BackoffLayer`](crate::BackoffLayer), with the same
/// settings: the same key (the URL's authority unless you choose otherwise), the same
/// classifier and the same `Retry-After` handling, so a layer and a middleware sharing
/// one registry agree on every host.
///
/// A refused request is not sent; `handle` returns
/// [`reqwest_middleware::Error::Middleware`] holding a [`BackoffError`] (find it with
/// [`BackoffError::find_in_reqwest`]). Errors from reqwest and from middleware further
/// in are failures, except a [`BackoffError`], which counts as nothing.
///
/// The key extractor sees the request URL (without its fragment) as an [`http::Uri`];
/// a URL too long for `http::Uri` shows only its scheme and authority. Its
/// [`RequestHead::extensions`] are the middleware chain's extensions. A reqwest URL
/// always names a host, so there is no `Host` fallback here. Unlike the layer, the
/// middleware copies the URL for every request.
///
/// ```
/// use url_backoff_registry::{BackoffMiddleware, BackoffRegistry};
///
/// let registry = BackoffRegistry::new();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BackoffMiddleware::new(registry.clone()))
///     .build();
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct BackoffMiddleware<K = AuthorityKey, C = DefaultClassifier> {
    config: Config<K, C>,
}

impl BackoffMiddleware {
    /// Creates a middleware backed by `registry`, with the default key, classifier and
    /// `Retry-After` handling.
    pub fn new(registry: BackoffRegistry) -> Self {
        Self {
            config: Config::new(registry, AuthorityKey::new(), DefaultClassifier),
        }
    }
}

impl<K, C> BackoffMiddleware<K, C> {
    /// Returns the registry the middleware reports to.
    pub fn registry(&self) -> &BackoffRegistry {
        &self.config.registry
    }

    /// Replaces the key extractor; see [`ExtractKey`].
    #[must_use]
    pub fn key_extractor<L>(self, extractor: L) -> BackoffMiddleware<L, C> {
        BackoffMiddleware {
            config: self.config.with_extractor(extractor),
        }
    }

    /// Replaces the classifier; see [`Classify`].
    #[must_use]
    pub fn classifier<D>(self, classifier: D) -> BackoffMiddleware<K, D> {
        BackoffMiddleware {
            config: self.config.with_classifier(classifier),
        }
    }

    /// Chooses whether a success clears the key (default `true`); see
    /// [`BackoffLayer::clear_on_success`](crate::BackoffLayer::clear_on_success).
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

    /// Sets the longest backoff a `Retry-After` hint can impose (default one hour).
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config = self.config.max_retry_after(max);
        self
    }
}

impl<K: ExtractKey, C: Classify> BackoffMiddleware<K, C> {
    /// Returns the key for `request`, or `None` to let it pass untracked.
    fn key(&self, request: &Request, extensions: &Extensions) -> Option<KeyBuf> {
        let uri = url_to_uri(request.url())?;
        let head = RequestHead::new(request.method(), &uri, request.headers(), extensions);
        self.config.extractor.extract_key(head).map(KeyBuf::from)
    }

    fn judge<'a>(&self, result: &'a reqwest_middleware::Result<Response>) -> Verdict<'a> {
        let judge = &self.config.judge;
        match result {
            Ok(response) => judge.response(response.status(), response.headers()),
            Err(Error::Middleware(error)) => judge.error(error.as_ref()),
            Err(Error::Reqwest(error)) => judge.error(error),
        }
    }
}

#[async_trait::async_trait]
impl<K, C> Middleware for BackoffMiddleware<K, C>
where
    K: ExtractKey + Send + Sync + 'static,
    C: Classify + Send + Sync + 'static,
{
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let Some(key) = self.key(&request, extensions) else {
            return next.run(request, extensions).await;
        };
        let registry = &self.config.registry;
        let ticket = registry
            .admit(Lookup::new(&key), Mode::Enforce)
            .map_err(Error::middleware)?;

        // Dropped before the response arrives, `pending` records nothing (and gives a
        // probe's slot back).
        let mut pending = Pending::new(registry, key, ticket);
        let result = next.run(request, extensions).await;
        self.judge(&result).record(&mut pending);
        result
    }
}

/// Converts a URL to a URI without its fragment, or to one with only the scheme and
/// authority if `http::Uri` cannot hold the whole URL.
fn url_to_uri(url: &Url) -> Option<Uri> {
    let text = url.as_str();
    let without_fragment = &text[..text.find('#').unwrap_or(text.len())];
    if let Ok(uri) = without_fragment.parse() {
        return Some(uri);
    }
    Uri::builder()
        .scheme(url.scheme())
        .authority(url.authority())
        .path_and_query("/")
        .build()
        .ok()
}

impl BackoffError {
    /// Finds the refusal of a [`BackoffMiddleware`] in a `reqwest-middleware` error.
    /// Needs the `reqwest` feature.
    pub fn find_in_reqwest(error: &Error) -> Option<&Self> {
        match error {
            Error::Middleware(error) => Self::find(error.as_ref()),
            Error::Reqwest(error) => Self::find(error),
        }
    }
}

impl<K, C> fmt::Debug for BackoffMiddleware<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffMiddleware")
            .field("config", &self.config)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_uris_without_their_fragment() {
        let url = Url::parse("http://user:pw@Example.com:8080/a?b=1#frag").unwrap();
        let uri = url_to_uri(&url).unwrap();
        assert_eq!(uri.to_string(), "http://user:pw@example.com:8080/a?b=1");
    }

    #[test]
    fn urls_too_long_for_a_uri_keep_their_authority() {
        let path = "a".repeat(70_000);
        let url = Url::parse(&format!("http://example.com:81/{path}")).unwrap();
        let uri = url_to_uri(&url).unwrap();
        assert_eq!(uri.to_string(), "http://example.com:81/");
    }
}
