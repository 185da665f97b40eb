"""Comment, forum and conversation sets: ETHOS (YouTube / Reddit), HateXplain (Twitter / Gab),
the Gab Hate Corpus, ConvAbuse (users talking to conversational agents) and Stormfront."""

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
    identity_map,
    read_csv,
    read_jsonl,
    require_columns,
    shared_path,
    to_fraction,
)
from harmscope.errors import InputError

ETHOS_GROUP_COLS: tuple[str, ...] = (
    "gender", "race", "national_origin", "disability", "religion", "sexual_orientation",
)


@DATASETS.register(name="ethos", version="1",
                   description="ETHOS binary with target-group columns")
def read_ethos(path: str | Path | None = None, *, multi_path: str | Path | None = None,
               threshold: float = 0.5, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ETHOS binary (``comment;isHate``), with the multi-label file's target-group fractions
    joined on the comment text as identity columns (0 for comments not in that file)."""
    path = Path(path) if path else shared_path("ethos", "Ethos_Dataset_Binary.csv")
    multi = Path(multi_path) if multi_path else path.with_name("Ethos_Dataset_Multi_Label.csv")
    raw = read_csv(path, sep=";")
    src = str(path)
    require_columns(raw, ["comment", "isHate"], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw["comment"], "comment", src, bad),
                        "target": to_fraction(raw["isHate"], "isHate", src, bad)})
    groups: list[str] = []
    if multi.is_file():
        m = read_ethos_multi(multi, on_bad="skip")
        groups = list(m.attrs["group_cols"])
        lookup = m.drop_duplicates("text").set_index("text")[groups]
        joined = lookup.reindex(out["text"].astype(str).to_numpy())
        for g in groups:
            out[g] = joined[g].fillna(0.0).to_numpy()
    return finish(out, bad, on_bad, src, groups, threshold,
                   group_axes={g: g for g in groups})


@DATASETS.register(name="ethos-multi", version="1",
                   description="ETHOS multi-label (hateful comments only)")
def read_ethos_multi(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """ETHOS multi-label: the 433 hateful comments (label 1); group fractions as identity
    columns; ``violence`` and ``directed_vs_generalized`` kept as extra columns."""
    path = Path(path) if path else shared_path("ethos", "Ethos_Dataset_Multi_Label.csv")
    raw = read_csv(path, sep=";")
    src = str(path)
    require_columns(raw, ["comment", "violence", "directed_vs_generalized", *ETHOS_GROUP_COLS], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw["comment"], "comment", src, bad), "target": 1.0})
    for c in ("violence", "directed_vs_generalized", *ETHOS_GROUP_COLS):
        out[c] = to_fraction(raw[c], c, src, bad)
    return finish(out, bad, on_bad, src, list(ETHOS_GROUP_COLS), 0.5,
                   group_axes={g: g for g in ETHOS_GROUP_COLS})



def _literal(value: Any) -> Any:
    try:
        return ast.literal_eval(value) if isinstance(value, str) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


@DATASETS.register(name="hatexplain", version="1",
                   description="HateXplain validation split, 3 annotators, targets per annotator", heldout=True)
def read_hatexplain(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """HateXplain validation split (1,922 posts, three annotators each).

    Text = ``post_tokens`` joined by spaces. ``target`` = share of annotators who chose hatespeech
    or offensive, ``label`` = the majority; ``hate`` = share who chose hatespeech. Identity
    columns = share of annotators naming each target (mapped through :func:`identity_map`).
    """
    path = Path(path) if path else shared_path("hatexplain", "df_val_processed.csv")
    raw = read_csv(path, dtype=str, keep_default_na=False)
    src = str(path)
    require_columns(raw, ["id", "annotators", "post_tokens"], src)
    gmap = group_map("hatexplain")
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
    out["text"] = check_text(out["text"], "post_tokens", src, bad)
    used = [g for g in groups if out[g].sum() > 0]
    out = out.drop(columns=[g for g in groups if g not in used])
    return finish(out, bad, on_bad, src, used, 0.5, group_axes=axes_of("hatexplain", used),
                   group_threshold=0.5)



GAB_FLAGS: tuple[str, ...] = ("rae", "nat", "gen", "rel", "sxo", "idl", "pol", "mph")


@DATASETS.register(name="gab", version="1",
                   description="Gab Hate Corpus dev split, hate / violence / vulgar, 8 target axes", heldout=True)
def read_gab(path: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Gab Hate Corpus dev split (majority labels): ``target``/``label`` = hate (``hd`` assault on
    human dignity or ``cv`` call for violence); ``violence`` = ``cv``, ``vulgar`` = ``vo``. The
    target flags (race, nationality, gender, religion, sexual orientation, ideology, politics,
    health) become axis-level identity columns through :func:`identity_map`."""
    path = Path(path) if path else shared_path("gab_hate_corpus", "dev.jsonl")
    raw = read_jsonl(path)
    src = str(path)
    require_columns(raw, ["Text", "hd", "cv", "vo", *GAB_FLAGS], src)
    bad: dict[int, str] = {}
    out = pd.DataFrame({"text": check_text(raw["Text"], "Text", src, bad)})
    vals = {c: to_fraction(raw[c], c, src, bad) for c in ("hd", "cv", "vo", *GAB_FLAGS)}
    out["target"] = np.maximum(vals["hd"].fillna(0), vals["cv"].fillna(0))
    out["violence"] = vals["cv"].fillna(0)
    out["vulgar"] = vals["vo"].fillna(0)
    gmap = group_map("gab")
    groups: list[str] = []
    for flag in GAB_FLAGS:
        g = gmap[flag][0]
        out[g] = np.maximum(out[g].to_numpy(), vals[flag].fillna(0).to_numpy()) if g in out else vals[flag].fillna(0)
        if g not in groups:
            groups.append(g)
    return finish(out, bad, on_bad, src, groups, 0.5, group_axes=axes_of("gab", groups))



CONVABUSE_TYPES: tuple[str, ...] = ("sexist", "sex_harassment", "homophobic", "transphobic", "racist", "ableist",
                                    "intellectual")


@DATASETS.register(name="convabuse", version="1",
                   description="ConvAbuse, abuse aimed at a conversational agent, typed", splits=('train', 'valid', 'test', 'all'), heldout=True)
def read_convabuse(folder: str | Path | None = None, *, split: str = "train", on_bad: OnBad = "skip") -> pd.DataFrame:
    """ConvAbuse (abuse aimed at a conversational agent): ``split`` = train, valid, test or all.

    Text = the user's turn. Each annotator picks one of ``is_abuse.{1,0,-1,-2,-3}`` (1 = not
    abusive, 0 = ambiguous, negative = abusive); ``target`` = share of that row's annotators who
    chose an abusive level, ``label`` = the majority. Abuse types become columns (share of
    annotators); those with an identity meaning map to groups through :func:`identity_map`."""
    folder = Path(folder) if folder else shared_path("convabuse", "2_splits")
    names = {"train": ["train"], "valid": ["valid"], "test": ["test"], "all": ["train", "valid", "test"]}
    if split not in names:
        raise InputError(f"convabuse: split must be train, valid, test or all, not {split!r}")
    outs, bad_all, offset = [], {}, 0
    gmap = group_map("convabuse")
    for part in names[split]:
        p = folder / f"ConvAbuseEMNLP{part}.csv"
        raw = read_csv(p, dtype=str, keep_default_na=False)
        src = str(p)
        require_columns(raw, ["user"], src)
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
        out = pd.DataFrame({"text": check_text(raw["user"], "user", src, bad), "target": n_abuse / denom,
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
    return finish(out, bad_all, on_bad, str(folder), groups, 0.5, group_axes=axes_of("convabuse", groups))


@DATASETS.register(name="stormfront", version="1",
                   description="Stormfront white-supremacist forum sentences, hate / noHate", heldout=True)
def read_stormfront(folder: str | Path | None = None, *, on_bad: OnBad = "skip") -> pd.DataFrame:
    """Stormfront sentences (de Gibert et al. 2018): ``annotations_metadata.csv`` + one text file per
    sentence in ``all_files/``. ``hate`` -> 1, ``noHate`` -> 0; ``relation`` (hate only with its
    neighbours) and ``idk/skip`` rows are left out by design (counted in ``attrs['excluded']``)."""
    folder = Path(folder) if folder else shared_path("stormfront")
    meta_p = folder / "annotations_metadata.csv"
    meta = read_csv(meta_p, dtype=str, keep_default_na=False)
    src = str(meta_p)
    require_columns(meta, ["file_id", "label"], src)
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
    out["text"] = check_text(out["text"], "text", src, bad)
    keep = ~excluded.to_numpy()
    kept_idx = np.flatnonzero(keep)
    remap = {int(j): k for k, j in enumerate(kept_idx)}
    bad2 = {remap[i]: m for i, m in bad.items() if i in remap}
    out = out.loc[keep].reset_index(drop=True)
    return finish(out, bad2, on_bad, src, [], 0.5, excluded=int((~keep).sum()))

