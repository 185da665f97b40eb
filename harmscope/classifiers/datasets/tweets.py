"""Tweet sets: Davidson et al. 2017, OLID, MLMA and HASOC 2019."""

from __future__ import annotations

from pathlib import Path

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
    read_tsv_str,
    require_columns,
    shared_path,
)
from harmscope.errors import InputError


@DATASETS.register(name="davidson", version="1",
                   description="Davidson et al. 2017 tweets (hate/offensive vs neither)")
def read_davidson(path: str | Path | None = None, *, threshold: float = 0.5,
                  on_bad: OnBad = "skip") -> pd.DataFrame:
    """Davidson et al. (2017): class 0 (hate) / 1 (offensive) -> toxic, 2 (neither) -> not.

    ``target`` is the soft vote fraction ``(hate_speech + offensive_language) / count``;
    ``label`` follows the majority ``class`` column. No identity columns.
    """
    path = Path(path) if path else shared_path("davidson_hate_offensive", "labeled_data.csv")
    raw = read_csv(path)
    src = str(path)
    require_columns(raw, ["tweet", "class", "count", "hate_speech", "offensive_language"], src)
    bad: dict[int, str] = {}
    text = check_text(raw["tweet"], "tweet", src, bad)
    cls = pd.to_numeric(raw["class"], errors="coerce")
    for i in np.flatnonzero(~cls.isin([0, 1, 2]).to_numpy()):
        bad.setdefault(int(i), f"{src}: row {i + 1}: column 'class': value {raw['class'].iloc[i]!r} "
                               "is not 0, 1 or 2")
    count = pd.to_numeric(raw["count"], errors="coerce")
    votes = pd.to_numeric(raw["hate_speech"], errors="coerce") + pd.to_numeric(
        raw["offensive_language"], errors="coerce")
    frac = (votes / count.where(count > 0)).clip(0, 1)
    out = pd.DataFrame({"text": text, "target": frac.fillna((cls < 2).astype(float))})
    df = finish(out, bad, on_bad, src, [], threshold)
    keep = [i for i in range(len(raw)) if i not in bad]
    df["label"] = (cls.iloc[keep].to_numpy() < 2).astype(int)
    df["hate"] = (cls.iloc[keep].to_numpy() == 0).astype(int)
    return df



@DATASETS.register(name="olid", version="1",
                   description="OLID v1.0 offensive tweets (targeted, target type)", splits=('train', 'test', 'all'), heldout=True)
def read_olid(folder: str | Path | None = None, *, split: str = "train", on_bad: OnBad = "skip") -> pd.DataFrame:
    """OLID v1.0 (Zampieri et al. 2019): ``split`` = ``train`` (13,240), ``test`` (860) or ``all``.

    ``target``/``label`` = offensive (``OFF``); ``targeted`` = targeted insult or threat (``TIN``,
    0 for untargeted or not offensive); ``target_type`` = ``IND``/``GRP``/``OTH`` (empty if none).
    OLID has no identity groups."""
    folder = Path(folder) if folder else shared_path("olid")
    if split not in ("train", "test", "all"):
        raise InputError(f"olid: split must be train, test or all, not {split!r}")
    frames = []
    if split in ("train", "all"):
        p = folder / "olid-training-v1.0.tsv"
        raw = read_tsv_str(p)
        require_columns(raw, ["id", "tweet", "subtask_a", "subtask_b", "subtask_c"], str(p))
        frames.append((str(p), raw.assign(split="train")))
    if split in ("test", "all"):
        p = folder / "testset-levela.tsv"
        raw = read_tsv_str(p)
        require_columns(raw, ["id", "tweet"], str(p))
        for level, col in (("a", "subtask_a"), ("b", "subtask_b"), ("c", "subtask_c")):
            lp = folder / f"labels-level{level}.csv"
            lab = read_csv(lp, header=None, names=["id", col], dtype=str, keep_default_na=False)
            raw = raw.merge(lab, on="id", how="left")
        raw = raw.fillna("NULL")
        frames.append((str(folder / "testset-levela.tsv"), raw.assign(split="test")))
    outs = []
    bad_all: dict[int, str] = {}
    offset = 0
    for src, raw in frames:
        bad: dict[int, str] = {}
        text = check_text(raw["tweet"], "tweet", src, bad)
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
    return finish(out, bad_all, on_bad, str(folder), [], 0.5)



