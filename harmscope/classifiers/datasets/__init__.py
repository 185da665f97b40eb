"""Dataset readers that return the standard classifier frame.

Every reader returns a DataFrame with ``text`` (str), ``target`` (float in [0, 1]), ``label``
(int 0/1, ``target >= threshold``), optionally ``noisy_label`` (and ``noisy_target``), and identity
columns (floats in [0, 1]) listed in ``df.attrs["group_cols"]``. ``df.attrs`` also carries
``source`` (file or dataset name), ``skipped`` (list of problem lines for rows that were dropped)
and, where known, ``subtype_cols`` (Jigsaw toxicity subtypes) and ``group_axes`` (group -> axis).

Bad input raises :class:`~harmscope.errors.InputError` with one line naming the file, the row
(1-based data row, header excluded; ``line`` for JSONL) and the column.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from harmscope.errors import InputError
from harmscope.paths import data_dir

OnBad = Literal["skip", "error"]

#: The 24 identity columns of the Jigsaw Unintended Bias / Civil Comments release.
CIVIL_IDENTITY_COLS: tuple[str, ...] = (
    "male", "female", "transgender", "other_gender",
    "heterosexual", "homosexual_gay_or_lesbian", "bisexual", "other_sexual_orientation",
    "christian", "jewish", "muslim", "hindu", "buddhist", "atheist", "other_religion",
    "black", "white", "asian", "latino", "other_race_or_ethnicity",
    "physical_disability", "intellectual_or_learning_disability", "psychiatric_or_mental_illness",
    "other_disability",
)
#: Toxicity subtype columns of Civil Comments (kept as extra targets when present).
CIVIL_SUBTYPE_COLS: tuple[str, ...] = (
    "severe_toxicity", "obscene", "threat", "insult", "identity_attack", "sexual_explicit",
)
#: Jigsaw Toxic Comment (Wikipedia) label columns, and their Civil Comments names.
WIKI_LABEL_COLS: dict[str, str] = {
    "toxic": "toxicity", "severe_toxic": "severe_toxicity", "obscene": "obscene",
    "threat": "threat", "insult": "insult", "identity_hate": "identity_attack",
}
ETHOS_GROUP_COLS: tuple[str, ...] = (
    "gender", "race", "national_origin", "disability", "religion", "sexual_orientation",
)
TOXIGEN_GROUP_AXES: dict[str, str] = {
    "asian": "race", "black": "race", "jewish": "religion", "latino": "race",
    "native_american": "race", "chinese": "nationality", "immigrant": "nationality",
    "mexican": "nationality", "middle_east": "nationality", "muslim": "religion",
    "bisexual": "sexual_orientation", "lgbtq": "sexual_orientation", "trans": "gender",
    "women": "gender", "mental_disability": "disability", "physical_disability": "disability",
}

_BAD_CHAR = "\ufffd"


# ---------------------------------------------------------------- low-level helpers
def _valid_utf8(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            dec = __import__("codecs").getincrementaldecoder("utf-8")()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                dec.decode(chunk)
            dec.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def max_field_bytes() -> int:
    """The longest line/field accepted in a text file (``$HARMSCOPE_MAX_FIELD_MB``, default 8 MB)."""
    import os

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


def _read_csv(path: Path, **kw: Any) -> pd.DataFrame:
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


def jsonl_records(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of JSONL ``text`` read from ``path``;
    a line that is not a JSON object raises ``InputError`` naming the file and line."""
    out: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {i}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise InputError(f"{path}: line {i}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {i}: expected a JSON object")
        out.append((i, obj))
    return out


def _read_jsonl(path: Path) -> pd.DataFrame:
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
        return _read_csv(path, **csv_kw)
    if fmt == "tsv":
        return _read_csv(path, sep="\t", **csv_kw)
    if fmt in ("jsonl", "ndjson", "json"):
        return _read_jsonl(path)
    if fmt in ("parquet", "pq"):
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types
            raise InputError(f"{path}: cannot read Parquet: {str(exc).splitlines()[0]}") from None
    raise InputError(f"{path}: unknown format {fmt!r} (use csv, tsv, jsonl or parquet)")


def _require(df: pd.DataFrame, cols: Iterable[str], source: str) -> None:
    for c in cols:
        if c not in df.columns:
            have = ", ".join(map(str, df.columns[:12]))
            raise InputError(f"{source}: missing column {c!r} (columns: {have})")


def _row_word(source: str) -> str:
    return "line" if source.endswith((".jsonl", ".ndjson", ".json")) else "row"


def _to_fraction(values: pd.Series, col: str, source: str, bad: dict[int, str]) -> pd.Series:
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


def _check_text(texts: pd.Series, col: str, source: str, bad: dict[int, str],
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


def _finish(df: pd.DataFrame, bad: dict[int, str], on_bad: OnBad, source: str,
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


# ---------------------------------------------------------------- Jigsaw / Civil Comments
def read_civil_comments(path: str | Path, *, threshold: float = 0.5, on_bad: OnBad = "skip",
                        fmt: str | None = None) -> pd.DataFrame:
    """Jigsaw Unintended Bias / Civil Comments, Kaggle CSV or Hugging Face layout.

    Kaggle: ``comment_text`` and ``target`` (or ``toxicity``); HF: ``text`` and ``toxicity``.
    Identity columns (any of the 24 present; NaN = not annotated -> 0) and the subtype columns
    ``severe_toxicity, obscene, threat, insult, identity_attack, sexual_explicit`` are kept.
    """
    path = Path(path)
    raw = read_any(path, fmt)
    src = str(path)
    text_col = "comment_text" if "comment_text" in raw.columns else "text"
    target_col = "target" if "target" in raw.columns else "toxicity"
    _require(raw, [text_col, target_col], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw[text_col], text_col, src, bad),
                        "target": _to_fraction(raw[target_col], target_col, src, bad)})
    subtypes = [c for c in CIVIL_SUBTYPE_COLS if c in raw.columns]
    for c in subtypes:
        out[c] = pd.to_numeric(raw[c], errors="coerce").fillna(0.0).clip(0, 1)
    groups = [c for c in CIVIL_IDENTITY_COLS if c in raw.columns]
    for c in groups:
        out[c] = pd.to_numeric(raw[c], errors="coerce")
    out["group_annotated"] = out[groups].notna().any(axis=1) if groups else False
    groups_bin = groups
    df = _finish(out, bad, on_bad, src, groups_bin, threshold, subtype_cols=subtypes,
                 group_threshold=0.5)
    return df


