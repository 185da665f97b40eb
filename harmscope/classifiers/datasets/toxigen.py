"""The ToxiGen family: the prompt files (weak labels) and the human-annotated statements."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.classifiers.datasets.base import (
    DATASETS,
    OnBad,
    axes_of,
    check_text,
    finish,
    group_map,
    read_csv,
    require_columns,
    shared_path,
)
from harmscope.errors import InputError

TOXIGEN_GROUP_AXES: dict[str, str] = {
    "asian": "race", "black": "race", "jewish": "religion", "latino": "race",
    "native_american": "race", "chinese": "nationality", "immigrant": "nationality",
    "mexican": "nationality", "middle_east": "nationality", "muslim": "religion",
    "bisexual": "sexual_orientation", "lgbtq": "sexual_orientation", "trans": "gender",
    "women": "gender", "mental_disability": "disability", "physical_disability": "disability",
}


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


@DATASETS.register(name="toxigen", version="1",
                   description="ToxiGen prompt statements, weak labels from the file name")
def read_toxigen(folder: str | Path | None = None, *, dedupe: bool = True,
                 on_bad: OnBad = "skip") -> pd.DataFrame:
    """ToxiGen prompt files ``{hate,neutral}_<group>_1k.txt`` as a weakly labelled set.

    Label from the file name (hate -> 1), one identity column per group (from the name).
    ``label`` and ``noisy_label`` are both the file label: these are weak labels. With
    ``dedupe`` each (statement, file) pair is kept once (the 31,000 prompts reuse ~720
    distinct seed statements).
    """
    folder = Path(folder) if folder else shared_path("toxigen", "prompts")
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
    df = finish(out, {}, "skip", str(folder), groups, 0.5,
                 group_axes={g: TOXIGEN_GROUP_AXES.get(g, "other") for g in groups}, weak_labels=True)
    df.attrs["skipped"] = bad_lines
    return df



def _decode_bytes_repr(value: Any) -> str | None:
    """``"b'...'"`` (a Python bytes literal, as ToxiGen's CSV stores text) -> str; plain text as is;
    ``None`` when it cannot be decoded."""
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


@DATASETS.register(name="toxigen-annotated", version="1",
                   description="ToxiGen 8,960 human-annotated statements (clean) with prompt labels (noisy), 13 groups", heldout=True)
def read_toxigen_annotated(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ToxiGen's 8,960 human-annotated statements (``toxigen_annotated/toxigen.csv``).

    ``target`` = (``toxicity_human`` - 1) / 4 (mean of three 1-5 ratings); ``label`` = mean rating
    above the scale midpoint 3. ``noisy_target``/``noisy_label`` = the label of the prompt that
    generated the text (``hate`` -> 1): the noisy label of the clean+noisy study. One identity
    column per target group (names mapped through :func:`identity_map`); ``prompt_group`` keeps
    the group name; ``toxicity_ai`` (rescaled to [0, 1]) is kept for reference.
    """
    path = Path(path) if path else shared_path("toxigen_annotated", "toxigen.csv")
    raw = read_csv(path, dtype=str, keep_default_na=False)
    src = str(path)
    require_columns(raw, ["text", "target_group", "toxicity_human", "label"], src)
    bad: dict[int, str] = {}
    texts = pd.Series([_decode_bytes_repr(t) for t in raw["text"]], dtype=object)
    for i in np.flatnonzero(texts.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'text': not a decodable bytes literal")
    texts = texts.fillna("")
    texts.attrs["bad_utf8"] = raw.attrs.get("bad_utf8", False)
    text = check_text(texts, "text", src, bad)
    human = pd.to_numeric(raw["toxicity_human"], errors="coerce")
    for i in np.flatnonzero((human.isna() | (human < 1) | (human > 5)).to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'toxicity_human': value "
                               f"{raw['toxicity_human'].iloc[i]!r} is not a rating in [1, 5]")
    noisy = raw["label"].str.strip().str.lower().map({"hate": 1.0, "neutral": 0.0})
    for i in np.flatnonzero(noisy.isna().to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'label': value {raw['label'].iloc[i]!r} "
                               "is not hate or neutral")
    gmap = group_map("toxigen-annotated")
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
    df = finish(out, bad, on_bad, src, groups, 0.5, group_axes=axes_of("toxigen-annotated", groups),
                 label_rule="mean human rating > 3 of 5")
    df["label"] = (df["toxicity_human"] > 3.0).astype(int)
    return df

