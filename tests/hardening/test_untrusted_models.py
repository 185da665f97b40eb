"""Class 1: no code execution from a classifier folder; a tampered folder is one line."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from harmscope.errors import InputError
from tests.hardening.conftest import cli, one_error

torch = pytest.importorskip("torch")


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_file(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"config": _Evil(marker), "state_dict": {}}))
    return path


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    p = tmp_path / "texts.csv"
    p.write_text("text\nhello there\nyou are awful\n", encoding="utf-8")
    return p


def test_detoxify_export_folder_with_pickle_is_refused(tmp_path, texts):
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil_model"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"backend": "detoxify-export"}), encoding="utf-8")
    _evil_file(folder / "checkpoint.ckpt", marker)
    for args in (["predict", "--classifier", str(folder), "--data", str(texts), "--out", str(tmp_path / "o.csv")],
                 ["audit", "--classifier", str(folder), "--data", "templates", "--out", str(tmp_path / "audit")]):
        r = cli(args)
        assert not marker.exists(), "the pickle ran"
        assert r.exit_code == 2, r.stderr
        line = one_error(r)
        assert "checkpoint.ckpt" in line and "--trust-checkpoint" in line


def test_model_json_pointing_at_a_pickle_is_refused(tmp_path, texts):
    marker = tmp_path / "pwned2"
    evil = _evil_file(tmp_path / "evil.pkl", marker)
    folder = tmp_path / "m2"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"backend": "detoxify", "params": {"checkpoint": str(evil)}}),
                                       encoding="utf-8")
    from harmscope.classifiers.backends import load_classifier

    with pytest.raises(InputError, match="evil.pkl"):
        load_classifier(folder).predict_proba(["hi"])
    assert not marker.exists()


def test_trust_flag_names_the_file(tmp_path):
    import argparse

    from harmscope.classifiers.backends import TRUST_ENV, torch_load_checked

    ok = tmp_path / "full.pt"
    torch.save({"args": argparse.Namespace(a=1)}, ok)  # needs full unpickling
    with pytest.raises(InputError, match="needs unpickling.*refused.*--trust-checkpoint"):
        torch_load_checked(ok)
    os.environ[TRUST_ENV] = str(ok)
    try:
        assert torch_load_checked(ok)["args"].a == 1
    finally:
        del os.environ[TRUST_ENV]
    t = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "config": {"x": [1]}}, t)
    assert torch_load_checked(t)["config"] == {"x": [1]}  # plain weights need no trust


def _tfidf_folder(tmp_path: Path) -> Path:
    from harmscope.classifiers.backends import TfidfClassifier, save_model

    m = TfidfClassifier(bits=10).fit(["good day", "bad awful idiot", "nice", "stupid idiot"], [0, 1, 0, 1])
    return save_model(m, tmp_path / "tf")


TAMPER = {
    "truncated-card": lambda d: (d / "model.json").write_text('{"backend": "tfidf", "par', encoding="utf-8"),
    "card-is-list": lambda d: (d / "model.json").write_text("[1, 2]", encoding="utf-8"),
    "params-not-object": lambda d: _edit(d, params="x"),
    "bad-param": lambda d: _edit(d, params={"nope": 1}),
    "intercept-string": lambda d: _edit(d, intercept="abc"),
    "unknown-backend": lambda d: _edit(d, backend="evil"),
    "missing-npy": lambda d: (d / "coef.npy").unlink(),
    "wrong-shape": lambda d: np.save(d / "coef.npy", np.zeros((3, 3))),
    "object-array": lambda d: np.save(d / "idf.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True),
    "truncated-npy": lambda d: (d / "cols.npy").write_bytes((d / "cols.npy").read_bytes()[:60]),
    "cols-out-of-range": lambda d: np.save(d / "cols.npy", np.load(d / "cols.npy") + 10**9),
}


def _edit(d: Path, **kw) -> None:
    card = json.loads((d / "model.json").read_text(encoding="utf-8"))
    card.update(kw)
    (d / "model.json").write_text(json.dumps(card), encoding="utf-8")


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_tampered_model_folder_is_one_line(case, tmp_path, texts):
    d = _tfidf_folder(tmp_path)
    TAMPER[case](d)
    r = cli(["predict", "--classifier", str(d), "--data", str(texts), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 2, (r.stderr, r.exception)
    line = one_error(r)
    assert str(d) in line
    assert not (tmp_path / "o.csv").exists()