def read_toxic_comment(path: str | Path, *, on_bad: OnBad = "skip", fmt: str | None = None) -> pd.DataFrame:
    """Jigsaw Toxic Comment Classification (Wikipedia): ``comment_text``, ``toxic`` + subtypes.

    Subtype columns are renamed to the Civil Comments names (``severe_toxic`` ->
    ``severe_toxicity``, ``identity_hate`` -> ``identity_attack``). No identity columns.
    """
    path = Path(path)
    raw = read_any(path, fmt)
    src = str(path)
    _require(raw, ["comment_text", "toxic"], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw["comment_text"], "comment_text", src, bad),
                        "target": _to_fraction(raw["toxic"], "toxic", src, bad)})
    subtypes = []
    for c, new in WIKI_LABEL_COLS.items():
        if c != "toxic" and c in raw.columns:
            out[new] = _to_fraction(raw[c], c, src, bad)
            subtypes.append(new)
    return _finish(out, bad, on_bad, src, [], 0.5, subtype_cols=subtypes)


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
    _require(raw, need, src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw[text_col], text_col, src, bad),
                        "target": _to_fraction(raw[label_col], label_col, src, bad)})
    if noisy_label_col:
        out["noisy_target"] = _to_fraction(raw[noisy_label_col], noisy_label_col, src, bad)
    for g in group_cols:
        vals = _to_fraction(raw[g].fillna(0), g, src, bad)
        out[g] = vals
    return _finish(out, bad, on_bad, src, group_cols, threshold, group_threshold=group_threshold)


# ---------------------------------------------------------------- shared-data readers
def _shared(*parts: str) -> Path:
    p = data_dir().joinpath(*parts)
    if not p.exists():
        raise InputError(f"{p}: shared dataset not found (set HARMSCOPE_DATA)")
    return p


def read_davidson(path: str | Path | None = None, *, threshold: float = 0.5,
                  on_bad: OnBad = "skip") -> pd.DataFrame:
    """Davidson et al. (2017): class 0 (hate) / 1 (offensive) -> toxic, 2 (neither) -> not.

    ``target`` is the soft vote fraction ``(hate_speech + offensive_language) / count``;
    ``label`` follows the majority ``class`` column. No identity columns.
    """
    path = Path(path) if path else _shared("davidson_hate_offensive", "labeled_data.csv")
    raw = _read_csv(path)
    src = str(path)
    _require(raw, ["tweet", "class", "count", "hate_speech", "offensive_language"], src)
    bad: dict[int, str] = {}
    text = _check_text(raw["tweet"], "tweet", src, bad)
    cls = pd.to_numeric(raw["class"], errors="coerce")
    for i in np.flatnonzero(~cls.isin([0, 1, 2]).to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'class': value {raw['class'].iloc[i]!r} "
                               "is not 0, 1 or 2")
    count = pd.to_numeric(raw["count"], errors="coerce")
    votes = pd.to_numeric(raw["hate_speech"], errors="coerce") + pd.to_numeric(
        raw["offensive_language"], errors="coerce")
    frac = (votes / count.where(count > 0)).clip(0, 1)
    out = pd.DataFrame({"text": text, "target": frac.fillna((cls < 2).astype(float))})
    df = _finish(out, bad, on_bad, src, [], threshold)
    keep = [i for i in range(len(raw)) if i not in bad]
    df["label"] = (cls.iloc[keep].to_numpy() < 2).astype(int)
    df["hate"] = (cls.iloc[keep].to_numpy() == 0).astype(int)
    return df


def read_ethos(path: str | Path | None = None, *, multi_path: str | Path | None = None,
               threshold: float = 0.5, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ETHOS binary (``comment;isHate``), with the multi-label file's target-group fractions
    joined on the comment text as identity columns (0 for comments not in that file)."""
    path = Path(path) if path else _shared("ethos", "Ethos_Dataset_Binary.csv")
    multi = Path(multi_path) if multi_path else path.with_name("Ethos_Dataset_Multi_Label.csv")
    raw = _read_csv(path, sep=";")
    src = str(path)
    _require(raw, ["comment", "isHate"], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw["comment"], "comment", src, bad),
                        "target": _to_fraction(raw["isHate"], "isHate", src, bad)})
    groups: list[str] = []
    if multi.is_file():
        m = read_ethos_multi(multi, on_bad="skip")
        groups = list(m.attrs["group_cols"])
        lookup = m.drop_duplicates("text").set_index("text")[groups]
        joined = lookup.reindex(out["text"].astype(str).to_numpy())
        for g in groups:
            out[g] = joined[g].fillna(0.0).to_numpy()
    return _finish(out, bad, on_bad, src, groups, threshold,
                   group_axes={g: g for g in groups})


def read_ethos_multi(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ETHOS multi-label: the 433 hateful comments (label 1); group fractions as identity
    columns; ``violence`` and ``directed_vs_generalized`` kept as extra columns."""
    path = Path(path) if path else _shared("ethos", "Ethos_Dataset_Multi_Label.csv")
    raw = _read_csv(path, sep=";")
    src = str(path)
    _require(raw, ["comment", "violence", "directed_vs_generalized", *ETHOS_GROUP_COLS], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw["comment"], "comment", src, bad), "target": 1.0})
    for c in ("violence", "directed_vs_generalized", *ETHOS_GROUP_COLS):
        out[c] = _to_fraction(raw[c], c, src, bad)
    return _finish(out, bad, on_bad, src, list(ETHOS_GROUP_COLS), 0.5,
                   group_axes={g: g for g in ETHOS_GROUP_COLS})


