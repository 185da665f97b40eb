"""The ``tfidf`` backend: word + char n-gram TF-IDF features, logistic-regression head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harmscope.classifiers.backends.base import BACKENDS, CARD, card_number, construct, load_npy
from harmscope.classifiers.backends.linear import LinearHead
from harmscope.classifiers.fastvec import HashingTfidf
from harmscope.errors import HarmscopeError, InputError


@BACKENDS.register
class TfidfClassifier(LinearHead):
    """Word (1-2) and character (2-5) n-gram TF-IDF, logistic regression.

    ``vectorizer="hash"`` (default): the vectorised numpy hashing featuriser of
    :mod:`harmscope.classifiers.fastvec` (``2**bits`` columns per block, no vocabulary, fast);
    ``"sklearn"``: scikit-learn TfidfVectorizers (word + char_wb, ``max_features``, ``min_df``).
    """

    name = "tfidf"
    version = "1"
    description = "word + char n-gram TF-IDF, logistic regression"

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
        self = construct(cls, params, d)
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

