//! Soak: thousands of requests over loopback to hundreds of hosts whose health flips.
//! A healthy host is never short-circuited and a backed-off host is never reached:
//! every decision matches a simple per-host model of the rules.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tower::{Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry, ManualClock};

use support::{get, http_client, TestServer};

const HOSTS: usize = 200;
const ROUNDS: usize = 30;
const WINDOW: u64 = 5;
const THRESHOLD: usize = 3;
const BACKOFF: u64 = 4;

/// One host: a server whose answers follow `healthy`, and the model's view of it.
struct Host {
    server: TestServer,
    healthy: Arc<AtomicBool>,
    /// Seconds at which requests failed, as the model remembers them.
    failures: Vec<u64>,
    backoff_until: Option<u64>,
    ever_failed: bool,
    /// Requests the model let through to this host.
    sent: usize,
}

impl Host {
    /// Whether the model says the host is in backoff at `now`.
    fn in_backoff(&self, now: u64) -> bool {
        self.backoff_until.is_some_and(|until| now < until)
    }

    /// Applies the outcome of a request the model let through at `now`.
    fn record(&mut self, now: u64, failed: bool) {
        if !failed {
            self.failures.clear();
            self.backoff_until = None;
            return;
        }

        self.ever_failed = true;
        self.failures.push(now);
        let inside = self
            .failures
            .iter()
            .filter(|&&at| now - at <= WINDOW)
            .count();
        if inside >= THRESHOLD {
            self.backoff_until = Some(now + BACKOFF);
        }
    }
}

/// A small deterministic generator, so every run flips the same hosts.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_hosts_are_backed_off_exactly_as_the_model_says() {
    let clock = ManualClock::new();
    let registry = BackoffRegistry::builder()
        .window(Duration::from_secs(WINDOW))
        .threshold(THRESHOLD as u32)
        .backoff(Duration::from_secs(BACKOFF))
        .clock(clock.clone())
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(BackoffLayer::new(registry.clone()))
        .service(http_client());

    let mut hosts = Vec::with_capacity(HOSTS);
    for _ in 0..HOSTS {
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&healthy);
        let server = TestServer::start(move |_| match flag.load(Ordering::SeqCst) {
            true => StatusCode::OK,
            false => StatusCode::SERVICE_UNAVAILABLE,
        })
        .await;
        hosts.push(Host {
            server,
            healthy,
            failures: Vec::new(),
            backoff_until: None,
            ever_failed: false,
            sent: 0,
        });
    }

    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut sent, mut short_circuited) = (0, 0);
    for round in 0..ROUNDS as u64 {
        // A quarter of the hosts stay healthy throughout; the rest flip now and then.
        for host in hosts.iter_mut().skip(HOSTS / 4) {
            if random.next() % 4 == 0 {
                host.healthy.fetch_xor(true, Ordering::SeqCst);
            }
        }

        // One request per host, all hosts at once.
        let requests = hosts.iter().map(|host| {
            let mut client = client.clone();
            let uri = host.server.uri("/soak");
            async move { client.ready().await.unwrap().call(get(&uri)).await }
        });
        let results = futures_join_all(requests).await;

        for (host, result) in hosts.iter_mut().zip(results) {
            let expected_refusal = host.in_backoff(round);
            match result {
                Err(error) if error.is::<BackoffError>() => {
                    assert!(
                        expected_refusal,
                        "round {round}: healthy host short-circuited"
                    );
                    short_circuited += 1;
                }
                Ok(response) => {
                    assert!(!expected_refusal, "round {round}: backed-off host reached");
                    let failed = response.status() == StatusCode::SERVICE_UNAVAILABLE;
                    host.record(round, failed);
                    host.sent += 1;
                    sent += 1;
                }
                Err(error) => panic!("round {round}: unexpected error {error}"),
            }
        }

        clock.advance(Duration::from_secs(1));
    }

    // Every request that reached a server was one the model let through.
    for host in &hosts {
        assert_eq!(host.server.hits(), host.sent);
    }
    assert_eq!(sent + short_circuited, HOSTS * ROUNDS);
    for host in &hosts[..HOSTS / 4] {
        assert!(!host.ever_failed);
        assert_eq!(host.server.hits(), ROUNDS);
    }
    // The flips must have driven many hosts through backoff, or the soak proves little.
    assert!(
        short_circuited > HOSTS,
        "only {short_circuited} short-circuits"
    );
    println!("soak: {sent} requests sent, {short_circuited} short-circuited");
}

/// Awaits every future concurrently, keeping their order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}
