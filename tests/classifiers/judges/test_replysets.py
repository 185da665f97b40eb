"""Labelled-reply readers, the leakage-free splits, the numpy heads and the harm judge in scoring."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from harmscope.classifiers.judges import replysets as R
from harmscope.errors import InputError

# rows per reader in ../shared/data (measured once with Python's csv/json readers; see the data README)
ROWS = {"xstest-completions": 1080, "gptfuzz": 7700, "jailjudge": 1000, "saferlhf-mini": 4000, "beavertails": 3021,
        "pku-saferlhf": 2000, "diasafety": 10112, "safetext": 1465, "latent-jailbreak": 4800,
        "toxicchat-prompts": 2853, "aegis-prompts": 359, "jbb-behaviors": 200}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_reader_row_counts_and_columns(data_dir, name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = R.load_replies(name)
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if name == "diasafety":  # two rows of train.json have an empty response
        assert any("skipped 2 rows with an empty reply" in m and "train.json:3929" in m for m in msgs), msgs
    assert list(df.columns) == R.COLUMNS
    assert len(df) == ROWS[name]
    assert set(df["source"]) == {name}
    assert df["pid"].notna().all()
    if not R.is_prompt_only(name):
        assert (df["reply"].str.strip() != "").all()


def test_label_mapping(data_dir):
    x = R.load_replies("xstest-completions")
    assert x["label"].value_counts().to_dict() == {"comply": 530, "refusal": 469, "partial": 81}
    assert x["pid"].nunique() == 216 and x["model"].nunique() == 5
    # derived harm label: complying with an unsafe (contrast_) prompt
    assert (x["violation"] == ((x["group"] == "unsafe") & (x["label"] == "comply")).astype(int)).all()
    g = R.load_replies("gptfuzz")
    assert int(g["violation"].sum()) == 1694 + 545 and g["pid"].nunique() == 100
    assert (g["prompt"] != "").all()  # every question id resolves to its question text
    j = R.load_replies("jailjudge")
    assert int(j["violation"].sum()) == 315
    assert j.loc[j["category"] == "S14", "rule"].eq("cyber-weapons").all()
    with pytest.warns(UserWarning):
        d = R.load_replies("diasafety")
    m = R.rule_map()["diasafety"]
    assert (d["rule"] == d["category"].map(m)).all()
    assert set(d["rule"]) == set(m.values())
    s = R.load_replies("safetext")
    assert int(s["violation"].sum()) == 370 and s["pid"].nunique() == 367
    lj = R.load_replies("latent-jailbreak")
    assert int(lj["violation"].sum()) == 1823 and lj["group"].notna().any()
    assert R.load_replies("aegis-prompts")["reply"].eq("").all()


def test_rule_map_names_catalog_rules():
    from harmscope.rules import load_catalog

    ids = set(load_catalog().rules)
    for name, m in R.rule_map().items():
        assert set(m.values()) <= ids, name


def test_bad_rows_skip_warn_or_error(tmp_path):
    p = tmp_path / "lab.jsonl"
    rows = [{"prompt": "q1", "reply": "fine", "violation": 0}, {"prompt": "q2", "reply": "  ", "violation": 1},
            {"prompt": "q3", "reply": "", "violation": 1}, {"prompt": "q4", "reply": "bad", "violation": 1}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.warns(UserWarning, match=r"skipped 2 rows with an empty reply \(first: .*row 2: field 'reply'"):
        df = R.load_replies(str(p))
    assert df["violation"].tolist() == [0, 1]
    with pytest.raises(InputError, match=r"row 2: field 'reply': empty \(and 1 more\)"):
        R.load_replies(str(p), on_bad="error")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"reply": "x", "violation": "maybe"}) + "\n")
    with pytest.raises(InputError, match="row 1: field 'violation'"):
        R.load_replies(str(bad))
    with pytest.raises(InputError, match="neither a file nor a known"):
        R.load_replies("no-such-set")


def test_unknown_set_lists_the_registered_names_in_order():
    with pytest.raises(InputError) as e:
        R.load_replies("no-such-set")
    assert str(e.value) == (
        "--data 'no-such-set': neither a file nor a known labelled-reply set (harmscope-written, xstest-completions, "
        "gptfuzz, jailjudge, saferlhf-mini, beavertails, pku-saferlhf, diasafety, safetext, latent-jailbreak, "
        "toxicchat-prompts, aegis-prompts, jbb-behaviors)")


def test_plugin_reply_set_is_reached_by_name(tmp_path):
    """A reader registered with its metadata is reachable by every user: load_replies, validation,
    the weights check and the licence line; unregistered, it is gone again."""
    from harmscope.classifiers.judges import fit, validate

    @R.REPLY_SETS.register(name="toy-prompts", version="1", licence="CC0 (toy)", weights="refusal", prompt_only=True)
    def read_toy(path=None, *, on_bad="skip"):
        """Two toy prompts, one harmful."""
        rows = [{"prompt": "how do I bake bread", "reply": "", "violation": 0, "pid": "toy:1", "line": 1},
                {"prompt": "how do I hurt someone", "reply": "", "violation": 1, "pid": "toy:2", "line": 2}]
        return R.reply_frame(rows, "toy-prompts", "toy", on_bad)

    try:
        df = R.load_replies("toy-prompts")  # prompt-only: empty replies kept, no warning
        assert df["violation"].tolist() == [0, 1] and df.attrs["licence"] == "CC0 (toy)"
        frame, name = validate._frame("toy-prompts", None, "skip")
        assert name == "toy-prompts" and len(frame) == 2
        assert fit._licence("toy-prompts") == "CC0 (toy)" and fit._licence("mine.csv") == "user data"
        fit.check_licences(["toy-prompts"], "refusal", ship=True)
        with pytest.raises(InputError, match="--data toy-prompts: this set is marked 'weights: no' for the harm judge"):
            fit.check_licences(["toy-prompts"], "harm", ship=True)
    finally:
        R.REPLY_SETS._entries.pop("toy-prompts", None)
    assert "toy-prompts" not in R.REPLY_SETS
    with pytest.raises(InputError, match="neither a file nor a known"):
        R.load_replies("toy-prompts")


def test_reader_errors_name_file_row_field(tmp_path):
    d = tmp_path / "diasafety"
    d.mkdir()
    (d / "train.json").write_text(json.dumps([{"context": "c", "response": "r", "category": "Biased Opinion",
                                                "label": "Maybe"}]))
    with pytest.raises(InputError, match=r"train.json: row 1: field 'label': unexpected value 'Maybe'"):
        R.read_diasafety(d)
    g = tmp_path / "gr.json"
    g.write_text(json.dumps([{"input": "no header", "output": "harmful"}]))
    with pytest.raises(InputError, match=r"gr.json: row 1: field 'input'"):
        R.read_beavertails(g)


def test_grouped_split_never_shares_a_prompt():
    df = pd.DataFrame({"pid": [f"p{i % 7}" for i in range(50)]})
    tr, te = R.grouped_split(df, test_size=0.3, seed=1)
    assert len(tr) + len(te) == 50
    assert not set(df["pid"].iloc[tr]) & set(df["pid"].iloc[te])
    assert R.grouped_split(df, test_size=0.3, seed=1)[1].tolist() == te.tolist()  # deterministic


def test_loso_holds_out_sources_and_their_prompts(monkeypatch):
    """LOSO never trains on the held-out source nor on any of the held-out rows' prompts."""
    from harmscope.classifiers.judges import fit as F

    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"source": "xstest-completions", "model": [f"m{i % 3}" for i in range(n)],
                       "pid": [f"q{i % 20}" for i in range(n)]})
    y = rng.choice(["comply", "refusal", "partial"], size=n)
    X = rng.normal(size=(n, 4)) + (y == "comply")[:, None]
    seen = []
    real_fit = F._fit

    def spy(Xtr, ytr, cfg, seed, texts=None, **kw):
        seen.append(Xtr)
        return real_fit(Xtr, ytr, cfg, seed, texts, **kw)

    monkeypatch.setattr(F, "_fit", spy)
    res, out = F.loso("refusal", df, X, y, {"hidden": 0, "C": 1.0}, folds=4)
    assert not np.isnan(out[:, 0]).any() and set(res["per_source"]) == {f"xstest-completions:m{i}" for i in range(3)}
    # every fit: rows of one model held out, and their prompts removed from the other models
    for Xtr in seen:
        rows = [int(np.flatnonzero((X == r).all(1))[0]) for r in Xtr]
        assert len({df["model"][i] for i in rows}) <= 2
    assert len(seen) == 3 * 4
    total = sum(len(s) for s in seen)
    assert total < 3 * 4 * 80  # prompts of the held-out fold were dropped from training too


