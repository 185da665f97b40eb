"""What every dataset reader shares: the :data:`DATASETS` registry, strict file readers (CSV /
TSV / JSONL / Parquet), per-row checks that name the file, row and column, :func:`finish` (the
standard frame), the shipped identity map and the hash split of the default classifier.

Every reader returns a DataFrame with ``text`` (str), ``target`` (float in [0, 1]), ``label``
(int 0/1, ``target >= threshold``), optionally ``noisy_label`` (and ``noisy_target``), and identity
columns (floats in [0, 1]) listed in ``df.attrs["group_cols"]``. ``df.attrs`` also carries
``source`` (file or dataset name), ``skipped`` (list of problem lines for rows that were dropped)
and, where known, ``subtype_cols`` (Jigsaw toxicity subtypes) and ``group_axes`` (group -> axis).

Bad input raises :class:`~harmscope.errors.InputError` with one line naming the file, the row
(1-based data row, header excluded; ``line`` for JSONL) and the column.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import warnings
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from harmscope.errors import InputError
from harmscope.paths import data_dir
from harmscope.registry import Registry
from harmscope.safeio import jsonl_records

OnBad = Literal["skip", "error"]

#: Named dataset readers. A reader is a function registered with
#: ``@DATASETS.register(name=..., version=..., description=..., **meta)``; ``meta`` may declare
#: ``splits`` (``name:split`` accepted), ``heldout=True`` (``name:heldout``: the rows the shipped
#: default classifier never trained on) and ``seeded=True`` (``name:split:SEED``).
DATASETS = Registry("dataset")

_BAD_CHAR = "\ufffd"


# ---------------------------------------------------------------- low-level helpers
def _valid_utf8(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            dec = codecs.getincrementaldecoder("utf-8")()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                dec.decode(chunk)
            dec.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def max_field_bytes() -> int:
    """The longest line/field accepted in a text file (``$HARMSCOPE_MAX_FIELD_MB``, default 8 MB)."""
    try:
        return int(float(os.environ.get("HARMSCOPE_MAX_FIELD_MB", "8")) * 1024 * 1024)
    except ValueError:
        return 8 * 1024 * 1024


def _check_field_size(path: Path) -> None:
    """Refuse a file with a line longer than :func:`max_field_bytes` (a huge field makes the CSV
    parser use ~200x its size in memory); streams the file, never loads it whole."""
    cap = max_field_bytes()
    run, line = 0, 1
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            parts = chunk.split(b"\n")
            for i, part in enumerate(parts):
                run += len(part)
                if run > cap:
                    raise InputError(f"{path}: line {line} holds a field over {cap / 1048576:g} MB; "
                                     "not a text dataset? (raise HARMSCOPE_MAX_FIELD_MB if intended)")
                if i < len(parts) - 1:
                    run, line = 0, line + 1


def read_csv(path: Path, **kw: Any) -> pd.DataFrame:
    """Read a CSV; in a file that is not valid UTF-8, undecodable bytes become U+FFFD and the
    rows holding them are reported as bad (``attrs['bad_utf8']``)."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    _check_field_size(path)
    ok = _valid_utf8(path)
    try:
        df = pd.read_csv(path, encoding="utf-8", encoding_errors="strict" if ok else "replace", **kw)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: cannot parse CSV: {msg}") from None
    df.attrs["bad_utf8"] = not ok
    return df


def read_jsonl(path: Path) -> pd.DataFrame:
    """A JSONL file as a frame (one object per line; a bad line is one error naming it)."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    rows: list[dict[str, Any]] = []
    data = path.read_bytes()
    try:
        raw = data.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        raw, ok = data.decode("utf-8", errors="replace"), False
    rows.extend(obj for _, obj in jsonl_records(path, raw))
    if not rows:
        raise InputError(f"{path}: file is empty")
    df = pd.DataFrame(rows)
    df.attrs["bad_utf8"] = not ok
    return df


def read_any(path: str | Path, fmt: str | None = None, **csv_kw: Any) -> pd.DataFrame:
    """Read CSV / TSV / JSONL / JSON / Parquet by extension (or ``fmt``)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("csv", "txt"):
        return read_csv(path, **csv_kw)
    if fmt == "tsv":
        return read_csv(path, sep="\t", **csv_kw)
    if fmt in ("jsonl", "ndjson", "json"):
        return read_jsonl(path)
    if fmt in ("parquet", "pq"):
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types
            raise InputError(f"{path}: cannot read Parquet: {str(exc).splitlines()[0]}") from None
    raise InputError(f"{path}: unknown format {fmt!r} (use csv, tsv, jsonl or parquet)")


def require_columns(df: pd.DataFrame, cols: Iterable[str], source: str) -> None:
    for c in cols:
        if c not in df.columns:
            have = ", ".join(map(str, df.columns[:12]))
            raise InputError(f"{source}: missing column {c!r} (columns: {have})")


def _row_word(source: str) -> str:
    return "line" if source.endswith((".jsonl", ".ndjson", ".json")) else "row"


