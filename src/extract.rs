//! Choosing the key a request counts against: [`ExtractKey`], the default
//! [`AuthorityKey`] and the [`RequestHead`] extractors look at.

use std::borrow::Cow;
use std::fmt;

use http::{Extensions, HeaderMap, Method, Request, Uri};

use crate::key::{authority_key, host_header_key};

/// The parts of a request a key extractor may look at: everything but the body.
///
/// Its `Debug` output shows only the method, so that a stray `{:?}` cannot log a path,
/// a query string, userinfo or a header.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// Gathers the parts of a request that is not an [`http::Request`] (a
    /// `reqwest::Request`, for example).
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        extensions: &'a Extensions,
    ) -> Self {
        Self {
            method,
            uri,
            headers,
            extensions,
        }
    }

    /// Borrows the head of `request`.
    pub fn from_request<B>(request: &'a Request<B>) -> Self {
        Self::new(
            request.method(),
            request.uri(),
            request.headers(),
            request.extensions(),
        )
    }

    /// Returns the request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// Returns the request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// Returns the request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// Returns the request extensions.
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

impl fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", self.method)
            .finish_non_exhaustive()
    }
}

/// Chooses the registry key a request counts against, or `None` to let it pass
/// untracked (never refused, its outcome not recorded).
///
/// [`AuthorityKey`] is the default. A function
/// `fn(RequestHead<'_>) -> Option<Cow<'_, str>>`, or a closure wrapped in [`key_fn`], is
/// an extractor too: the easy way to group hosts under one key or to give a service a
/// name that [`BackoffRegistry::set_rule`](crate::BackoffRegistry::set_rule) can refer
/// to.
///
/// Keys are compared byte for byte, so an extractor should return one spelling per
/// host; building on [`authority_key`] gives that. Keys appear in log lines and in
/// [`BackoffError`](crate::BackoffError) messages: never put secrets in them.
///
/// ```
/// use std::borrow::Cow;
/// use http::Request;
/// use url_backoff_registry::{authority_key, key_fn, ExtractKey, RequestHead};
///
/// // Every shard of the search cluster shares one key; other hosts keep their own.
/// let by_service = key_fn(|request| {
///     let key = authority_key(request.uri())?;
///     if key.ends_with(".search.internal") {
///         Some(Cow::Borrowed("search"))
///     } else {
///         Some(key)
///     }
/// });
///
/// let request = Request::get("http://shard-7.search.internal/q").body(()).unwrap();
/// let key = by_service.extract_key(RequestHead::from_request(&request));
/// assert_eq!(key.as_deref(), Some("search"));
/// ```
pub trait ExtractKey {
    /// Returns the key for `request`, borrowing from it where possible.
    fn extract_key<'a>(&self, request: RequestHead<'a>) -> Option<Cow<'a, str>>;

    /// Promises that, for a request whose URI has an authority, the key depends on
    /// nothing but the text of that authority and of the URI's scheme.
    ///
    /// A [`BackoffService`](crate::BackoffService) then derives the key once per run
    /// of requests to one authority and reuses it, which saves normalising and hashing
    /// on almost every request. The default is `false`, which is always correct;
    /// [`AuthorityKey`] returns `true`. Return `true` only if the promise holds: a key
    /// that looks at headers, the path or extensions would otherwise be reused for a
    /// request it does not fit.
    fn depends_only_on_authority(&self) -> bool {
        false
    }
}

impl<F> ExtractKey for F
where
    F: for<'a> Fn(RequestHead<'a>) -> Option<Cow<'a, str>>,
{
    fn extract_key<'a>(&self, request: RequestHead<'a>) -> Option<Cow<'a, str>> {
        self(request)
    }
}

/// A closure used as a key extractor; made by [`key_fn`].
#[derive(Clone, Copy)]
pub struct KeyFn<F> {
    f: F,
}

/// Makes a key extractor of a closure that returns the key of a request, borrowing
/// from it where it can.
///
/// The wrapper lets the compiler see that the key may borrow from the request, which
/// it cannot infer for a bare closure.
pub fn key_fn<F>(f: F) -> KeyFn<F>
where
    F: for<'a> Fn(RequestHead<'a>) -> Option<Cow<'a, str>>,
{
    KeyFn { f }
}

