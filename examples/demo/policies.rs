//! The demo with the opt-in policies on, run by `cargo run --example demo -- --policies`.
//!
//! The server stays down for longer, so the host's first probes fail. Escalation
//! doubles the backoff after each failed probe (0.5 s, 1 s, 2 s), and probing admits
//! a single request when a backoff ends while the rest of its burst is refused,
//! waiting for the probe's answer. Requests go out in bursts of four at once, one
//! cloned service each, so that the single probe shows. The `->` lines come from the
//! registry's events (`BackoffRegistry::subscribe`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use tokio::sync::broadcast::Receiver;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceExt};
use url_backoff_registry::{BackoffError, BackoffEvent, BackoffRegistry, Escalation};

use super::{client, start_flaky_server, Outbound, Summary};

/// What a request came to.
type Answer = Result<Response<Incoming>, BoxError>;

/// What the policies demo does; the defaults finish in about four seconds.
#[derive(Debug, Clone)]
pub(crate) struct PolicyOptions {
    /// Bursts the client sends, one per `interval`.
    pub(crate) bursts: usize,
    /// Requests in each burst, sent at once.
    pub(crate) burst_size: usize,
    /// Pause between two bursts.
    pub(crate) interval: Duration,
    /// How many of its first requests the server answers with 503.
    pub(crate) outage: usize,
    /// The registry's window.
    pub(crate) window: Duration,
    /// The registry's threshold.
    pub(crate) threshold: u32,
    /// The backoff of the first trip.
    pub(crate) backoff: Duration,
    /// What each consecutive trip multiplies the backoff by.
    pub(crate) factor: f64,
    /// The longest backoff escalation reaches.
    pub(crate) max_backoff: Duration,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        Self {
            bursts: 9,
            burst_size: 4,
            interval: Duration::from_millis(500),
            outage: 6,
            window: Duration::from_secs(2),
            threshold: 3,
            backoff: Duration::from_millis(500),
            factor: 2.0,
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// What one burst came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Burst {
    /// When it went out, from the start of the demo.
    pub(crate) at: Duration,
    /// Requests that reached the server.
    pub(crate) sent: usize,
    /// Requests refused because the host was in backoff.
    pub(crate) in_backoff: usize,
    /// Requests refused because another request was out as the probe.
    pub(crate) waiting_for_probe: usize,
}

/// Everything the policies demo saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicyReport {
    /// The same counts as the plain demo's.
    pub(crate) summary: Summary,
    /// How long each backoff the host entered was, in order.
    pub(crate) backoffs: Vec<Duration>,
    /// Every burst, in order.
    pub(crate) bursts: Vec<Burst>,
}

/// Runs the policies demo and returns what it saw. Time comes from tokio, so a test
/// can run it with tokio's clock paused.
pub(crate) async fn run(options: PolicyOptions) -> PolicyReport {
    let (addr, server_hits) = start_flaky_server(options.outage).await;
    print_setup(addr, &options);

    let registry = registry(&options);
    let mut demo = Demo {
        addr,
        client: client(&registry),
        events: registry.subscribe(),
        started: Instant::now(),
        requests: 0,
        report: PolicyReport {
            summary: Summary::default(),
            backoffs: Vec::new(),
            bursts: Vec::new(),
        },
    };

    for _ in 0..options.bursts {
        demo.burst(options.burst_size).await;
        tokio::time::sleep(options.interval).await;
    }

    println!("server saw {} requests", server_hits.load(Ordering::SeqCst));
    println!("backoffs: {}", seconds(&demo.report.backoffs));
    demo.report
}

fn print_setup(addr: SocketAddr, options: &PolicyOptions) {
    println!(
        "server: http://{addr}/ answers 503 to its first {} requests, then 200",
        options.outage
    );
    println!(
        "policy: {} failures within {:?} put a host into backoff for {:?}",
        options.threshold, options.window, options.backoff
    );
    println!(
        "escalation: each trip soon after a backoff multiplies it by {}, up to {:?}",
        options.factor, options.max_backoff
    );
    println!("probes: when a backoff ends, one request goes out and the others wait for it");
}

