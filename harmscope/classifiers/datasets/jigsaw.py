"""The Jigsaw family: Unintended Bias / Civil Comments and Toxic Comment Classification."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmscope.classifiers.datasets.base import (
    OnBad,
    check_text,
    finish,
    read_any,
    require_columns,
    to_fraction,
)

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
    require_columns(raw, [text_col, target_col], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw[text_col], text_col, src, bad),
                        "target": to_fraction(raw[target_col], target_col, src, bad)})
    subtypes = [c for c in CIVIL_SUBTYPE_COLS if c in raw.columns]
    for c in subtypes:
        out[c] = pd.to_numeric(raw[c], errors="coerce").fillna(0.0).clip(0, 1)
    groups = [c for c in CIVIL_IDENTITY_COLS if c in raw.columns]
    for c in groups:
        out[c] = pd.to_numeric(raw[c], errors="coerce")
    out["group_annotated"] = out[groups].notna().any(axis=1) if groups else False
    groups_bin = groups
    df = finish(out, bad, on_bad, src, groups_bin, threshold, subtype_cols=subtypes,
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
    require_columns(raw, ["comment_text", "toxic"], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw["comment_text"], "comment_text", src, bad),
                        "target": to_fraction(raw["toxic"], "toxic", src, bad)})
    subtypes = []
    for c, new in WIKI_LABEL_COLS.items():
        if c != "toxic" and c in raw.columns:
            out[new] = to_fraction(raw[c], c, src, bad)
            subtypes.append(new)
    return finish(out, bad, on_bad, src, [], 0.5, subtype_cols=subtypes)

