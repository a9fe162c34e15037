//! Which key a request counts against: normalisation, custom extractors, and the
//! `Host` fallback on a real axum server.

mod support;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use http::{Request, Response, StatusCode};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{
    authority_key, key_fn, BackoffError, BackoffLayer, BackoffRegistry, ManualClock, RequestHead,
    Rule,
};

use support::http_client;

fn registry(threshold: u32) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(threshold)
        .backoff(Duration::from_secs(60))
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

fn response(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}

/// An inner service that always answers `status`, counting its calls.
fn answering(
    status: StatusCode,
    calls: &Arc<AtomicUsize>,
) -> impl Service<Request<()>, Response = Response<()>, Error = BoxError, Future: Send> + Clone {
    let calls = Arc::clone(calls);
    tower::service_fn(move |_: Request<()>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(response(status)) }
    })
}

async fn send<S>(service: &mut S, uri: &str) -> Result<Response<()>, BoxError>
where
    S: Service<Request<()>, Response = Response<()>, Error = BoxError>,
{
    let request = Request::get(uri).body(()).unwrap();
    service.ready().await?.call(request).await
}

#[tokio::test]
async fn ipv6_spellings_share_one_canonical_key() {
    let registry = registry(10);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service =
        BackoffLayer::new(registry.clone()).layer(answering(StatusCode::BAD_GATEWAY, &calls));

    for uri in [
        "http://[2001:DB8:0:0:0:0:0:1]:8080/a",
        "http://[2001:db8::1]:8080/b",
        "http://[2001:0db8:0000::0001]:08080/c",
    ] {
        send(&mut service, uri).await.unwrap();
    }

    assert_eq!(registry.keys(), ["[2001:db8::1]:8080"]);
    assert_eq!(registry.stats("[2001:db8::1]:8080").failures_in_window, 3);
}

