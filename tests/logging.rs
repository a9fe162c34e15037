//! What the layer logs through `tracing`: the exact lines for trips, extensions,
//! refusals and recoveries, and nothing from paths, queries, userinfo or headers.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{Request, Response, StatusCode};
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_test::mock;
use tracing::subscriber::DefaultGuard;
use url_backoff_registry::{BackoffLayer, BackoffRegistry, BackoffService, ManualClock};

type Mock = mock::Mock<Request<()>, Response<()>>;
type Handle = mock::Handle<Request<()>, Response<()>>;

/// Everything the request carries that must never be logged.
const URI: &str = "https://alice:hunter2@API.Example.com:443/private/path?token=s3cr3t";
const SECRETS: [&str; 8] = [
    "alice",
    "hunter2",
    "private",
    "path",
    "token",
    "s3cr3t",
    "Bearer",
    "x-api-key",
];

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Sends everything logged at debug and above on this thread to the returned buffer.
fn capture() -> (Captured, DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

fn setup(threshold: u32) -> (BackoffService<Mock>, Handle, BackoffRegistry, ManualClock) {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .threshold(threshold)
        .backoff(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let (mock, handle) = mock::pair();
    let service = BackoffLayer::new(registry.clone()).layer(mock);
    (service, handle, registry, clock)
}

fn request() -> Request<()> {
    Request::get(URI)
        .header("authorization", "Bearer abc")
        .header("x-api-key", "k")
        .body(())
        .unwrap()
}

fn response(status: StatusCode, retry_after: Option<&'static str>) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    if let Some(value) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, value.parse().unwrap());
    }
    response
}

async fn exchange(
    service: &mut BackoffService<Mock>,
    handle: &mut Handle,
    reply: Response<()>,
) -> Result<Response<()>, BoxError> {
    let future = service.ready().await.unwrap().call(request());
    let (_, responder) = handle.next_request().await.unwrap();
    responder.send_response(reply);
    future.await
}

fn http_date(clock: &ManualClock, from_now: u64) -> String {
    httpdate::fmt_http_date(clock.system_now() + Duration::from_secs(from_now))
}

fn assert_no_secrets(lines: &[String]) {
    for line in lines {
        for secret in SECRETS {
            assert!(!line.contains(secret), "{secret:?} logged in {line:?}");
        }
    }
}

#[tokio::test]
async fn a_threshold_trip_a_refusal_and_a_recovery_are_logged_exactly() {
    let (captured, _guard) = capture();
    let (mut service, mut handle, _registry, clock) = setup(2);

    for _ in 0..2 {
        let reply = response(StatusCode::SERVICE_UNAVAILABLE, None);
        exchange(&mut service, &mut handle, reply).await.unwrap();
    }
    let until = http_date(&clock, 60);
    clock.advance(Duration::from_secs(15));
    handle.allow(1);
    service.call(request()).await.unwrap_err();
    clock.advance(Duration::from_secs(45));
    exchange(&mut service, &mut handle, response(StatusCode::OK, None))
        .await
        .unwrap();

    let lines = captured.lines();
    assert_eq!(
        lines,
        [
            format!(
                " INFO key entered backoff key=\"api.example.com\" failures=2 until={until} \
                 backoff_secs=60.0 cause=\"threshold\""
            ),
            concat!(
                "DEBUG call short-circuited key=\"api.example.com\" retry_after_secs=45.0 ",
                "probing=false shadow=false"
            )
            .to_owned(),
            " INFO key recovered key=\"api.example.com\"".to_owned(),
        ]
    );
    assert_no_secrets(&lines);
}

#[tokio::test]
async fn a_server_hint_trip_and_its_extension_are_logged_exactly() {
    let (captured, _guard) = capture();
    let (mut service, mut handle, _registry, clock) = setup(3);

    // Two calls in flight, so that the second answer arrives during the backoff.
    let first = service.ready().await.unwrap().call(request());
    let (_, first_reply) = handle.next_request().await.unwrap();
    let second = service.ready().await.unwrap().call(request());
    let (_, second_reply) = handle.next_request().await.unwrap();

    first_reply.send_response(response(StatusCode::TOO_MANY_REQUESTS, Some("30")));
    first.await.unwrap();
    let first_until = http_date(&clock, 30);
    clock.advance(Duration::from_secs(10));
    second_reply.send_response(response(StatusCode::SERVICE_UNAVAILABLE, Some("90")));
    second.await.unwrap();
    let second_until = http_date(&clock, 90);

    let lines = captured.lines();
    assert_eq!(
        lines,
        [
            format!(
                " INFO key entered backoff key=\"api.example.com\" failures=1 \
                 until={first_until} backoff_secs=30.0 cause=\"server hint\""
            ),
            format!(
                " INFO key backoff extended key=\"api.example.com\" until={second_until} \
                 backoff_secs=90.0 cause=\"server hint\""
            ),
        ]
    );
    assert_no_secrets(&lines);
}

#[tokio::test]
async fn a_shorter_hint_during_backoff_logs_nothing() {
    let (captured, _guard) = capture();
    let (mut service, mut handle, _registry, _clock) = setup(3);

    let first = service.ready().await.unwrap().call(request());
    let (_, first_reply) = handle.next_request().await.unwrap();
    let second = service.ready().await.unwrap().call(request());
    let (_, second_reply) = handle.next_request().await.unwrap();
    first_reply.send_response(response(StatusCode::SERVICE_UNAVAILABLE, Some("90")));
    first.await.unwrap();
    second_reply.send_response(response(StatusCode::SERVICE_UNAVAILABLE, Some("30")));
    second.await.unwrap();

    let lines = captured.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(" INFO key entered backoff"));
}

#[tokio::test]
async fn healthy_traffic_logs_nothing() {
    let (captured, _guard) = capture();
    let (mut service, mut handle, _registry, _clock) = setup(3);

    for _ in 0..5 {
        exchange(&mut service, &mut handle, response(StatusCode::OK, None))
            .await
            .unwrap();
    }
    let reply = response(StatusCode::BAD_GATEWAY, None);
    exchange(&mut service, &mut handle, reply).await.unwrap();
    exchange(&mut service, &mut handle, response(StatusCode::OK, None))
        .await
        .unwrap();

    // A failure below the threshold and the success that clears it are not news.
    assert_eq!(captured.lines(), Vec::<String>::new());
}
