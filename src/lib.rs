//! Per-host backoff for Rust services: a keyed failure registry and a tower layer that
//! stops a program from hammering hosts that are failing.
//!
//! # Overview
//!
//! A [`BackoffRegistry`] counts failures per key (normally a URI authority such as
//! `api.example.com` or `127.0.0.1:8080`) inside a sliding window. When a key's count
//! reaches its threshold it is *in backoff* until a deadline, and callers are told not
//! to try. A success clears the key. Defaults: window 30 s, threshold 3, backoff
//! 120 s; [`Rule`]s override them per key.
//!
//! [`BackoffLayer`] puts the registry in front of any `http::Request` service (a hyper
//! or reqwest client, an outbound proxy, a [`tower::ServiceBuilder`] pipeline): requests
//! to a host in backoff fail at once with a [`BackoffError`], and every response or
//! error is fed back into the registry. [`BackoffRegistry::track`] does the same for any
//! fallible future.
//!
//! Time comes from a [`Clock`]; tests use [`ManualClock`] and never sleep.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response, StatusCode};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
//! use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let registry = BackoffRegistry::builder()
//!     .threshold(2)
//!     .backoff(Duration::from_secs(30))
//!     .build()
//!     .unwrap();
//!
//! // Stands in for a real HTTP client: the host always answers 503.
//! let client = tower::service_fn(|_request: Request<()>| async {
//!     let mut response = Response::new(());
//!     *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
//!     Ok::<_, BoxError>(response)
//! });
//! let mut service = ServiceBuilder::new()
//!     .layer(BackoffLayer::new(registry.clone()))
//!     .service(client);
//!
//! for _ in 0..2 {
//!     let request = Request::get("http://api.example.com/items").body(()).unwrap();
//!     let response = service.ready().await.unwrap().call(request).await.unwrap();
//!     assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! }
//!
//! // Two failures reached the threshold: the next request is refused without
//! // reaching the client.
//! let request = Request::get("http://api.example.com/items").body(()).unwrap();
//! let error = service.ready().await.unwrap().call(request).await.unwrap_err();
//! let backoff = error.downcast_ref::<BackoffError>().unwrap();
//! assert_eq!(backoff.key(), "api.example.com");
//! assert!(registry.should_backoff("api.example.com"));
//! # }
//! ```
//!
//! # Minimum supported Rust version
//!
//! Rust 1.85, the oldest release the dependencies build on.

mod builder;
mod classify;
mod clock;
mod config;
mod error;
mod events;
mod extract;
mod future;
mod history;
mod judge;
mod key;
mod key_buf;
mod layer;
mod registry;
#[cfg(feature = "reqwest")]
mod reqwest;
mod response;
mod retry_after;
mod rule;
mod service;
mod state;
mod stats;
mod time;
mod track;

#[cfg(feature = "reqwest")]
pub use crate::reqwest::BackoffMiddleware;
pub use builder::BackoffRegistryBuilder;
pub use classify::{Classify, DefaultClassifier, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BackoffError, ConfigError, TrackError};
pub use extract::{key_fn, AuthorityKey, ExtractKey, KeyFn, RequestHead};
pub use future::ResponseFuture;
pub use key::authority_key;
pub use layer::BackoffLayer;
pub use registry::BackoffRegistry;
pub use retry_after::DEFAULT_MAX_RETRY_AFTER;
pub use rule::{Rule, DEFAULT_BACKOFF, DEFAULT_THRESHOLD, DEFAULT_WINDOW, MAX_THRESHOLD};
pub use service::BackoffService;
pub use stats::Stats;
pub use track::Track;

/// Compiles and runs the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
