//! Shared test helpers: a real HTTP server on loopback and a real hyper client.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// A server on `127.0.0.1:<ephemeral>` that answers each request with the status the
/// responder picks from the request's sequence number (0-based).
pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub async fn start<R>(responder: R) -> Self
    where
        R: Fn(usize) -> StatusCode + Send + Sync + 'static,
    {
        Self::start_with(move |sequence| {
            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
            *response.status_mut() = responder(sequence);
            response
        })
        .await
    }

    /// Like [`start`](Self::start), with the whole response (status, headers, body)
    /// chosen by the responder.
    pub async fn start_with<R>(responder: R) -> Self
    where
        R: Fn(usize) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let responder = Arc::new(responder);

        let server_hits = Arc::clone(&hits);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let hits = Arc::clone(&server_hits);
                let responder = Arc::clone(&responder);
                let service = service_fn(move |_request: Request<Incoming>| {
                    let sequence = hits.fetch_add(1, Ordering::SeqCst);
                    let response = responder(sequence);
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });

        Self { addr, hits }
    }

    /// How many requests reached the server.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The URI of `path` on this server.
    pub fn uri(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The registry key of this server.
    pub fn key(&self) -> String {
        self.addr.to_string()
    }
}

pub type HttpClient = Client<HttpConnector, http_body_util::Empty<Bytes>>;

/// A plain hyper-util client over HTTP/1.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A GET request with an empty body.
pub fn get(uri: &str) -> Request<http_body_util::Empty<Bytes>> {
    Request::get(uri)
        .body(http_body_util::Empty::new())
        .unwrap()
}

/// Binds and drops a listener, returning an address that refuses connections.
pub async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
