"""The Conversation AI unintended-bias sets: templated madlibs and sentence templates, the Wikipedia
toxicity test sets; identity columns come from matching the madlibber identity terms."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmscope.classifiers.datasets.base import (
    DATASETS,
    OnBad,
    check_text,
    finish,
    read_csv,
    require_columns,
    shared_path,
    to_fraction,
)
from harmscope.errors import InputError
from harmscope.paths import data_dir


# ---- identity-term matching for the templated Conversation AI sets
def identity_terms(words_csv: str | Path | None = None) -> dict[str, str]:
    """Identity term -> subtype (axis) from the madlibber ``words.csv`` (type == identity)."""
    path = Path(words_csv) if words_csv else shared_path(
        "conversationai_unintended_bias", "madlibber_input_en_us", "words.csv")
    raw = read_csv(path, dtype=str)
    require_columns(raw, ["type", "subtype", "word"], str(path))
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
    return finish(out, bad, on_bad, src, keep, threshold, group_axes=axes)


@DATASETS.register(name="madlibs", version="1",
                   description="Conversation AI bias_madlibs_77k templated set")
def read_madlibs(path: str | Path | None = None, *, on_bad: OnBad = "skip",
                 terms_path: str | Path | None = None) -> pd.DataFrame:
    """``bias_madlibs_77k.csv`` (Text, Label BAD/NOT_BAD, Template); one identity column per
    term of ``adjectives_people.txt`` found in the sentence (axes from ``words.csv``)."""
    base = ("conversationai_unintended_bias",)
    path = Path(path) if path else shared_path(*base, "bias_madlibs_77k.csv")
    raw = read_csv(path)
    src = str(path)
    require_columns(raw, ["Text", "Label"], src)
    bad: dict[int, str] = {}
    text = check_text(raw["Text"], "Text", src, bad)
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


@DATASETS.register(name="templates", version="1",
                   description="Conversation AI en_sentence_templates")
def read_templates(path: str | Path | None = None, *, on_bad: OnBad = "skip",
                   words_csv: str | Path | None = None) -> pd.DataFrame:
    """Sentence-template sets (``template, toxicity (toxic/nontoxic), phrase``), e.g.
    ``en_sentence_templates.csv`` or ``intersectional_madlibs.csv``; identity columns from the
    terms of the madlibber ``words.csv``."""
    base = data_dir() / "conversationai_unintended_bias"
    path = Path(path) if path else shared_path("conversationai_unintended_bias", "sentence_templates",
                                           "en_sentence_templates.csv")
    raw = read_csv(path)
    src = str(path)
    require_columns(raw, ["toxicity", "phrase"], src)
    bad: dict[int, str] = {}
    text = check_text(raw["phrase"], "phrase", src, bad)
    lab = raw["toxicity"].astype(str).str.strip().map({"toxic": 1.0, "nontoxic": 0.0})
    for i in np.flatnonzero(lab.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'toxicity': value "
                               f"{raw['toxicity'].iloc[i]!r} is not toxic or nontoxic")
    out = pd.DataFrame({"text": text, "target": lab.fillna(0.0)})
    if "template" in raw.columns:
        out["template"] = raw["template"].astype(str)
    terms = identity_terms(words_csv or base / "madlibber_input_en_us" / "words.csv")
    return _with_terms(out, bad, on_bad, src, terms)


@DATASETS.register(name="wiki-toxicity", version="1",
                   description="Conversation AI Wikipedia toxicity test set (non-fuzzed)")
def read_wiki_toxicity(path: str | Path | None = None, *, fuzzed: bool = False,
                       on_bad: OnBad = "skip") -> pd.DataFrame:
    """Conversation AI Wikipedia toxicity test sets (``rev_id, comment, toxic``) with identity
    columns from matching the ``words.csv`` identity terms."""
    name = "wiki_toxicity_fuzzed_testset.csv" if fuzzed else "wiki_toxicity_nonfuzzed_testset.csv"
    path = Path(path) if path else shared_path("conversationai_unintended_bias", name)
    raw = read_csv(path)
    src = str(path)
    require_columns(raw, ["comment", "toxic"], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw["comment"], "comment", src, bad),
                        "target": to_fraction(raw["toxic"], "toxic", src, bad)})
    terms = identity_terms(data_dir() / "conversationai_unintended_bias" / "madlibber_input_en_us"
                           / "words.csv")
    return _with_terms(out, bad, on_bad, src, terms)



@DATASETS.register(name="intersectional", version="1", description="Conversation AI intersectional madlibs")
def read_intersectional(*, on_bad: OnBad = "skip") -> pd.DataFrame:
    """The intersectional madlibs (``madlibber_output_en/intersectional_madlibs.csv``)."""
    return read_templates(shared_path("conversationai_unintended_bias", "madlibber_output_en",
                                      "intersectional_madlibs.csv"), on_bad=on_bad)


@DATASETS.register(name="wiki-toxicity-fuzzed", version="1",
                   description="Conversation AI Wikipedia toxicity test set (identity terms fuzzed)")
def read_wiki_toxicity_fuzzed(*, on_bad: OnBad = "skip") -> pd.DataFrame:
    """The Wikipedia toxicity test set with its identity terms fuzzed."""
    return read_wiki_toxicity(fuzzed=True, on_bad=on_bad)