def to_fraction(values: pd.Series, col: str, source: str, bad: dict[int, str]) -> pd.Series:
    """Numbers / booleans / 'true'/'false' -> float; NaN or out of [0,1] rows go to ``bad``."""
    if values.dtype == bool:
        return values.astype(float)
    if values.dtype == object:
        low = values.astype(str).str.strip().str.lower()
        mapped = low.map({"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0})
        num = pd.to_numeric(values.where(mapped.isna()), errors="coerce")
        out = mapped.fillna(num)
    else:
        out = pd.to_numeric(values, errors="coerce").astype(float)
    word = _row_word(source)
    for i in np.flatnonzero(out.isna().to_numpy() | (out < 0).to_numpy() | (out > 1).to_numpy()):
        bad.setdefault(int(i), f"{source}: {word} {i + 1}: column {col!r}: "
                               f"value {values.iloc[i]!r} is not a number in [0, 1]")
    return out


def check_text(texts: pd.Series, col: str, source: str, bad: dict[int, str],
                bad_utf8: bool | None = None) -> pd.Series:
    """Flag missing, empty and (in a file that is not valid UTF-8) undecodable texts."""
    word = _row_word(source)
    if bad_utf8 is None:
        bad_utf8 = bool(texts.attrs.get("bad_utf8", False))
    out = texts.astype(object)
    for i, t in enumerate(out.tolist()):
        if t is None or (isinstance(t, float) and np.isnan(t)):
            bad.setdefault(i, f"{source}: {word} {i + 1}: column {col!r}: text is missing")
        elif not isinstance(t, str):
            out.iat[i] = str(t)
        elif not t.strip():
            bad.setdefault(i, f"{source}: {word} {i + 1}: column {col!r}: text is empty")
        elif bad_utf8 and _BAD_CHAR in t:
            bad.setdefault(i, f"{source}: {word} {i + 1}: column {col!r}: text is not valid UTF-8")
    return out


def finish(df: pd.DataFrame, bad: dict[int, str], on_bad: OnBad, source: str,
            group_cols: Sequence[str], threshold: float, **attrs: Any) -> pd.DataFrame:
    """Drop or reject bad rows, binarise, set attrs."""
    if on_bad not in ("skip", "error"):
        raise InputError(f"on_bad must be 'skip' or 'error', not {on_bad!r}")
    problems = [bad[i] for i in sorted(bad)]
    if problems and on_bad == "error":
        extra = f" (and {len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise InputError(problems[0] + extra)
    if problems:
        keep = np.ones(len(df), dtype=bool)
        keep[sorted(bad)] = False
        df = df.loc[keep]
        warnings.warn(f"{source}: skipped {len(problems)} bad rows (first: {problems[0]})", stacklevel=3)
    if len(df) == 0:
        raise InputError(f"{source}: no usable rows")
    df = df.reset_index(drop=True).copy()
    df["text"] = df["text"].astype(str)
    df["target"] = df["target"].astype(float)
    df["label"] = (df["target"] >= threshold).astype(int)
    if "noisy_target" in df.columns and "noisy_label" not in df.columns:
        df["noisy_label"] = (df["noisy_target"] >= threshold).astype(int)
    for g in group_cols:
        df[g] = pd.to_numeric(df[g], errors="coerce").fillna(0.0).clip(0, 1).astype(float)
    df.attrs.update({"source": source, "group_cols": list(group_cols), "skipped": problems,
                     "threshold": threshold})
    df.attrs.update(attrs)
    return df



def shared_path(*parts: str) -> Path:
    p = data_dir().joinpath(*parts)
    if not p.exists():
        raise InputError(f"{p}: shared dataset not found (set HARMSCOPE_DATA)")
    return p



def read_tsv_str(path: Path) -> pd.DataFrame:
    """A TSV read as strings, quotes taken literally (OLID, HASOC)."""
    return read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)



def identity_map(dataset: str | None = None) -> pd.DataFrame:
    """The shipped target -> (group, axis) mapping table (``classifiers/data/identity_map.csv``).

    One row per (dataset, source_name); an empty ``group`` means "no identity group" (e.g.
    HateXplain's ``None``/``Other``). With ``dataset`` only that set's rows."""
    path = files("harmscope.classifiers").joinpath("data", "identity_map.csv")
    table = pd.read_csv(str(path), dtype=str, keep_default_na=False)
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    return table.reset_index(drop=True)


def group_map(dataset: str) -> dict[str, tuple[str, str]]:
    t = identity_map(dataset)
    return {r.source_name: (r.group, r.axis) for r in t.itertuples() if r.group}


def axes_of(dataset: str, groups: Iterable[str]) -> dict[str, str]:
    m = {g: a for g, a in group_map(dataset).values()}
    return {g: m.get(g, "other") for g in groups}





def hash_split(texts: list[str], salt: str = "harmscope-default") -> np.ndarray:
    """'train' / 'cal' / 'test' (70/15/15) from a hash of each text: stable across runs. The
    split of the shipped default classifier (its ``test`` part is ``name:heldout``)."""
    out = []
    for t in texts:
        h = int.from_bytes(hashlib.blake2b((salt + t).encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                           "big") % 100
        out.append("train" if h < 70 else "cal" if h < 85 else "test")
    return np.array(out)
