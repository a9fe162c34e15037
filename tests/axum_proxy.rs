//! Runs the axum proxy example against its real loopback upstreams, with tokio's clock
//! paused so that every `Retry-After` is exact.

#[allow(dead_code)]
#[path = "../examples/axum_proxy.rs"]
mod axum_proxy;

use axum_proxy::Exchange;

fn exchange(
    path: &'static str,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    flaky_hits: usize,
) -> Exchange {
    Exchange {
        path,
        status,
        retry_after: retry_after.map(str::to_owned),
        body: body.to_owned(),
        flaky_hits,
    }
}

#[tokio::test(start_paused = true)]
async fn the_proxy_answers_503_with_retry_after_while_an_upstream_backs_off() {
    let exchanges = axum_proxy::run().await;

    assert_eq!(
        exchanges,
        [
            // Forwarded: the upstream's own 503 and hint, which trips its key at once.
            exchange("/flaky/items", 503, Some("2"), "flaky busy", 1),
            // Refused by the layer: the proxy's 503, two seconds left, upstream untouched.
            exchange("/flaky/items", 503, Some("2"), "", 1),
            exchange("/steady/items", 200, None, "steady ok", 1),
            exchange("/flaky/items", 503, Some("1"), "", 1),
            // The hint has run out: forwarded again, and the upstream has recovered.
            exchange("/flaky/items", 200, None, "flaky ok", 2),
        ]
    );
}
