"""Cross-encoders inside the harm and rule heads: the combination, storage, and training with folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmscope.classifiers.judges.heads import GatedHead, Head
from harmscope.classifiers.judges.rule_model import N_PROTO, RuleHead

pytest.importorskip("torch")
pytest.importorskip("transformers")


class FakeCross:
    """Stands in for a CrossEncoderHead: fixed logits per reply text."""

    digest = "fake0001"

    def __init__(self, outputs, table):
        self.outputs, self.table = outputs, table

    def logits(self, prompts, replies, **kw):
        return np.array([self.table[r] for r in replies], dtype=np.float32)


def _sig(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))


def test_harm_content_is_the_weighted_logit_average_then_gated():
    inner = Head([(np.array([[2.0], [0.0]]), np.array([-1.0]))], ["0", "1"])  # logit 2*x0 - 1
    gate = Head([(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), np.zeros(3))], ["comply", "partial", "refusal"])
    ce = FakeCross(["harm"], {"a": [3.0], "b": [-2.0]})
    g = GatedHead(inner, gate, cross=ce, cross_weight=0.25)
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    p = g.proba(X, ["a", "b"], ["q1", "q2"])[:, 1]
    z_head = np.array([1.0, -1.0])
    content = _sig(0.25 * np.array([3.0, -2.0]) + 0.75 * z_head)
    refused = np.array([1 / 3, np.exp(2) / (2 + np.exp(2))])
    assert p == pytest.approx(content * (1 - refused), rel=1e-6)
    # precomputed logits give the same answer without running the cross-encoder
    assert g.proba(X, ["a", "b"], cross_logits=np.array([3.0, -2.0]))[:, 1] == pytest.approx(p)
    assert g.reads_prompts and g.digest != GatedHead(inner, gate).digest
    with pytest.raises(ValueError, match="prompts and the replies"):
        g.proba(X, ["a", "b"])


class CountingCross(FakeCross):
    """A FakeCross that records which replies it was asked to score."""

    def __init__(self, outputs, table):
        super().__init__(outputs, table)
        self.seen: list[str] = []

    def logits(self, prompts, replies, **kw):
        self.seen.extend(replies)
        return super().logits(prompts, replies, **kw)


def test_harm_gate_first_skips_the_cross_encoder_on_refused_rows():
    inner = Head([(np.array([[2.0], [0.0]]), np.array([-1.0]))], ["0", "1"])  # logit 2*x0 - 1
    # P(refusal) = softmax over logits (0, 0, 4 * x1): row 0 (x1 = 0) 1/3, row 1 (x1 = 2) e^8 / (2 + e^8)
    gate = Head([(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 4.0]]), np.zeros(3))], ["comply", "partial", "refusal"])
    ce = CountingCross(["harm"], {"a": [3.0], "b": [-2.0]})
    g = GatedHead(inner, gate, cross=ce, cross_weight=0.25, cross_skip=0.01)
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    p = g.proba(X, ["a", "b"], ["q1", "q2"])[:, 1]
    keep = np.array([2 / 3, 2 / (2 + np.exp(8))])  # row 1: P(not refused) 6.7e-4 < 0.01 -> skipped
    assert ce.seen == ["a"]
    want = np.array([_sig(0.25 * 3.0 + 0.75 * 1.0), _sig(-1.0)]) * keep
    assert p == pytest.approx(want, rel=1e-5, abs=1e-7)
    # the precomputed path applies the same rule (training figures = scoring figures)
    assert g.proba(X, ["a", "b"], cross_logits=np.array([3.0, -2.0]))[:, 1] == pytest.approx(want, rel=1e-5, abs=1e-7)
    # the skipped row moves by less than the threshold against the full computation
    full = GatedHead(inner, gate, cross=ce, cross_weight=0.25).proba(X, ["a", "b"], ["q1", "q2"])[:, 1]
    assert abs(full[1] - p[1]) < 0.01 and full[0] == pytest.approx(p[0])
    assert g.digest != GatedHead(inner, gate, cross=ce, cross_weight=0.25).digest
    with pytest.raises(ValueError, match="cross_skip"):
        GatedHead(inner, gate, cross=ce, cross_skip=1.0)
    with pytest.raises(ValueError, match="needs both a gate and a cross-encoder"):
        GatedHead(inner, None, cross=ce, cross_skip=0.01)
    # every row skipped: the cross-encoder is never run; P(not refused) exactly at the threshold is not skipped
    ce.seen.clear()
    X2 = np.array([[1.0, 2.0], [0.0, 2.0]])
    assert GatedHead(inner, gate, cross=ce, cross_skip=0.5).proba(X2, ["a", "b"], ["q1", "q2"]).shape == (2, 2)
    assert ce.seen == []
    at = float(1.0 - gate.proba(X[:1])[0, 2])  # row 0's P(not refused), float32
    GatedHead(inner, gate, cross=ce, cross_skip=at).proba(X[:1], ["a"], ["q1"])
    assert ce.seen == ["a"]


def test_shipped_harm_head_runs_gate_first():
    from harmscope.classifiers.judges.harm import HEAD_PATH

    head = GatedHead.load(HEAD_PATH)
    assert head.cross_skip == 0.01 and head.gate is not None and head.cross is not None
    # v6: the top 4 layers trained, their weight matrices stored int8 (24 of them: 6 per layer)
    assert head.cross.frozen == 2 and head.cross.storage == "int8" and len(head.cross.quantized) == 24


def test_rule_cross_rows_use_the_cross_encoder_others_the_head():
    d = 2
    X = np.zeros((3, 6 * d + N_PROTO), np.float32)
    coef = np.zeros(X.shape[1], np.float32)
    ce = FakeCross(["insults", "self-harm"], {"x": [4.0, -1.0], "y": [0.5, -3.0], "z": [9.0, 9.0]})
    h = RuleHead(coef, 0.4, cross=ce, cross_weight=0.5)
    p = h.proba(X, ["insults", "self-harm", "other"], ["", "", ""], ["x", "y", "z"])
    # row 0: its own output (insults: 4.0) averaged with the head's logit 0.4; row 1: self-harm (-3.0); row 2: head
    assert p == pytest.approx(_sig([0.5 * 4.0 + 0.5 * 0.4, 0.5 * -3.0 + 0.5 * 0.4, 0.4]), rel=1e-6)
    nan = np.array([4.0, -3.0, np.nan])
    assert h.proba(X, ["insults", "self-harm", "other"], cross_logits=nan) == pytest.approx(p)
    assert h.proba(X) == pytest.approx(_sig([0.4] * 3))  # a bare rule text: the generic head
    # a rule row without a precomputed logit is scored from its texts
    part = np.array([np.nan, -3.0, np.nan])
    assert h.proba(X, ["insults", "self-harm", "other"], ["", "", ""], ["x", "y", "z"], cross_logits=part) \
        == pytest.approx(p)
    with pytest.raises(ValueError, match="prompts and the replies"):
        h.proba(X, ["insults", "self-harm", "other"], cross_logits=part)


def _toy_frame(n_ctx: int = 30) -> pd.DataFrame:
    rows = []
    for i in range(n_ctx):
        ctx = f"context number {i} about my day"
        for rule, bad, good in (("insults", "you are a worthless idiot", "that sounds like a nice day"),
                                ("self-harm", "go ahead and hurt yourself", "please talk to someone you trust")):
            for reply, v in ((bad, 1), (good, 0)):
                rows.append({"prompt": ctx, "reply": f"{reply} ({i})", "violation": v, "rule": rule,
                             "source": "diasafety", "pid": f"diasafety:{ctx}",
                             "line": f"{'val' if i % 5 == 0 else 'train'}.json:{len(rows)}",
                             "label": None, "category": None, "group": None, "model": None})
    return pd.DataFrame(rows)


def test_rule_training_with_a_cross_encoder(tmp_path):
    from harmscope.classifiers.judges.rule_model import train_rule_head
    from harmscope.rules import load_catalog

    rules = list(dict(load_catalog().rules).values())
    cfg = {"epochs": 3.0, "lr": 2e-4, "head_lr": 5e-3, "batch_size": 8, "weight": 1.0, "min_rows": 20,
           "max_length": 32}
    res = train_rule_head(rules, data=_toy_frame(), out=tmp_path, C=0.05, seed=0, block_scale=1.5,
                          cross=cfg, cache_dir=tmp_path / "cache")
    assert res["cross_encoder"]["rules"] == ["insults", "self-harm"]
    split = res["split"]
    assert split["diasafety"]["n"] == 24 and split["dropped_for_context"] == 0  # 6 val contexts x 4 replies
    assert split["diasafety"]["accuracy"] >= 0.9  # the toy task is easy
    head = RuleHead.load(tmp_path / "rule_head.npz")
    assert head.cross is not None and head.cross_rules == ["insults", "self-harm"] and head.cross.max_length == 32
    assert head.digest == res["head_digest"]
    # the fold models are cached: a second run trains nothing and gives the same head
    cached = sorted((tmp_path / "cache" / "crossenc").glob("*.npz"))
    again = train_rule_head(rules, data=_toy_frame(), out=tmp_path / "again", C=0.05, seed=0, block_scale=1.5,
                            cross=cfg, cache_dir=tmp_path / "cache")
    assert again["head_digest"] == res["head_digest"]
    assert sorted((tmp_path / "cache" / "crossenc").glob("*.npz")) == cached
    # int8 storage is not a training setting: the cached fold models serve it, quantised on the way out
    small = train_rule_head(rules, data=_toy_frame(), out=tmp_path / "int8", C=0.05, seed=0, block_scale=1.5,
                            cross={**cfg, "storage": "int8"}, cache_dir=tmp_path / "cache")
    assert sorted((tmp_path / "cache" / "crossenc").glob("*.npz")) == cached
    head8 = RuleHead.load(tmp_path / "int8" / "rule_head.npz")
    assert head8.cross.storage == "int8" and head8.digest == small["head_digest"] != res["head_digest"]
    assert (tmp_path / "int8" / "rule_head.npz").stat().st_size < 0.7 * (tmp_path / "rule_head.npz").stat().st_size
    assert small["split"]["diasafety"]["accuracy"] >= 0.9


def test_rule_dev_split_never_reads_the_val_split(tmp_path):
    """``dev``: a seeded share of train.json dialogue contexts is the test; val.json rows neither
    train nor test (the same figures with them removed from the input), and no head is saved."""
    from harmscope.classifiers.judges.crossenc import CrossEncoderHead
    from harmscope.classifiers.judges.rule_model import train_rule_head
    from harmscope.errors import InputError
    from harmscope.rules import load_catalog

    rules = list(dict(load_catalog().rules).values())
    cfg = {"epochs": 1.0, "lr": 2e-4, "head_lr": 5e-3, "batch_size": 8, "weight": 0.5, "min_rows": 20,
           "max_length": 32}
    df = _toy_frame(30)  # 6 val.json contexts, 24 train.json contexts, 4 replies each
    res = train_rule_head(rules, data=df, out=tmp_path, C=0.05, seed=0, cross=cfg, cache_dir=tmp_path / "c", dev=0.2)
    assert set(res) == {"dev", "settings", "seed"} and not (tmp_path / "rule_head.npz").exists()
    dev = res["dev"]
    assert dev["diasafety"]["n"] == 16 and dev["dropped_for_context"] == 0  # int(24 * 0.2) = 4 contexts x 4
    assert "4 of 24 dialogue contexts" in dev["how"]
    (model,) = (tmp_path / "c" / "crossenc").glob("*.npz")
    assert CrossEncoderHead.load(model).meta["trained_rows"] == 80  # the other 20 train.json contexts only
    no_val = df[~df["line"].str.startswith("val.json")].reset_index(drop=True)
    again = train_rule_head(rules, data=no_val, out=tmp_path, C=0.05, seed=0, cross=cfg, cache_dir=tmp_path / "c",
                            dev=0.2)
    assert again["dev"] == dev
    other = train_rule_head(rules, data=df, C=0.05, seed=1, cross=cfg, cache_dir=tmp_path / "c", dev=0.2)
    assert other["dev"]["diasafety"]["n"] == 16 and "seed 1" in other["dev"]["how"]
    with pytest.raises(InputError, match="dev split"):
        train_rule_head(rules, data=df, C=0.05, dev=0.2)  # no cross-encoder settings to compare
    with pytest.raises(InputError, match="between 0 and 1"):
        train_rule_head(rules, data=df, C=0.05, cross=cfg, dev=1.5)
    with pytest.raises(InputError, match="not a number"):
        train_rule_head(rules, data=df, C=0.05, cross=cfg, dev="a fifth")
    with pytest.raises(InputError, match="no DiaSafety train.json rows"):  # e.g. a copy without line numbers
        train_rule_head(rules, data=df.assign(line="mine.jsonl"), C=0.05, cross=cfg, dev=0.2)


def test_rule_cross_encoder_single_source_rules_and_cross_only_rows(tmp_path):
    """``single_source`` leaves out rules labelled by several sources; rows with ``_head`` False
    train the cross-encoder only (not the logistic head, not the held-out figures)."""
    from harmscope.classifiers.judges.rule_model import train_rule_head
    from harmscope.rules import load_catalog

    rules = list(dict(load_catalog().rules).values())
    dia = _toy_frame(30)
    ctx_no = dia["prompt"].str.extract(r"(\d+)")[0].astype(int)
    dia["_head"] = (ctx_no % 2 == 0).to_numpy()  # odd contexts: cross-encoder rows only
    lat = pd.DataFrame([{"prompt": f"translate sentence {i}", "reply": ("you stupid fool" if i % 2 else "hello there")
                         + f" [{i}]", "violation": i % 2, "rule": "insults", "source": "latent-jailbreak",
                         "pid": f"latent:{i}", "line": f"l{i}", "label": None, "category": None, "group": None,
                         "model": None, "_head": True} for i in range(20)])
    # min_rows 40: self-harm has 48 training rows in the split only with the cross-encoder-only rows (24 without)
    cfg = {"epochs": 1.0, "lr": 2e-4, "head_lr": 5e-3, "batch_size": 8, "weight": 0.5, "min_rows": 40,
           "max_length": 32, "single_source": True, "rows": "all"}
    res = train_rule_head(rules, data=pd.concat([dia, lat], ignore_index=True), out=tmp_path, C=0.05, seed=0,
                          block_scale=1.5, cross=cfg, cache_dir=tmp_path / "cache")
    assert res["cross_encoder"]["rules"] == ["self-harm"]  # insults has two sources
    per = res["loso"]["per_source"]
    assert per["diasafety"]["n"] == 60 and per["latent-jailbreak"]["n"] == 20  # only the head's rows are held out
    split = res["split"]
    assert split["diasafety"]["n"] == 24  # every val.json row, cross-encoder-only ones included
    assert split["head_only"]["diasafety"]["n"] == 24
    assert set(split["per_rule"]) == {"insults", "self-harm"}
    # insults rows have no cross-encoder output: the same score with and without it
    assert split["per_rule"]["insults"] == split["head_only"]["per_rule"]["insults"]
    # the head's rows alone, without a cross-encoder, give the same logistic head
    train_rule_head(rules, data=pd.concat([dia[dia["_head"]], lat], ignore_index=True).drop(columns="_head"),
                    out=tmp_path / "plain", C=0.05, seed=0, block_scale=1.5, evaluate=False)
    h, h0 = RuleHead.load(tmp_path / "rule_head.npz"), RuleHead.load(tmp_path / "plain" / "rule_head.npz")
    assert np.array_equal(h.coef, h0.coef) and h.intercept == h0.intercept


def test_rule_cross_encoder_without_diasafety_val_rows_falls_back_to_grouped_cv(tmp_path):
    """A user's own labelled file has no DiaSafety val.json rows: the in-distribution figures are the
    grouped CV (with the cross-encoder in every fold), not missing."""
    from harmscope.classifiers.judges.rule_model import train_rule_head
    from harmscope.rules import load_catalog

    rules = list(dict(load_catalog().rules).values())
    df = _toy_frame(20).assign(source="user-file", line="mine.jsonl")
    cfg = {"epochs": 1.0, "lr": 2e-4, "head_lr": 5e-3, "batch_size": 8, "weight": 0.5, "min_rows": 20,
           "max_length": 32}
    res = train_rule_head(rules, data=df, out=tmp_path, C=0.05, seed=0, cross=cfg, cache_dir=tmp_path / "cache",
                          folds=2)
    assert "split" not in res and res["per_source"]["user-file"]["n"] == 80
    assert set(res["per_rule"]) == {"insults", "self-harm"} and res["cross_encoder"]["rules"] == ["insults", "self-harm"]


def _cross_only_frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two sources of 20 rows; even rows are the head's sample, odd rows cross-encoder-only."""
    df = pd.DataFrame({"source": ["a"] * 20 + ["b"] * 20,
                       "pid": [f"a{i % 10}" for i in range(20)] + [f"b{i % 10}" for i in range(20)],
                       "_head": [i % 2 == 0 for i in range(40)]})
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = np.array([(i // 2) % 2 for i in range(40)])
    return df, X, y


def _recording_fit(monkeypatch):
    from harmscope.classifiers.judges import fit as F

    calls = []

    def fake_fit(X, y, cfg, seed, texts=None, rows=None, cross=None, cross_rows=None, cross_y=None):
        calls.append({"n": len(X), "rows": np.asarray(rows),
                      "cross_rows": None if cross_rows is None else np.asarray(cross_rows), "cross_y": cross_y})
        return F.fit_head(X, y, hidden=0, C=1.0, seed=seed)

    monkeypatch.setattr(F, "_fit", fake_fit)
    return F, calls


def test_reply_judge_cross_only_rows_train_the_cross_encoder_only(monkeypatch):
    """``"rows": "all"`` for a reply judge (harm): in every leave-one-source-out fold the head trains
    on the other source's sample rows, the cross-encoder on all its rows, and only the held-out
    source's sample rows are scored; the held-out source never trains either."""
    F, calls = _recording_fit(monkeypatch)
    df, X, y = _cross_only_frame()
    lo, out = F.loso("harm", df, X, y, {"C": 1.0}, cross=object())
    assert lo["per_source"]["a"]["n"] == 10 and lo["per_source"]["b"]["n"] == 10 and lo["pooled"]["n"] == 20
    assert np.isnan(out[1::2, 0]).all() and not np.isnan(out[0::2, 0]).any()
    assert len(calls) == 2
    for c in calls:
        held = "a" if c["rows"][0] >= 20 else "b"
        other = np.flatnonzero(df["source"].to_numpy() != held)
        assert c["n"] == len(c["rows"]) == 10 and set(c["rows"]) == set(other[0::2])  # head: sample rows
        assert set(c["cross_rows"]) == set(other) and np.array_equal(c["cross_y"], y[other])  # CE: all rows
    # without the flags every row is a head row and no separate cross-encoder rows are passed
    calls.clear()
    lo, _ = F.loso("harm", df.drop(columns="_head"), X, y, {"C": 1.0}, cross=object())
    assert lo["pooled"]["n"] == 40 and all(c["cross_rows"] is None and c["n"] == 20 for c in calls)


def test_reply_judge_cross_only_rows_in_grouped_cv(monkeypatch):
    """The grouped CV folds over the sample rows; each fold's cross-encoder also gets the
    cross-encoder-only rows whose prompt is not in the fold's test part."""
    F, calls = _recording_fit(monkeypatch)
    df, X, y = _cross_only_frame()
    res = F.grouped_cv("harm", df, X, y, {"C": 1.0}, folds=2, cross=object(), rows=np.arange(40))
    assert res["pooled"]["n"] == 20 and res["per_source"]["a"]["n"] == 10
    pid = df["pid"].to_numpy()
    for c in calls:
        test_pids = set(pid[0::2]) - set(pid[c["rows"]])
        assert all(r % 2 == 0 for r in c["rows"])
        assert not set(pid[c["cross_rows"]]) & test_pids
        assert set(c["cross_rows"]) == {i for i in range(40) if pid[i] not in test_pids}


def test_cross_rows_setting_is_checked(tmp_path):
    from harmscope.classifiers.judges.fit import train_judge
    from harmscope.errors import InputError

    with pytest.raises(InputError, match="config cross rows='every'"):
        train_judge("harm", [str(tmp_path / "unused.jsonl")], out=tmp_path / "h",
                    cfg={"cross": {"epochs": 1.0, "rows": "every"}})


def test_cross_rows_of_listed_sets_only(monkeypatch):
    """``"rows": ["a"]``: every row of set a comes with ``_head`` flags marking its sample; set b
    is sampled as usual (all its rows are head rows); ``"all"`` keeps every row of both."""
    from harmscope.classifiers.judges import fit as F

    frames = {n: pd.DataFrame({"reply": [f"{n}{i}" for i in range(10)], "source": n}) for n in ("a", "b")}
    monkeypatch.setattr(F, "load_replies", lambda n, on_bad="skip": frames[n])
    monkeypatch.setattr(F, "sample_sizes", lambda judge: {"a": 4, "b": 3})
    assert F.cross_all_rows({"cross": {"rows": ["a"]}}) == ["a"] and F.cross_all_rows({"cross": {}}) is False
    d = F.load_frame(["a", "b"], judge="harm", mark_sample=F.cross_all_rows({"cross": {"rows": ["a"]}}))
    a, b = d[d["source"] == "a"], d[d["source"] == "b"]
    assert len(a) == 10 and int(a["_head"].sum()) == 4
    assert len(b) == 3 and bool(b["_head"].all())
    assert set(a[a["_head"]]["reply"]) == set(F.sample_rows(frames["a"], 4)["reply"])  # the usual sample
    every = F.load_frame(["a", "b"], judge="harm", mark_sample=True)
    assert len(every) == 20 and int(every["_head"].sum()) == 7
    plain = F.load_frame(["a", "b"], judge="harm")
    assert len(plain) == 7 and "_head" not in plain
