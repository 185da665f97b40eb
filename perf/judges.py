"""Judge and scoring throughput: replies/s per judge on N replies, and end-to-end ``score``.

Usage: python perf/judges.py [--n 10000]. Builds a synthetic run (probes from the built-in
catalog, replies composed from the refusal-judge fragments so that every text is distinct) in a
temporary store, times each non-LLM judge alone (cold encoder cache for the MiniLM judges), then
times ``score_run`` with the default judges on a fresh store. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_run(store_path: Path, n: int, seed: int = 0) -> str:
    from harmscope.benchmarks.probes.generate import generate
    from harmscope.benchmarks.runs.store import Store
    from harmscope.classifiers.judges.refusal import load_refusal_data
    from harmscope.rules import load_catalog
    from harmscope.types import Response, RunManifest

    cat = load_catalog()
    ps = generate(cat, preset="smoke", seed=seed)
    probes = ps.probes
    texts = load_refusal_data()["text"].tolist()
    rng = random.Random(seed)
    store = Store(store_path)
    store.save_run(RunManifest(run_id="perf", probe_set_hash=ps.manifest.set_hash, model="synthetic"))
    store.add_probes("perf", probes)
    samples = -(-n // len(probes))
    items = []
    i = 0
    for s in range(samples):
        for p in probes:
            if i >= n:
                break
            a, b = rng.choice(texts), rng.choice(texts)
            text = f"{a} (case {i}, ref {rng.randint(100, 999)}) {b[: rng.randint(20, 200)]}"
            items.append((f"k{i}", Response(probe_id=p.id, sample=s, model="synthetic", text=text)))
            i += 1
    store.put_replies("perf", items)
    store.close()
    return "perf"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--judges", default="pattern,awareness,toxicity,refusal,rule",
                    help="judges to time one by one (empty: only the end-to-end figure)")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end score_run timing")
    args = ap.parse_args()
    from harmscope.benchmarks.runs.store import Store
    from harmscope.benchmarks.scoring.judging import score_run
    from harmscope.classifiers.judges import JudgeItem, parse_spec

    print(f"perf/judges.py: n={args.n} replies, cpu cores={os.cpu_count()} (timings taken on a shared, loaded box)")
    with tempfile.TemporaryDirectory() as d:
        p1 = Path(d) / "a.sqlite"
        t0 = time.perf_counter()
        run_id = build_run(p1, args.n)
        print(f"build synthetic run: {time.perf_counter() - t0:.1f} s")
        store = Store(p1)
        probes = {p.id: p for p in store.probes(run_id)}
        replies = store.replies(run_id)
        items = [JudgeItem(probes[r.probe_id], r) for r in replies]
        rule = next(iter(__import__("harmscope.rules", fromlist=["x"]).load_catalog().rules.values()))
        # warm the encoder/model loading so per-judge figures are about throughput
        from harmscope.classifiers.encoder import default_encoder

        default_encoder().encode(["warm up"])
        only = [x for x in args.judges.split(",") if x]
        for name in only:
            js = parse_spec(name)
            j = js.judges[0]
            its = [JudgeItem(it.probe, it.response, rule) for it in items] if j.per_rule else items
            if name == "toxicity":
                j.scores(["warm up"])  # fit/load the classifier outside the timing
            default_encoder()._cache.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            j.judge(its)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"judge {name:<10} {len(its)} items: wall {dt:6.1f} s = {len(its) / dt:7.0f} replies/s; "
                  f"cpu {cpu:6.1f} s = {len(its) / max(cpu, 1e-9):7.0f} replies per cpu-second")
        store.close()
        if args.no_e2e:
            return 0
        # end to end on a fresh store (cold judge cache, cold encoder cache)
        p2 = Path(d) / "b.sqlite"
        build_run(p2, args.n)
        default_encoder()._cache.clear()
        store = Store(p2)
        t0, c0 = time.perf_counter(), time.process_time()
        res = score_run(store, run_id, None)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"score_run default judges, cold cache: wall {dt:.1f} s, cpu {cpu:.1f} s for {res.summary['replies']} "
              f"replies ({res.summary['replies'] / dt:.0f} replies/s wall); target < 60 s wall on 2 idle cores "
              f"(~ cpu/2 if both cores are free)")
        default_encoder()._cache.clear()
        t0 = time.perf_counter()
        score_run(store, run_id, None)
        print(f"score_run again (judge cache warm): {time.perf_counter() - t0:.1f} s")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
