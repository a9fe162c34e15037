//! `BackoffLayer` around a real hyper-util client talking to real servers on loopback.

mod support;

use std::time::Duration;

use http::StatusCode;
use tower::{Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry, ManualClock};

use support::{get, http_client, refusing_addr, TestServer};

fn registry(clock: &ManualClock) -> BackoffRegistry {
    BackoffRegistry::builder()
        .window(Duration::from_secs(10))
        .threshold(3)
        .backoff(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_failing_server_is_backed_off_and_retried_after_the_deadline() {
    // 503 for the first three requests, then healthy.
    let server = TestServer::start(|sequence| match sequence {
        0..=2 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    })
    .await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut client = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(http_client());

    for _ in 0..3 {
        let response = client
            .ready()
            .await
            .unwrap()
            .call(get(&server.uri("/")))
            .await;
        assert_eq!(response.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let until = clock.now() + Duration::from_secs(30);
    assert_eq!(registry.next_retry_at(&server.key()), Some(until));

    // While in backoff, nothing reaches the server.
    for _ in 0..5 {
        let error = client
            .ready()
            .await
            .unwrap()
            .call(get(&server.uri("/again")))
            .await
            .unwrap_err();
        let backoff = error.downcast_ref::<BackoffError>().unwrap();
        assert_eq!(backoff.key(), server.key());
        assert_eq!(backoff.until(), until);
    }
    assert_eq!(server.hits(), 3);

    // After the deadline the request goes through, succeeds and clears the key.
    clock.advance(Duration::from_secs(30));
    let response = client
        .ready()
        .await
        .unwrap()
        .call(get(&server.uri("/")))
        .await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert_eq!(server.hits(), 4);
    assert!(registry.is_empty());
}

#[tokio::test]
async fn hosts_are_backed_off_independently() {
    let failing = TestServer::start(|_| StatusCode::BAD_GATEWAY).await;
    let healthy = TestServer::start(|_| StatusCode::OK).await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut client = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(http_client());

    for _ in 0..3 {
        let _ = client
            .ready()
            .await
            .unwrap()
            .call(get(&failing.uri("/")))
            .await;
        let response = client
            .ready()
            .await
            .unwrap()
            .call(get(&healthy.uri("/")))
            .await;
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }

    assert!(registry.should_backoff(&failing.key()));
    assert!(!registry.should_backoff(&healthy.key()));
    assert_eq!(registry.keys(), [failing.key()]);
    let response = client
        .ready()
        .await
        .unwrap()
        .call(get(&healthy.uri("/")))
        .await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert_eq!((failing.hits(), healthy.hits()), (3, 4));
}

#[tokio::test]
async fn connection_errors_count_as_failures() {
    let addr = refusing_addr().await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut client = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(http_client());
    let uri = format!("http://{addr}/");

    for expected in 1..=3 {
        let error = client
            .ready()
            .await
            .unwrap()
            .call(get(&uri))
            .await
            .unwrap_err();
        assert!(error.downcast_ref::<BackoffError>().is_none());
        assert_eq!(
            registry.stats(&addr.to_string()).failures_in_window,
            expected
        );
    }

    let error = client
        .ready()
        .await
        .unwrap()
        .call(get(&uri))
        .await
        .unwrap_err();
    assert!(error.is::<BackoffError>());
}

#[tokio::test]
async fn the_same_host_spelled_differently_is_one_key() {
    let server = TestServer::start(|_| StatusCode::INTERNAL_SERVER_ERROR).await;
    let clock = ManualClock::new();
    let registry = registry(&clock);
    let mut client = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(http_client());
    let port = server.addr.port();
    let spellings = [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://user:pw@127.0.0.1:{port}/b?q=1"),
        format!("http://127.0.0.1:0{port}/c"),
    ];

    for uri in &spellings {
        let response = client.ready().await.unwrap().call(get(uri)).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    assert_eq!(registry.keys(), [server.key()]);
    assert!(registry.should_backoff(&server.key()));
}
