"""Readers of the human-labelled part-B sets: synthetic files (label/group mapping, vote fractions,
bad rows) and, when $HARMSCOPE_DATA holds them, the real files (row counts checked against an
independent count with the csv/json modules)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from harmscope.classifiers import datasets as ds
from harmscope.errors import InputError

DATA = Path(os.environ.get("HARMSCOPE_DATA", "../shared/data"))


def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------- the mapping table
def test_identity_map_is_consistent():
    t = ds.identity_map()
    assert {"dataset", "source_name", "group", "axis"} <= set(t.columns)
    assert not t.duplicated(["dataset", "source_name"]).any()
    axes = {"gender", "sexual_orientation", "race", "national_origin", "religion", "disability", "ideology", "other"}
    assert set(t.loc[t["group"] != "", "axis"]) <= axes
    # one group name always lives on one axis, whichever set it comes from
    pairs = t.loc[t["group"] != ""].drop_duplicates(["group", "axis"])
    assert not pairs["group"].duplicated().any()
    assert {"toxigen-annotated", "hatexplain", "mlma", "gab", "convabuse"} <= set(t["dataset"])


# ---------------------------------------------------------------- synthetic files
def test_toxigen_annotated_labels_groups_and_bad_rows(tmp_path):
    hdr = ["text", "target_group", "toxicity_human", "toxicity_ai", "label"]
    rows = [["b'they are lovely neighbours'", "mental_dis", "1", "1", "neutral"],
            ["b'caf\\xc3\\xa9 people are awful'", "women", "4.333333333", "5", "hate"],
            ["b'exactly three'", "black", "3", "3", "hate"],
            ["b'bad rating'", "black", "7", "3", "hate"],
            ["b'bad group'", "martians", "2", "3", "neutral"],
            ["b'bad prompt label'", "asian", "2", "3", "maybe"]]
    p = _write_csv(tmp_path / "toxigen.csv", hdr, rows)
    with pytest.warns(UserWarning, match="skipped 3 bad rows"):
        df = ds.read_toxigen_annotated(p)
    assert df["text"].tolist() == ["they are lovely neighbours", "café people are awful", "exactly three"]
    assert df["label"].tolist() == [0, 1, 0]  # mean rating > 3 only
    assert np.allclose(df["target"], [0.0, (4.333333333 - 1) / 4, 0.5])
    assert df["noisy_label"].tolist() == [0, 1, 1]
    assert df["mental_disability"].tolist() == [1.0, 0.0, 0.0]
    assert df["women"].tolist() == [0.0, 1.0, 0.0]
    assert df.attrs["group_axes"]["mental_disability"] == "disability"
    with pytest.raises(InputError, match=r"toxigen.csv: row 4: column 'toxicity_human'"):
        ds.read_toxigen_annotated(p, on_bad="error")


def test_hatexplain_vote_fractions_and_targets(tmp_path):
    ann = {"label": [0, 2, 1], "annotator_id": [1, 2, 3], "target": [["African"], ["African", "Women"], ["None"]]}
    ann2 = {"label": [1, 1, 2], "annotator_id": [1, 2, 3], "target": [["None"], ["Other"], ["None"]]}
    rows = [["1_twitter", str(ann), "[]", str(["you", "people"]), "[]", "", ""],
            ["2_gab", str(ann2), "[]", str(["hello", "there"]), "[]", "", ""],
            ["3_gab", "{'label': [5]}", "[]", str(["x"]), "[]", "", ""]]
    hdr = ["id", "annotators", "rationales", "post_tokens", "masked_tokens", "unmasked_sentence", "masked_sentence"]
    p = _write_csv(tmp_path / "hx.csv", hdr, rows)
    with pytest.warns(UserWarning):
        df = ds.read_hatexplain(p)
    assert df["text"].tolist() == ["you people", "hello there"]
    assert np.allclose(df["target"], [2 / 3, 1 / 3])
    assert df["label"].tolist() == [1, 0]
    assert np.allclose(df["hate"], [1 / 3, 0.0])
    assert np.allclose(df["black"], [2 / 3, 0.0]) and np.allclose(df["women"], [1 / 3, 0.0])
    with pytest.raises(InputError, match=r"hx.csv: row 3: column 'annotators'"):
        ds.read_hatexplain(p, on_bad="error")


def test_mlma_sentiment_sets(tmp_path):
    hdr = ["HITId", "tweet", "sentiment", "directness", "annotator_sentiment", "target", "group"]
    rows = [["1", "t one", "normal", "direct", "x", "origin", "hispanics"],
            ["2", "t two", "offensive_normal", "direct", "x", "gender", "women"],
            ["3", "t three", "hateful_offensive", "direct", "x", "origin", "other"],
            ["4", "t four", "sarcastic", "direct", "x", "origin", "other"]]
    p = _write_csv(tmp_path / "mlma.csv", hdr, rows)
    with pytest.warns(UserWarning):
        df = ds.read_mlma(p)
    assert np.allclose(df["target"], [0.0, 0.5, 1.0])
    assert df["label"].tolist() == [0, 1, 1]
    assert df["hateful"].tolist() == [0.0, 0.0, 1.0]
    assert df["latino"].tolist() == [1.0, 0.0, 0.0] and df["women"].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(InputError, match=r"row 4: column 'sentiment'"):
        ds.read_mlma(p, on_bad="error")


def test_gab_flags_map_to_axes(tmp_path):
    base = {"hd": 0, "cv": 0, "vo": 0, "rae": 0, "nat": 0, "gen": 0, "rel": 0, "sxo": 0, "idl": 0, "pol": 0, "mph": 0}
    recs = [{"Text": "a", **base}, {"Text": "b", **base, "cv": 1, "rel": 1}, {"Text": "c", **base, "vo": 1},
            {"Text": "d", **base, "hd": "maybe"}]
    p = tmp_path / "dev.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning):
        df = ds.read_gab(p)
    assert df["label"].tolist() == [0, 1, 0]
    assert df["violence"].tolist() == [0.0, 1.0, 0.0] and df["vulgar"].tolist() == [0.0, 0.0, 1.0]
    assert df["religion"].tolist() == [0.0, 1.0, 0.0]
    assert df.attrs["group_axes"]["politics"] == "ideology"
    with pytest.raises(InputError, match=r"dev.jsonl: line 4: column 'hd'"):
        ds.read_gab(p, on_bad="error")


def test_convabuse_majority_over_annotators(tmp_path):
    levels = ["1", "0", "-1", "-2", "-3"]
    hdr = ["example_id", "user"]
    for a in (1, 2, 3):
        hdr += [f"Annotator{a}_is_abuse.{lv}" for lv in levels] + [f"Annotator{a}_sexist", f"Annotator{a}_sex_harassment"]

    def ann(level: str | None, sexist: int = 0) -> list[str]:
        if level is None:
            return [""] * 7
        return ["1" if lv == level else "0" for lv in levels] + [str(sexist), "0"]

    rows = [["1", "hello", *ann("1"), *ann("1"), *ann(None)],
            ["2", "you are dumb", *ann("-2", 1), *ann("-1", 1), *ann("1")],
            ["3", "nobody annotated", *ann(None), *ann(None), *ann(None)]]
    (tmp_path / "ConvAbuseEMNLPtrain.csv").write_text("", encoding="utf-8")
    _write_csv(tmp_path / "ConvAbuseEMNLPtrain.csv", hdr, rows)
    with pytest.warns(UserWarning):
        df = ds.read_convabuse(tmp_path, split="train")
    assert np.allclose(df["target"], [0.0, 2 / 3]) and df["label"].tolist() == [0, 1]
    assert df["annotators"].tolist() == [2, 3]
    assert np.allclose(df["women"], [0.0, 2 / 3])
    with pytest.raises(InputError, match="row 3: no annotator"):
        ds.read_convabuse(tmp_path, split="train", on_bad="error")
    with pytest.raises(InputError, match="split must be"):
        ds.read_convabuse(tmp_path, split="dev")


def test_olid_hasoc_stormfront_bad_rows(tmp_path):
    olid = tmp_path / "olid"
    olid.mkdir()
    _write_csv(olid / "olid-training-v1.0.tsv", ["id", "tweet", "subtask_a", "subtask_b", "subtask_c"],
               [["1", "@USER you idiot", "OFF", "TIN", "IND"], ["2", "nice day", "NOT", "NULL", "NULL"],
                ["3", "what", "MAYBE", "NULL", "NULL"]], delimiter="\t")
    with pytest.warns(UserWarning):
        o = ds.read_olid(olid)
    assert o["label"].tolist() == [1, 0] and o["targeted"].tolist() == [1.0, 0.0]
    assert o["target_type"].tolist() == ["IND", ""]
    with pytest.raises(InputError, match=r"row 3: column 'subtask_a'"):
        ds.read_olid(olid, on_bad="error")

    hasoc = tmp_path / "hasoc"
    hasoc.mkdir()
    _write_csv(hasoc / "english_dataset.tsv", ["text_id", "text", "task_1", "task_2", "task_3"],
               [["a", "vile people", "HOF", "HATE", "TIN"], ["b", "cricket", "NOT", "NONE", "NONE"],
                ["c", "", "NOT", "NONE", "NONE"]], delimiter="\t")
    with pytest.warns(UserWarning):
        h = ds.read_hasoc(hasoc)
    assert h["label"].tolist() == [1, 0] and h["hasoc_type"].tolist() == ["HATE", "NONE"]
    with pytest.raises(InputError, match=r"row 3: column 'text': text is empty"):
        ds.read_hasoc(hasoc, on_bad="error")

    sf = tmp_path / "sf"
    (sf / "all_files").mkdir(parents=True)
    (sf / "all_files" / "1_1.txt").write_text("a hateful line", encoding="utf-8")
    (sf / "all_files" / "1_2.txt").write_text("a calm line", encoding="utf-8")
    _write_csv(sf / "annotations_metadata.csv", ["file_id", "user_id", "subforum_id", "num_contexts", "label"],
               [["1_1", "u", "s", "0", "hate"], ["1_2", "u", "s", "0", "noHate"], ["1_3", "u", "s", "0", "relation"],
                ["1_4", "u", "s", "0", "noHate"]])
    with pytest.warns(UserWarning):
        s = ds.read_stormfront(sf)
    assert s["label"].tolist() == [1, 0] and s.attrs["excluded"] == 1
    with pytest.raises(InputError, match="1_4.txt not found"):
        ds.read_stormfront(sf, on_bad="error")


def test_part_b_names_and_splits():
    with pytest.raises(InputError, match="has no splits"):
        ds.read_part_b("mlma:test")
    with pytest.raises(InputError, match="split must be one of"):
        ds.read_part_b("olid:dev")


# ---------------------------------------------------------------- the real files
def _need(*parts: str) -> Path:
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available (set HARMSCOPE_DATA)")
    return p


def _count_csv(path: Path, **kw) -> int:
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        return sum(1 for _ in csv.reader(fh, **kw)) - 1


@pytest.mark.filterwarnings("ignore")
def test_real_toxigen_annotated():
    p = _need("toxigen_annotated", "toxigen.csv")
    df = ds.load_dataset("toxigen-annotated")
    assert len(df) == _count_csv(p) == 8960
    with p.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert int(df["label"].sum()) == sum(float(r["toxicity_human"]) > 3 for r in rows)
    assert int(df["noisy_label"].sum()) == sum(r["label"] == "hate" for r in rows)
    assert len(df.attrs["group_cols"]) == 13
    assert int(df["mental_disability"].sum()) == sum(r["target_group"] == "mental_dis" for r in rows)


@pytest.mark.filterwarnings("ignore")
def test_real_other_sets_row_counts():
    _need("olid", "olid-training-v1.0.tsv")
    assert len(ds.load_dataset("olid")) == 13240
    assert len(ds.load_dataset("olid:test")) == 860
    hx = _need("hatexplain", "df_val_processed.csv")
    h = ds.load_dataset("hatexplain")
    assert len(h) == _count_csv(hx) == 1922
    assert {"black", "muslim", "jewish", "women", "lgbtq"} <= set(h.attrs["group_cols"])
    _need("gab_hate_corpus", "dev.jsonl")
    g = ds.load_dataset("gab")
    assert len(g) == 2581 and set(g.attrs["group_cols"]) >= {"race", "religion", "gender"}
    m = ds.load_dataset("mlma")
    assert len(m) == 5647 and int((m["target"] == 0).sum()) == 661  # 661 purely normal tweets
    assert [len(ds.load_dataset(f"convabuse:{s}")) for s in ("train", "valid", "test")] == [2501, 831, 853]
    sf = ds.load_dataset("stormfront")
    assert len(sf) + sf.attrs["excluded"] == 10944 and int(sf["label"].sum()) == 1196
    assert len(ds.load_dataset("hasoc")) == 5852 and len(ds.load_dataset("hasoc:test")) == 1153
