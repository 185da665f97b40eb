"""Dispatch: :func:`load_dataset` (a registered name or a file whose layout is sniffed),
:func:`read_part_b` (``name[:split|heldout]``) and :func:`read_texts` (texts to score)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harmscope.classifiers.datasets.base import (
    DATASETS,
    OnBad,
    check_text,
    finish,
    hash_split,
    read_any,
    require_columns,
    to_fraction,
)
from harmscope.classifiers.datasets.jigsaw import read_civil_comments, read_toxic_comment
from harmscope.errors import InputError


def read_table(path: str | Path, *, text_col: str = "text", label_col: str = "label",
               group_cols: Sequence[str] | None = None, noisy_label_col: str | None = None,
               fmt: str | None = None, threshold: float = 0.5, on_bad: OnBad = "skip",
               group_threshold: float = 0.5) -> pd.DataFrame:
    """Generic CSV / JSONL / Parquet with a column mapping.

    ``label_col`` may hold 0/1, booleans or fractions (binarised at ``threshold``);
    ``noisy_label_col`` likewise (kept as ``noisy_target``/``noisy_label``). ``group_cols``
    are identity columns (fractions or 0/1).
    """
    path = Path(path)
    raw = read_any(path, fmt)
    src = str(path)
    group_cols = list(group_cols or [])
    need = [text_col, label_col, *group_cols] + ([noisy_label_col] if noisy_label_col else [])
    require_columns(raw, need, src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw[text_col], text_col, src, bad),
                        "target": to_fraction(raw[label_col], label_col, src, bad)})
    if noisy_label_col:
        out["noisy_target"] = to_fraction(raw[noisy_label_col], noisy_label_col, src, bad)
    for g in group_cols:
        vals = to_fraction(raw[g].fillna(0), g, src, bad)
        out[g] = vals
    return finish(out, bad, on_bad, src, group_cols, threshold, group_threshold=group_threshold)



def _sniff(path: Path, fmt: str | None) -> str:
    """Guess the layout of a file from its columns."""
    f = (fmt or path.suffix.lstrip(".")).lower()
    if f in ("csv", "tsv", "txt"):
        head = read_any(path, fmt, nrows=0)
    else:
        head = read_any(path, fmt).head(0)
    cols = set(map(str, head.columns))
    if "comment_text" in cols and ({"target", "toxicity"} & cols):
        return "civil"
    if "comment_text" in cols and "toxic" in cols:
        return "wiki"
    if "text" in cols and "toxicity" in cols and "label" not in cols:
        return "civil"
    return "table"



def _heldout_names() -> list[str]:
    return [e.name for e in DATASETS if e.meta.get("heldout")]


def _load_named(name: str, rest: str, *, threshold: float, on_bad: OnBad, seed: int) -> pd.DataFrame:
    """Registered dataset ``name`` with the part of the spec after ``name:`` (split, heldout, seed)."""
    entry = DATASETS.get(name)
    meta = entry.meta
    split, _, extra = rest.partition(":")
    reader = entry.obj
    takes = inspect.signature(reader).parameters
    kw: dict[str, Any] = {}
    if "on_bad" in takes:
        kw["on_bad"] = on_bad
    if "threshold" in takes:
        kw["threshold"] = threshold
    splits = tuple(meta.get("splits", ()))
    spec = f"{name}:{rest}" if rest else name
    if meta.get("seeded"):
        if extra:
            try:
                seed = int(extra)
            except ValueError:
                raise InputError(f"{spec}: seed {extra!r} is not a whole number") from None
        return reader(split or "all", seed=seed, **kw)
    if split == "heldout" and meta.get("heldout"):  # the rows the shipped default classifier never trained on
        full = reader(split="all", **kw) if "all" in splits else reader(**kw)
        attrs = dict(full.attrs)
        df = full.loc[hash_split(full["text"].astype(str).tolist()) == "test"].reset_index(drop=True)
        df.attrs.update(attrs)
    elif split:
        if not splits:
            raise InputError(f"{spec}: {name} has no splits")
        if split not in splits:
            raise InputError(f"{spec}: split must be one of {', '.join(splits)}")
        df = reader(split=split, **kw)
    else:
        df = reader(**kw)
    if meta.get("heldout"):
        df.attrs["dataset"] = spec
    return df


def read_part_b(spec: str, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """``name`` or ``name:split`` for the human-labelled sets of part B of the data README.

    ``name:heldout`` (any set) keeps the rows the shipped default classifier never saw: the 15%
    hash-chosen test part of :func:`~harmscope.classifiers.datasets.base.hash_split`."""
    name, _, rest = spec.partition(":")
    if name not in _heldout_names():
        raise InputError(f"{spec}: unknown dataset (part-B names: {', '.join(_heldout_names())})")
    return _load_named(name, rest, threshold=0.5, on_bad=on_bad, seed=0)


def load_dataset(spec: str | Path, *, text_col: str | None = None, label_col: str | None = None,
                 group_cols: Sequence[str] | None = None, noisy_label_col: str | None = None,
                 fmt: str | None = None, threshold: float = 0.5, on_bad: OnBad = "skip",
                 seed: int = 0) -> pd.DataFrame:
    """A registered dataset name (see :data:`DATASETS`; ``name:split``, ``name:heldout``,
    ``corpus:PART[:SEED]``) or a file; the layout of a file is sniffed unless a column mapping is
    given (Civil Comments / HF civil_comments / Toxic Comment / generic)."""
    s = str(spec)
    name, _, rest = s.partition(":")
    if name in DATASETS:
        meta = DATASETS.get(name).meta
        # a plain name always means the dataset; a name:part spec yields to a file of that name
        if meta.get("seeded") or (not rest and not meta.get("heldout")) or not Path(s).exists():
            return _load_named(name, rest, threshold=threshold, on_bad=on_bad, seed=seed)
    path = Path(s)
    if path.is_dir() and any(path.glob("hate_*.txt")):
        return DATASETS.get("toxigen").obj(path, on_bad=on_bad)
    if not path.exists():
        plain = [e.name for e in DATASETS if not e.meta.get("heldout") and not e.meta.get("seeded")]
        known = ", ".join([*plain, *_heldout_names()]) + ", corpus:clean|noisy|eval"
        raise InputError(f"{s}: no such file or dataset name (names: {known})")
    if text_col or label_col or group_cols or noisy_label_col:
        return read_table(path, text_col=text_col or "text", label_col=label_col or "label",
                          group_cols=group_cols, noisy_label_col=noisy_label_col, fmt=fmt,
                          threshold=threshold, on_bad=on_bad)
    kind = _sniff(path, fmt)
    if kind == "civil":
        return read_civil_comments(path, threshold=threshold, on_bad=on_bad, fmt=fmt)
    if kind == "wiki":
        return read_toxic_comment(path, on_bad=on_bad, fmt=fmt)
    return read_table(path, fmt=fmt, threshold=threshold, on_bad=on_bad)



def read_texts(spec: str | Path, *, text_col: str | None = None, fmt: str | None = None,
               on_bad: OnBad = "skip") -> pd.DataFrame:
    """Texts to score, labelled or not: a dataset name or a file with a text column (``text_col``,
    else ``text``/``comment_text``/``comment``/``tweet``/``phrase``/``Text``). Other columns are
    kept; bad texts are skipped or rejected per ``on_bad``."""
    s = str(spec)
    path = Path(s)
    if not path.is_file():
        return load_dataset(s, on_bad=on_bad)
    raw = read_any(path, fmt)
    src = str(path)
    if text_col is None:
        text_col = next((c for c in ("text", "comment_text", "comment", "tweet", "phrase", "Text")
                         if c in raw.columns), "text")
    require_columns(raw, [text_col], src)
    bad: dict[int, str] = {}
    texts = check_text(raw[text_col], text_col, src, bad)
    problems = [bad[i] for i in sorted(bad)]
    if problems and on_bad == "error":
        more = f" (and {len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise InputError(problems[0] + more)
    out = raw.copy()
    out["text"] = texts
    if problems:
        warnings.warn(f"{src}: skipped {len(problems)} bad rows (first: {problems[0]})", stacklevel=2)
        out = out.drop(index=out.index[sorted(bad)])
    out = out.reset_index(drop=True)
    out.attrs.update({"source": src, "group_cols": [], "skipped": problems})
    return out
