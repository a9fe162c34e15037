//! Runs the admin endpoint example against its real loopback server. The registry runs
//! on a manual clock, so every number in the JSON is exact.

#[allow(dead_code)]
#[path = "../examples/admin.rs"]
mod admin;

use std::time::{Duration, Instant};

use admin::Exchange;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use tower::ServiceExt;
use url_backoff_registry::BackoffRegistry;

fn exchange(method: Method, path: &'static str, status: StatusCode, body: &str) -> Exchange {
    Exchange {
        method,
        path,
        status,
        body: body.to_owned(),
    }
}

const API: &str = concat!(
    r#"{"key":"api.example.com","failures_in_window":3,"in_backoff":true,"#,
    r#""retry_after_secs":50.0,"probing":false,"trips":2,"multiplier":2.0}"#
);
const CDN: &str = concat!(
    r#"{"key":"cdn.example.net","failures_in_window":3,"in_backoff":false,"#,
    r#""retry_after_secs":null,"probing":true,"trips":1,"multiplier":1.0}"#
);
const LEGACY: &str = concat!(
    r#"{"key":"legacy.internal","failures_in_window":0,"in_backoff":true,"#,
    r#""retry_after_secs":600.0,"probing":false,"trips":1,"multiplier":1.0}"#
);
const SEARCH: &str = concat!(
    r#"{"key":"search.example.org","failures_in_window":1,"in_backoff":false,"#,
    r#""retry_after_secs":null,"probing":false,"trips":0,"multiplier":1.0}"#
);

#[tokio::test]
async fn the_admin_endpoint_lists_keys_and_releases_them() {
    let exchanges = admin::run().await;

    let list = "/admin/backoff";
    let release_legacy = "/admin/backoff/legacy.internal/release";
    let release_unknown = "/admin/backoff/unknown.example/release";
    assert_eq!(
        exchanges,
        [
            exchange(
                Method::GET,
                list,
                StatusCode::OK,
                &format!("[{API},{CDN},{LEGACY},{SEARCH}]")
            ),
            exchange(
                Method::POST,
                release_legacy,
                StatusCode::OK,
                r#"{"released":true}"#
            ),
            exchange(
                Method::POST,
                release_unknown,
                StatusCode::NOT_FOUND,
                r#"{"released":false}"#
            ),
            // The released key is gone; the others are as they were.
            exchange(
                Method::GET,
                list,
                StatusCode::OK,
                &format!("[{API},{CDN},{SEARCH}]")
            ),
        ]
    );
}

#[test]
fn an_exchange_shows_one_line_per_key() {
    let listed = exchange(
        Method::GET,
        "/admin/backoff",
        StatusCode::OK,
        &format!("[{API},{SEARCH}]"),
    );
    assert_eq!(
        listed.to_string(),
        format!("GET /admin/backoff -> 200 OK\n  {API}\n  {SEARCH}\n")
    );
}

#[tokio::test]
async fn a_key_with_a_port_or_an_ipv6_host_is_released_by_its_percent_encoded_path() {
    let registry = BackoffRegistry::new();
    let until = Instant::now() + Duration::from_secs(60);
    registry.force_backoff("[::1]:8080", until);
    registry.force_backoff("10.0.0.7:8443", until);

    for path in [
        "/admin/backoff/%5B::1%5D:8080/release",
        "/admin/backoff/10.0.0.7:8443/release",
    ] {
        let request = Request::post(path).body(Body::empty()).unwrap();
        let response = admin::admin_routes(registry.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    assert!(registry.snapshot().is_empty());
}