# ---- identity-term matching for the templated Conversation AI sets
def identity_terms(words_csv: str | Path | None = None) -> dict[str, str]:
    """Identity term -> subtype (axis) from the madlibber ``words.csv`` (type == identity)."""
    path = Path(words_csv) if words_csv else _shared(
        "conversationai_unintended_bias", "madlibber_input_en_us", "words.csv")
    raw = _read_csv(path, dtype=str)
    _require(raw, ["type", "subtype", "word"], str(path))
    ids = raw[raw["type"] == "identity"]
    return {str(w).strip().lower(): str(s) for w, s in zip(ids["word"], ids["subtype"], strict=True)}


def _col_name(term: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", term.lower()).strip("_")


def match_identity_terms(texts: Sequence[str], terms: Iterable[str]) -> pd.DataFrame:
    """0/1 column per term (named with non-alphanumerics as ``_``): whole-word, case-insensitive,
    longest term first, so ``african american`` does not also count as ``american``."""
    terms = sorted({t.lower() for t in terms}, key=lambda t: (-len(t), t))
    pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b", re.IGNORECASE)
    cols = {_col_name(t): np.zeros(len(texts), dtype=float) for t in terms}
    for i, text in enumerate(texts):
        for m in pattern.finditer(str(text)):
            cols[_col_name(m.group(1))][i] = 1.0
    return pd.DataFrame(cols)


def _with_terms(out: pd.DataFrame, bad: dict[int, str], on_bad: OnBad, src: str,
                terms: dict[str, str], threshold: float = 0.5) -> pd.DataFrame:
    m = match_identity_terms(out["text"].astype(str).tolist(), terms)
    keep = [c for c in m.columns if m[c].sum() > 0]
    out = pd.concat([out.reset_index(drop=True), m[keep]], axis=1)
    axes = {_col_name(t): a for t, a in terms.items() if _col_name(t) in keep}
    return _finish(out, bad, on_bad, src, keep, threshold, group_axes=axes)


def read_madlibs(path: str | Path | None = None, *, on_bad: OnBad = "skip",
                 terms_path: str | Path | None = None) -> pd.DataFrame:
    """``bias_madlibs_77k.csv`` (Text, Label BAD/NOT_BAD, Template); one identity column per
    term of ``adjectives_people.txt`` found in the sentence (axes from ``words.csv``)."""
    base = ("conversationai_unintended_bias",)
    path = Path(path) if path else _shared(*base, "bias_madlibs_77k.csv")
    raw = _read_csv(path)
    src = str(path)
    _require(raw, ["Text", "Label"], src)
    bad: dict[int, str] = {}
    text = _check_text(raw["Text"], "Text", src, bad)
    lab = raw["Label"].astype(str).str.strip().map({"BAD": 1.0, "NOT_BAD": 0.0})
    for i in np.flatnonzero(lab.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'Label': value {raw['Label'].iloc[i]!r} "
                               "is not BAD or NOT_BAD")
    out = pd.DataFrame({"text": text, "target": lab.fillna(0.0)})
    if "Template" in raw.columns:
        out["template"] = raw["Template"].astype(str)
    tp = Path(terms_path) if terms_path else path.parent / "madlibs_word_lists" / "adjectives_people.txt"
    if tp.is_file():
        words = [w.strip().lower() for w in tp.read_text(encoding="utf-8").splitlines() if w.strip()]
    else:
        words = []
    try:
        axes = identity_terms(path.parent / "madlibber_input_en_us" / "words.csv")
    except InputError:
        axes = {}
    terms = {w: axes.get(w, "identity") for w in (words or list(axes))}
    return _with_terms(out, bad, on_bad, src, terms)


def read_templates(path: str | Path | None = None, *, on_bad: OnBad = "skip",
                   words_csv: str | Path | None = None) -> pd.DataFrame:
    """Sentence-template sets (``template, toxicity (toxic/nontoxic), phrase``), e.g.
    ``en_sentence_templates.csv`` or ``intersectional_madlibs.csv``; identity columns from the
    terms of the madlibber ``words.csv``."""
    base = data_dir() / "conversationai_unintended_bias"
    path = Path(path) if path else _shared("conversationai_unintended_bias", "sentence_templates",
                                           "en_sentence_templates.csv")
    raw = _read_csv(path)
    src = str(path)
    _require(raw, ["toxicity", "phrase"], src)
    bad: dict[int, str] = {}
    text = _check_text(raw["phrase"], "phrase", src, bad)
    lab = raw["toxicity"].astype(str).str.strip().map({"toxic": 1.0, "nontoxic": 0.0})
    for i in np.flatnonzero(lab.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'toxicity': value "
                               f"{raw['toxicity'].iloc[i]!r} is not toxic or nontoxic")
    out = pd.DataFrame({"text": text, "target": lab.fillna(0.0)})
    if "template" in raw.columns:
        out["template"] = raw["template"].astype(str)
    terms = identity_terms(words_csv or base / "madlibber_input_en_us" / "words.csv")
    return _with_terms(out, bad, on_bad, src, terms)


def read_wiki_toxicity(path: str | Path | None = None, *, fuzzed: bool = False,
                       on_bad: OnBad = "skip") -> pd.DataFrame:
    """Conversation AI Wikipedia toxicity test sets (``rev_id, comment, toxic``) with identity
    columns from matching the ``words.csv`` identity terms."""
    name = "wiki_toxicity_fuzzed_testset.csv" if fuzzed else "wiki_toxicity_nonfuzzed_testset.csv"
    path = Path(path) if path else _shared("conversationai_unintended_bias", name)
    raw = _read_csv(path)
    src = str(path)
    _require(raw, ["comment", "toxic"], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw["comment"], "comment", src, bad),
                        "target": _to_fraction(raw["toxic"], "toxic", src, bad)})
    terms = identity_terms(data_dir() / "conversationai_unintended_bias" / "madlibber_input_en_us"
                           / "words.csv")
    return _with_terms(out, bad, on_bad, src, terms)


def split_toxigen_line(line: str) -> list[str]:
    """One ToxiGen prompt line -> its statements (split on the literal ``\\n-``)."""
    parts = line.rstrip("\r\n").split("\\n-")
    out = []
    for p in parts:
        p = p.strip()
        if p.startswith("-"):
            p = p[1:].strip()
        if p:
            out.append(p)
    return out


