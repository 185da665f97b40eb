"""Encoder runtimes side by side: torch fp32 (reference) vs ONNX Runtime fp32 vs ONNX Runtime int8.

    .venv/bin/python perf/encoder.py [--n 2000] [--score-n 2000] [--threads 1] [--skip finetune,...]

Every measurement runs in its own child process (so peak memory is per runtime), after a warm-up
that loads the model (the one-off ONNX export/quantisation is cached under $HARMSCOPE_CACHE and
reported separately). Rows:

- ``encoder``: MiniLM embeddings of ``--n`` held-out texts (cold in-memory cache);
- ``embed`` / ``finetune``: the classifiers' ``predict_proba`` on the same texts, with held-out
  AUC (``embed``: head fitted on ``--train-n`` other texts embedded on the same runtime;
  ``finetune``: one fine-tuned model, trained once with torch and kept in --work, scored on each runtime);
- ``score``: ``score_run`` with the default judges on a synthetic run of ``--score-n`` distinct
  replies (perf/judges.py's builder), cold judge and embedding caches; AUC = the refusal judge on
  the 1,080 human-labelled XSTest completions (positive = not a full refusal);
- ``detoxify-original``: a BERT-base BertForSequenceClassification (random weights; speed does not
  depend on them) run the way Detoxify runs it (torch fp32, 512-token truncation) on
  ``--baseline-n`` texts, as the reference architecture.

Columns: texts/s (wall), wall and CPU seconds, peak RSS (MiB) of the child during the timed
part (the model and libraries included), AUC, and the speed-up over torch fp32 and over the
Detoxify-original architecture by wall time and by CPU time (the steadier figure on a shared
box). Figures depend on machine load; the load average is printed with the table. With
``--threads 2`` the ONNX encoder runs two one-text calls at a time (CPU seconds then add up both
threads).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "perf"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RUNTIMES = ("torch", "onnx-fp32", "onnx")


def _rss_mib() -> float:
    """Peak RSS (MiB) since the last :func:`_reset_peak` (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Reset the peak-RSS mark (Linux: writing 5 to clear_refs), so the peak is the timed part's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _texts(args: argparse.Namespace) -> tuple[list[str], list[int], list[str], list[int]]:
    """Held-out and training texts with binary labels (Davidson: offensive or hate = 1)."""
    from harmscope.classifiers.datasets import load_dataset

    df = load_dataset(args.data).sample(frac=1.0, random_state=0).reset_index(drop=True)
    held = df.iloc[: args.n]
    train = df.iloc[args.n: args.n + args.train_n]
    return held["text"].tolist(), held["label"].astype(int).tolist(), train["text"].tolist(), \
        train["label"].astype(int).tolist()


def _auc(y: list[int], s) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _xstest() -> tuple[list[str], list[int]]:
    import pandas as pd

    from harmscope.paths import data_dir

    d = data_dir() / "xstest_completions_dev" / "model_completions"
    df = pd.concat([pd.read_csv(f) for f in sorted(d.glob("*.csv"))], ignore_index=True)
    df = df[df["completion"].notna()]
    return df["completion"].astype(str).tolist(), (df["final_label"] != "2_full_refusal").astype(int).tolist()


def _timed(fn) -> dict:
    _reset_peak()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "out": out, "peak": _rss_mib()}


