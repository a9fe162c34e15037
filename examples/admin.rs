//! An admin endpoint for a backoff registry, built with axum:
//!
//! - `GET /admin/backoff` answers every key the registry has something to show for, as
//!   JSON (`BackoffRegistry::snapshot`; `KeySnapshot` is `Serialize` with the `serde`
//!   feature);
//! - `POST /admin/backoff/{key}/release` ends the key's backoff now
//!   (`BackoffRegistry::release`): 200 and `{"released":true}` if the key was held
//!   back, 404 and `{"released":false}` if it was not.
//!
//! Run it with `cargo run --features serde --example admin`. It fills a registry with
//! keys in four states, serves the endpoints on loopback, calls them with a hyper-util
//! client and prints what came back. The registry runs on a `ManualClock` so that the
//! numbers are the same on every run; a real service keeps the default clock and
//! shares the registry with its `BackoffLayer`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use url_backoff_registry::{BackoffRegistry, Escalation, KeySnapshot, ManualClock, TrackError};

/// One call to the admin endpoint and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

#[tokio::main]
async fn main() {
    for exchange in run().await {
        println!("{exchange}");
    }
}

/// Fills a registry, serves its admin routes on `127.0.0.1:0`, and calls them: the
/// list, a release of a key in backoff, a release of a key that is not, and the list
/// again.
pub(crate) async fn run() -> Vec<Exchange> {
    let registry = populated_registry().await;
    let addr = serve(admin_routes(registry)).await;

    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut exchanges = Vec::new();
    for (method, path) in [
        (Method::GET, "/admin/backoff"),
        (Method::POST, "/admin/backoff/legacy.internal/release"),
        (Method::POST, "/admin/backoff/unknown.example/release"),
        (Method::GET, "/admin/backoff"),
    ] {
        exchanges.push(call(&client, addr, method, path).await);
    }
    exchanges
}

/// The admin routes over `registry`; merge them into a service's own router.
pub(crate) fn admin_routes(registry: BackoffRegistry) -> Router {
    Router::new()
        .route("/admin/backoff", get(list))
        .route("/admin/backoff/{key}/release", post(release))
        .with_state(registry)
}

/// `GET /admin/backoff`: every key with something to show, sorted by key.
async fn list(State(registry): State<BackoffRegistry>) -> Json<Vec<KeySnapshot>> {
    Json(registry.snapshot())
}

/// `POST /admin/backoff/{key}/release`: ends the key's backoff, if it had one.
async fn release(
    State(registry): State<BackoffRegistry>,
    Path(key): Path<String>,
) -> (StatusCode, Json<Value>) {
    let released = registry.release(&key);
    let status = match released {
        true => StatusCode::OK,
        false => StatusCode::NOT_FOUND,
    };
    (status, Json(json!({ "released": released })))
}

/// A registry with escalation and probes on, holding four keys 40 s into its life:
///
/// - `api.example.com` tripped at 0 s; its probe at 30 s failed, so it backs off
///   twice as long (60 s) and has 50 s left;
/// - `cdn.example.net` tripped at 0 s too; its backoff is over and it waits for a
///   probe;
/// - `legacy.internal` was forced into backoff for ten minutes by an operator;
/// - `search.example.org` failed once and is not in backoff.
async fn populated_registry() -> BackoffRegistry {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .window(Duration::from_secs(60))
        .threshold(3)
        .backoff(Duration::from_secs(30))
        .escalation(Escalation::new(2.0, Duration::from_secs(240)))
        .probes(1)
        .clock(clock.clone())
        .build()
        .expect("the example's settings are valid");

    for _ in 0..3 {
        registry.record_failure("api.example.com");
        registry.record_failure("cdn.example.net");
    }
    clock.advance(Duration::from_secs(30));
    // Both backoffs are over. A call to `api.example.com` is its probe, and fails.
    let _: Result<(), TrackError<&str>> = registry
        .track("api.example.com", async { Err("connection refused") })
        .await;

    clock.advance(Duration::from_secs(10));
    registry.force_backoff("legacy.internal", clock.now() + Duration::from_secs(600));
    registry.record_failure("search.example.org");
    registry
}

/// Sends `method path` to the admin server and reads the whole answer.
async fn call(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &'static str,
) -> Exchange {
    let request = Request::builder()
        .method(method.clone())
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())
        .expect("a valid request");
    let response = client.request(request).await.expect("the server answers");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    Exchange {
        method,
        path,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Serves `app` on `127.0.0.1:0` and returns its address.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener has an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Shows the call and its status, then the body: one line per key for a list.
impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {} -> {}", self.method, self.path, self.status)?;
        // Each entry of a list exactly as the server wrote it.
        match serde_json::from_str::<Vec<&RawValue>>(&self.body) {
            Ok(entries) => entries
                .iter()
                .try_for_each(|entry| writeln!(f, "  {}", entry.get())),
            Err(_) => writeln!(f, "  {}", self.body),
        }
    }
}
