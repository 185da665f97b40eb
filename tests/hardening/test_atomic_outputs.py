"""Classes 5 and 6: atomic writes keep the previous version; a stale result.json is never shown."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from harmscope.errors import HarmscopeError
from harmscope.safeio import atomic_path, atomic_write_text
from tests.hardening.conftest import cli, one_error
from tests.hardening.hostile_server import HostileServer


def test_failed_write_keeps_previous_file(tmp_path):
    p = tmp_path / "report.pdf"
    p.write_bytes(b"old complete report")
    with pytest.raises(HarmscopeError, match=r"disk full writing .*report.pdf; previous version kept"):
        with atomic_path(p) as tmp:
            tmp.write_bytes(b"half a rep")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert p.read_bytes() == b"old complete report"
    assert [x.name for x in tmp_path.iterdir()] == ["report.pdf"]
    atomic_write_text(p, "new")
    assert p.read_text() == "new"


def test_train_on_full_disk_keeps_the_old_model(tmp_path, monkeypatch):
    from harmscope.classifiers.backends import TfidfClassifier, load_classifier, save_model

    texts, y = ["good day", "bad awful idiot", "nice", "stupid idiot"], [0, 1, 0, 1]
    out = tmp_path / "model"
    old = save_model(TfidfClassifier(bits=10).fit(texts, y), out)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    real = np.save
    n = {"calls": 0}

    def full(path, arr, **kw):
        n["calls"] += 1
        if n["calls"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, arr, **kw)

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(HarmscopeError, match="disk full writing .*model; previous version kept"):
        save_model(TfidfClassifier(bits=11).fit(texts, y), out)
    monkeypatch.setattr(np, "save", real)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left
    assert load_classifier(out).predict_proba(["idiot"]).shape == (1, 2)


def test_save_into_a_foreign_folder_never_deletes_other_files(tmp_path):
    from harmscope.classifiers.backends import TfidfClassifier, save_model

    (tmp_path / "notes.txt").write_text("mine")
    save_model(TfidfClassifier(bits=10).fit(["a b", "c d"], [0, 1]), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "model.json").is_file()


def test_stale_result_is_moved_aside_and_never_reported(probes_file, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = {"manifest": {"run_id": "0ld0ld0ld0ld0ld0"}, "summary": {}}
    (run / "result.json").write_text(json.dumps(stale))
    with HostileServer("ok") as srv:
        r = cli(["run", "--model", f"openai:m@{srv.url}", "--probes", str(probes_file), "--out", str(run)])
    assert r.exit_code == 0, r.stderr
    assert "scored from another run" in r.stderr
    assert not (run / "result.json").exists()
    assert (run / "result.stale-0ld0ld0ld0ld.json").is_file()
    # a result.json copied back by hand is refused by report, naming both ids
    (run / "result.json").write_text(json.dumps(stale))
    r = cli(["report", str(run), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 2
    assert "0ld0ld0ld0ld0ld0" in one_error(r)
