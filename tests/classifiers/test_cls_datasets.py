"""Dataset readers: real shared data and hand-made bad inputs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from harmscope.classifiers.datasets import (
    CIVIL_IDENTITY_COLS,
    load_dataset,
    match_identity_terms,
    read_civil_comments,
    read_davidson,
    read_ethos,
    read_madlibs,
    read_table,
    read_templates,
    read_texts,
    read_toxic_comment,
    read_toxigen,
    split_toxigen_line,
)
from harmscope.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _civil_csv(tmp_path, rows):
    cols = ["id", "comment_text", "target", *CIVIL_IDENTITY_COLS, "severe_toxicity", "obscene", "threat",
            "insult", "identity_attack", "sexual_explicit"]
    df = pd.DataFrame(rows, columns=cols)
    p = tmp_path / "civil.csv"
    df.to_csv(p, index=False)
    return p


def test_civil_comments_layout(tmp_path):
    n_id = len(CIVIL_IDENTITY_COLS)
    ident = [np.nan] * n_id
    muslim = [0.0] * n_id
    muslim[CIVIL_IDENTITY_COLS.index("muslim")] = 0.8
    rows = [
        [1, "what a lovely afternoon", 0.0, *ident, 0, 0, 0, 0, 0, 0],
        [2, "you absolute clown", 0.7, *ident, 0.1, 0.2, 0.0, 0.6, 0.0, 0.0],
        [3, "my muslim neighbour bakes bread", 0.5, *muslim, 0, 0, 0, 0, 0, 0],
        [4, "borderline remark", 0.4999, *ident, 0, 0, 0, 0, 0, 0],
    ]
    df = read_civil_comments(_civil_csv(tmp_path, rows))
    assert df["label"].tolist() == [0, 1, 1, 0]  # binarised at 0.5 inclusive
    assert df.attrs["group_cols"] == list(CIVIL_IDENTITY_COLS)
    assert df["muslim"].tolist() == [0.0, 0.0, 0.8, 0.0]  # NaN (not annotated) -> 0
    assert df["group_annotated"].tolist() == [False, False, True, False]
    assert df.attrs["subtype_cols"] == ["severe_toxicity", "obscene", "threat", "insult", "identity_attack",
                                        "sexual_explicit"]
    assert df["insult"].tolist() == [0, 0.6, 0, 0]
    df9 = read_civil_comments(_civil_csv(tmp_path, rows), threshold=0.7)
    assert df9["label"].tolist() == [0, 1, 0, 0]


def test_hf_civil_comments_layout_and_sniffing(tmp_path):
    p = tmp_path / "hf.jsonl"
    recs = [{"text": "a calm reply", "toxicity": 0.1, "insult": 0.0},
            {"text": "get lost, fool", "toxicity": 0.9, "insult": 0.8}]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    df = load_dataset(p)
    assert df["label"].tolist() == [0, 1]
    assert df.attrs["subtype_cols"] == ["insult"]
    assert df.attrs["group_cols"] == []


def test_toxic_comment_layout(tmp_path):
    p = tmp_path / "train.csv"
    pd.DataFrame({"id": ["a", "b"], "comment_text": ["fine edit, thanks", "you moron"], "toxic": [0, 1],
                  "severe_toxic": [0, 0], "obscene": [0, 1], "threat": [0, 0], "insult": [0, 1],
                  "identity_hate": [0, 0]}).to_csv(p, index=False)
    df = load_dataset(p)
    assert df["label"].tolist() == [0, 1]
    assert "identity_attack" in df.columns and "severe_toxicity" in df.columns
    assert read_toxic_comment(p)["obscene"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_generic_table_with_mapping(tmp_path, suffix):
    df0 = pd.DataFrame({"body": ["one", "two", "three"], "y": [0.2, 0.9, 1.0], "weak": [1, 1, 0],
                        "grp": [0, 1, 0.6]})
    p = tmp_path / f"data.{suffix}"
    if suffix == "csv":
        df0.to_csv(p, index=False)
    elif suffix == "jsonl":
        df0.to_json(p, orient="records", lines=True)
    else:
        df0.to_parquet(p)
    df = read_table(p, text_col="body", label_col="y", group_cols=["grp"], noisy_label_col="weak")
    assert df["text"].tolist() == ["one", "two", "three"]
    assert df["label"].tolist() == [0, 1, 1]
    assert df["noisy_label"].tolist() == [1, 1, 0]
    assert df.attrs["group_cols"] == ["grp"]
    assert df["grp"].tolist() == [0.0, 1.0, 0.6]


# ------------------------------------------------------------------ bad input
def test_missing_column_names_file_and_column(tmp_path):
    p = tmp_path / "x.csv"
    pd.DataFrame({"text": ["a"], "lbl": [1]}).to_csv(p, index=False)
    with pytest.raises(InputError) as e:
        read_table(p, label_col="label")
    msg = str(e.value)
    assert str(p) in msg and "'label'" in msg and "\n" not in msg


def test_bad_rows_skip_or_error(tmp_path):
    p = tmp_path / "bad.csv"
    body = b"text,label\nfine text,1\n,0\n   ,1\nlast one,0\nodd,2\n" + b"caf\xe9 latin1,1\n"
    p.write_bytes(body)
    with pytest.warns(UserWarning, match="skipped 4 bad rows"):
        df = read_table(p)
    assert df["text"].tolist() == ["fine text", "last one"]
    assert len(df.attrs["skipped"]) == 4
    assert any("row 2" in s and "missing" in s for s in df.attrs["skipped"])
    assert any("row 3" in s and "empty" in s for s in df.attrs["skipped"])
    assert any("row 5" in s and "'label'" in s for s in df.attrs["skipped"])
    assert any("row 6" in s and "UTF-8" in s for s in df.attrs["skipped"])
    with pytest.raises(InputError, match=r"bad\.csv: row 2: column 'text': text is missing \(and 3 more"):
        read_table(p, on_bad="error")


def test_bad_jsonl_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "ok", "label": 1}\n{not json}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.jsonl: line 2: not valid JSON"):
        read_table(p)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file or dataset name"):
        load_dataset("not-a-dataset")
    with pytest.raises(InputError, match="file not found"):
        read_civil_comments(tmp_path / "nope.csv")


def test_read_texts_without_labels(tmp_path):
    p = tmp_path / "t.csv"
    pd.DataFrame({"comment": ["hello there", None, "bye"], "id": [1, 2, 3]}).to_csv(p, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_texts(p)
    assert df["text"].tolist() == ["hello there", "bye"] and df["id"].tolist() == [1, 3]


# ------------------------------------------------------------------ identity matching / toxigen
def test_identity_term_matching_longest_first():
    m = match_identity_terms(["the African American vote", "an american and a gay man", "gayety"],
                             ["african american", "american", "african", "gay"])
    assert m.loc[0, "african_american"] == 1 and m.loc[0, "american"] == 0 and m.loc[0, "african"] == 0
    assert m.loc[1, "american"] == 1 and m.loc[1, "gay"] == 1
    assert m.loc[2].sum() == 0  # whole words only


def test_split_toxigen_line():
    line = "- first claim here\\n- second one\\n-"
    assert split_toxigen_line(line) == ["first claim here", "second one"]


def test_toxigen_folder(tmp_path):
    (tmp_path / "hate_women_1k.txt").write_text("- a\\n- b\\n-\n- b\\n- c\\n-\n", encoding="utf-8")
    (tmp_path / "neutral_women_1k.txt").write_text("- d\\n-\n", encoding="utf-8")
    (tmp_path / "hate_trans_1k.txt").write_bytes(b"- x\\n-\n- \xff\\n-\n")
    df = read_toxigen(tmp_path)
    assert sorted(df["text"]) == ["a", "b", "c", "d", "x"]
    assert df.set_index("text").loc["d", "label"] == 0 and df.set_index("text").loc["a", "label"] == 1
    assert df.attrs["group_cols"] == ["trans", "women"]
    assert (df["noisy_label"] == df["label"]).all()
    assert len(df.attrs["skipped"]) == 1 and "line 2" in df.attrs["skipped"][0]
    assert len(read_toxigen(tmp_path, dedupe=False)) == 6  # x, a, b, b, c, d
    with pytest.raises(InputError, match="not valid UTF-8"):
        read_toxigen(tmp_path, on_bad="error")


# ------------------------------------------------------------------ the shared data
def test_davidson(data_dir):
    df = read_davidson()
    assert len(df) == 24783
    assert int(df["label"].sum()) == 1430 + 19190  # class 0 and 1 are toxic
    assert int(df["hate"].sum()) == 1430
    assert df["target"].between(0, 1).all()


def test_ethos_with_groups(data_dir):
    df = read_ethos()
    assert len(df) == 998 and int(df["label"].sum()) == 433
    assert df.attrs["group_cols"] == ["gender", "race", "national_origin", "disability", "religion",
                                      "sexual_orientation"]
    row = df[df["text"] == "You look like Sloth with deeper Down’s syndrome"].iloc[0]
    assert row["disability"] == 1.0 and row["gender"] == 0.0
    assert (df.loc[df["label"] == 0, df.attrs["group_cols"]].sum().sum()) >= 0


def test_toxigen_shared(data_dir):
    df = load_dataset("toxigen")
    assert len(df.attrs["group_cols"]) == 16
    assert set(df.loc[df["women"] == 1, "label"]) == {0, 1}
    assert df.loc[df["trans"] == 1, "label"].eq(1).all()  # there is no neutral_trans file


def test_madlibs_and_templates(data_dir):
    df = read_madlibs()
    assert len(df) == 76564 and int(df["label"].sum()) == 38282
    assert df.attrs["group_axes"]["gay"] == "sexuality"
    row = df[df["text"] == "murder american"].iloc[0]
    assert row["label"] == 1 and row["american"] == 1
    t = read_templates()
    assert len(t) == 76564 and int(t["label"].sum()) == 76564 // 2
    assert t.loc[t["text"] == "hug lesbian", "lesbian"].iloc[0] == 1
