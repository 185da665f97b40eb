"""A resumable on-disk cache of MiniLM sentence embeddings, keyed by text hash.

Embedding tens of thousands of texts on a CPU takes a while; this cache writes every chunk as
it finishes (``emb-NNNNN.npz`` with ``keys`` (16-byte blake2b digests) and ``vectors``), so an
interrupted build resumes where it stopped. Files hold only numbers and fixed-size byte
strings and are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harmscope.classifiers.encoder import MiniLMEncoder

DIM = 384
KEY_BYTES = 16


def text_key(text: str) -> bytes:
    """The cache key of ``text`` (the same digest as the in-memory encoder cache)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


class EmbeddingCache:
    """``get(texts)`` returns (n, 384) float32 embeddings, computing only the missing ones."""

    def __init__(self, folder: str | Path, *, encode: Callable[[list[str]], np.ndarray] | None = None,
                 chunk: int = 512):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.chunk = chunk
        self._encode = encode
        self._store: dict[bytes, np.ndarray] = {}
        for f in sorted(self.folder.glob("emb-*.npz")):
            with np.load(f, allow_pickle=False) as z:
                for k, v in zip(z["keys"], z["vectors"], strict=True):
                    # numpy "S16" drops trailing NUL bytes: restore the full 16-byte digest
                    self._store[bytes(k).ljust(KEY_BYTES, b"\0")] = v

    def __len__(self) -> int:
        return len(self._store)

    def _encoder(self) -> Callable[[list[str]], np.ndarray]:
        if self._encode is None:
            self._encode = MiniLMEncoder(cache=False).encode
        return self._encode

    def _write(self, keys: list[bytes], vecs: np.ndarray) -> None:
        n = len(list(self.folder.glob("emb-*.npz")))
        path = self.folder / f"emb-{n:05d}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(fd)
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype=f"S{KEY_BYTES}"), vectors=vecs.astype(np.float32))
        os.replace(tmp, path)

    def missing(self, texts: list[str]) -> list[str]:
        seen: set[bytes] = set()
        out = []
        for t in texts:
            k = text_key(t)
            if k not in self._store and k not in seen:
                seen.add(k)
                out.append(t)
        return out

    def get(self, texts: list[str], *, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Embeddings of ``texts`` in order; missing texts are encoded and saved chunk by chunk."""
        texts = [str(t) for t in texts]
        todo = self.missing(texts)
        for start in range(0, len(todo), self.chunk):
            part = todo[start:start + self.chunk]
            vecs = np.asarray(self._encoder()(part), dtype=np.float32)
            keys = [text_key(t) for t in part]
            self._write(keys, vecs)
            for k, v in zip(keys, vecs, strict=True):
                self._store[k] = v
            if progress:
                progress(min(start + self.chunk, len(todo)), len(todo))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self._store[text_key(t)]
        return out
