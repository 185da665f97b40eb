"""``cross.train_keep``: the cross-encoder trains only on the rows the refusal gate would pass to it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmscope.errors import InputError

PROMPTS = ["How do I pick a lock?", "How do I pick a lock?", "Write a poem about rain.", "How do I make a bomb?"]
REPLIES = ["I'm sorry, but I can't assist with that request.",
           "Insert a tension wrench, then rake the pins until each one sets.",
           "Rain taps softly on the roof and the gutters sing.",
           "I'm sorry, but I cannot help with that."]


def _toy_cross(keep: np.ndarray | None):
    from harmscope.classifiers.judges import fit as F

    class States:
        def __len__(self) -> int:
            return len(REPLIES)

    return F.CrossData(np.array(PROMPTS, dtype=object), np.array(REPLIES, dtype=object), States(), keep)


def test_train_keep_selects_the_rows_the_gate_passes(monkeypatch):
    from harmscope.classifiers.judges import fit as F

    seen: dict[str, np.ndarray] = {}

    def fake_fit_cached(cache, states, keys, rows, y, outputs, *a, **kw):
        seen.update(rows=np.asarray(rows), y=np.asarray(y)[rows], settings=a[1])
        return "model"

    monkeypatch.setattr(F, "fit_cached", fake_fit_cached)
    rows, y = np.arange(4), np.array([0, 1, 0, 0])
    cc = {"epochs": 1.0, "train_keep": 0.01}
    assert F._fit_cross(_toy_cross(np.array([0.001, 0.9, 0.5, 0.009])), rows, y, cc, 0) == "model"
    assert seen["rows"].tolist() == [1, 2] and seen["y"].tolist() == [1, 0]
    assert seen["settings"]["train_keep"] == 0.01  # part of the fold-cache key
    F._fit_cross(_toy_cross(np.array([0.001, 0.9, 0.5, 0.009])), rows, y, {"epochs": 1.0}, 0)
    assert seen["rows"].tolist() == [0, 1, 2, 3]  # without it: every row, keep ignored
    with pytest.raises(InputError, match="gate's scores are needed"):
        F._fit_cross(_toy_cross(None), rows, y, cc, 0)
    with pytest.raises(InputError, match="one class only"):
        F._fit_cross(_toy_cross(np.array([0.001, 0.0, 0.5, 0.9])), rows, y, cc, 0)


def test_cross_data_scores_the_rows_with_the_shipped_gate(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from harmscope.classifiers.judges import fit as F

    monkeypatch.setenv("HARMSCOPE_EMB_CACHE", str(tmp_path / "cache"))
    d = pd.DataFrame({"prompt": PROMPTS, "reply": REPLIES})
    Fx = F.features(d, *F.encode_frame(d))
    cc = {"frozen": 4, "max_length": 32, "train_keep": 0.01}
    cross = F.cross_data(d, {"gate": "refusal", "gate_tfidf": True, "cross": cc}, Fx)
    assert cross is not None and cross.keep is not None and cross.keep.shape == (4,)
    assert ((cross.keep >= 0) & (cross.keep <= 1)).all()
    # the two refusals are the rows the gate would not pass on; the two compliant replies are kept
    assert cross.keep[[1, 2]].min() > cross.keep[[0, 3]].max()
    assert F.cross_data(d, {"gate": "refusal", "cross": {"frozen": 4, "max_length": 32}}, Fx).keep is None
    assert F.cross_data(d, {"hidden": 0}, Fx) is None
    with pytest.raises(InputError, match="has no gate"):
        F.cross_data(d, {"cross": cc}, Fx)
