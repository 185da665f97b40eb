"""Counterfactual identity swaps and HateCheck-style functional suites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmscope.errors import InputError
from harmscope.fairness.counterfactual import (
    TEMPLATES,
    Descriptor,
    counterfactual_report,
    fill,
    load_lexicon,
    run_counterfactual,
    swap_sentences,
    template_sentences,
)
from harmscope.fairness.functional import functional_report, read_suite

DESC = [
    Descriptor("religion", "Muslim", "Muslims"),
    Descriptor("religion", "atheist", "atheists"),
    Descriptor("ability", "deaf", "deaf people"),
]


def test_fill_articles_and_plurals() -> None:
    assert fill("I am {a} {term} person.", DESC[1]) == "I am an atheist person."
    assert fill("I am {a} {term} person.", DESC[2]) == "I am a deaf person."
    assert fill("{Plural} live on my street.", DESC[2]) == "Deaf people live on my street."
    df = template_sentences(DESC, axes=["religion"])
    assert len(df) == 2 * len(TEMPLATES) and set(df["term"]) == {"Muslim", "atheist"}
    assert all("{" not in t for t in df["text"])


def test_swap_sentences_within_axis() -> None:
    df = swap_sentences(["My muslim friend cooked dinner.", "No identity here.", "A deaf man waved."], DESC)
    assert df.attrs["dropped"] == 1
    first = df[df["template_id"] == 0]
    assert sorted(first["text"]) == ["My Muslim friend cooked dinner.", "My atheist friend cooked dinner."]
    assert list(df[df["template_id"] == 2]["text"]) == ["A deaf man waved."]


def test_report_hand_computed() -> None:
    # two descriptors x three templates; Muslim sentences score 0.1 higher, one of them above threshold
    sents = template_sentences(DESC[:2], templates=["a {term}", "b {term}", "c {term}"])
    scores = np.where(sents["term"] == "Muslim", [0.2, 0.3, 0.7] * 2, [0.1, 0.2, 0.6] * 2)
    d, a = counterfactual_report(sents, scores, threshold=0.5, n_boot=200, seed=0)
    by = {r["term"]: r for r in d}
    assert by["Muslim"]["mean_score"] == pytest.approx(0.4)
    assert by["atheist"]["mean_score"] == pytest.approx(0.3)
    assert by["Muslim"]["std"] == pytest.approx(np.std([0.2, 0.3, 0.7], ddof=1))
    assert by["Muslim"]["n_toxic"] == 1 and by["Muslim"]["toxic_rate"] == pytest.approx(1 / 3)
    assert not by["Muslim"]["flagged"]  # the mean stays below the threshold
    (ax,) = a
    assert ax["gap"] == pytest.approx(0.1) and (ax["highest"], ax["lowest"]) == ("Muslim", "atheist")
    # paired design: every template shows the same 0.1 gap, so every resample does too
    assert ax["gap_lo"] == pytest.approx(0.1) and ax["gap_hi"] == pytest.approx(0.1)
    assert ax["std"] == pytest.approx(np.std([0.4, 0.3], ddof=1))


def test_run_with_scorer_flags_toxic_descriptor() -> None:
    def scorer(texts: list[str]) -> np.ndarray:  # a scorer that reacts to one identity word
        return np.array([0.9 if "deaf" in t.lower() else 0.1 for t in texts])

    d, a, notes = run_counterfactual(scorer, n_boot=50, axes=None, lexicon=None)
    flagged = [r for r in d if r["flagged"]]
    assert flagged and all("deaf" in r["term"].lower() for r in flagged)
    assert any("score as toxic" in n for n in notes)
    gaps = {r["axis"]: r for r in a}
    axis = flagged[0]["axis"]
    assert gaps[axis]["gap"] == pytest.approx(0.8) and gaps[axis]["gap_p"] < 0.05


def test_packaged_lexicon_and_bad_lexicon(tmp_path) -> None:
    desc = load_lexicon()
    assert len({d.axis for d in desc}) >= 5 and all(d.term for d in desc)
    pref = load_lexicon(preferred_only=True)
    assert len(pref) <= len(desc) and all(d.preferred for d in pref)
    bad = tmp_path / "lex.yaml"
    bad.write_text("axes:\n  religion:\n    - {plural: x}\n")
    with pytest.raises(InputError, match="axis 'religion', entry 1: missing field 'term'"):
        load_lexicon(bad)


def test_functional_suite_by_hand(tmp_path) -> None:
    rows = [
        ("I hate group A.", "hateful", "derog", "A", 0.9),
        ("Group A people are vile.", "hateful", "derog", "B", 0.4),
        ("I love group A.", "non-hateful", "positive", "A", 0.2),
        ("Saying 'I hate group A' is wrong.", "non-hateful", "counter", "B", 0.8),
        ("Group B are fine.", "non-hateful", "positive", "B", 0.1),
    ]
    p = tmp_path / "suite.csv"
    pd.DataFrame(rows, columns=["test_case", "label_gold", "functionality", "target_ident", "s"]).to_csv(
        p, index=False
    )
    suite = read_suite(p)
    assert list(suite["gold"]) == [1, 1, 0, 0, 0]
    rep = {(r["by"], r["name"]): r for r in functional_report(suite, np.array([r[4] for r in rows]))}
    assert rep[("overall", "all")]["accuracy"] == pytest.approx(3 / 5)
    assert rep[("functionality", "derog")]["accuracy"] == pytest.approx(1 / 2)
    assert rep[("functionality", "counter")]["accuracy"] == 0.0
    assert rep[("functionality", "positive")]["accuracy"] == 1.0
    assert rep[("target", "A")]["accuracy"] == 1.0 and rep[("target", "B")]["accuracy"] == pytest.approx(
        1 / 3
    )
    pd.DataFrame(
        {"test_case": ["x"], "label_gold": ["maybe"], "functionality": ["f"], "target_ident": ["A"]}
    ).to_csv(p, index=False)
    with pytest.raises(InputError, match=r"row 1, column 'label_gold': gold label 'maybe'"):
        read_suite(p)
