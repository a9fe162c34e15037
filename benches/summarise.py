#!/usr/bin/env python3
"""Turns the results of the crate's benches into BENCHMARKS.md.

Run after the benches, from the crate root:

    cargo bench --bench registry --bench layer --bench threads --bench scaling
    python3 benches/summarise.py > BENCHMARKS.md

It reads the median of every benchmark from criterion's output
(`$CARGO_TARGET_DIR/criterion`, else `target/criterion`), runs
`cargo run --release --example memory` for the memory figures, reads the machine's
description, and prints the whole document: tables, ratios, and which of issue 4's
targets this run meets. Pass `--preliminary "why"` to open it with a warning.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

SIZES = ["1000", "100000", "1000000"]
THREAD_LABELS = ["1", "contended-2", "spread-2", "contended-4", "spread-4"]
HOT_PATH = ["should_backoff_unknown", "should_backoff_healthy"]


def load_medians(criterion):
    """Maps each benchmark's full id to its median in nanoseconds."""
    medians = {}
    for path in criterion.glob("**/new/benchmark.json"):
        full_id = json.loads(path.read_text())["full_id"]
        estimates = json.loads((path.parent / "estimates.json").read_text())
        medians[full_id] = estimates["median"]["point_estimate"]
    return medians


def run_memory_example():
    """Runs the memory example and returns {keys: (bytes per key, allocations per key)}."""
    output = subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--example", "memory"],
        check=True, capture_output=True, text=True,
    ).stdout
    pattern = r"memory: (\d+) keys, ([\d.]+) bytes per key .*?([\d.]+) allocations per key"
    return {int(k): (float(b), float(a)) for k, b, a in re.findall(pattern, output)}


def command(*args):
    try:
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine():
    """Describes the machine in a few lines."""
    cpu = re.search(r"Model name:\s*(.+)", command("lscpu"))
    memory = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    os_name = re.search(r'PRETTY_NAME="(.+)"', Path("/etc/os-release").read_text())
    return [
        f"- CPU: {cpu.group(1) if cpu else platform.processor()}, "
        f"{os.cpu_count()} logical cores",
        f"- Memory: {int(memory.group(1)) / 2**20:.0f} GiB" if memory else "- Memory: unknown",
        f"- OS: {os_name.group(1) if os_name else platform.system()}, "
        f"kernel {platform.release()}",
        f"- Rust: {command('rustc', '-V').strip()}",
    ]


def ns(value):
    return "n/a" if value is None else f"{value:,.1f}"


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def registry_section(m):
    floor = {"miss": m.get("registry/floor_miss"), "hit": m.get("registry/floor_hit")}
    recloser, failsafe = m.get("registry/recloser_closed"), m.get("registry/failsafe_closed")
    names = sorted(k.split("/", 1)[1] for k in m if k.startswith("registry/"))
    rows = []
    for name in names:
        value = m[f"registry/{name}"]
        missing = name.endswith("_miss") or "unknown" in name or "untracked" in name
        kind = "miss" if missing else "hit"
        rows.append([f"`{name}`", ns(value), ratio(value, floor[kind]), kind,
                     ratio(value, recloser), ratio(value, failsafe)])
    header = ["benchmark", "median ns", "x floor", "floor", "x recloser", "x failsafe"]
    return ["## Registry, one thread (`--bench registry`)", ""] + table(header, rows)


