//! Runs the main demo against its real loopback server, with tokio's clock paused so
//! that every count is exact.

#[allow(dead_code)]
#[path = "../examples/demo.rs"]
mod demo;

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