/// A registry with escalation and a single probe on recovery.
fn registry(options: &PolicyOptions) -> BackoffRegistry {
    BackoffRegistry::builder()
        .window(options.window)
        .threshold(options.threshold)
        .backoff(options.backoff)
        .escalation(Escalation::new(options.factor, options.max_backoff))
        .probes(1)
        .build()
        .expect("demo settings are valid")
}

/// The running demo: the client, the registry's events, and what happened so far.
struct Demo {
    addr: SocketAddr,
    client: Outbound,
    events: Receiver<BackoffEvent>,
    started: Instant,
    /// Requests made so far, sent or refused.
    requests: usize,
    report: PolicyReport,
}

impl Demo {
    /// Sends `size` requests at once, waits for all of them, and prints what came back
    /// and what the registry reported.
    async fn burst(&mut self, size: usize) {
        let at = self.started.elapsed();
        println!("burst at {:.2}s: {size} requests at once", at.as_secs_f64());

        let calls = self.start_calls(size).await;
        let mut burst = Burst {
            at,
            sent: 0,
            in_backoff: 0,
            waiting_for_probe: 0,
        };
        for (number, call) in calls {
            let answer = call.await.expect("a request task never panics");
            burst.count(&answer);
            self.report.summary.count(number, answer);
        }

        self.print_events();
        self.report.bursts.push(burst);
    }

    /// Makes `size` calls, each through its own clone of the client, before any of them
    /// is answered: the layer admits or refuses each in `call`. Then lets them run
    /// concurrently.
    async fn start_calls(&mut self, size: usize) -> Vec<(usize, JoinHandle<Answer>)> {
        let mut calls = Vec::with_capacity(size);
        for _ in 0..size {
            self.requests += 1;
            let number = self.requests;
            let request = Request::get(format!("http://{}/", self.addr))
                .body(Empty::new())
                .expect("the demo request is valid");
            let mut client = self.client.clone();
            let call = client.ready().await.expect("client is ready").call(request);

            if let Some(key) = self.admitted_probe() {
                println!("  -> {key} left backoff: request {number} goes out as its probe");
            }
            calls.push((number, call));
        }

        calls
            .into_iter()
            .map(|(number, call)| (number, tokio::spawn(call)))
            .collect()
    }

    /// Returns the key the registry admitted a probe for since the last look, if any.
    fn admitted_probe(&mut self) -> Option<Arc<str>> {
        let mut admitted = None;
        while let Ok(event) = self.events.try_recv() {
            if let BackoffEvent::ProbeAdmitted { key } = event {
                admitted = Some(key);
            }
        }
        admitted
    }

    /// Prints how probes ended and the backoffs they led to, and notes them.
    fn print_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                BackoffEvent::ProbeFinished { result, .. } => {
                    println!("  -> the probe {}", result.as_str());
                }
                BackoffEvent::Tripped {
                    key,
                    backoff,
                    cause,
                    ..
                } => {
                    let (secs, cause) = (backoff.as_secs_f64(), cause.as_str());
                    println!("  -> {key} entered backoff for {secs:.2}s ({cause})");
                    self.report.backoffs.push(backoff);
                }
                BackoffEvent::Recovered { key } => {
                    println!("  -> {key} recovered");
                    self.report.summary.recovered = true;
                }
                _ => {}
            }
        }
    }
}

impl Burst {
    /// Counts one request of the burst.
    fn count(&mut self, answer: &Answer) {
        let refusal = answer
            .as_ref()
            .err()
            .and_then(|error| error.downcast_ref::<BackoffError>());
        match refusal {
            None => self.sent += 1,
            Some(refusal) if refusal.is_probing() => self.waiting_for_probe += 1,
            Some(_) => self.in_backoff += 1,
        }
    }
}

/// Shows durations as `0.50s -> 1.00s -> ...`.
fn seconds(durations: &[Duration]) -> String {
    let shown: Vec<_> = durations
        .iter()
        .map(|duration| format!("{:.2}s", duration.as_secs_f64()))
        .collect();
    shown.join(" -> ")
}