# ---------------------------------------------------------------------- child measurements
def worker(kind: str, runtime: str, args: argparse.Namespace) -> dict:
    os.environ["HARMSCOPE_ENCODER_RUNTIME"] = runtime
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    res: dict = {"kind": kind, "runtime": runtime}
    if kind == "encoder":
        from harmscope.classifiers.encoder import MiniLMEncoder

        held, _, _, _ = _texts(args)
        enc = MiniLMEncoder(runtime=runtime, cache=False)
        t = _timed(lambda: enc.encode(["warm up", "load the model"]))
        res["load_s"] = t["wall"]
        t = _timed(lambda: enc.encode(held))
        res.update(n=len(held), wall=t["wall"], cpu=t["cpu"], peak_mib=t["peak"])
    elif kind == "embed":
        from harmscope.classifiers.backends import EmbedClassifier

        held, yh, train, yt = _texts(args)
        m = EmbedClassifier().fit(train, yt)
        enc = m._encoder()
        enc._cache.clear()
        t = _timed(lambda: m.predict_proba(held)[:, 1])
        res.update(n=len(held), wall=t["wall"], cpu=t["cpu"], peak_mib=t["peak"], auc=_auc(yh, t["out"]))
    elif kind == "finetune":
        from harmscope.classifiers.backends import FinetuneClassifier

        held, yh, _, _ = _texts(args)
        m = FinetuneClassifier.load(Path(args.work) / "finetune")
        t = _timed(lambda: m.predict_proba(held[:8]))
        res["load_s"] = t["wall"]
        t = _timed(lambda: m.predict_proba(held)[:, 1])
        res.update(n=len(held), wall=t["wall"], cpu=t["cpu"], peak_mib=t["peak"], auc=_auc(yh, t["out"]))
    elif kind == "score":
        from judges import build_run  # perf/judges.py

        from harmscope.benchmarks.runs.store import Store
        from harmscope.benchmarks.scoring.judging import score_run
        from harmscope.classifiers.encoder import default_encoder
        from harmscope.classifiers.judges import parse_spec

        with tempfile.TemporaryDirectory() as d:
            js = parse_spec(None)
            warm = Store(Path(d) / "warm.sqlite")
            build_run(warm.path, 20, seed=1)
            t = _timed(lambda: score_run(Store(warm.path), "perf", js))  # loads every judge and model
            res["load_s"] = t["wall"]
            p = Path(d) / "run.sqlite"
            build_run(p, args.score_n)
            default_encoder()._cache.clear()
            store = Store(p)
            t = _timed(lambda: score_run(store, "perf", js))
            res.update(n=int(t["out"].summary["replies"]), wall=t["wall"], cpu=t["cpu"], peak_mib=t["peak"])
            default_encoder()._cache.clear()
            store2 = Store(Path(d) / "rescore.sqlite")  # same replies, judge cache cold, embeddings on disk
            build_run(store2.path, args.score_n)
            import shutil

            shutil.copy(str(p) + ".embeddings.sqlite", str(store2.path) + ".embeddings.sqlite")
            t2 = _timed(lambda: score_run(store2, "perf", js))
            res["rescore_wall"] = t2["wall"]
        from harmscope.classifiers.judges.refusal import RefusalJudge

        texts, y = _xstest()
        j = RefusalJudge()
        _, proba = j.classify(texts)
        classes = list(j.head.classes)
        res["auc"] = _auc(y, 1.0 - proba[:, classes.index("refusal")])
        res["auc_n"] = len(y)
    elif kind == "detoxify":
        import torch
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

        from harmscope._torch import configure_threads
        from harmscope.classifiers.encoder import minilm_path

        configure_threads()
        held, _, _, _ = _texts(args)
        import numpy as np

        rng = np.random.default_rng(0)
        sub = [held[i] for i in rng.choice(len(held), size=min(args.baseline_n, len(held)), replace=False)]
        tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)  # same uncased vocab
        tok.model_max_length = 512
        torch.manual_seed(0)
        base = BertForSequenceClassification(BertConfig(num_labels=6)).eval()

        def run() -> None:
            with torch.no_grad():
                for s in range(0, len(sub), 64):
                    batch = tok(sub[s:s + 64], return_tensors="pt", truncation=True, padding=True)
                    torch.sigmoid(base(**batch)[0]).cpu()

        t = _timed(run)
        res.update(n=len(sub), wall=t["wall"], cpu=t["cpu"], peak_mib=t["peak"])
    return res


