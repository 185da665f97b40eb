"""``judges compare``: agreement numbers checked against hand-computed values on small files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_guards_fake import FakeGuardServer

from harmscope.classifiers.judges.agreement import calibration, compare_judges, load_labelled_table, pairwise
from harmscope.cli import main
from harmscope.errors import InputError

# rows: human label, two published judges' verdict columns (B abstains on row 4), source, category
CSV = """reply,prompt,human_majority,judge_a,judge_b,source,category
r1,p1,1,1,1,s1,c1
r2,p2,1,1,0,s1,c1
r3,p3,1,0,1,s1,c2
r4,p4,1,1,,s2,c2
r5,p5,0,0,0,s2,c1
r6,p6,0,1,0,s2,c1
r7,p7,0,0,1,s2,c2
r8,p8,0,0,0,s1,c2
"""


@pytest.fixture()
def refs_file(tmp_path):
    f = tmp_path / "labelled.csv"
    f.write_text(CSV)
    return f


def _by(rep, name):
    return next(j for j in rep["judges"] if j["judge"] == name)


def test_reference_columns_against_hand_computed(refs_file):
    rep = compare_judges(refs_file, reference_cols=["judge_a", "judge_b"])
    assert rep["n"] == 8 and rep["positive_rate"] == 0.5
    a = _by(rep, "ref:judge_a")["metrics"]
    # A: tp 3 (r1, r2, r4), fn 1 (r3), fp 1 (r6), tn 3
    assert (a["tp"], a["fn"], a["fp"], a["tn"]) == (3, 1, 1, 3)
    assert a["accuracy"] == 0.75 and a["precision"] == 0.75 and a["recall"] == 0.75
    assert a["kappa"] == pytest.approx(0.5)  # po .75, pe (4*4 + 4*4)/64 = .5
    assert a["abstention_rate"] == 0 and a["auc"] is None
    b = _by(rep, "ref:judge_b")["metrics"]
    # B answers 7 rows: tp 2 (r1, r3), fn 1 (r2), fp 1 (r7), tn 3
    assert (b["tp"], b["fn"], b["fp"], b["tn"]) == (2, 1, 1, 3)
    assert b["abstention_rate"] == pytest.approx(1 / 8) and b["n_answered"] == 7
    assert b["accuracy"] == pytest.approx(5 / 7) and b["precision"] == pytest.approx(2 / 3)
    assert b["kappa"] == pytest.approx(10 / 24)  # (35/49 - 25/49) / (24/49)
    (pw,) = rep["pairwise"]
    # on the 7 rows both answered: agree on r1, r5, r8; kappa (21/49 - 25/49) / (24/49) = -1/6
    assert pw["n"] == 7 and pw["agreement"] == pytest.approx(3 / 7) and pw["kappa"] == pytest.approx(-1 / 6)
    # only A right: r2, r7; only B right: r3, r6 -> exact McNemar p = min(1, 2 * P(X <= 2 | 4, .5)) = 1
    assert (pw["b_only_a_right"], pw["c_only_b_right"], pw["mcnemar_p"]) == (2, 2, 1.0)
    src = {r["source"]: r for r in _by(rep, "ref:judge_a")["by_source"]}
    assert src["s1"]["accuracy"] == 0.75 and src["s1"]["recall"] == pytest.approx(2 / 3)
    assert src["s2"]["accuracy"] == 0.75 and src["s2"]["precision"] == 0.5
    cat = {r["category"]: r for r in _by(rep, "ref:judge_a")["by_category"]}
    assert cat["c1"]["n"] == 4 and cat["c1"]["accuracy"] == 0.75 and cat["c2"]["accuracy"] == 0.75


def test_mcnemar_counts_asymmetric():
    y = np.array([1, 1, 1, 1, 0, 0])
    rows = pairwise(y, {"a": [1, 1, 1, 1, 0, 0], "b": [0, 0, 0, 1, 0, None]})
    # 5 rows both answered; only A right on 3 rows, never only B: p = 2 * (1/2)^3 = 0.25
    assert rows[0]["b_only_a_right"] == 3 and rows[0]["c_only_b_right"] == 0
    assert rows[0]["mcnemar_p"] == pytest.approx(0.25)


def test_calibration_ece_auc_and_threshold_by_hand():
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.8, 0.8, 0.2, 0.2, 0.2])
    cal = calibration(y, s)
    # bin [.2, .3): 3 rows, 1 positive -> |1/3 - .2| * 3/5; bin [.8, .9): |1/2 - .8| * 2/5
    assert cal["ece"] == pytest.approx((1 / 3 - 0.2) * 3 / 5 + 0.3 * 2 / 5)
    assert [b["n"] for b in cal["bins"]] == [3, 2]
    assert cal["suggested_threshold"] == pytest.approx(0.8) and cal["youden_j"] == pytest.approx(0.5 - 1 / 3)


def test_compare_cli_with_guard_and_reference_columns(tmp_path):
    rows = [("HARMFUL a", 1, 1), ("HARMFUL b", 0, 1), ("fine c", 1, 0), ("fine d", 0, 0), ("fine e", 0, 1)]
    f = tmp_path / "l.jsonl"
    f.write_text("".join(json.dumps({"reply": r, "prompt": "q", "violation": v, "gpt4_cf": g,
                                     "category": "<script>alert(1)</script>"}) + "\n" for r, v, g in rows))
    out = tmp_path / "rep"
    with FakeGuardServer() as srv:
        args = ["judges", "compare", "--data", str(f), "--judge", f"llama-guard:openai:ok@{srv.url}",
                "--reference-col", "gpt4_cf", "--out", str(out)]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        calls = sum(srv.calls.values())
        assert calls == 5
        r2 = CliRunner().invoke(main, args)  # cached verdicts: no new calls
        assert r2.exit_code == 0 and sum(srv.calls.values()) == calls
    rep = json.loads((out / "judge-agreement.json").read_text())
    lg = rep["judges"][0]
    assert lg["judge"].startswith("llama-guard:openai:ok@")
    m = lg["metrics"]
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 2) and m["accuracy"] == pytest.approx(0.6)
    assert m["auc"] == pytest.approx(3.5 / 6)  # Mann-Whitney with ties counted one half
    assert lg["calibration"]["ece"] == pytest.approx((1 / 3 - 0.2) * 3 / 5 + 0.3 * 2 / 5, abs=1e-9)
    g = rep["judges"][1]["metrics"]
    assert g["accuracy"] == pytest.approx(0.4) and (g["tp"], g["fp"], g["fn"], g["tn"]) == (1, 2, 1, 1)
    assert rep["pairwise"][0]["agreement"] == pytest.approx(4 / 5)  # differ on the last row only
    html = (out / "judge-agreement.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "data:image/png;base64," in html
    assert (out / "judge-agreement.pdf").read_bytes().startswith(b"%PDF")
    assert "ref:gpt4_cf" in r.output and "wrote" in r.output


def test_bad_input_is_one_line(tmp_path, refs_file):
    r = CliRunner().invoke(main, ["judges", "compare", "--data", str(refs_file), "--reference-col", "nope",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--reference-col 'nope': no such column" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("reply,violation,x\nfine,1,1\nfine,perhaps,0\n")
    with pytest.raises(InputError, match=r"bad.csv: row 3: field 'violation'"):
        load_labelled_table(bad)
    r = CliRunner().invoke(main, ["judges", "compare", "--data", str(bad), "--reference-col", "x",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "row 3: field 'violation'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["judges", "compare", "--data", str(tmp_path / "missing.csv"), "--reference-col", "x"])
    assert r.exit_code == 2 and "missing.csv" in r.output
    r = CliRunner().invoke(main, ["judges", "compare", "--data", str(refs_file), "--judge", "pattern",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "field 'rule'" in r.output


def test_named_labelled_reply_set(data_dir):
    pytest.importorskip("harmscope.classifiers.judges.replysets", reason="labelled-reply readers not installed")
    if not (data_dir / "jailbreakeval_mini" / "JAILJUDGEmini.csv").is_file():
        pytest.skip("JAILJUDGEmini.csv not in the shared data")
    t = load_labelled_table("jailjudge")
    # data README: 1,000 rows, 315 jailbroken; Llama Guard 3 categories S14 300, S3 300, S7 299, S5 101
    assert len(t) == 1000 and int(t["y"].sum()) == 315
    assert t["category"].value_counts().to_dict() == {"S14": 300, "S3": 300, "S7": 299, "S5": 101}


def test_positive_values_and_sklearn_reference(tmp_path):
    from sklearn.metrics import cohen_kappa_score, precision_score, recall_score

    human = ["1_full_compliance", "2_full_refusal", "1_full_compliance", "3_partial_refusal", "2_full_refusal",
             "1_full_compliance", "2_full_refusal"]
    gpt = ["1_full_compliance", "1_full_compliance", "1_full_compliance", "2_full_refusal", "2_full_refusal",
           "2_full_refusal", "1_full_compliance"]
    f = tmp_path / "xs.csv"
    f.write_text("completion,final_label,gpt4_label\n" + "".join(f"c{i},{h},{g}\n" for i, (h, g) in
                                                              enumerate(zip(human, gpt, strict=True))))
    rep = compare_judges(f, reference_cols=["gpt4_label"], label_col="final_label", positive=["1_full_compliance"])
    m = rep["judges"][0]["metrics"]
    y = [h == "1_full_compliance" for h in human]
    p = [g == "1_full_compliance" for g in gpt]
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p))
    assert m["precision"] == pytest.approx(precision_score(y, p)) and m["recall"] == pytest.approx(recall_score(y, p))
