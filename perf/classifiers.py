"""Classifier inference throughput (texts/s) on held-out texts; prints figures, asserts nothing.

    .venv/bin/python perf/classifiers.py [--n 2000] [--baseline-n 256] [--data davidson]

Backends: tfidf, embed (MiniLM + linear head), finetune (MiniLM end to end; a few training
steps only, since inference speed does not depend on the weights), and the Detoxify "original"
architecture (a bert-base-uncased sized BertForSequenceClassification from a default BertConfig,
random weights, 6 heads) run the way ``Detoxify.predict`` runs it: texts in the given order,
padded to the longest in the batch, truncated at 512 tokens, under ``torch.no_grad``.
The baseline is timed on a random ``--baseline-n`` subset of the same held-out texts (it is
slow on CPU). Targets: tfidf >= 50,000 texts/s; embed and finetune >= 5x Detoxify-original.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="davidson", help="dataset name or file (default davidson)")
    ap.add_argument("--n", type=int, default=2000, help="held-out texts to score")
    ap.add_argument("--baseline-n", type=int, default=256, help="texts for the Detoxify-original baseline")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated backends to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore")

    from harmscope.classifiers.backends import EmbedClassifier, FinetuneClassifier, TfidfClassifier
    from harmscope.classifiers.datasets import load_dataset

    df = load_dataset(args.data).sample(frac=1.0, random_state=0).reset_index(drop=True)
    held = df["text"].iloc[: args.n].tolist()
    train = df.iloc[args.n: args.n + 2000]
    rng = np.random.default_rng(0)
    sub = [held[i] for i in rng.choice(len(held), size=min(args.baseline_n, len(held)), replace=False)]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"data {args.data}: {len(held)} held-out texts (mean {np.mean([len(t) for t in held]):.0f} chars), "
          f"device {dev}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    rates: dict[str, float] = {}
    cpu_rates: dict[str, float] = {}

    if "tfidf" not in skip:
        m = TfidfClassifier().fit(train, train["label"])
        m.predict_proba(held[:10])
        t = _best(lambda: m.predict_proba(held), args.repeat)
        rates["tfidf"] = len(held) / t
        c0 = time.process_time()
        m.predict_proba(held)
        cpu_rates["tfidf"] = len(held) / (time.process_time() - c0)
        sk = TfidfClassifier(vectorizer="sklearn").fit(train, train["label"])
        rates["tfidf (sklearn vectorizers)"] = len(held) / _best(lambda: sk.predict_proba(held), args.repeat)

    small = train.iloc[:300]
    if "embed" not in skip:
        m = EmbedClassifier(batch_size=args.batch_size).fit(small, small["label"])
        enc = m._encoder()

        def run_embed() -> None:
            enc._cache.clear()  # measure encoding, not the text-hash cache
            m.predict_proba(held)

        t = _best(run_embed, max(1, args.repeat - 1))
        rates["embed"] = len(held) / t

    if "finetune" not in skip:
        m = FinetuneClassifier(max_steps=5, batch_size=16, eval_batch_size=args.batch_size).fit(small, small["label"])
        t = _best(lambda: m.predict_proba(held), max(1, args.repeat - 1))
        rates["finetune"] = len(held) / t

    if "detoxify" not in skip:
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

        from harmscope.classifiers.encoder import minilm_path

        tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)  # same uncased vocab
        tok.model_max_length = 512
        torch.manual_seed(0)
        base = BertForSequenceClassification(BertConfig(num_labels=6)).to(dev).eval()

        def run_base() -> None:
            with torch.no_grad():
                for s in range(0, len(sub), args.batch_size):
                    batch = tok(sub[s:s + args.batch_size], return_tensors="pt", truncation=True,
                                padding=True).to(dev)
                    torch.sigmoid(base(**batch)[0]).cpu()

        t = _best(run_base, 1)
        rates["detoxify-original"] = len(sub) / t

    print(f"{'backend':<20}{'texts/s':>12}{'vs detoxify-original':>24}")
    ref = rates.get("detoxify-original")
    for name, r in rates.items():
        ratio = f"{r / ref:.1f}x" if ref else "-"
        print(f"{name:<20}{r:>12,.0f}{ratio:>24}")
    if "tfidf" in rates:
        print(f"tfidf target >= 50,000 texts/s: {'met' if rates['tfidf'] >= 50_000 else 'NOT met'} (wall clock); "
              f"{cpu_rates['tfidf']:,.0f} texts per CPU-second (one core, unaffected by other load)")
    for name in ("embed", "finetune"):
        if name in rates and ref:
            print(f"{name} target >= 5x detoxify-original: {'met' if rates[name] >= 5 * ref else 'NOT met'} "
                  f"({rates[name] / ref:.1f}x)")


if __name__ == "__main__":
    main()