def train_finetune(args: argparse.Namespace) -> None:
    """Fine-tune MiniLM once (torch, seed 0) on --train-n texts; kept in --work/finetune."""
    dest = Path(args.work) / "finetune"
    if (dest / "hf").is_dir():
        return
    os.environ["HARMSCOPE_ENCODER_RUNTIME"] = "torch"
    from harmscope.classifiers.backends import FinetuneClassifier

    _, _, train, yt = _texts(args)
    t0 = time.perf_counter()
    m = FinetuneClassifier(max_steps=args.finetune_steps, batch_size=16, max_length=64).fit(train, yt)
    m.save(dest)
    print(f"(fine-tuned MiniLM: {args.finetune_steps} steps on {len(train)} texts in "
          f"{time.perf_counter() - t0:.0f} s, saved to {dest})", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="davidson", help="labelled dataset for the classifier rows")
    ap.add_argument("--n", type=int, default=2000, help="held-out texts for encoder/embed/finetune")
    ap.add_argument("--train-n", type=int, default=2000, help="training texts (embed head, finetune)")
    ap.add_argument("--score-n", type=int, default=2000, help="distinct replies for the score row")
    ap.add_argument("--baseline-n", type=int, default=128, help="texts for the Detoxify-original row")
    ap.add_argument("--finetune-steps", type=int, default=300)
    ap.add_argument("--threads", default=os.environ.get("HARMSCOPE_TORCH_THREADS", "1"),
                    help="HARMSCOPE_TORCH_THREADS for every child (torch and ONNX Runtime)")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--skip", default="", help="rows to skip: encoder,embed,finetune,score,detoxify")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "harmscope-perf-encoder"),
                    help="folder for the fine-tuned model and results (reused between runs)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "RUNTIME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ["HARMSCOPE_TORCH_THREADS"] = str(args.threads)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker[0], args.worker[1], args)), flush=True)
        return 0

    from harmscope.classifiers.onnx_runtime import onnx_available

    skip = set(filter(None, args.skip.split(",")))
    runtimes = [r for r in args.runtimes.split(",") if r == "torch" or onnx_available()]
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if "finetune" not in skip:
        train_finetune(args)
    load0 = os.getloadavg()
    rows: list[dict] = []
    plan = [(k, rt) for k in ("encoder", "embed", "finetune", "score") if k not in skip for rt in runtimes]
    if "detoxify" not in skip:
        plan.append(("detoxify", "torch"))
    passthrough = [a for a in sys.argv[1:]]
    for kind, rt in plan:
        cmd = [sys.executable, __file__, *passthrough, "--worker", kind, rt]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
        if p.returncode != 0 or line is None:
            print(f"{kind} [{rt}] failed:\n{p.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(line[7:])
        rows.append(r)
        print(f"  done {kind:<9} {rt:<10} {r['n'] / r['wall']:9.1f} texts/s", file=sys.stderr, flush=True)
    load1 = os.getloadavg()

    ref = next((r for r in rows if r["kind"] == "detoxify"), None)
    print(f"threads {args.threads}, cpu cores {os.cpu_count()}, load average {load0[0]:.1f} -> {load1[0]:.1f} "
          f"(a shared, loaded box: CPU seconds are the steadier figure)")
    hdr = f"{'row':<18}{'runtime':<11}{'n':>6}{'texts/s':>10}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}" \
          f"{'AUC':>8}{'vs torch':>10}{'(cpu)':>7}{'vs detox':>10}{'(cpu)':>7}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        base = next((x for x in rows if x["kind"] == r["kind"] and x["runtime"] == "torch"), None)
        rate = r["n"] / r["wall"]
        crate = r["n"] / max(r["cpu"], 1e-9)  # texts per CPU-second: steadier on a shared box
        vs_t = f"{rate / (base['n'] / base['wall']):.1f}x" if base and r["kind"] != "detoxify" else "-"
        vs_tc = f"{crate / (base['n'] / base['cpu']):.1f}x" if base and r["kind"] != "detoxify" else "-"
        vs_d = f"{rate / (ref['n'] / ref['wall']):.0f}x" if ref and r["kind"] in ("embed", "finetune") else "-"
        vs_dc = f"{crate / (ref['n'] / ref['cpu']):.0f}x" if ref and r["kind"] in ("embed", "finetune") else "-"
        auc = f"{r['auc']:.4f}" if "auc" in r else "-"
        print(f"{r['kind']:<18}{r['runtime']:<11}{r['n']:>6}{rate:>10.1f}{r['wall']:>9.1f}{r['cpu']:>9.1f}"
              f"{r['peak_mib']:>10.0f}{auc:>8}{vs_t:>10}{vs_tc:>7}{vs_d:>10}{vs_dc:>7}")
    for r in rows:
        if r["kind"] == "score":
            per10k_wall = r["wall"] / r["n"] * 10_000
            per10k_cpu = r["cpu"] / r["n"] * 10_000
            print(f"score [{r['runtime']}]: {r['n']} replies in {r['wall']:.1f} s wall / {r['cpu']:.1f} s cpu; "
                  f"extrapolated to 10,000 replies: {per10k_wall:.0f} s wall, {per10k_cpu:.0f} cpu-s "
                  f"(~{per10k_cpu / 2:.0f} s on 2 idle cores if both are used); judge/model load {r['load_s']:.1f} s; "
                  f"re-score with the embedding cache: {r['rescore_wall']:.1f} s")
        if "load_s" in r and r["kind"] in ("encoder", "finetune"):
            print(f"{r['kind']} [{r['runtime']}]: first load {r['load_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load": [load0, load1], "threads": args.threads},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