_TOXIGEN_NAME = re.compile(r"^(hate|neutral)_(.+?)(?:_1k)?\.txt$")


def read_toxigen(folder: str | Path | None = None, *, dedupe: bool = True,
                 on_bad: OnBad = "skip") -> pd.DataFrame:
    """ToxiGen prompt files ``{hate,neutral}_<group>_1k.txt`` as a weakly labelled set.

    Label from the file name (hate -> 1), one identity column per group (from the name).
    ``label`` and ``noisy_label`` are both the file label: these are weak labels. With
    ``dedupe`` each (statement, file) pair is kept once (the 31,000 prompts reuse ~720
    distinct seed statements).
    """
    folder = Path(folder) if folder else _shared("toxigen", "prompts")
    if not folder.is_dir():
        raise InputError(f"{folder}: ToxiGen prompts folder not found")
    files = sorted(p for p in folder.glob("*.txt") if _TOXIGEN_NAME.match(p.name))
    if not files:
        raise InputError(f"{folder}: no hate_<group>_1k.txt / neutral_<group>_1k.txt files")
    rows: list[tuple[str, float, str]] = []
    bad_lines: list[str] = []
    for f in files:
        kind, group = _TOXIGEN_NAME.match(f.name).groups()  # type: ignore[union-attr]
        seen: set[str] = set()
        raw = f.read_bytes()
        for i, line in enumerate(raw.split(b"\n"), start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.append(f"{f}: line {i}: text is not valid UTF-8")
                continue
            for s in split_toxigen_line(text):
                if dedupe and s in seen:
                    continue
                seen.add(s)
                rows.append((s, 1.0 if kind == "hate" else 0.0, group))
    if bad_lines and on_bad == "error":
        raise InputError(bad_lines[0] + (f" (and {len(bad_lines) - 1} more)" if len(bad_lines) > 1 else ""))
    out = pd.DataFrame(rows, columns=["text", "target", "group"])
    groups = sorted(out["group"].unique())
    for g in groups:
        out[g] = (out["group"] == g).astype(float)
    out["noisy_target"] = out["target"]
    df = _finish(out, {}, "skip", str(folder), groups, 0.5,
                 group_axes={g: TOXIGEN_GROUP_AXES.get(g, "other") for g in groups}, weak_labels=True)
    df.attrs["skipped"] = bad_lines
    return df


# ---------------------------------------------------------------- part B: human-labelled sets with targets
def identity_map(dataset: str | None = None) -> pd.DataFrame:
    """The shipped target -> (group, axis) mapping table (``classifiers/data/identity_map.csv``).

    One row per (dataset, source_name); an empty ``group`` means "no identity group" (e.g.
    HateXplain's ``None``/``Other``). With ``dataset`` only that set's rows."""
    from importlib.resources import files

    path = files("harmscope.classifiers").joinpath("data", "identity_map.csv")
    table = pd.read_csv(str(path), dtype=str, keep_default_na=False)
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    return table.reset_index(drop=True)


def _group_map(dataset: str) -> dict[str, tuple[str, str]]:
    t = identity_map(dataset)
    return {r.source_name: (r.group, r.axis) for r in t.itertuples() if r.group}


def _axes_of(dataset: str, groups: Iterable[str]) -> dict[str, str]:
    m = {g: a for g, a in _group_map(dataset).values()}
    return {g: m.get(g, "other") for g in groups}


def _decode_bytes_repr(value: Any) -> str | None:
    """``"b'...'"`` (a Python bytes literal, as ToxiGen's CSV stores text) -> str; plain text as is;
    ``None`` when it cannot be decoded."""
    import ast

    if not isinstance(value, str):
        return None
    s = value.strip()
    if len(s) >= 3 and s[0] == "b" and s[1] in "'\"" and s[-1] == s[1]:
        try:
            raw = ast.literal_eval(s)
            return raw.decode("utf-8") if isinstance(raw, bytes) else None
        except (ValueError, SyntaxError, UnicodeDecodeError):
            return None
    return value


def read_toxigen_annotated(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ToxiGen's 8,960 human-annotated statements (``toxigen_annotated/toxigen.csv``).

    ``target`` = (``toxicity_human`` - 1) / 4 (mean of three 1-5 ratings); ``label`` = mean rating
    above the scale midpoint 3. ``noisy_target``/``noisy_label`` = the label of the prompt that
    generated the text (``hate`` -> 1): the noisy label of the clean+noisy study. One identity
    column per target group (names mapped through :func:`identity_map`); ``prompt_group`` keeps
    the group name; ``toxicity_ai`` (rescaled to [0, 1]) is kept for reference.
    """
    path = Path(path) if path else _shared("toxigen_annotated", "toxigen.csv")
    raw = _read_csv(path, dtype=str, keep_default_na=False)
    src = str(path)
    _require(raw, ["text", "target_group", "toxicity_human", "label"], src)
    bad: dict[int, str] = {}
    texts = pd.Series([_decode_bytes_repr(t) for t in raw["text"]], dtype=object)
    for i in np.flatnonzero(texts.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'text': not a decodable bytes literal")
    texts = texts.fillna("")
    texts.attrs["bad_utf8"] = raw.attrs.get("bad_utf8", False)
    text = _check_text(texts, "text", src, bad)
    human = pd.to_numeric(raw["toxicity_human"], errors="coerce")
    for i in np.flatnonzero((human.isna() | (human < 1) | (human > 5)).to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'toxicity_human': value "
                               f"{raw['toxicity_human'].iloc[i]!r} is not a rating in [1, 5]")
    noisy = raw["label"].str.strip().str.lower().map({"hate": 1.0, "neutral": 0.0})
    for i in np.flatnonzero(noisy.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'label': value {raw['label'].iloc[i]!r} "
                               "is not hate or neutral")
    gmap = _group_map("toxigen-annotated")
    grp = raw["target_group"].str.strip()
    for i in np.flatnonzero(~grp.isin(list(gmap)).to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'target_group': unknown group "
                               f"{raw['target_group'].iloc[i]!r} (known: {', '.join(sorted(gmap))})")
    h = human.fillna(1.0).clip(1, 5)
    out = pd.DataFrame({"text": text, "target": (h - 1.0) / 4.0, "noisy_target": noisy.fillna(0.0),
                        "toxicity_human": h, "prompt_group": grp.map(lambda g: gmap.get(g, ("", ""))[0])})
    ai = pd.to_numeric(raw.get("toxicity_ai"), errors="coerce") if "toxicity_ai" in raw.columns else None
    if ai is not None:
        out["toxicity_ai"] = ((ai - 1.0) / 4.0).clip(0, 1)
    groups = sorted({g for g, _ in gmap.values()})
    for g in groups:
        out[g] = (out["prompt_group"] == g).astype(float)
    df = _finish(out, bad, on_bad, src, groups, 0.5, group_axes=_axes_of("toxigen-annotated", groups),
                 label_rule="mean human rating > 3 of 5")
    df["label"] = (df["toxicity_human"] > 3.0).astype(int)
    return df


def _read_tsv_str(path: Path) -> pd.DataFrame:
    import csv

    return _read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)


def read_olid(folder: str | Path | None = None, *, split: str = "train", on_bad: OnBad = "skip") -> pd.DataFrame:
    """OLID v1.0 (Zampieri et al. 2019): ``split`` = ``train`` (13,240), ``test`` (860) or ``all``.

    ``target``/``label`` = offensive (``OFF``); ``targeted`` = targeted insult or threat (``TIN``,
    0 for untargeted or not offensive); ``target_type`` = ``IND``/``GRP``/``OTH`` (empty if none).
    OLID has no identity groups."""
    folder = Path(folder) if folder else _shared("olid")
    if split not in ("train", "test", "all"):
        raise InputError(f"olid: split must be train, test or all, not {split!r}")
    frames = []
    if split in ("train", "all"):
        p = folder / "olid-training-v1.0.tsv"
        raw = _read_tsv_str(p)
        _require(raw, ["id", "tweet", "subtask_a", "subtask_b", "subtask_c"], str(p))
        frames.append((str(p), raw.assign(split="train")))
    if split in ("test", "all"):
        p = folder / "testset-levela.tsv"
        raw = _read_tsv_str(p)
        _require(raw, ["id", "tweet"], str(p))
        for level, col in (("a", "subtask_a"), ("b", "subtask_b"), ("c", "subtask_c")):
            lp = folder / f"labels-level{level}.csv"
            lab = _read_csv(lp, header=None, names=["id", col], dtype=str, keep_default_na=False)
            raw = raw.merge(lab, on="id", how="left")
        raw = raw.fillna("NULL")
        frames.append((str(folder / "testset-levela.tsv"), raw.assign(split="test")))
    outs = []
    bad_all: dict[int, str] = {}
    offset = 0
    for src, raw in frames:
        bad: dict[int, str] = {}
        text = _check_text(raw["tweet"], "tweet", src, bad)
        a = raw["subtask_a"].str.strip().map({"OFF": 1.0, "NOT": 0.0})
        for i in np.flatnonzero(a.isna().to_numpy()):
            bad.setdefault(int(i), f"{src}: row {i + 1}: column 'subtask_a': value "
                                   f"{raw['subtask_a'].iloc[i]!r} is not OFF or NOT")
        out = pd.DataFrame({"text": text, "target": a.fillna(0.0),
                            "targeted": (raw["subtask_b"].str.strip() == "TIN").astype(float),
                            "target_type": raw["subtask_c"].str.strip().where(
                                raw["subtask_c"].str.strip().isin(["IND", "GRP", "OTH"]), ""),
                            "split": raw["split"].to_numpy()})
        outs.append(out)
        bad_all.update({k + offset: v for k, v in bad.items()})
        offset += len(out)
    out = pd.concat(outs, ignore_index=True)
    return _finish(out, bad_all, on_bad, str(folder), [], 0.5)


def _literal(value: Any) -> Any:
    import ast

    try:
        return ast.literal_eval(value) if isinstance(value, str) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def read_hatexplain(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """HateXplain validation split (1,922 posts, three annotators each).

    Text = ``post_tokens`` joined by spaces. ``target`` = share of annotators who chose hatespeech
    or offensive, ``label`` = the majority; ``hate`` = share who chose hatespeech. Identity
    columns = share of annotators naming each target (mapped through :func:`identity_map`).
    """
    path = Path(path) if path else _shared("hatexplain", "df_val_processed.csv")
    raw = _read_csv(path, dtype=str, keep_default_na=False)
    src = str(path)
    _require(raw, ["id", "annotators", "post_tokens"], src)
    gmap = _group_map("hatexplain")
    known = set(identity_map("hatexplain")["source_name"])
    bad: dict[int, str] = {}
    texts, tox, hate, group_rows = [], [], [], []
    for i, (ann_s, tok_s) in enumerate(zip(raw["annotators"], raw["post_tokens"], strict=True)):
        toks = _literal(tok_s)
        ann = _literal(ann_s)
        texts.append(" ".join(map(str, toks)) if isinstance(toks, list) else "")
        if not isinstance(toks, list):
            bad.setdefault(i, f"{src}: row {i + 1}: column 'post_tokens': not a list of tokens")
        labels = ann.get("label") if isinstance(ann, dict) else None
        targets = ann.get("target") if isinstance(ann, dict) else None
        if not (isinstance(labels, list) and labels and all(v in (0, 1, 2) for v in labels)
                and isinstance(targets, list)):
            bad.setdefault(i, f"{src}: row {i + 1}: column 'annotators': needs 'label' (0/1/2 per "
                              "annotator) and 'target' lists")
            tox.append(0.0)
            hate.append(0.0)
            group_rows.append({})
            continue
        n = len(labels)
        tox.append(sum(v in (0, 2) for v in labels) / n)
        hate.append(sum(v == 0 for v in labels) / n)
        counts: dict[str, float] = {}
        for tl in targets:
            names = {str(t) for t in (tl if isinstance(tl, list) else [tl])}
            for t in names:
                if t not in known:
                    continue
                g = gmap.get(t, ("", ""))[0]
                if g:
                    counts[g] = counts.get(g, 0.0) + 1.0 / n
        group_rows.append(counts)
    out = pd.DataFrame({"text": pd.Series(texts, dtype=object), "target": tox, "hate": hate,
                        "post_id": raw["id"].to_numpy()})
    groups = sorted({g for g, _ in gmap.values()})
    G = pd.DataFrame(group_rows, columns=groups).fillna(0.0).clip(0, 1)
    out = pd.concat([out, G], axis=1)
    out["text"] = _check_text(out["text"], "post_tokens", src, bad)
    used = [g for g in groups if out[g].sum() > 0]
    out = out.drop(columns=[g for g in groups if g not in used])
    return _finish(out, bad, on_bad, src, used, 0.5, group_axes=_axes_of("hatexplain", used),
                   group_threshold=0.5)


GAB_FLAGS: tuple[str, ...] = ("rae", "nat", "gen", "rel", "sxo", "idl", "pol", "mph")


def read_gab(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Gab Hate Corpus dev split (majority labels): ``target``/``label`` = hate (``hd`` assault on
    human dignity or ``cv`` call for violence); ``violence`` = ``cv``, ``vulgar`` = ``vo``. The
    target flags (race, nationality, gender, religion, sexual orientation, ideology, politics,
    health) become axis-level identity columns through :func:`identity_map`."""
    path = Path(path) if path else _shared("gab_hate_corpus", "dev.jsonl")
    raw = _read_jsonl(path)
    src = str(path)
    _require(raw, ["Text", "hd", "cv", "vo", *GAB_FLAGS], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": _check_text(raw["Text"], "Text", src, bad)})
    vals = {c: _to_fraction(raw[c], c, src, bad) for c in ("hd", "cv", "vo", *GAB_FLAGS)}
    out["target"] = np.maximum(vals["hd"].fillna(0), vals["cv"].fillna(0))
    out["violence"] = vals["cv"].fillna(0)
    out["vulgar"] = vals["vo"].fillna(0)
    gmap = _group_map("gab")
    groups: list[str] = []
    for flag in GAB_FLAGS:
        g = gmap[flag][0]
        out[g] = np.maximum(out[g].to_numpy(), vals[flag].fillna(0).to_numpy()) if g in out else vals[flag].fillna(0)
        if g not in groups:
            groups.append(g)
    return _finish(out, bad, on_bad, src, groups, 0.5, group_axes=_axes_of("gab", groups))


MLMA_HOSTILE: tuple[str, ...] = ("offensive", "hateful", "abusive", "disrespectful", "fearful")


def read_mlma(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """MLMA English tweets (5,647): ``sentiment`` is the set of labels the annotators gave
    (``_``-joined, e.g. ``offensive_normal``). ``target`` = share of hostile labels in that set
    (so ``offensive_normal`` -> 0.5, label 1); ``hateful`` = 1 if ``hateful`` is among them.
    ``group`` is mapped to one identity column through :func:`identity_map`; ``target_attribute``
    (origin, gender, ...) is kept."""
    path = Path(path) if path else _shared("mlma", "en_dataset.csv")
    raw = _read_csv(path, dtype=str, keep_default_na=False)
    src = str(path)
    _require(raw, ["tweet", "sentiment", "target", "group"], src)
    bad: dict[int, str] = {}
    text = _check_text(raw["tweet"], "tweet", src, bad)
    tox, hateful = [], []
    for i, s in enumerate(raw["sentiment"]):
        labs = [x for x in str(s).strip().lower().split("_") if x]
        if not labs or any(x not in (*MLMA_HOSTILE, "normal") for x in labs):
            bad.setdefault(i, f"{src}: row {i + 1}: column 'sentiment': value {s!r} is not a '_'-joined "
                              f"set of {', '.join((*MLMA_HOSTILE, 'normal'))}")
            tox.append(0.0)
            hateful.append(0.0)
            continue
        tox.append(sum(x != "normal" for x in labs) / len(labs))
        hateful.append(float("hateful" in labs))
    gmap = _group_map("mlma")
    grp = raw["group"].str.strip().map(lambda g: gmap.get(g, ("", ""))[0])
    out = pd.DataFrame({"text": text, "target": tox, "hateful": hateful,
                        "target_attribute": raw["target"].str.strip(), "source_group": raw["group"].str.strip()})
    groups = sorted({g for g, _ in gmap.values()})
    for g in groups:
        out[g] = (grp == g).astype(float)
    return _finish(out, bad, on_bad, src, groups, 0.5, group_axes=_axes_of("mlma", groups))


CONVABUSE_TYPES: tuple[str, ...] = ("sexist", "sex_harassment", "homophobic", "transphobic", "racist", "ableist",
                                    "intellectual")


def read_convabuse(folder: str | Path | None = None, *, split: str = "train", on_bad: OnBad = "skip") -> pd.DataFrame:
    """ConvAbuse (abuse aimed at a conversational agent): ``split`` = train, valid, test or all.

    Text = the user's turn. Each annotator picks one of ``is_abuse.{1,0,-1,-2,-3}`` (1 = not
    abusive, 0 = ambiguous, negative = abusive); ``target`` = share of that row's annotators who
    chose an abusive level, ``label`` = the majority. Abuse types become columns (share of
    annotators); those with an identity meaning map to groups through :func:`identity_map`."""
    folder = Path(folder) if folder else _shared("convabuse", "2_splits")
    names = {"train": ["train"], "valid": ["valid"], "test": ["test"], "all": ["train", "valid", "test"]}
    if split not in names:
        raise InputError(f"convabuse: split must be train, valid, test or all, not {split!r}")
    outs, bad_all, offset = [], {}, 0
    gmap = _group_map("convabuse")
    for part in names[split]:
        p = folder / f"ConvAbuseEMNLP{part}.csv"
        raw = _read_csv(p, dtype=str, keep_default_na=False)
        src = str(p)
        _require(raw, ["user"], src)
        ann_ids = sorted({int(m.group(1)) for c in raw.columns if (m := re.match(r"Annotator(\d+)_is_abuse\.1$", c))})
        if not ann_ids:
            raise InputError(f"{src}: no AnnotatorN_is_abuse.* columns")
        bad: dict[int, str] = {}
        n_ann = np.zeros(len(raw))
        n_abuse = np.zeros(len(raw))
        types = {t: np.zeros(len(raw)) for t in CONVABUSE_TYPES}
        for a in ann_ids:
            levels = {lv: pd.to_numeric(raw.get(f"Annotator{a}_is_abuse.{lv}", ""), errors="coerce").fillna(0)
                      .to_numpy() for lv in ("1", "0", "-1", "-2", "-3")}
            chosen = sum(levels.values())
            for i in np.flatnonzero(chosen > 1):
                bad.setdefault(int(i), f"{src}: row {i + 1}: Annotator{a}: more than one is_abuse level set")
            did = chosen >= 1
            n_ann += did
            n_abuse += did & ((levels["-1"] + levels["-2"] + levels["-3"]) >= 1)
            for t in CONVABUSE_TYPES:
                col = f"Annotator{a}_{t}"
                if col in raw.columns:
                    types[t] += did & (pd.to_numeric(raw[col], errors="coerce").fillna(0).to_numpy() >= 1)
        for i in np.flatnonzero(n_ann == 0):
            bad.setdefault(int(i), f"{src}: row {i + 1}: no annotator chose an is_abuse level")
        denom = np.maximum(n_ann, 1)
        out = pd.DataFrame({"text": _check_text(raw["user"], "user", src, bad), "target": n_abuse / denom,
                            "annotators": n_ann.astype(int), "split": part})
        for t in CONVABUSE_TYPES:
            frac = types[t] / denom
            out[t] = frac
            if t in gmap:
                g = gmap[t][0]
                out[g] = np.maximum(out[g].to_numpy(), frac) if g in out else frac
        outs.append(out)
        bad_all.update({k + offset: v for k, v in bad.items()})
        offset += len(out)
    out = pd.concat(outs, ignore_index=True)
    groups = sorted({g for g, _ in gmap.values()})
    return _finish(out, bad_all, on_bad, str(folder), groups, 0.5, group_axes=_axes_of("convabuse", groups))


def read_stormfront(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Stormfront sentences (de Gibert et al. 2018): ``annotations_metadata.csv`` + one text file per
    sentence in ``all_files/``. ``hate`` -> 1, ``noHate`` -> 0; ``relation`` (hate only with its
    neighbours) and ``idk/skip`` rows are left out by design (counted in ``attrs['excluded']``)."""
    folder = Path(folder) if folder else _shared("stormfront")
    meta_p = folder / "annotations_metadata.csv"
    meta = _read_csv(meta_p, dtype=str, keep_default_na=False)
    src = str(meta_p)
    _require(meta, ["file_id", "label"], src)
    bad: dict[int, str] = {}
    lab = meta["label"].str.strip().map({"hate": 1.0, "noHate": 0.0})
    excluded = meta["label"].str.strip().isin(["relation", "idk/skip"])
    texts: list[str | None] = []
    for i, fid in enumerate(meta["file_id"]):
        if excluded.iat[i]:
            texts.append("x")
            continue
        if pd.isna(lab.iat[i]):
            bad.setdefault(i, f"{src}: row {i + 1}: column 'label': value {meta['label'].iat[i]!r} is not "
                              "hate, noHate, relation or idk/skip")
        fp = folder / "all_files" / f"{Path(str(fid)).name}.txt"
        try:
            texts.append(fp.read_bytes().decode("utf-8").strip())
        except FileNotFoundError:
            bad.setdefault(i, f"{src}: row {i + 1}: column 'file_id': {fp} not found")
            texts.append("x")
        except UnicodeDecodeError:
            bad.setdefault(i, f"{src}: row {i + 1}: {fp}: text is not valid UTF-8")
            texts.append("x")
    out = pd.DataFrame({"text": pd.Series(texts, dtype=object), "target": lab.fillna(0.0),
                        "file_id": meta["file_id"].to_numpy()})
    out["text"] = _check_text(out["text"], "text", src, bad)
    keep = ~excluded.to_numpy()
    kept_idx = np.flatnonzero(keep)
    remap = {int(j): k for k, j in enumerate(kept_idx)}
    bad2 = {remap[i]: m for i, m in bad.items() if i in remap}
    out = out.loc[keep].reset_index(drop=True)
    return _finish(out, bad2, on_bad, src, [], 0.5, excluded=int((~keep).sum()))


def read_hasoc(folder: str | Path | None = None, *, split: str = "train", on_bad: OnBad = "skip") -> pd.DataFrame:
    """HASOC 2019 English: ``split`` = train (5,852), test (1,153) or all. ``target``/``label`` =
    hate or offensive (``task_1`` HOF); ``hasoc_type`` = HATE/OFFN/PRFN; ``targeted`` = TIN."""
    folder = Path(folder) if folder else _shared("hasoc_2019")
    files = {"train": ["english_dataset.tsv"], "test": ["hasoc2019_en_test-2919.tsv"],
             "all": ["english_dataset.tsv", "hasoc2019_en_test-2919.tsv"]}
    if split not in files:
        raise InputError(f"hasoc: split must be train, test or all, not {split!r}")
    outs, bad_all, offset = [], {}, 0
    for name in files[split]:
        p = folder / name
        raw = _read_tsv_str(p)
        src = str(p)
        _require(raw, ["text", "task_1"], src)
        bad: dict[int, str] = {}
        a = raw["task_1"].str.strip().map({"HOF": 1.0, "NOT": 0.0})
        for i in np.flatnonzero(a.isna().to_numpy()):
            bad.setdefault(int(i), f"{src}: row {i + 1}: column 'task_1': value {raw['task_1'].iloc[i]!r} "
                                   "is not HOF or NOT")
        out = pd.DataFrame({"text": _check_text(raw["text"], "text", src, bad), "target": a.fillna(0.0),
                            "hasoc_type": raw.get("task_2", pd.Series([""] * len(raw))).str.strip(),
                            "targeted": (raw.get("task_3", pd.Series([""] * len(raw))).str.strip() == "TIN")
                            .astype(float), "split": "test" if "test" in name else "train"})
        outs.append(out)
        bad_all.update({k + offset: v for k, v in bad.items()})
        offset += len(out)
    return _finish(pd.concat(outs, ignore_index=True), bad_all, on_bad, str(folder), [], 0.5)


#: Part-B readers by name (``name`` or ``name:split``); see :func:`load_dataset`.
PART_B: dict[str, Any] = {
    "toxigen-annotated": read_toxigen_annotated,
    "olid": read_olid,
    "hatexplain": read_hatexplain,
    "gab": read_gab,
    "mlma": read_mlma,
    "convabuse": read_convabuse,
    "stormfront": read_stormfront,
    "hasoc": read_hasoc,
}
_SPLITS = {"olid": ("train", "test", "all"), "convabuse": ("train", "valid", "test", "all"),
           "hasoc": ("train", "test", "all")}


def read_part_b(spec: str, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """``name`` or ``name:split`` for the human-labelled sets of part B of the data README.

    ``name:heldout`` (any set) keeps the rows the shipped default classifier never saw: the 15%
    hash-chosen test part of :func:`harmscope.classifiers.build_default.hash_split`."""
    name, _, split = spec.partition(":")
    if name not in PART_B:
        raise InputError(f"{spec}: unknown dataset (part-B names: {', '.join(PART_B)})")
    if split == "heldout":  # the rows the shipped default classifier never trained on
        from harmscope.classifiers.build_default import hash_split

        full = PART_B[name](split="all", on_bad=on_bad) if name in _SPLITS else PART_B[name](on_bad=on_bad)
        attrs = dict(full.attrs)
        df = full.loc[hash_split(full["text"].astype(str).tolist()) == "test"].reset_index(drop=True)
        df.attrs.update(attrs)
        df.attrs["dataset"] = spec
        return df
    if split:
        if name not in _SPLITS:
            raise InputError(f"{spec}: {name} has no splits")
        if split not in _SPLITS[name]:
            raise InputError(f"{spec}: split must be one of {', '.join(_SPLITS[name])}")
        df = PART_B[name](split=split, on_bad=on_bad)
    else:
        df = PART_B[name](on_bad=on_bad)
    df.attrs["dataset"] = spec
    return df


# ---------------------------------------------------------------- dispatch
NAMED: dict[str, str] = {
    "davidson": "Davidson et al. 2017 tweets (hate/offensive vs neither)",
    "ethos": "ETHOS binary with target-group columns",
    "ethos-multi": "ETHOS multi-label (hateful comments only)",
    "toxigen": "ToxiGen prompt statements, weak labels from the file name",
    "madlibs": "Conversation AI bias_madlibs_77k templated set",
    "templates": "Conversation AI en_sentence_templates",
    "intersectional": "Conversation AI intersectional madlibs",
    "wiki-toxicity": "Conversation AI Wikipedia toxicity test set (non-fuzzed)",
    "wiki-toxicity-fuzzed": "Conversation AI Wikipedia toxicity test set (identity terms fuzzed)",
    "toxigen-annotated": "ToxiGen 8,960 human-annotated statements (clean) with prompt labels (noisy), 13 groups",
    "olid[:train|test|all]": "OLID v1.0 offensive tweets (targeted, target type)",
    "hatexplain": "HateXplain validation split, 3 annotators, targets per annotator",
    "gab": "Gab Hate Corpus dev split, hate / violence / vulgar, 8 target axes",
    "mlma": "MLMA English hostile tweets, target attribute and group",
    "convabuse[:train|valid|test|all]": "ConvAbuse, abuse aimed at a conversational agent, typed",
    "stormfront": "Stormfront white-supremacist forum sentences, hate / noHate",
    "hasoc[:train|test|all]": "HASOC 2019 English, hate-or-offensive",
    "corpus:clean|noisy|eval|all[:SEED]": "the embedded synthetic corpus (harmscope.classifiers.corpus)",
}


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


def load_dataset(spec: str | Path, *, text_col: str | None = None, label_col: str | None = None,
                 group_cols: Sequence[str] | None = None, noisy_label_col: str | None = None,
                 fmt: str | None = None, threshold: float = 0.5, on_bad: OnBad = "skip",
                 seed: int = 0) -> pd.DataFrame:
    """A dataset name (see :data:`NAMED`) or a file; the layout of a file is sniffed unless a
    column mapping is given (Civil Comments / HF civil_comments / Toxic Comment / generic)."""
    s = str(spec)
    if s.startswith("corpus"):
        from harmscope.classifiers.corpus import corpus_split

        parts = s.split(":")
        part = parts[1] if len(parts) > 1 else "all"
        cseed = int(parts[2]) if len(parts) > 2 else seed
        return corpus_split(part, seed=cseed)
    readers = {
        "davidson": lambda: read_davidson(threshold=threshold, on_bad=on_bad),
        "ethos": lambda: read_ethos(threshold=threshold, on_bad=on_bad),
        "ethos-multi": lambda: read_ethos_multi(on_bad=on_bad),
        "toxigen": lambda: read_toxigen(on_bad=on_bad),
        "madlibs": lambda: read_madlibs(on_bad=on_bad),
        "templates": lambda: read_templates(on_bad=on_bad),
        "intersectional": lambda: read_templates(
            _shared("conversationai_unintended_bias", "madlibber_output_en", "intersectional_madlibs.csv"),
            on_bad=on_bad),
        "wiki-toxicity": lambda: read_wiki_toxicity(on_bad=on_bad),
        "wiki-toxicity-fuzzed": lambda: read_wiki_toxicity(fuzzed=True, on_bad=on_bad),
    }
    if s in readers:
        return readers[s]()
    if s.partition(":")[0] in PART_B and not Path(s).exists():
        return read_part_b(s, on_bad=on_bad)
    path = Path(s)
    if path.is_dir() and any(path.glob("hate_*.txt")):
        return read_toxigen(path, on_bad=on_bad)
    if not path.exists():
        known = ", ".join([*sorted(readers), *PART_B]) + ", corpus:clean|noisy|eval"
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
    _require(raw, [text_col], src)
    bad: dict[int, str] = {}
    texts = _check_text(raw[text_col], text_col, src, bad)
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