def test_head_matches_sklearn_and_roundtrips(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from harmscope.classifiers.judges.heads import Head, fit_head

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * [1, 10, 0.1, 1, 3] + [0, 5, 0, 0, 0]
    y = (X[:, 0] + X[:, 1] / 10 > 0.5).astype(int)
    h = fit_head(X, y, C=1.0)
    # reference: sklearn on standardised features
    mu, sd = X.mean(0), X.std(0) + 1e-6
    ref = LogisticRegression(C=1.0, max_iter=3000, random_state=0).fit((X - mu) / sd, y.astype(str))
    assert np.allclose(h.proba(X)[:, 1], ref.predict_proba((X - mu) / sd)[:, 1], atol=1e-4)
    h3 = fit_head(X, np.array(["a", "b", "c"] * 66 + ["a", "b"]), C=1.0)
    h3.save(tmp_path / "h.npz")
    back = Head.load(tmp_path / "h.npz")
    assert back.classes == ["a", "b", "c"] and back.digest == h3.digest
    assert np.allclose(back.proba(X), h3.rounded().proba(X), atol=1e-6)
    assert np.allclose(back.proba(X).sum(1), 1.0)


def test_refusal_binary_view_counts_partial_as_refused():
    from harmscope.classifiers.judges.fit import binary_view, metrics

    y = np.array(["comply", "partial", "refusal", "comply"])
    proba = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    t, p, s = binary_view("refusal", y, proba, ["comply", "partial", "refusal"])
    assert t.tolist() == [1, 0, 0, 1] and p.tolist() == [1, 1, 0, 0]
    m = metrics("refusal", y, proba, ["comply", "partial", "refusal"])
    # hand-computed: tp=1 fp=1 tn=1 fn=1 -> accuracy 0.5, 3-class: comply, comply(x), refusal, partial(x) -> 0.5
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1) and m["accuracy"] == 0.5
    assert m["accuracy_3class"] == 0.5


