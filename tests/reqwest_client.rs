//! `BackoffMiddleware` for reqwest: runs the example against its real loopback server,
//! and checks that the middleware applies the layer's key, classification and
//! `Retry-After` rules. The registry runs on a manual clock: reqwest keeps timers of
//! its own, so tokio's paused clock would not be exact.

mod support;

#[allow(dead_code)]
#[path = "../examples/reqwest_client.rs"]
mod reqwest_client;

use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use reqwest_client::{Summary, Time};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use url_backoff_registry::{
    BackoffError, BackoffMiddleware, BackoffRegistry, ManualClock, Outcome,
};

use support::{refusing_addr, TestServer};

#[tokio::test]
async fn the_example_honours_the_hint_and_shares_the_key_with_the_layer() {
    let clock = ManualClock::new();
    let summary = reqwest_client::run(Time::Manual(clock)).await;

    let expected = Summary {
        lines: vec![
            "reqwest: 429 (Retry-After: 2)".to_owned(),
            "reqwest: refused, 2s left".to_owned(),
            format!("hyper: refused, key {}", summary.server),
            "reqwest: 200".to_owned(),
        ],
        server: summary.server,
        server_hits: 2,
    };
    assert_eq!(summary, expected);
}

fn registry(clock: &ManualClock) -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(3)
        .backoff(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn client(middleware: impl reqwest_middleware::Middleware) -> ClientWithMiddleware {
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    ClientBuilder::new(plain).with(middleware).build()
}

/// Sends a GET and returns the status, or what kind of error it met.
async fn get(client: &ClientWithMiddleware, url: &str) -> Result<u16, String> {
    match client.get(url).send().await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) => match BackoffError::find_in_reqwest(&error) {
            Some(backoff) => Err(format!("refused {}", backoff.key())),
            None => Err("error".to_owned()),
        },
    }
}

fn with_retry_after(status: StatusCode, value: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(RETRY_AFTER, http::HeaderValue::from_static(value));
    response
}

#[tokio::test]
async fn failures_trip_at_the_threshold_and_a_success_clears() {
    let server = TestServer::start(|sequence| match sequence {
        0..=2 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    })
    .await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let client = client(BackoffMiddleware::new(registry.clone()));
    let url = server.uri("/items?page=2");

    for expected in 1..=3 {
        assert_eq!(get(&client, &url).await, Ok(503));
        assert_eq!(registry.stats(&server.key()).failures_in_window, expected);
    }
    let refused = format!("refused {}", server.key());
    assert_eq!(get(&client, &url).await, Err(refused));
    assert_eq!(server.hits(), 3);

    clock.advance(Duration::from_secs(60));
    assert_eq!(get(&client, &url).await, Ok(200));
    assert!(registry.is_empty());
}

#[tokio::test]
async fn invalid_hints_are_ignored_and_valid_ones_capped() {
    let server = TestServer::start_with(|sequence| match sequence {
        0 => with_retry_after(StatusCode::SERVICE_UNAVAILABLE, "120 seconds"),
        _ => with_retry_after(StatusCode::SERVICE_UNAVAILABLE, "99999999999999999999"),
    })
    .await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let middleware =
        BackoffMiddleware::new(registry.clone()).max_retry_after(Duration::from_secs(90));
    let client = client(middleware);
    let url = server.uri("/");

    assert_eq!(get(&client, &url).await, Ok(503));
    assert!(!registry.should_backoff(&server.key()));
    assert_eq!(get(&client, &url).await, Ok(503));
    assert_eq!(
        registry.next_retry_at(&server.key()),
        Some(clock.now() + Duration::from_secs(90))
    );
}

#[tokio::test]
async fn connection_errors_are_failures() {
    let addr = refusing_addr().await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let client = client(BackoffMiddleware::new(registry.clone()));
    let url = format!("http://{addr}/");

    for _ in 0..3 {
        assert_eq!(get(&client, &url).await, Err("error".to_owned()));
    }
    assert_eq!(get(&client, &url).await, Err(format!("refused {addr}")));
}

#[tokio::test]
async fn userinfo_paths_and_fragments_never_reach_the_key() {
    let server = TestServer::start(|_| StatusCode::BAD_GATEWAY).await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let client = client(BackoffMiddleware::new(registry.clone()));
    let port = server.addr.port();

    let url = format!("http://alice:hunter2@127.0.0.1:{port}/private#frag");
    assert_eq!(get(&client, &url).await, Ok(502));
    assert_eq!(registry.keys(), [server.key()]);
}

#[tokio::test]
async fn a_custom_classifier_and_the_success_switch_apply() {
    let server = TestServer::start(|sequence| match sequence {
        0 => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    })
    .await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let not_found_fails = |status: StatusCode, _: &HeaderMap| match status {
        StatusCode::NOT_FOUND => Outcome::Failure,
        _ => Outcome::Success,
    };
    let middleware = BackoffMiddleware::new(registry.clone())
        .classifier(not_found_fails)
        .clear_on_success(false);
    let client = client(middleware);
    let url = server.uri("/");

    assert_eq!(get(&client, &url).await, Ok(404));
    assert_eq!(get(&client, &url).await, Ok(200));
    assert_eq!(registry.stats(&server.key()).failures_in_window, 1);
}

#[tokio::test]
async fn an_inner_middleware_refusing_counts_as_nothing_outside() {
    let server = TestServer::start(|_| StatusCode::OK).await;
    let clock = ManualClock::new();
    let (outer, inner) = (registry(&clock), registry(&clock));
    for _ in 0..3 {
        inner.record_failure(&server.key());
    }
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = ClientBuilder::new(plain)
        .with(BackoffMiddleware::new(outer.clone()))
        .with(BackoffMiddleware::new(inner.clone()))
        .build();

    for _ in 0..3 {
        let refused = format!("refused {}", server.key());
        assert_eq!(get(&client, &server.uri("/")).await, Err(refused));
    }
    assert!(outer.is_empty());
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_dropped_request_records_nothing() {
    let server = TestServer::start(|_| StatusCode::OK).await;
    let never = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let never_addr = never.local_addr().unwrap();
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let client = client(BackoffMiddleware::new(registry.clone()));

    // The listener accepts nothing and answers nothing; give up after 200 ms.
    let call = client.get(format!("http://{never_addr}/")).send();
    let timed_out = tokio::time::timeout(Duration::from_millis(200), call).await;
    assert!(timed_out.is_err());
    assert!(registry.is_empty());

    // The client still works for other hosts.
    assert_eq!(get(&client, &server.uri("/")).await, Ok(200));
    drop(never);
}