impl<F> ExtractKey for KeyFn<F>
where
    F: for<'a> Fn(RequestHead<'a>) -> Option<Cow<'a, str>>,
{
    fn extract_key<'a>(&self, request: RequestHead<'a>) -> Option<Cow<'a, str>> {
        (self.f)(request)
    }
}

impl<F> fmt::Debug for KeyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFn")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}

/// The default key: the request URI's authority, normalised by [`authority_key`].
///
/// With [`host_fallback`](Self::host_fallback), a request whose URI has no authority
/// (how HTTP/1.1 requests reach a server such as axum: `GET /path` plus a `Host`
/// header) counts against its `Host` header instead, normalised the same way. When the
/// URI has an authority, the `Host` header is never looked at, even if it differs or
/// the authority is invalid.
///
/// A `Host` header is used only if there is exactly one, it is a valid authority, and
/// it holds no userinfo; otherwise the request is untracked. Its port is dropped only
/// when the URI names a scheme whose default port it is.
///
/// ```
/// use http::Request;
/// use url_backoff_registry::{AuthorityKey, ExtractKey, RequestHead};
///
/// let request = Request::get("/items").header("host", "API.example.com").body(()).unwrap();
/// let head = RequestHead::from_request(&request);
/// assert_eq!(AuthorityKey::new().extract_key(head), None);
/// let key = AuthorityKey::new().host_fallback(true).extract_key(head);
/// assert_eq!(key.as_deref(), Some("api.example.com"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthorityKey {
    host_fallback: bool,
}

impl AuthorityKey {
    /// Creates the extractor, without the `Host` fallback.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses whether a request without a URI authority falls back to its `Host`
    /// header (default `false`).
    #[must_use]
    pub fn host_fallback(mut self, enabled: bool) -> Self {
        self.host_fallback = enabled;
        self
    }
}

impl ExtractKey for AuthorityKey {
    fn extract_key<'a>(&self, request: RequestHead<'a>) -> Option<Cow<'a, str>> {
        let uri = request.uri();
        if uri.authority().is_some() {
            return authority_key(uri);
        }
        if !self.host_fallback {
            return None;
        }
        host_header_key(request.headers(), uri.scheme_str())
    }

    /// The `Host` header is looked at only when the URI has no authority.
    fn depends_only_on_authority(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(extractor: AuthorityKey, uri: &str, host: Option<&str>) -> Option<String> {
        let mut request = Request::get(uri);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let request = request.body(()).unwrap();
        let key = extractor.extract_key(RequestHead::from_request(&request));
        key.map(Cow::into_owned)
    }

    #[test]
    fn the_uri_authority_is_the_key_and_wins_over_host() {
        let fallback = AuthorityKey::new().host_fallback(true);
        let uri = "http://a.example:8080/x";
        assert_eq!(
            key(fallback, uri, Some("b.example")).as_deref(),
            Some("a.example:8080")
        );
        assert_eq!(
            key(AuthorityKey::new(), uri, None).as_deref(),
            Some("a.example:8080")
        );
    }

    #[test]
    fn an_invalid_uri_authority_does_not_fall_back_to_host() {
        let fallback = AuthorityKey::new().host_fallback(true);
        assert_eq!(
            key(fallback, "http://a.example:99999/", Some("b.example")),
            None
        );
    }

    #[test]
    fn host_is_used_only_when_enabled() {
        assert_eq!(key(AuthorityKey::new(), "/x", Some("b.example")), None);
        let fallback = AuthorityKey::new().host_fallback(true);
        assert_eq!(
            key(fallback, "/x", Some("B.Example")).as_deref(),
            Some("b.example")
        );
        assert_eq!(key(fallback, "/x", None), None);
        assert_eq!(key(fallback, "/x", Some("u:p@b.example")), None);
    }

    #[test]
    fn debug_shows_only_the_method() {
        let request = Request::get("http://user:pw@h/secret?token=1")
            .header("authorization", "Bearer abc")
            .body(())
            .unwrap();
        let debug = format!("{:?}", RequestHead::from_request(&request));
        assert_eq!(debug, "RequestHead { method: GET, .. }");
    }
}
