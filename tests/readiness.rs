//! Runs the readiness example: `ConcurrencyLimit` (limit 1) and `Buffer` (one slot)
//! inside and outside the layer, clones called from many tasks, thousands of
//! short-circuited calls, and no permit or slot kept afterwards.

#[allow(dead_code)]
#[path = "../examples/readiness.rs"]
mod readiness;

use readiness::{Load, StackReport, Summary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stack_panics_or_keeps_a_permit_or_slot() {
    let load = Load {
        tasks: 16,
        calls: 250,
    };
    let summary = readiness::run(load).await;

    let expected = |name, free_permits| StackReport {
        name,
        short_circuited: 4_000,
        other: 0,
        panicked: 0,
        stalled: 0,
        free_permits,
        healthy_call_ok: true,
    };
    assert_eq!(
        summary,
        Summary {
            stacks: vec![
                expected("limit inside", Some(1)),
                expected("limit outside", Some(1)),
                expected("buffer inside", None),
                expected("buffer outside", None),
            ],
            failing_server_hits: 1,
        }
    );
}
