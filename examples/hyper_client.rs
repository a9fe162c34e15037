//! A hyper-util client behind `BackoffLayer`, calling two real servers on loopback,
//! with a key function that names each upstream so that each gets its own rule.
//!
//! Run it with `cargo run --example hyper_client`. The `payments` upstream is critical:
//! its rule backs it off at the first failure. The `search` upstream follows the
//! registry's defaults (three failures within the window). Both fail their first two
//! requests and then recover; the example prints what each request did and a summary
//! line per upstream.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{
    authority_key, key_fn, BackoffError, BackoffLayer, BackoffRegistry, RequestHead, Rule,
};

/// The upstreams, in the order each round calls them.
const UPSTREAMS: [&str; 2] = ["payments", "search"];

/// What happened to the requests to one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    /// Requests that went out to the server.
    pub(crate) sent: usize,
    /// Sent requests that failed.
    pub(crate) failed: usize,
    /// Requests refused by the layer without reaching the server.
    pub(crate) short_circuited: usize,
}

/// The tallies of both upstreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) payments: Tally,
    pub(crate) search: Tally,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, tally) in [("payments", self.payments), ("search", self.search)] {
            writeln!(
                f,
                "summary {name}: sent={} failed={} short_circuited={}",
                tally.sent, tally.failed, tally.short_circuited
            )?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    print!("{}", run(12).await);
}

/// Sends `rounds` rounds, 250 ms apart, each calling every upstream once. Time comes
/// from tokio, so a test can run it with tokio's clock paused.
pub(crate) async fn run(rounds: usize) -> Summary {
    let mut addrs = HashMap::new();
    for name in UPSTREAMS {
        addrs.insert(name, start_upstream(2).await);
    }

    let registry = BackoffRegistry::builder()
        .window(Duration::from_secs(2))
        .threshold(3)
        .backoff(Duration::from_secs(1))
        .build()
        .expect("valid settings");
    registry
        .set_rule("payments", Rule::default().threshold(1))
        .expect("a valid rule");

    let mut client = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()).key_extractor(upstream_names(&addrs)))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    let mut summary = Summary {
        payments: Tally::default(),
        search: Tally::default(),
    };
    for round in 1..=rounds {
        let mut line = format!("round {round:>2}:");
        for name in UPSTREAMS {
            let request = Request::get(format!("http://{}/", addrs[name]))
                .body(Empty::new())
                .expect("a valid request");
            let result = client.ready().await.expect("ready").call(request).await;
            let tally = match name {
                "payments" => &mut summary.payments,
                _ => &mut summary.search,
            };
            line.push_str(&format!(" {name} {}", tally.count(result)));
        }
        println!("{line}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    summary
}

/// The key function: requests to a known upstream count against its name, so that
/// `set_rule("payments", ...)` applies to it; any other host keeps its authority key.
fn upstream_names(
    addrs: &HashMap<&'static str, SocketAddr>,
) -> impl url_backoff_registry::ExtractKey + Clone {
    let names: Arc<HashMap<String, &'static str>> = Arc::new(
        addrs
            .iter()
            .map(|(name, addr)| (addr.to_string(), *name))
            .collect(),
    );
    // The closure goes straight into `key_fn`, which tells the compiler that the key
    // may borrow from the request.
    key_fn(move |request: RequestHead<'_>| {
        let authority = authority_key(request.uri())?;
        match names.get(authority.as_ref()) {
            Some(name) => Some(Cow::Borrowed(*name)),
            None => Some(authority),
        }
    })
}

impl Tally {
    /// Counts one result and describes it.
    fn count(&mut self, result: Result<Response<Incoming>, BoxError>) -> String {
        match result {
            Ok(response) => {
                self.sent += 1;
                let status = response.status();
                self.failed += usize::from(status.is_server_error());
                status.as_u16().to_string()
            }
            Err(error) => match BackoffError::find(&*error) {
                Some(backoff) => {
                    self.short_circuited += 1;
                    format!(
                        "short-circuited ({:.2}s left)",
                        backoff.retry_after().as_secs_f64()
                    )
                }
                None => {
                    self.sent += 1;
                    self.failed += 1;
                    format!("error: {error}")
                }
            },
        }
    }
}

/// Starts an upstream on `127.0.0.1:0` that answers 503 to its first `outage`
/// requests and 200 afterwards.
async fn start_upstream(outage: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener has an address");
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            let service = service_fn(move |_request| {
                let number = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let status = if number < outage {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                let mut response = Response::new(Full::new(Bytes::from_static(b"")));
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

    addr
}
