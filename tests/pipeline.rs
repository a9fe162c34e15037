//! Runs the pipeline example against its real loopback servers. The timeouts use
//! tokio's real clock: with real sockets, a paused clock would jump to the timeout's
//! deadline whenever the runtime waits for the network.

#[allow(dead_code)]
#[path = "../examples/pipeline.rs"]
mod pipeline;

use pipeline::Scenario;

#[tokio::test]
async fn layer_order_decides_what_a_timeout_counts_as_and_refusals_are_not_retried() {
    let scenarios = pipeline::run().await;

    assert_eq!(
        scenarios,
        [
            // Three timeouts inside the layer are three failures and trip the host;
            // the fourth attempt is refused and the policy gives up on it.
            Scenario {
                name: "timeout inside",
                results: vec!["refused by backoff"],
                attempts: 4,
                server_hits: 3,
                failures: 3,
                in_backoff: true,
            },
            // Timeouts outside the layer drop the call: nothing is recorded.
            Scenario {
                name: "timeout outside",
                results: vec!["timed out"; 3],
                attempts: 0,
                server_hits: 3,
                failures: 0,
                in_backoff: false,
            },
            Scenario {
                name: "503 with retries",
                results: vec!["refused by backoff"],
                attempts: 4,
                server_hits: 3,
                failures: 3,
                in_backoff: true,
            },
        ]
    );
}
