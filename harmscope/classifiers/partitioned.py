"""Partitioned classifier scoring on any engine, and scores written as Parquet partitions.

::

    from harmscope.classifiers.partitioned import predict_dataset
    from harmscope.engines import engine_scope

    with engine_scope("dask:2") as eng:
        proba = predict_dataset("out/models/tfidf", texts, engine=eng)

On the local engine this is ``load_classifier(spec).predict_proba(texts)`` and nothing else. On
another engine, partitions of texts go to the workers; each worker process loads the model once
(:func:`harmscope.engines.workers.worker_cached`) from a folder it sees or that the engine ships
to it (:meth:`Engine.ship_folder`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.backends import load_classifier
from harmscope.engines import is_local, resolve_engine, worker_cached, worker_folder
from harmscope.errors import HarmscopeError

__all__ = ["DEFAULT_PARTITION_SIZE", "plan_partitions", "predict_dataset", "write_partitions"]

DEFAULT_PARTITION_SIZE = 4096  # texts per task; a multiple of 64 keeps encoder batches aligned
MODEL_MARKER = "model.json"  # a saved classifier folder holds this file


def _texts(texts_or_frame: Any) -> list[str]:
    if isinstance(texts_or_frame, pd.DataFrame):
        if "text" not in texts_or_frame.columns:
            raise HarmscopeError("predict_dataset: the frame has no 'text' column")
        texts_or_frame = texts_or_frame["text"]
    if isinstance(texts_or_frame, str):
        raise HarmscopeError("predict_dataset: give a list of texts, not one string")
    return [str(t) for t in texts_or_frame]


def plan_partitions(texts: Sequence[str], partition_size: int = DEFAULT_PARTITION_SIZE,
                    align: int = 64) -> tuple[list[list[str]], np.ndarray]:
    """Cut ``texts`` into partitions for remote scoring: ``(partitions, inverse)``.

    Equal texts are scored once; unique texts (first-appearance order) are ordered by length
    (stable), as the neural backends batch them, and cut into partitions whose size is a multiple
    of ``align`` (the encoder batch size), so each worker sees exactly the batches a local run
    would: results then match the local engine. ``concat(results)[inverse]`` restores input order.
    """
    if partition_size < 1:
        raise HarmscopeError(f"partition_size must be >= 1, got {partition_size}")
    codes, uniq = pd.factorize(pd.Series(list(texts), dtype=object), sort=False)
    uniq = list(uniq)
    order = np.argsort(np.fromiter((len(t) for t in uniq), dtype=np.int64, count=len(uniq)), kind="stable")
    size = max(align, (partition_size // align) * align) if align else partition_size
    parts = [[uniq[i] for i in order[s:s + size]] for s in range(0, len(uniq), size)]
    pos = np.empty(len(uniq), dtype=np.int64)
    pos[order] = np.arange(len(uniq))
    return parts, pos[codes]


# ---------------------------------------------------------------------- worker side
def _worker_model(source: tuple[str, str, Any]) -> Any:
    """The classifier for ``source``, loaded once per worker process.

    ``("object", _, estimator)``: a fitted estimator (arrives once per worker inside the task
    function); ``("spec", key, spec)``: a spec resolved on the worker (``detoxify:...``);
    ``("path" | "bytes", key, payload)``: a model folder shipped by the engine.
    """
    kind, key, payload = source
    if kind == "object":
        return payload
    if kind == "spec":
        return worker_cached(key, lambda: load_classifier(payload))
    return worker_cached(key, lambda: load_classifier(str(worker_folder(source))))


def _predict_part(texts: list[str], source: tuple[str, str, Any]) -> np.ndarray:
    return np.asarray(_worker_model(source).predict_proba(texts))


# ---------------------------------------------------------------------- client side
def _model_source(eng: Any, classifier: Any) -> tuple[str, str, Any]:
    if not isinstance(classifier, str | Path):
        return "object", "", classifier
    spec = str(classifier)
    if spec.startswith("detoxify:") and len(spec) > len("detoxify:"):  # paths as the client sees them
        spec = "detoxify:" + "::".join(str(Path(x).expanduser().resolve())
                                       for x in spec[len("detoxify:"):].split("::"))
    p = Path(spec).expanduser()
    if not (p.is_dir() and (p / MODEL_MARKER).is_file()):
        return "spec", f"spec:{spec}", spec  # detoxify:..., a backend name: resolved on the worker
    return eng.ship_folder(p.resolve(), marker=MODEL_MARKER)


def _predict_remote(eng: Any, classifier: Any, texts: list[str], partition_size: int,
                    progress: bool | None) -> np.ndarray:
    if not texts:
        return np.zeros((0, 2))
    # at least ~8 partitions per worker, so the last (longest-text) partitions do not leave
    # workers idle; sizes stay multiples of 64, so encoder batches still match a local run
    per = -(-len(set(texts)) // (8 * max(1, eng.workers)))
    parts, inverse = plan_partitions(texts, min(partition_size, max(64, -(-per // 64) * 64)))
    task = functools.partial(_predict_part, source=_model_source(eng, classifier))
    results = eng.map(task, parts, label="scoring", progress=progress)
    return np.concatenate(results, axis=0)[inverse]


def predict_dataset(classifier_spec: Any, texts_or_frame: Any, *, engine: str | Any | None = None,
                    partition_size: int = DEFAULT_PARTITION_SIZE, out_dir: str | Path | None = None,
                    progress: bool | None = None, spec: str | Path | None = None) -> np.ndarray:
    """``predict_proba`` of a classifier over many texts: an ``(n, 2)`` array in input order.

    ``classifier_spec``: a model folder / ``detoxify:...`` spec (see ``load_classifier``) or a
    fitted estimator. On the local engine this is ``load_classifier(spec).predict_proba(texts)``
    and nothing else. Elsewhere, partitions of texts go to the workers, each worker loads the
    model once (per process cache) and returns scores. Given an estimator plus ``spec`` (the
    folder it was loaded from), remote workers load ``spec`` instead of receiving the estimator.
    With ``out_dir``, Parquet partitions ``part-00000.parquet``... (columns ``row``, ``p0``, ``p1``;
    ``partition_size`` rows each, input order) are written by the client.
    """
    if isinstance(texts_or_frame, str):
        raise HarmscopeError("predict_dataset: give a list of texts, not one string")
    eng, owned = resolve_engine(engine)
    try:
        if is_local(eng):  # exactly the direct call: the input goes to predict_proba untouched
            est = load_classifier(str(classifier_spec)) if isinstance(classifier_spec, str | Path) \
                else classifier_spec
            proba = np.asarray(est.predict_proba(texts_or_frame))
        else:
            remote = spec if spec is not None and not isinstance(classifier_spec, str | Path) else classifier_spec
            proba = _predict_remote(eng, remote, _texts(texts_or_frame), partition_size, progress)
    finally:
        if owned:
            eng.close()
    if out_dir is not None:
        write_partitions(proba, out_dir, partition_size)
    return proba


def write_partitions(proba: np.ndarray, out_dir: str | Path, partition_size: int) -> list[Path]:
    """Write scores as Parquet partitions (``row``, ``p0``, ``p1``) of ``partition_size`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("part-*.parquet"):
        old.unlink()
    proba = np.asarray(proba, dtype=np.float64).reshape(len(proba), -1)
    paths = []
    for i, s in enumerate(range(0, max(len(proba), 1), partition_size)):
        block = proba[s:s + partition_size]
        cols = {"row": pa.array(np.arange(s, s + len(block), dtype=np.int64))}
        for j in range(block.shape[1]):
            cols[f"p{j}"] = pa.array(block[:, j])
        p = d / f"part-{i:05d}.parquet"
        pq.write_table(pa.table(cols), p)
        paths.append(p)
    return paths