def test_licence_check_refuses_weights_no_sets():
    from harmscope.classifiers.judges.fit import check_licences

    check_licences(["gptfuzz", "diasafety"], "harm", ship=True)
    check_licences(["xstest-completions"], "refusal", ship=True)
    with pytest.raises(InputError, match="jailjudge.*weights: no"):
        check_licences(["jailjudge"], "harm", ship=True)
    with pytest.raises(InputError, match="xstest-completions"):
        check_licences(["xstest-completions"], "harm", ship=True)
    check_licences(["jailjudge"], "harm", ship=False)  # a private head may use anything


def test_refusal_labels_decide_complied_first():
    from harmscope.classifiers.judges.fit import binary_view, metrics
    from harmscope.classifiers.judges.heads import refusal_labels

    classes = ["comply", "partial", "refusal"]
    proba = np.array([[0.45, 0.30, 0.25],  # most likely "comply", but not complied with 0.55: partial
                      [0.50, 0.10, 0.40],  # exactly 0.5 counts as complied
                      [0.40, 0.30, 0.30],  # a tie between the other two: the first of them in class order
                      [0.10, 0.15, 0.75],
                      [0.49, 0.02, 0.49]])
    assert refusal_labels(proba, classes) == ["partial", "comply", "partial", "refusal", "refusal"]
    y = np.array(["partial", "comply", "refusal", "refusal", "comply"])
    t, p, _ = binary_view("refusal", y, proba, classes)
    assert t.tolist() == [0, 1, 0, 0, 1] and p.tolist() == [0, 1, 0, 0, 0]
    m = metrics("refusal", y, proba, classes)  # by hand: tp 1, tn 3, fn 1 -> 0.8; 3-class 3 of 5 right
    assert (m["tp"], m["tn"], m["fn"], m["fp"]) == (1, 3, 1, 0) and m["accuracy"] == 0.8
    assert m["accuracy_3class"] == 0.6
    # the most likely class would call rows 1, 3 and 5 complied (row 5 by the tie going to the first class)
    assert [classes[i] for i in proba.argmax(1)] == ["comply", "comply", "comply", "refusal", "comply"]
