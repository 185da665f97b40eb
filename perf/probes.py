"""Probe generation throughput: generate ~100,000 probes and print probes/s.

Usage: .venv/bin/python perf/probes.py [--n 100000] [--seed 0] [--write]
Writes nothing into the repository (``--write`` writes JSONL and Parquet to a temp folder and
times that too). Target: >= 10,000 probes/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from harmscope.benchmarks.probes.generate import generate, read_probes, write_probes
from harmscope.benchmarks.probes.presets import PRESETS
from harmscope.rules import load_catalog


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000, help="target number of probes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="also time writing/reading JSONL and Parquet")
    args = ap.parse_args()

    catalog = load_catalog()
    transforms = PRESETS["standard"]["transforms"] + ["homoglyphs,roleplay", "zero-width,hypothetical"]
    n_rules = len(catalog.rules)
    benign_ratio = 0.15
    extra = 2 * 500 + 2 * 400 + 1000  # framing, hint pairs, escalations
    per_rule = max(1, round((args.n * (1 - benign_ratio) - extra) / n_rules))

    t0, c0 = time.perf_counter(), time.process_time()
    ps = generate(
        catalog,
        transforms=transforms,
        per_rule=per_rule,
        seed=args.seed,
        benign_ratio=benign_ratio,
        framing_pairs=500,
        hint_pairs=400,
        escalations=1000,
    )
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = len(ps.probes)
    print(
        f"generated {n} probes in {dt:.2f} s wall, {dc:.2f} s CPU: {n / dt:,.0f} probes/s wall, "
        f"{n / dc:,.0f} probes/s CPU (cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})"
    )
    print(f"counts: {ps.manifest.counts}")
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            for suffix in (".jsonl", ".parquet"):
                path = Path(tmp) / f"probes{suffix}"
                t0 = time.perf_counter()
                write_probes(ps, path)
                tw = time.perf_counter() - t0
                t0 = time.perf_counter()
                back = read_probes(path)
                tr = time.perf_counter() - t0
                assert back.manifest.set_hash == ps.manifest.set_hash
                size = path.stat().st_size / 1e6
                print(
                    f"{suffix}: write {n / tw:,.0f} probes/s, read+verify {n / tr:,.0f} probes/s, {size:.1f} MB"
                )


if __name__ == "__main__":
    main()