MLMA_HOSTILE: tuple[str, ...] = ("offensive", "hateful", "abusive", "disrespectful", "fearful")


@DATASETS.register(name="mlma", version="1",
                   description="MLMA English hostile tweets, target attribute and group", heldout=True)
def read_mlma(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """MLMA English tweets (5,647): ``sentiment`` is the set of labels the annotators gave
    (``_``-joined, e.g. ``offensive_normal``). ``target`` = share of hostile labels in that set
    (so ``offensive_normal`` -> 0.5, label 1); ``hateful`` = 1 if ``hateful`` is among them.
    ``group`` is mapped to one identity column through :func:`identity_map`; ``target_attribute``
    (origin, gender, ...) is kept."""
    path = Path(path) if path else shared_path("mlma", "en_dataset.csv")
    raw = read_csv(path, dtype=str, keep_default_na=False)
    src = str(path)
    require_columns(raw, ["tweet", "sentiment", "target", "group"], src)
    bad: dict[int, str] = {}
    text = check_text(raw["tweet"], "tweet", src, bad)
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
    gmap = group_map("mlma")
    grp = raw["group"].str.strip().map(lambda g: gmap.get(g, ("", ""))[0])
    out = pd.DataFrame({"text": text, "target": tox, "hateful": hateful,
                        "target_attribute": raw["target"].str.strip(), "source_group": raw["group"].str.strip()})
    groups = sorted({g for g, _ in gmap.values()})
    for g in groups:
        out[g] = (grp == g).astype(float)
    return finish(out, bad, on_bad, src, groups, 0.5, group_axes=axes_of("mlma", groups))



@DATASETS.register(name="hasoc", version="1",
                   description="HASOC 2019 English, hate-or-offensive", splits=('train', 'test', 'all'), heldout=True)
def read_hasoc(folder: str | Path | None = None, *, split: str = "train", on_bad: OnBad = "skip") -> pd.DataFrame:
    """HASOC 2019 English: ``split`` = train (5,852), test (1,153) or all. ``target``/``label`` =
    hate or offensive (``task_1`` HOF); ``hasoc_type`` = HATE/OFFN/PRFN; ``targeted`` = TIN."""
    folder = Path(folder) if folder else shared_path("hasoc_2019")
    files = {"train": ["english_dataset.tsv"], "test": ["hasoc2019_en_test-2919.tsv"],
             "all": ["english_dataset.tsv", "hasoc2019_en_test-2919.tsv"]}
    if split not in files:
        raise InputError(f"hasoc: split must be train, test or all, not {split!r}")
    outs, bad_all, offset = [], {}, 0
    for name in files[split]:
        p = folder / name
        raw = read_tsv_str(p)
        src = str(p)
        require_columns(raw, ["text", "task_1"], src)
        bad: dict[int, str] = {}
        a = raw["task_1"].str.strip().map({"HOF": 1.0, "NOT": 0.0})
        for i in np.flatnonzero(a.isna().to_numpy()):
            bad.setdefault(int(i), f"{src}: row {i + 1}: column 'task_1': value {raw['task_1'].iloc[i]!r} "
                                   "is not HOF or NOT")
        out = pd.DataFrame({"text": check_text(raw["text"], "text", src, bad), "target": a.fillna(0.0),
                            "hasoc_type": raw.get("task_2", pd.Series([""] * len(raw))).str.strip(),
                            "targeted": (raw.get("task_3", pd.Series([""] * len(raw))).str.strip() == "TIN")
                            .astype(float), "split": "test" if "test" in name else "train"})
        outs.append(out)
        bad_all.update({k + offset: v for k, v in bad.items()})
        offset += len(out)
    return finish(pd.concat(outs, ignore_index=True), bad_all, on_bad, str(folder), [], 0.5)

