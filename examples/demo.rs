//! The main demo: a real hyper-util client, wrapped in `BackoffLayer`, calls a real
//! HTTP server on loopback that fails its first few requests and then recovers.
//!
//! Run it with `cargo run --example demo`. It prints one line per request, a line when
//! the host enters and leaves backoff, and a final `summary:` line.
//!
//! Run it with `cargo run --example demo -- --policies` to see the opt-in policies at
//! work instead: escalation lengthens each backoff, and when a backoff ends a single
//! request goes out as the probe while the others wait for it (see `demo/policies.rs`).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{
    BackoffError, BackoffLayer, BackoffRegistry, BackoffService, DefaultClassifier, Outcome,
};

#[path = "demo/policies.rs"]
pub(crate) mod policies;

use policies::PolicyOptions;

/// The demo's client: hyper-util behind the backoff layer.
type Outbound = BackoffService<Client<HttpConnector, Empty<Bytes>>>;

/// How to run the demo.
const USAGE: &str = "usage: cargo run --example demo [-- --policies]";

/// What the demo does; the defaults finish in about five seconds.
#[derive(Debug, Clone)]
pub(crate) struct DemoOptions {
    /// Requests the client sends, one per `interval`.
    pub(crate) requests: usize,
    /// Pause between two requests.
    pub(crate) interval: Duration,
    /// How many of its first requests the server answers with 503.
    pub(crate) outage: usize,
    /// The registry's window.
    pub(crate) window: Duration,
    /// The registry's threshold.
    pub(crate) threshold: u32,
    /// The registry's backoff.
    pub(crate) backoff: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            requests: 20,
            interval: Duration::from_millis(250),
            outage: 3,
            window: Duration::from_secs(2),
            threshold: 3,
            backoff: Duration::from_millis(1_400),
        }
    }
}

/// What happened, as counted by the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Requests that went out to the server.
    pub(crate) sent: usize,
    /// Sent requests that failed (5xx, 429, 408 or a transport error).
    pub(crate) failed: usize,
    /// Requests refused by the layer without reaching the server.
    pub(crate) short_circuited: usize,
    /// Whether a request succeeded after the host had been in backoff.
    pub(crate) recovered: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary: sent={} failed={} short_circuited={} recovered={}",
            self.sent,
            self.failed,
            self.short_circuited,
            if self.recovered { "yes" } else { "no" }
        )
    }
}

#[tokio::main]
async fn main() {
    let summary = match std::env::args().nth(1).as_deref() {
        None => run(DemoOptions::default()).await,
        Some("--policies") => policies::run(PolicyOptions::default()).await.summary,
        Some(_) => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    println!("{summary}");
}

/// Runs the demo and returns its summary. Time comes from tokio, so a test can run it
/// with tokio's clock paused.
pub(crate) async fn run(options: DemoOptions) -> Summary {
    let (addr, server_hits) = start_flaky_server(options.outage).await;
    let key = addr.to_string();
    print_setup(addr, &options);

    let registry = BackoffRegistry::builder()
        .window(options.window)
        .threshold(options.threshold)
        .backoff(options.backoff)
        .build()
        .expect("demo settings are valid");
    let mut client = client(&registry);

    let mut summary = Summary::default();
    let mut in_backoff = false;
    let mut backed_off_before = false;

    for number in 1..=options.requests {
        if in_backoff && !registry.should_backoff(&key) {
            println!("  -> {key} left backoff, trying again");
            in_backoff = false;
        }

        let request = Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .expect("the demo request is valid");
        let result = client
            .ready()
            .await
            .expect("client is ready")
            .call(request)
            .await;
        let succeeded = summary.count(number, result);

        if succeeded && backed_off_before && !summary.recovered {
            summary.recovered = true;
            println!("  -> {key} recovered");
        }
        if let (false, Some(until)) = (in_backoff, registry.next_retry_at(&key)) {
            let left = until.saturating_duration_since(tokio::time::Instant::now().into_std());
            println!("  -> {key} entered backoff for {:.2}s", left.as_secs_f64());
            in_backoff = true;
            backed_off_before = true;
        }

        tokio::time::sleep(options.interval).await;
    }

    println!("server saw {} requests", server_hits.load(Ordering::SeqCst));
    summary
}

fn print_setup(addr: SocketAddr, options: &DemoOptions) {
    println!(
        "server: http://{addr}/ answers 503 to its first {} requests, then 200",
        options.outage
    );
    println!(
        "policy: {} failures within {:?} put a host into backoff for {:?}",
        options.threshold, options.window, options.backoff
    );
}

/// A hyper-util client behind the backoff layer. Its clones share the registry.
fn client(registry: &BackoffRegistry) -> Outbound {
    ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(Client::builder(TokioExecutor::new()).build_http())
}

impl Summary {
    /// Counts and prints the result of request `number`; returns whether it succeeded.
    fn count(&mut self, number: usize, result: Result<Response<Incoming>, BoxError>) -> bool {
        let error = match result {
            Ok(response) => {
                self.sent += 1;
                println!("request {number:>2}: {}", response.status());
                let failed = is_failure(response.status());
                self.failed += usize::from(failed);
                return !failed;
            }
            Err(error) => error,
        };

        if let Some(backoff) = error.downcast_ref::<BackoffError>() {
            self.short_circuited += 1;
            let why = why_refused(backoff);
            println!("request {number:>2}: short-circuited, {why}");
        } else {
            self.sent += 1;
            self.failed += 1;
            println!("request {number:>2}: error: {error}");
        }
        false
    }
}

/// Why the layer refused a request: the host is in backoff, or its backoff is over and
/// another request is out as the probe.
fn why_refused(backoff: &BackoffError) -> String {
    match backoff.is_probing() {
        true => "waiting for the probe".to_owned(),
        false => {
            let left = backoff.retry_after().as_secs_f64();
            format!("{left:.2}s of backoff left")
        }
    }
}

fn is_failure(status: StatusCode) -> bool {
    DefaultClassifier::classify_status(status) == Outcome::Failure
}

/// Starts a server on `127.0.0.1:0` that answers 503 to its first `outage` requests and
/// 200 afterwards. Returns its address and a counter of the requests it saw.
async fn start_flaky_server(outage: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener has an address");
    let hits = Arc::new(AtomicUsize::new(0));

    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            let service = service_fn(move |_request| {
                let seen = counter.fetch_add(1, Ordering::SeqCst);
                let status = if seen < outage {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
                *response.status_mut() = status;
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    (addr, hits)
}
