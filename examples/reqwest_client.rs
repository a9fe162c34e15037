//! A `reqwest` client with `BackoffMiddleware` (through `reqwest-middleware`), calling a
//! real server on loopback that answers its first request with 429 and
//! `Retry-After: 2`. A hyper-util client behind `BackoffLayer` shares the registry and
//! agrees on the key.
//!
//! Run it with `cargo run --example reqwest_client --features reqwest`. Add `-- --no-wait`
//! to skip the two-second wait: the registry then runs on a manual clock that the
//! example advances.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{
    BackoffError, BackoffLayer, BackoffMiddleware, BackoffRegistry, ManualClock,
};

/// How the example lets time pass: for real, or by advancing a manual clock (tests;
/// reqwest keeps timers of its own, so tokio's paused clock would not be exact).
#[derive(Debug, Clone)]
pub(crate) enum Time {
    Real,
    Manual(ManualClock),
}

impl Time {
    fn registry(&self) -> BackoffRegistry {
        let builder = BackoffRegistry::builder();
        let builder = match self {
            Self::Real => builder,
            Self::Manual(clock) => builder.clock(clock.clone()),
        };
        builder.build().expect("valid settings")
    }

    async fn pass(&self, duration: Duration) {
        match self {
            Self::Real => tokio::time::sleep(duration).await,
            Self::Manual(clock) => clock.advance(duration),
        }
    }
}

/// What the example saw: one line per request, the server's address and its request
/// count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) lines: Vec<String>,
    pub(crate) server: SocketAddr,
    pub(crate) server_hits: usize,
}

#[tokio::main]
async fn main() {
    let time = if std::env::args().any(|argument| argument == "--no-wait") {
        Time::Manual(ManualClock::new())
    } else {
        Time::Real
    };
    let summary = run(time).await;
    for line in &summary.lines {
        println!("{line}");
    }
    println!("the server saw {} request(s)", summary.server_hits);
}

/// Runs the example: reqwest gets a 429 with a two-second hint, is refused, the
/// hyper client is refused too, and after two seconds reqwest gets through.
pub(crate) async fn run(time: Time) -> Summary {
    let (addr, hits) = start_server().await;
    let url = format!("http://{addr}/quota");
    let registry = time.registry();

    let reqwest = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client");
    let reqwest = reqwest_middleware::ClientBuilder::new(reqwest)
        .with(BackoffMiddleware::new(registry.clone()))
        .build();
    let mut hyper = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    let mut lines = Vec::new();
    lines.push(format!("reqwest: {}", reqwest_get(&reqwest, &url).await));
    lines.push(format!("reqwest: {}", reqwest_get(&reqwest, &url).await));

    let request = Request::get(&url)
        .body(Empty::new())
        .expect("a valid request");
    let result = hyper.ready().await.expect("ready").call(request).await;
    let line = match result {
        Ok(response) => format!("hyper: {}", response.status().as_u16()),
        Err(error) => match BackoffError::find(&*error) {
            Some(backoff) => format!("hyper: refused, key {}", backoff.key()),
            None => format!("hyper: error: {error}"),
        },
    };
    lines.push(line);

    time.pass(Duration::from_secs(2)).await;
    lines.push(format!("reqwest: {}", reqwest_get(&reqwest, &url).await));

    Summary {
        lines,
        server: addr,
        server_hits: hits.load(Ordering::SeqCst),
    }
}

/// Sends a GET with the middleware client and describes the result.
async fn reqwest_get(client: &reqwest_middleware::ClientWithMiddleware, url: &str) -> String {
    match client.get(url).send().await {
        Ok(response) => {
            let hint = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .map(|value| format!(" (Retry-After: {value})"))
                .unwrap_or_default();
            format!("{}{hint}", response.status().as_u16())
        }
        Err(error) => match BackoffError::find_in_reqwest(&error) {
            Some(backoff) => format!("refused, {}s left", backoff.retry_after_secs()),
            None => format!("error: {error}"),
        },
    }
}

/// Starts a server on `127.0.0.1:0` that answers its first request with 429 and
/// `Retry-After: 2`, and 200 afterwards.
async fn start_server() -> (SocketAddr, Arc<AtomicUsize>) {
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
                let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
                let mut response = Response::new(Full::new(Bytes::from_static(b"")));
                if first {
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    let hint = http::HeaderValue::from_static("2");
                    response.headers_mut().insert(RETRY_AFTER, hint);
                }
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
