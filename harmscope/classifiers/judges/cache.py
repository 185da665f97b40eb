"""Judging with the store's verdict cache: a verdict is computed once per judge version and reply.

The cache key is (judge id, full version, a hash of what the verdict depends on, rule id);
``store`` is any object with ``cached_judgments(judge, version, keys)`` and
``cache_judgments(rows)`` (:class:`harmscope.benchmarks.runs.store.Store`). Used by scoring
(``harmscope score``) and by ``harmscope judges compare``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from harmscope.classifiers.judges.base import REPLY_RULE, JudgeItem
from harmscope.types import Judgment

CHUNK = 2048


@contextlib.contextmanager
def pinned_version(judge: Any, version: str) -> Iterator[None]:
    """Within the block, :meth:`Judge.make` stamps ``version`` instead of recomputing
    ``full_version`` per judgment (for a trained head that hashes its weights each time: about
    3 ms per reply). ``version`` must be ``judge.full_version`` computed just before."""
    d = getattr(judge, "__dict__", None)
    if d is None:
        yield
        return
    prev = d.get("_pinned_version")
    d["_pinned_version"] = version
    try:
        yield
    finally:
        if prev is None:
            d.pop("_pinned_version", None)
        else:
            d["_pinned_version"] = prev


def _cache_put_many(store: Any, rows: list[tuple[str, str, str, str, Judgment]]) -> None:
    store.cache_judgments(rows)


def _cache_get_many(store: Any, judge: str, version: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Judgment]:
    """Cached judgments for (reply_hash, rule_id) keys, in bulk."""
    return store.cached_judgments(judge, version, keys)


def judge_items(store: Any, judge: Any, items: list[JudgeItem], *, use_cache: bool = True) -> list[Judgment]:
    """Judge ``items`` with ``judge``, re-using cached verdicts; new verdicts are cached."""
    if not items:
        return []
    version = judge.full_version
    keys = [(judge.cache_key(it), it.rule.id if (judge.per_rule and it.rule is not None) else REPLY_RULE)
            for it in items]
    cached = _cache_get_many(store, judge.id, version, keys) if use_cache else {}
    out: list[Judgment | None] = [None] * len(items)
    todo = []
    for i, (it, k) in enumerate(zip(items, keys, strict=True)):
        c = cached.get(k)
        if c is not None:
            out[i] = c.model_copy(update={"probe_id": it.probe.id, "sample": it.response.sample})
        else:
            todo.append(i)
    for start in range(0, len(todo), CHUNK):
        idx = todo[start:start + CHUNK]
        with pinned_version(judge, version):
            res = judge.judge([items[i] for i in idx])
        rows = []
        for i, j in zip(idx, res, strict=True):
            out[i] = j
            rows.append((judge.id, version, keys[i][0], keys[i][1], j))
        _cache_put_many(store, rows)
    return [j for j in out if j is not None]
