//! Runs the hyper-util client example against its real loopback upstreams, with
//! tokio's clock paused so that every count is exact.

#[allow(dead_code)]
#[path = "../examples/hyper_client.rs"]
mod hyper_client;

use hyper_client::{Summary, Tally};

#[tokio::test(start_paused = true)]
async fn each_upstream_follows_its_own_rule() {
    let summary = hyper_client::run(12).await;

    // payments (threshold 1, backoff 1 s): fails at 0 s and trips; 0.25-0.75 s are
    // refused; at 1 s the backoff is over, the request fails again and trips again;
    // 1.25-1.75 s are refused; from 2 s on it succeeds.
    // search (threshold 3): its two failures never reach the threshold.
    let expected = Summary {
        payments: Tally {
            sent: 6,
            failed: 2,
            short_circuited: 6,
        },
        search: Tally {
            sent: 12,
            failed: 2,
            short_circuited: 0,
        },
    };
    assert_eq!(summary, expected);
    assert_eq!(
        summary.to_string(),
        "summary payments: sent=6 failed=2 short_circuited=6\n\
         summary search: sent=12 failed=2 short_circuited=0\n"
    );
}