#[tokio::test]
async fn an_invalid_port_leaves_the_request_untracked() {
    let registry = registry(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service =
        BackoffLayer::new(registry.clone()).layer(answering(StatusCode::BAD_GATEWAY, &calls));

    // `http` accepts both URIs; threshold 1 would refuse the second call if tracked.
    for uri in [
        "http://api.example.com:99999/",
        "http://api.example.com:080a/",
    ] {
        for _ in 0..2 {
            let response = send(&mut service, uri).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{uri}");
        }
    }

    assert!(registry.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn userinfo_never_reaches_a_key_or_an_error_message() {
    let registry = registry(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = BackoffLayer::new(registry.clone())
        .layer(answering(StatusCode::SERVICE_UNAVAILABLE, &calls));
    let uri = "https://alice:hunter2@API.example.com:443/private?token=abc";

    send(&mut service, uri).await.unwrap();
    let error = send(&mut service, uri).await.unwrap_err();

    assert_eq!(registry.keys(), ["api.example.com"]);
    let backoff = error.downcast_ref::<BackoffError>().unwrap();
    assert_eq!(backoff.key(), "api.example.com");
    let shown = format!("{error} {backoff:?}");
    for secret in ["alice", "hunter2", "private", "token", "abc"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_key_function_groups_hosts_and_rules_follow_its_keys() {
    let registry = registry(3);
    registry
        .set_rule("search", Rule::default().threshold(1))
        .unwrap();
    let by_service = key_fn(|request: RequestHead<'_>| {
        let key = authority_key(request.uri())?;
        if key.ends_with(".search.internal") {
            Some(Cow::Borrowed("search"))
        } else {
            Some(key)
        }
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = BackoffLayer::new(registry.clone())
        .key_extractor(by_service)
        .layer(answering(StatusCode::SERVICE_UNAVAILABLE, &calls));

    // One failure of one shard trips the whole cluster under the "search" rule.
    send(&mut service, "http://shard-1.search.internal/q")
        .await
        .unwrap();
    let error = send(&mut service, "http://shard-2.search.internal/q")
        .await
        .unwrap_err();
    assert_eq!(
        error.downcast_ref::<BackoffError>().unwrap().key(),
        "search"
    );

    // Other hosts keep their own key and the default threshold of 3.
    for _ in 0..2 {
        send(&mut service, "http://billing.internal/")
            .await
            .unwrap();
    }
    assert!(!registry.should_backoff("billing.internal"));
    assert_eq!(registry.keys(), ["billing.internal", "search"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_plain_function_is_a_key_extractor() {
    fn path_prefix(request: RequestHead<'_>) -> Option<Cow<'_, str>> {
        let path = request.uri().path();
        let first = path.trim_start_matches('/').split('/').next()?;
        Some(Cow::Borrowed(first)).filter(|segment| !segment.is_empty())
    }

    let registry = registry(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = BackoffLayer::new(registry.clone())
        .key_extractor(path_prefix)
        .layer(answering(StatusCode::BAD_GATEWAY, &calls));

    send(&mut service, "/orders/1").await.unwrap();
    send(&mut service, "/").await.unwrap();
    assert_eq!(registry.keys(), ["orders"]);
    assert!(send(&mut service, "/orders/2").await.is_err());
}

/// Starts an axum server whose every route is guarded by a `BackoffLayer` keyed by
/// the `Host` header. The guarded service answers 503 when the host mentions `down`
/// and 200 otherwise; refusals become `BackoffError::to_response`.
async fn host_keyed_server(registry: &BackoffRegistry, hits: &Arc<AtomicUsize>) -> String {
    let hits = Arc::clone(hits);
    let upstream = tower::service_fn(move |request: Request<Body>| {
        hits.fetch_add(1, Ordering::SeqCst);
        let host = request.headers()["host"].as_bytes();
        let down = host
            .windows(4)
            .any(|window| window.eq_ignore_ascii_case(b"down"));
        let status = if down {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        async move { Ok::<_, BoxError>((status, "from upstream").into_response()) }
    });
    let guarded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|error: BoxError| async move {
            match BackoffError::find(&*error) {
                Some(backoff) => backoff.to_response::<Body>(),
                None => StatusCode::BAD_GATEWAY.into_response(),
            }
        }))
        .layer(BackoffLayer::new(registry.clone()).host_fallback(true))
        .service(upstream);
    let app = axum::Router::new().fallback_service(guarded);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/status")
}

async fn get_with_host(
    client: &support::HttpClient,
    uri: &str,
    host: &str,
) -> (StatusCode, Option<String>) {
    let request = Request::get(uri)
        .header("host", host)
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status(), retry_after)
}

#[tokio::test]
async fn on_an_axum_server_the_host_header_is_the_key() {
    let registry = BackoffRegistry::builder()
        .threshold(3)
        .backoff(Duration::from_secs(60))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let uri = host_keyed_server(&registry, &hits).await;
    let client = http_client();

    for _ in 0..3 {
        let answer = get_with_host(&client, &uri, "Down.Test").await;
        assert_eq!(answer, (StatusCode::SERVICE_UNAVAILABLE, None));
    }
    assert_eq!(registry.keys(), ["down.test"]);
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // Refused by the layer: 503 with the remaining backoff, and the upstream not hit.
    let answer = get_with_host(&client, &uri, "down.test").await;
    assert_eq!(
        answer,
        (StatusCode::SERVICE_UNAVAILABLE, Some("60".to_owned()))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // Another virtual host on the same server is unaffected.
    let answer = get_with_host(&client, &uri, "up.test").await;
    assert_eq!(answer, (StatusCode::OK, None));
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn on_an_axum_server_an_invalid_host_header_is_untracked() {
    let registry = registry(1);
    let hits = Arc::new(AtomicUsize::new(0));
    let uri = host_keyed_server(&registry, &hits).await;
    let client = http_client();

    // Threshold 1: had any of these been tracked, its second request would be refused.
    for host in ["user@down.test", "down.test:99999", "down test", "[::down"] {
        for _ in 0..2 {
            let answer = get_with_host(&client, &uri, host).await;
            assert_eq!(answer, (StatusCode::SERVICE_UNAVAILABLE, None), "{host}");
        }
    }
    assert!(registry.is_empty());
    assert_eq!(hits.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn without_the_fallback_origin_form_requests_are_untracked() {
    let registry = registry(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service =
        BackoffLayer::new(registry.clone()).layer(answering(StatusCode::BAD_GATEWAY, &calls));

    for _ in 0..3 {
        let request = Request::get("/x")
            .header("host", "down.test")
            .body(())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }
    assert!(registry.is_empty());
}

/// A small deterministic generator of odd strings: every byte that matters to an
/// authority, in random order and length.
fn odd_strings(count: usize) -> Vec<String> {
    const PIECES: [&str; 24] = [
        "a",
        "Z",
        "0",
        "9",
        ".",
        ":",
        "@",
        "[",
        "]",
        "%",
        "-",
        "_",
        "::",
        "65535",
        "65536",
        "99999999999999999999",
        "user:pw@",
        "[::1]",
        "[FE80::1%25eth0]",
        "xn--",
        " ",
        "\t",
        "\u{e9}",
        "",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let length = next() % 8;
            (0..length)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn odd_uris_and_host_headers_never_panic_or_leak_userinfo() {
    let fallback = url_backoff_registry::AuthorityKey::new().host_fallback(true);
    let mut tracked = 0;
    for text in odd_strings(20_000) {
        for uri in [
            format!("http://{text}/"),
            format!("https://{text}"),
            text.clone(),
        ] {
            if let Ok(uri) = uri.parse::<http::Uri>() {
                if let Some(key) = authority_key(&uri) {
                    assert!(!key.contains('@'), "{uri} gave {key}");
                    assert!(!key.is_empty(), "{uri}");
                    tracked += 1;
                }
            }
        }
        let Ok(value) = http::HeaderValue::from_str(&text) else {
            continue;
        };
        let request = Request::get("/").header("host", value).body(()).unwrap();
        let head = RequestHead::from_request(&request);
        if let Some(key) = url_backoff_registry::ExtractKey::extract_key(&fallback, head) {
            assert!(!key.contains('@'), "{text:?} gave {key}");
            assert!(!key.contains(' '), "{text:?} gave {key}");
        }
    }
    // The sweep is not vacuous: plenty of the strings are real authorities.
    assert!(tracked > 1_000, "{tracked}");
}
