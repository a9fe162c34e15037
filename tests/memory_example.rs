//! Runs the measurement of `examples/memory.rs` at a small size, so the example cannot
//! silently stop working.

#[allow(dead_code)]
#[path = "../examples/memory.rs"]
mod memory;

#[test]
fn the_memory_example_measures_a_plausible_cost_per_key() {
    let measurement = memory::measure(10_000);

    // `host-0.example` to `host-9999.example`: 13 bytes each plus their digits
    // (10 * 1 + 90 * 2 + 900 * 3 + 9,000 * 4 = 38,890).
    assert_eq!(measurement.keys, 10_000);
    assert_eq!(measurement.key_text_bytes, 168_890);
    assert!(measurement.empty_bytes > 0, "{measurement}");

    // A tracked key needs at least its failure time (8 bytes). The upper bound is
    // generous: today's 64-byte map slot at hashbrown's lowest load after a resize
    // (7/16) takes 146 bytes, plus a control byte and a 32-byte failure buffer, about
    // 180 in all. Above 400, the layout has grown badly or the measurement counts
    // something twice.
    let per_key = measurement.bytes_per_key();
    assert!(per_key > 8.0 && per_key < 400.0, "{measurement}");
}