def layer_section(m):
    floor = m.get("layer/floor_miss")
    recloser, failsafe = m.get("layer/recloser_closed"), m.get("layer/failsafe_closed")
    rows, overheads = [], {}
    for uri in ["canonical_host", "canonical_ip_port", "normalising", "no_authority"]:
        without, with_ = m.get(f"layer/without_layer/{uri}"), m.get(f"layer/with_layer/{uri}")
        overhead = None if without is None or with_ is None else with_ - without
        overheads[uri] = overhead
        rows.append([f"`{uri}`", ns(without), ns(with_), ns(overhead), ratio(overhead, floor),
                     ratio(overhead, recloser), ratio(overhead, failsafe)])
    header = ["URI", "without layer ns", "with layer ns", "overhead ns", "x floor",
              "x recloser", "x failsafe"]
    parts = ", ".join(f"`{uri}` {ns(m.get(f'layer/authority_key/{uri}'))} ns"
                      for uri in ["canonical_host", "canonical_ip_port", "normalising"])
    lines = ["## Layer overhead (`--bench layer`)", "",
             f"Same run: floor (miss) {ns(floor)} ns, recloser {ns(recloser)} ns, "
             f"failsafe {ns(failsafe)} ns per call. Parts of the overhead: "
             f"`authority_key` {parts}; cloning and dropping the registry handle "
             f"{ns(m.get('layer/registry_clone_drop'))} ns. Reference pipelines for "
             f"`canonical_host`, to set against its `without layer` figure: a `map_err` "
             f"layer alone {ns(m.get('layer/map_err_layer'))} ns, a layer that reads "
             f"the URI out of line and passes the request on "
             f"{ns(m.get('layer/inspecting_layer'))} ns.", ""]
    return (lines + table(header, rows) + breaker_pipelines(m, overheads),
            overheads, floor, recloser, failsafe)


def breaker_pipelines(m, overheads):
    """The breakers as tower services in the same pipeline, against this layer."""
    bare = m.get("layer/without_layer/canonical_host")
    ours = overheads.get("canonical_host")
    rows = []
    for name, label in [("recloser_pipeline", "recloser (`AsyncRecloser`)"),
                        ("failsafe_pipeline", "failsafe (`futures::CircuitBreaker`)")]:
        value = m.get(f"layer/{name}")
        overhead = None if value is None or bare is None else value - bare
        rows.append([label, ns(value), ns(overhead), ratio(ours, overhead)])
    rows.append(["`BackoffLayer`", ns(m.get("layer/with_layer/canonical_host")), ns(ours),
                 ratio(ours, ours)])
    header = ["in the pipeline (`canonical_host`)", "median ns", "overhead ns",
              "layer overhead / this"]
    return (["", "The same pipeline with an unkeyed breaker in the layer's place, each "
             "through its crate's own future support and with its error boxed: what a "
             "breaker adds per request on equal terms.", ""] + table(header, rows))


def threads_section(m):
    ops = sorted({k.split("/")[1] for k in m if k.startswith("threads/")})
    rows = []
    for op in ops:
        values = [m.get(f"threads/{op}/{label}") for label in THREAD_LABELS]
        one = values[0]
        rows.append([f"`{op}`"] + [ns(v) for v in values]
                    + [ratio(values[1], one), ratio(values[2], one)])
    header = ["operation (ns per op per thread)"] + THREAD_LABELS + ["contended-2 / 1",
                                                                     "spread-2 / 1"]
    lines = ["## Threads sharing one registry (`--bench threads`)", ""]
    if (os.cpu_count() or 0) < 4:
        lines += [f"This machine has {os.cpu_count()} logical cores: the 4-thread columns "
                  "measure time-slicing as much as the registry.", ""]
    lines += ["`unshared_control` hashes the thread's key and shares nothing that is "
              "written: its ratios are what a second thread costs on this machine by "
              "itself, so the other ratios are best read against it.", ""]
    return lines + table(header, rows)


def scaling_section(m):
    rows = []
    for pattern in ["few", "hot", "all", "unknown"]:
        for what in ["floor", "should_backoff"]:
            values = [m.get(f"scaling/{what}_{pattern}/{size}") for size in SIZES]
            spread = (None if None in values else max(values) / min(values))
            rows.append([f"`{what}_{pattern}`"] + [ns(v) for v in values]
                        + ["n/a" if spread is None else f"{spread:.2f}x"])
    header = ["benchmark (ns)", "1 k keys", "100 k keys", "1 M keys", "max / min"]
    return ["## Scaling with tracked keys (`--bench scaling`)", ""] + table(header, rows)


def memory_section(memory):
    rows = [[f"{keys:,}", f"{per_key:.1f}", f"{allocations:.2f}"]
            for keys, (per_key, allocations) in sorted(memory.items())]
    header = ["tracked keys", "bytes per key beyond the key text", "allocations per key"]
    return (["## Memory (`cargo run --release --example memory`)", "",
             "Bytes requested from the allocator, less the empty registry and the key "
             "text; the allocator's own overhead per allocation comes on top.", ""]
            + table(header, rows))


