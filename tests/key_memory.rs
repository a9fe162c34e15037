//! A service remembers the last authority it derived a key from. These tests check
//! that the memory never gives a request the wrong key: not across schemes, not across
//! hosts, and never for an extractor that looks at more than the authority.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::{ready, Ready};

use http::{Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt};
use url_backoff_registry::{
    key_fn, AuthorityKey, BackoffLayer, BackoffRegistry, ExtractKey, RequestHead,
};

/// An upstream that always fails, so that every request leaves a failure on its key.
fn failing(_request: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    ready(Ok(response))
}

fn registry() -> BackoffRegistry {
    BackoffRegistry::builder().threshold(100).build().unwrap()
}

/// Sends a request for `uri`, with a `Host` and an `x-tenant` header if given.
async fn send<S>(service: &mut S, uri: &str, host: Option<&str>, tenant: Option<&str>)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let mut request = Request::get(uri);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    if let Some(tenant) = tenant {
        request = request.header("x-tenant", tenant);
    }
    let request = request.body(()).unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

fn failures(registry: &BackoffRegistry, key: &str) -> usize {
    registry.stats(key).failures_in_window
}

#[tokio::test]
async fn the_scheme_is_part_of_what_is_remembered() {
    let registry = registry();
    let layer = BackoffLayer::new(registry.clone());
    let mut service = layer.layer(tower::service_fn(failing));

    // Port 443 is the default for https only: one authority, two keys.
    send(&mut service, "http://h.example:443/", None, None).await;
    send(&mut service, "https://h.example:443/", None, None).await;
    send(&mut service, "https://h.example:443/", None, None).await;
    send(&mut service, "http://h.example:443/", None, None).await;

    assert_eq!(registry.keys(), ["h.example", "h.example:443"]);
    assert_eq!(failures(&registry, "h.example"), 2);
    assert_eq!(failures(&registry, "h.example:443"), 2);
}

#[tokio::test]
async fn schemes_in_any_case_give_the_keys_authority_key_gives() {
    let registry = registry();
    let layer = BackoffLayer::new(registry.clone());
    let mut service = layer.layer(tower::service_fn(failing));

    // Schemes are case-insensitive, so `WS://h:80` drops its default port as
    // `ws://h:80` does, whichever the service met first.
    let uris = [
        "ws://h.example:80/",
        "WS://h.example:80/",
        "wss://h.example:80/",
        "WSS://h.example:443/",
        "Ws://h.example:443/",
    ];
    for uri in uris {
        send(&mut service, uri, None, None).await;
    }

    assert_eq!(
        registry.keys(),
        ["h.example", "h.example:443", "h.example:80"]
    );
    assert_eq!(failures(&registry, "h.example"), 3);
    assert_eq!(failures(&registry, "h.example:80"), 1);
    assert_eq!(failures(&registry, "h.example:443"), 1);
}

#[tokio::test]
async fn alternating_hosts_each_count_against_their_own_key() {
    let registry = registry();
    let mut service = BackoffLayer::new(registry.clone()).layer(tower::service_fn(failing));

    let uris = [
        "http://a.example/",
        "http://a.example/other",
        "http://B.example/",
        "http://a.example/",
        "http://user@b.example:80/",
        "http://b.example/",
    ];
    for uri in uris {
        send(&mut service, uri, None, None).await;
    }

    assert_eq!(registry.keys(), ["a.example", "b.example"]);
    assert_eq!(failures(&registry, "a.example"), 3);
    assert_eq!(failures(&registry, "b.example"), 3);
}

#[tokio::test]
async fn the_host_fallback_reads_each_request_s_host_header() {
    let registry = registry();
    let layer = BackoffLayer::new(registry.clone()).host_fallback(true);
    let mut service = layer.layer(tower::service_fn(failing));

    send(&mut service, "/x", Some("a.example"), None).await;
    send(&mut service, "/x", Some("b.example"), None).await;
    send(&mut service, "http://a.example/x", Some("b.example"), None).await;
    send(&mut service, "/x", Some("b.example"), None).await;

    assert_eq!(failures(&registry, "a.example"), 2);
    assert_eq!(failures(&registry, "b.example"), 2);
}

#[tokio::test]
async fn an_extractor_that_reads_headers_is_asked_every_time() {
    let registry = registry();
    let by_tenant = key_fn(|request: RequestHead<'_>| {
        let tenant = request.headers().get("x-tenant")?.to_str().ok()?;
        Some(Cow::Owned(format!("tenant-{tenant}")))
    });
    assert!(!by_tenant.depends_only_on_authority());
    let layer = BackoffLayer::new(registry.clone()).key_extractor(by_tenant);
    let mut service = layer.layer(tower::service_fn(failing));

    let uri = "http://shared.example/";
    send(&mut service, uri, None, Some("1")).await;
    send(&mut service, uri, None, Some("2")).await;
    send(&mut service, uri, None, Some("2")).await;
    send(&mut service, uri, None, None).await;

    assert_eq!(registry.keys(), ["tenant-1", "tenant-2"]);
    assert_eq!(failures(&registry, "tenant-1"), 1);
    assert_eq!(failures(&registry, "tenant-2"), 2);
}

#[test]
fn only_the_authority_key_promises_to_depend_on_the_authority_alone() {
    assert!(AuthorityKey::new().depends_only_on_authority());
    assert!(AuthorityKey::new()
        .host_fallback(true)
        .depends_only_on_authority());
    let plain = key_fn(|request| url_backoff_registry::authority_key(request.uri()));
    assert!(!plain.depends_only_on_authority());
}
