"""Training strategies for a small clean set plus a large noisy set (arXiv 2110.01577).

Each strategy is a function ``(make, clean, noisy, *, seed, **opts) -> fitted estimator`` where
``make()`` returns a fresh unfitted backend, ``clean`` is a standard frame (``text``, ``label``)
and ``noisy`` a standard frame whose labels are taken from ``noisy_label`` (else ``label``) and
soft targets from ``noisy_target`` (else ``target``). All strategies work with every backend.

Strategies are looked up only through :data:`STRATEGIES`. Add one: a function with that signature
decorated with ``@STRATEGIES.register(name=..., version=..., order=N)`` (its docstring's first line
is the description; ``order`` places it in the default ``experiment strategies`` run; ``needs``
names the sets it trains on, by default ``("clean", "noisy")``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from harmscope.errors import HarmscopeError
from harmscope.registry import Registry

Maker = Callable[[], Any]
#: Training strategies by name (functions; metadata: ``order`` in the default run, ``needs``).
STRATEGIES = Registry("training strategy")


def strategy_names() -> list[str]:
    """Every registered strategy, in the order of the default run (then by name)."""
    return [e.name for e in sorted(STRATEGIES, key=lambda e: (e.meta.get("order", 1000), e.name))]


def noisy_labels(noisy: pd.DataFrame) -> np.ndarray:
    col = "noisy_label" if "noisy_label" in noisy.columns else "label"
    return noisy[col].to_numpy().astype(int)


def noisy_soft(noisy: pd.DataFrame) -> np.ndarray:
    """Fractional noisy targets: ``noisy_target``, else the hard noisy labels, else ``target``."""
    if "noisy_target" in noisy.columns:
        return noisy["noisy_target"].to_numpy(dtype=float).clip(0, 1)
    if "noisy_label" in noisy.columns:
        return noisy["noisy_label"].to_numpy(dtype=float)
    return noisy["target"].to_numpy(dtype=float).clip(0, 1)


def _frame(texts: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in texts.columns if c == "text" or c not in ("label", "noisy_label")]
    return texts[keep].reset_index(drop=True)


def _union(clean: pd.DataFrame, noisy: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.concat([_frame(clean), _frame(noisy)], ignore_index=True)
    y = np.concatenate([clean["label"].to_numpy().astype(int), noisy_labels(noisy)])
    return X, y


@STRATEGIES.register(name="clean", version="1", order=1, needs=("clean",))
def train_clean(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame | None = None, **_: Any) -> Any:
    """Only the small clean set."""
    return make().fit(_frame(clean), clean["label"].to_numpy().astype(int))


@STRATEGIES.register(name="noisy", version="1", order=2, needs=("noisy",))
def train_noisy(make: Maker, clean: pd.DataFrame | None, noisy: pd.DataFrame, **_: Any) -> Any:
    """Only the large noisy set with its weak labels."""
    return make().fit(_frame(noisy), noisy_labels(noisy))


@STRATEGIES.register(name="union", version="1", order=3)
def train_union(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame, **_: Any) -> Any:
    """Clean and noisy pooled, every row weight 1."""
    X, y = _union(clean, noisy)
    return make().fit(X, y)


@STRATEGIES.register(name="union-weighted", version="1", order=4)
def train_union_weighted(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame, *,
                         clean_weight: float | None = None, **_: Any) -> Any:
    """Pooled, clean rows up-weighted (default: so both sets carry the same total weight)."""
    X, y = _union(clean, noisy)
    cw = clean_weight if clean_weight is not None else max(1.0, len(noisy) / max(1, len(clean)))
    w = np.concatenate([np.full(len(clean), cw), np.ones(len(noisy))])
    return make().fit(X, y, sample_weight=w)


@STRATEGIES.register(name="pretrain-finetune", version="1", order=5)
def train_pretrain_finetune(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame, **_: Any) -> Any:
    """Pretrain on clean + noisy, then continue training on the clean set only (``partial_fit``)."""
    X, y = _union(clean, noisy)
    model = make().fit(X, y)
    return model.partial_fit(_frame(clean), clean["label"].to_numpy().astype(int))


def _oof_clean(make: Maker, clean: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold P(toxic) on the clean set (stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold

    y = clean["label"].to_numpy().astype(int)
    p = np.zeros(len(clean))
    k = int(min(folds, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise HarmscopeError("filtered strategy: the clean set needs at least 2 examples of each class")
    X = _frame(clean)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        m = make().fit(X.iloc[tr], y[tr])
        p[te] = m.predict_proba(X.iloc[te])[:, 1]
    return p


def confident_disagreements(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame, *, seed: int = 0,
                            folds: int = 3, margin: float = 0.0) -> tuple[np.ndarray, Any]:
    """Confident-learning style filter: a model trained on the clean set scores the noisy set;
    per-class thresholds are the mean out-of-fold self-confidence on the clean set. A noisy row
    labelled i is flagged when the model is confident in the other class j (``p_j >= t_j +
    margin``) and prefers it. Returns (flag mask, clean model)."""
    y = clean["label"].to_numpy().astype(int)
    oof = _oof_clean(make, clean, folds, seed)
    t1 = float(oof[y == 1].mean())
    t0 = float((1 - oof[y == 0]).mean())
    model = make().fit(_frame(clean), y)
    p = model.predict_proba(_frame(noisy))[:, 1]
    lab = noisy_labels(noisy)
    flag = ((lab == 0) & (p >= t1 + margin) & (p > 0.5)) | ((lab == 1) & (1 - p >= t0 + margin) & (p < 0.5))
    return flag, model


@STRATEGIES.register(name="filtered", version="1", order=6)
def train_filtered(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame, *, seed: int = 0,
                   folds: int = 3, margin: float = 0.0, **_: Any) -> Any:
    """Drop the noisy rows a clean-trained model contradicts with confidence, then train on clean
    + the rest. The number dropped is kept in ``model.card_['filtered_out']``."""
    flag, _ = confident_disagreements(make, clean, noisy, seed=seed, folds=folds, margin=margin)
    kept = noisy.loc[~flag].reset_index(drop=True)
    X, y = _union(clean, kept)
    model = make().fit(X, y)
    model.card_ = {**(getattr(model, "card_", {}) or {}), "filtered_out": int(flag.sum()),
                   "noisy_rows": len(noisy)}
    return model


@STRATEGIES.register(name="soft", version="1", order=7)
def train_soft(make: Maker, clean: pd.DataFrame, noisy: pd.DataFrame, **_: Any) -> Any:
    """Clean rows as hard labels; each noisy row twice, as toxic with weight p and as non-toxic
    with weight 1 - p, where p is its fractional noisy target."""
    p = noisy_soft(noisy)
    nf = _frame(noisy)
    X = pd.concat([_frame(clean), nf, nf], ignore_index=True)
    y = np.concatenate([clean["label"].to_numpy().astype(int), np.ones(len(nf), int), np.zeros(len(nf), int)])
    w = np.concatenate([np.ones(len(clean)), p, 1 - p])
    keep = w > 0
    return make().fit(X.loc[keep].reset_index(drop=True), y[keep], sample_weight=w[keep])


def train(name: str, make: Maker, clean: pd.DataFrame | None, noisy: pd.DataFrame | None, *,
          seed: int = 0, **opts: Any) -> Any:
    """Run strategy ``name``; checks that the sets it needs were given."""
    if name not in STRATEGIES:
        raise HarmscopeError(f"unknown strategy {name!r} (known: {', '.join(strategy_names())})")
    entry = STRATEGIES.get(name)
    needs = entry.meta.get("needs", ("clean", "noisy"))
    for part, frame in (("clean", clean), ("noisy", noisy)):
        if part in needs and (frame is None or len(frame) == 0):
            raise HarmscopeError(f"strategy {name!r} needs a {part} training set (--{part})")
    model = entry.obj(make, clean, noisy, seed=seed, **opts)
    model.card_ = {**(getattr(model, "card_", {}) or {}), "strategy": name, "seed": seed}
    return model


# ---------------------------------------------------------------- clean-budget study on one set
def heldout_mask(texts: list[str], fraction: float, *, salt: str = "harmscope-eval") -> np.ndarray:
    """True for about ``fraction`` of the texts, chosen by a hash of each text (so the held-out
    part does not depend on the seed and equal texts always fall on the same side)."""
    import hashlib

    cut = int(round(fraction * 10_000))
    return np.array([int.from_bytes(hashlib.blake2b((salt + t).encode("utf-8", "surrogatepass"),
                                                    digest_size=8).digest(), "big") % 10_000 < cut
                     for t in texts])


def budget_splits(df: pd.DataFrame, budget: int, *, seed: int = 0,
                  eval_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(clean, noisy, eval) from one set that carries both a clean ``label`` and a ``noisy_label``.

    ``eval`` = a hash-chosen ``eval_fraction`` of the texts with their clean labels (the same for
    every budget and seed); of the rest, a seeded random ``budget`` rows keep their clean labels
    and every other row is used with its noisy label only."""
    if "noisy_label" not in df.columns:
        raise HarmscopeError("budget study: the data has no noisy labels (noisy_label column)")
    ev_m = heldout_mask(df["text"].astype(str).tolist(), eval_fraction)
    pool = df.loc[~ev_m].reset_index(drop=True)
    if not 0 < budget < len(pool):
        raise HarmscopeError(f"clean budget {budget} must be between 1 and {len(pool) - 1} (training rows)")
    rng = np.random.default_rng(seed)
    pick = np.zeros(len(pool), dtype=bool)
    pick[rng.choice(len(pool), size=budget, replace=False)] = True
    clean = pool.loc[pick].reset_index(drop=True)
    noisy = pool.loc[~pick].drop(columns=["label", "target"]).reset_index(drop=True)
    ev = df.loc[ev_m].reset_index(drop=True)
    for part in (clean, noisy, ev):
        part.attrs.update(df.attrs)
    return clean, noisy, ev