def targets_section(m, layer, memory):
    overheads, floor, recloser, failsafe = layer
    rows = []

    def add(target, measured, ok):
        rows.append([target, measured, verdict(ok)])

    for name, floor_kind in [("unknown", "miss"), ("healthy", "hit")]:
        value = m.get(f"registry/should_backoff_{name}")
        base = m.get(f"registry/floor_{floor_kind}")
        ok = None if value is None or base is None else value / base <= 1.5
        add(f"`should_backoff` on {name} keys <= 1.5x floor ({floor_kind})",
            ratio(value, base), ok)
    for uri in ["canonical_host", "canonical_ip_port"]:
        overhead = overheads.get(uri)
        known = overhead is not None and None not in (floor, recloser, failsafe)
        add(f"layer overhead, `{uri}`, <= 2x floor", ratio(overhead, floor),
            known and overhead <= 2 * floor if known else None)
        add(f"layer overhead, `{uri}`, below recloser and failsafe",
            f"{ns(overhead)} ns vs {ns(recloser)} / {ns(failsafe)} ns",
            known and overhead < min(recloser, failsafe) if known else None)
    for pattern in ["few", "hot", "unknown"]:
        values = [m.get(f"scaling/should_backoff_{pattern}/{size}") for size in SIZES]
        spread = None if None in values else max(values) / min(values)
        add(f"`should_backoff_{pattern}` flat from 1 k to 1 M keys (max/min <= 1.5x)",
            "n/a" if spread is None else f"{spread:.2f}x",
            None if spread is None else spread <= 1.5)
    for op in HOT_PATH:
        one = m.get(f"threads/{op}/1")
        for mode in ["contended", "spread"]:
            two = m.get(f"threads/{op}/{mode}-2")
            # Three decimals: the check is strict, and 1.00x must not read as a pass.
            measured = "n/a" if one is None or two is None else f"{two / one:.3f}x"
            add(f"`{op}`, {mode}: per op on 2 threads <= 1 thread", measured,
                None if one is None or two is None else two <= one)
    at_million = memory.get(1_000_000)
    add("<= 96 bytes per tracked key at 1 M keys",
        "n/a" if at_million is None else f"{at_million[0]:.1f} bytes",
        None if at_million is None else at_million[0] <= 96)
    return ["## Targets (issue 4)", ""] + table(["target", "this run", "verdict"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", type=Path, help="criterion's output folder")
    parser.add_argument("--preliminary", metavar="WHY", help="open with a warning")
    parser.add_argument("--notes", type=Path, default=Path(__file__).with_name("notes.md"),
                        help="reading notes appended after the targets")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    m = load_medians(args.criterion or target / "criterion")
    if not m:
        sys.exit("no criterion results found: run the benches first")
    memory = run_memory_example()

    out = ["# Benchmarks", ""]
    if args.preliminary:
        out += [f"> **Preliminary** ({datetime.date.today()}): {args.preliminary}", ""]
    out += [f"Measured {datetime.date.today()}. Reproduce from the crate root, on a quiet "
            "machine (a full run takes about 15 minutes):", "",
            "```sh",
            "cargo bench --bench registry --bench layer --bench threads --bench scaling",
            "python3 benches/summarise.py > BENCHMARKS.md",
            "```", "",
            "Every figure is criterion's median; ratios are taken within one bench run. "
            "The floor is one `get` on a bare `DashMap<String, u64>` with the registry's "
            "hasher and the same key strings: a miss for unknown keys, a hit for tracked "
            "ones.", "",
            "## Machine", ""] + machine() + [""]
    out += registry_section(m) + [""]
    layer_lines, *layer = layer_section(m)
    out += layer_lines + [""]
    out += threads_section(m) + [""] + scaling_section(m) + [""]
    out += memory_section(memory) + [""] + targets_section(m, layer, memory)
    if args.notes.exists():
        out += ["", args.notes.read_text().rstrip()]
    print("\n".join(out))


if __name__ == "__main__":
    main()
