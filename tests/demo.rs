//! Runs the main demo against its real loopback server, with tokio's clock paused so
//! that every count is exact.

#[allow(dead_code)]
#[path = "../examples/demo.rs"]
mod demo;

use std::time::Duration;

use demo::policies::{self, Burst, PolicyOptions};
use demo::{DemoOptions, Summary};

#[tokio::test(start_paused = true)]
async fn the_demo_backs_off_and_recovers() {
    let summary = demo::run(DemoOptions::default()).await;

    // Requests 1-3 fail and trip the host at 0.5 s; 4-8 (0.75 s to 1.75 s) fall in the
    // 1.4 s backoff; 9-20 go out after it and succeed.
    let expected = Summary {
        sent: 15,
        failed: 3,
        short_circuited: 5,
        recovered: true,
    };
    assert_eq!(summary, expected);
    assert_eq!(
        summary.to_string(),
        "summary: sent=15 failed=3 short_circuited=5 recovered=yes"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_recovery_the_summary_says_so() {
    let options = DemoOptions {
        requests: 8,
        outage: usize::MAX,
        ..DemoOptions::default()
    };
    let summary = demo::run(options).await;

    // 1-3 trip the host; 4-8 all fall in the backoff.
    let expected = Summary {
        sent: 3,
        failed: 3,
        short_circuited: 5,
        recovered: false,
    };
    assert_eq!(summary, expected);
    assert!(summary.to_string().ends_with("recovered=no"));
}

/// A burst at `at_ms`: requests sent, refused in backoff, refused waiting for the probe.
fn burst(at_ms: u64, sent: usize, in_backoff: usize, waiting_for_probe: usize) -> Burst {
    Burst {
        at: Duration::from_millis(at_ms),
        sent,
        in_backoff,
        waiting_for_probe,
    }
}

#[tokio::test(start_paused = true)]
async fn with_policies_the_backoff_grows_and_one_request_probes() {
    let report = policies::run(PolicyOptions::default()).await;

    // Bursts of 4 every 0.5 s. The first trips the host for 0.5 s. At each backoff's end
    // one request goes out as the probe and the other three wait for it: the probes at
    // 0.5 s and 1.5 s fail (server requests 5 and 6) and double the backoff; the one at
    // 3.5 s succeeds.
    assert_eq!(
        report.bursts,
        [
            burst(0, 4, 0, 0),
            burst(500, 1, 0, 3),
            burst(1_000, 0, 4, 0),
            burst(1_500, 1, 0, 3),
            burst(2_000, 0, 4, 0),
            burst(2_500, 0, 4, 0),
            burst(3_000, 0, 4, 0),
            burst(3_500, 1, 0, 3),
            burst(4_000, 4, 0, 0),
        ]
    );
    assert_eq!(
        report.backoffs,
        [500, 1_000, 2_000].map(Duration::from_millis)
    );
    assert_eq!(
        report.summary.to_string(),
        "summary: sent=11 failed=6 short_circuited=25 recovered=yes"
    );
}

#[tokio::test(start_paused = true)]
async fn with_policies_a_host_that_stays_down_backs_off_up_to_the_cap() {
    let options = PolicyOptions {
        bursts: 12,
        outage: usize::MAX,
        ..PolicyOptions::default()
    };
    let report = policies::run(options).await;

    // Probes at 0.5, 1.5, 3.5 and 5.5 s all fail; from the third trip on the backoff
    // stays at the 2 s cap.
    assert_eq!(
        report.backoffs,
        [500, 1_000, 2_000, 2_000, 2_000].map(Duration::from_millis)
    );
    let probe_bursts: Vec<_> = report
        .bursts
        .iter()
        .filter(|burst| burst.waiting_for_probe > 0)
        .map(|burst| (burst.at.as_millis(), burst.sent, burst.waiting_for_probe))
        .collect();
    assert_eq!(
        probe_bursts,
        [(500, 1, 3), (1_500, 1, 3), (3_500, 1, 3), (5_500, 1, 3)]
    );
    let expected = Summary {
        sent: 8,
        failed: 8,
        short_circuited: 40,
        recovered: false,
    };
    assert_eq!(report.summary, expected);
}
