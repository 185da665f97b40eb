"""Scaling figures for the execution engines: local versus Dask with 1 and 2 workers.

    .venv/bin/python perf/scale.py                     # 200,000 tfidf texts, 20,000 embed texts
    .venv/bin/python perf/scale.py --n-tfidf 20000 --n-embed 2000 --skip-embed

Measures (1) the overhead of the local engine over a direct ``predict_proba`` call (alternating
repeats, median), (2) classifier scoring throughput with ``tfidf`` and ``embed`` (MiniLM) on
the local engine and on a LocalCluster with 1 and 2 single-threaded worker processes, and (3)
the audit bootstrap (``bias_metrics``, 1000 resamples). For a fair comparison every side runs
torch with ONE thread (workers get OMP_NUM_THREADS=1 from Dask; the local process sets
``torch.set_num_threads(1)``); ``--two-threads`` adds a local 2-thread torch figure for reference. The
MiniLM embedding cache is cleared before every timed run. Texts are made unique so that the
Dask path's de-duplication gives it no advantage. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # inherited by the worker processes
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _clear_encoder_cache() -> int:
    from harmscope.classifiers import encoder

    if encoder._DEFAULT is not None:
        encoder._DEFAULT._cache.clear()
    return 0


def _timed(fn, *a, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return time.perf_counter() - t0, out


def _cpu() -> float:
    return time.process_time()


class Meter:
    """Wall time plus CPU seconds of this process and of every worker process (``engine``)."""

    def __init__(self, engine=None):
        self.engine = engine

    def _workers(self) -> dict[str, float]:
        return self.engine.client.run(_cpu) if self.engine is not None else {}

    def __call__(self, fn, *a, **kw) -> tuple[dict, object]:
        w0, c0, t0 = self._workers(), time.process_time(), time.perf_counter()
        out = fn(*a, **kw)
        t, c, w1 = time.perf_counter() - t0, time.process_time() - c0, self._workers()
        per = [w1[k] - w0[k] for k in w1 if k in w0]
        # busiest process = the critical path on idle cores (the client overlaps with the workers)
        crit = max(per) if per else c
        return {"s": t, "cpu": c + sum(per), "crit": crit}, out


def _texts(n: int, seed: int) -> list[str]:
    from harmscope.classifiers.corpus import make_corpus

    df = make_corpus(n, seed=seed)
    return [f"{t} (ref {i})" for i, t in enumerate(df["text"].tolist())]  # all unique


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-tfidf", type=int, default=200_000)
    ap.add_argument("--n-embed", type=int, default=20_000)
    ap.add_argument("--n-overhead", type=int, default=20_000, help="texts for the local-overhead check")
    ap.add_argument("--repeats", type=int, default=5, help="alternating repeats for the overhead check")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--n-audit", type=int, default=50_000, help="rows for the audit bootstrap")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--skip-embed", action="store_true")
    ap.add_argument("--only-overhead", action="store_true", help="stop after the local-overhead check")
    ap.add_argument("--two-threads", action="store_true", help="also time local embed with 2 torch threads")
    ap.add_argument("--partition-size", type=int, default=4096)
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w]

    import pandas as pd
    import torch

    from harmscope.classifiers.backends import EmbedClassifier, TfidfClassifier
    from harmscope.classifiers.corpus import make_corpus
    from harmscope.classifiers.partitioned import predict_dataset
    from harmscope.engines import get_engine
    from harmscope.fairness.parallel import bias_metrics

    torch.set_num_threads(1)
    rows: list[dict] = []
    t_run = time.perf_counter()

    class _Rows(list):
        def append(self, row: dict) -> None:  # print each figure as soon as it is measured
            super().append(row)
            print(f"[{time.perf_counter() - t_run:6.0f}s] {row['task']:<40} {row['engine']:<24} n={row['n']:<7,} "
                  f"wall {row['s']:7.2f}s cpu {row['cpu']:7.2f}s busiest {row['crit']:7.2f}s "
                  f"{row['n'] / row['s']:9,.0f}/s {row.get('note', '')}", flush=True)

    rows = _Rows()
    tmp = Path(tempfile.mkdtemp(prefix="harmscope-scale-"))
    print(f"# load average at start: {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} cores")

    # ------------------------------------------------------------ models
    train = make_corpus(20_000, seed=0)
    t, tfidf = _timed(lambda: TfidfClassifier().fit(train["text"], train["label"]))
    tfidf_dir = tfidf.save(tmp / "tfidf")
    print(f"# tfidf fitted on 20,000 texts in {t:.1f}s")
    texts = _texts(args.n_tfidf, seed=1)

    # ------------------------------------------------------------ local overhead
    sub = texts[: args.n_overhead]
    direct, local, direct_cpu, local_cpu = [], [], [], []
    for _ in range(args.repeats):
        c0 = time.process_time()
        direct.append(_timed(tfidf.predict_proba, sub)[0])
        c1 = time.process_time()
        local.append(_timed(predict_dataset, tfidf, sub, engine="local")[0])
        direct_cpu.append(c1 - c0)
        local_cpu.append(time.process_time() - c1)
    print(f"# local-engine CPU-time overhead (less sensitive to other users' load): direct "
          f"{statistics.median(direct_cpu):.3f} cpu-s, local engine {statistics.median(local_cpu):.3f} cpu-s -> "
          f"{statistics.median(local_cpu) / statistics.median(direct_cpu) - 1:+.1%} (medians)")
    d_med, l_med = statistics.median(direct), statistics.median(local)
    overhead = (min(local) - min(direct)) / min(direct)
    print(f"# local-engine overhead on {len(sub):,} tfidf texts: direct {d_med:.3f}s, "
          f"predict_dataset(local) {l_med:.3f}s (medians of {args.repeats}; {(l_med - d_med) / d_med:+.1%}); "
          f"best of {args.repeats}: {min(direct):.3f}s vs {min(local):.3f}s -> {overhead:+.1%}")

    class _Fixed:  # a classifier that costs nothing: what is left is the engine's own cost
        def __init__(self, n: int):
            self.out = np.zeros((n, 2))

        def predict_proba(self, X):
            return self.out

    fixed = _Fixed(len(sub))
    calls = 2000
    t_direct = _timed(lambda: [fixed.predict_proba(sub) for _ in range(calls)])[0] / calls
    t_engine = _timed(lambda: [predict_dataset(fixed, sub, engine="local") for _ in range(calls)])[0] / calls
    print(f"# local-engine cost per call, zero-cost classifier: {1e6 * (t_engine - t_direct):.1f} us "
          f"= {(t_engine - t_direct) / d_med:.4%} of one {len(sub):,}-text tfidf call")
    if args.only_overhead:
        return

    # ------------------------------------------------------------ tfidf at full size
    m, p_local = Meter()(predict_dataset, str(tfidf_dir), texts, engine="local")
    rows.append({"task": "tfidf scoring", "engine": "local", "n": len(texts), **m})
    engines = {}
    for w in workers:
        t_start, eng = _timed(get_engine, f"dask:{w}")
        engines[w] = (eng, t_start)
        predict_dataset(str(tfidf_dir), texts[:8192], engine=eng, partition_size=64)  # load on every worker
        m, p = Meter(eng)(predict_dataset, str(tfidf_dir), texts, engine=eng, partition_size=args.partition_size)
        same = np.array_equal(p, p_local)
        rows.append({"task": "tfidf scoring", "engine": f"dask:{w}", "n": len(texts), **m,
                     "note": f"start {t_start:.1f}s; {'bit-identical' if same else 'DIFFERS'}"})

    # ------------------------------------------------------------ embed (MiniLM)
    if not args.skip_embed:
        etexts = _texts(args.n_embed, seed=2)
        emb = EmbedClassifier().fit(train["text"][:1000], train["label"][:1000])
        emb_dir = emb.save(tmp / "embed")
        _clear_encoder_cache()
        m, p1 = Meter()(predict_dataset, str(emb_dir), etexts, engine="local")
        rows.append({"task": "embed scoring", "engine": "local (1 torch thread)", "n": len(etexts), **m})
        if args.two_threads:
            torch.set_num_threads(2)
            _clear_encoder_cache()
            m, _ = Meter()(predict_dataset, str(emb_dir), etexts, engine="local")
            rows.append({"task": "embed scoring", "engine": "local (2 torch threads)", "n": len(etexts), **m,
                         "note": "reference only"})
            torch.set_num_threads(1)
        for w, (eng, _) in engines.items():
            predict_dataset(str(emb_dir), etexts[:256], engine=eng, partition_size=64)  # load MiniLM
            eng.client.run(_clear_encoder_cache)
            m, p = Meter(eng)(predict_dataset, str(emb_dir), etexts, engine=eng, partition_size=args.partition_size)
            diff = float(np.abs(p - p1).max())
            rows.append({"task": "embed scoring", "engine": f"dask:{w}", "n": len(etexts), **m,
                         "note": "bit-identical" if diff == 0 else f"max |diff| {diff:.1e}"})

    # ------------------------------------------------------------ audit bootstrap
    audit = make_corpus(args.n_audit, seed=3)
    groups = audit[audit.attrs["group_cols"]]
    scores = predict_dataset(tfidf, audit["text"].tolist(), engine="local")[:, 1]
    m, rep = Meter()(bias_metrics, audit["target"], scores, groups, n_boot=args.n_boot, seed=0, engine="local")
    rows.append({"task": f"audit bootstrap ({args.n_boot} resamples, {groups.shape[1]} groups)",
                 "engine": "local", "n": len(audit), **m})
    for w, (eng, _) in engines.items():
        m, r = Meter(eng)(bias_metrics, audit["target"], scores, groups, n_boot=args.n_boot, seed=0, engine=eng)
        same = r.per_group.equals(rep.per_group) and r.overall == rep.overall
        rows.append({"task": f"audit bootstrap ({args.n_boot} resamples, {groups.shape[1]} groups)",
                     "engine": f"dask:{w}", "n": len(audit), **m,
                     "note": "identical CIs" if same else "CIs DIFFER"})
    for eng, _ in engines.values():
        eng.close()

    # ------------------------------------------------------------ table
    df = pd.DataFrame(rows)
    df["items/s"] = df["n"] / df["s"]
    df["items/cpu-s"] = df["n"] / df["cpu"]
    base = {task: grp.iloc[0] for task, grp in df.groupby("task", sort=False)}
    df["speed-up wall"] = [base[r.task]["s"] / r.s for r in df.itertuples()]
    # on idle cores the busiest process is the critical path
    df["speed-up idle-core est."] = [base[r.task]["crit"] / r.crit for r in df.itertuples()]
    df["cpu overhead"] = [r.cpu / base[r.task]["cpu"] - 1 for r in df.itertuples()]
    df["note"] = df["note"].fillna("") if "note" in df else ""
    cols = ["task", "engine", "n", "s", "cpu", "crit", "items/s", "items/cpu-s", "speed-up wall",
            "speed-up idle-core est.", "cpu overhead", "note"]
    with pd.option_context("display.width", 250, "display.max_colwidth", 50):
        print(df[cols].rename(columns={"s": "wall s", "cpu": "cpu s", "crit": "busiest s"})
              .to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    print(f"# load average at end: {open('/proc/loadavg').read().split()[:3]}")
    print(f"# local-engine overhead: {overhead:+.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
