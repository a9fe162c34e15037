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
//! client, an outbound proxy, a [`tower::ServiceBuilder`] pipeline): requests to a host
//! in backoff fail at once with a [`BackoffError`], and every response or error is fed
//! back into the registry. A failed response's `Retry-After` header puts its host into
//! backoff at once. [`BackoffRegistry::track`] does the same for any fallible future,
//! and `BackoffMiddleware` (feature `reqwest`) for `reqwest-middleware` clients.
//!
//! What the layer decides can be replaced piece by piece: the key a request counts
//! against ([`ExtractKey`]; by default its URI authority, optionally its `Host`
//! header), what a response or error says about the host ([`Classify`]), and how
//! `Retry-After` is honoured. [`BackoffService`] documents where a request is rejected
//! and what counts as a failure; the README explains how layer order changes what
//! counts.
//!
//! Opt-in policies go beyond a fixed timer, and keep the defaults' behaviour until
//! turned on: [`Escalation`] lengthens the backoff of a key that keeps tripping and
//! lets it fade with health; [`probes`](BackoffRegistryBuilder::probes) admits a single
//! call when a backoff ends; [`BackoffLayer::shadow`] watches without refusing.
//! Operators get [`BackoffRegistry::subscribe`] (a [`BackoffEvent`] per state change),
//! [`BackoffRegistry::snapshot`], and manual control with
//! [`BackoffRegistry::force_backoff`] and [`BackoffRegistry::release`].
//!
//! Memory stays bounded when keys come from traffic: stale keys are swept as the
//! registry grows, and [`max_keys`](BackoffRegistryBuilder::max_keys) is a hard cap
//! that evicts keys in backoff last.
//!
//! Time comes from a [`Clock`]; tests use [`ManualClock`] and never sleep.
//!
//! # Logging
//!
//! Through `tracing`: info when a key enters backoff (key, failures, deadline, cause:
//! threshold, server hint, failed probe or forced), when a server hint extends a
//! backoff, when a key recovers or is released, and when a key in backoff is evicted;
//! debug for each refused call, each probe and other evictions. Only keys are logged,
//! never paths, query strings, userinfo or headers.
//!
//! # Features
//!
//! All off by default:
//!
//! - `reqwest`: `BackoffMiddleware`, for `reqwest-middleware` clients.
//! - `metrics`: counters and gauges through the `metrics` crate, configured with
//!   `MetricsOptions`.
//! - `serde`: `Serialize` for [`KeySnapshot`], to serve a snapshot as JSON.
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
//! The library builds on Rust 1.85 (CI checks it with the `serde` and `metrics`
//! features); the `reqwest` feature needs 1.88, for the URL parsing under reqwest.
//! The tests, examples and benches use tools that need Rust 1.90.

mod builder;
mod classify;
mod clock;
mod config;
mod error;
mod escalation;
mod event;
mod extract;
mod filter;
mod future;
mod hashing;
mod history;
mod judge;
mod key;
mod key_buf;
mod key_cache;
mod layer;
#[cfg(feature = "metrics")]
mod metrics;
mod notify;
mod pending;
mod registry;
#[cfg(feature = "reqwest")]
mod reqwest;
mod response;
mod retry_after;
mod rule;
mod service;
mod snapshot;
mod state;
mod stats;
mod store;
mod time;
mod track;

#[cfg(feature = "reqwest")]
pub use crate::reqwest::BackoffMiddleware;
pub use builder::BackoffRegistryBuilder;
pub use classify::{Classify, DefaultClassifier, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BackoffError, ConfigError, TrackError};
pub use escalation::{Escalation, Jitter, JitterSource, SeededJitter};
pub use event::{BackoffEvent, ProbeResult, TripCause};
pub use extract::{key_fn, AuthorityKey, ExtractKey, KeyFn, RequestHead};
pub use future::ResponseFuture;
pub use key::authority_key;
pub use layer::BackoffLayer;
#[cfg(feature = "metrics")]
pub use metrics::MetricsOptions;
pub use notify::DEFAULT_EVENT_CAPACITY;
pub use registry::BackoffRegistry;
pub use retry_after::DEFAULT_MAX_RETRY_AFTER;
pub use rule::{Rule, DEFAULT_BACKOFF, DEFAULT_THRESHOLD, DEFAULT_WINDOW, MAX_THRESHOLD};
pub use service::BackoffService;
pub use snapshot::KeySnapshot;
pub use stats::Stats;
pub use store::DEFAULT_MAX_KEYS;
pub use track::Track;

/// Compiles and runs the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
