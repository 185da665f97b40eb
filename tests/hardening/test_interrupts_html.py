"""Class 7 (interrupts tell the truth) and HTML neutralisation of control/bidi characters."""

from __future__ import annotations

from harmscope import safeio
from harmscope.reports._html import neutralise
from tests.hardening.conftest import cli


def test_interrupt_with_nothing_written_says_so(monkeypatch, tmp_path):
    from harmscope.classifiers import strategies

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(strategies, "train", boom)
    r = cli(["train", "--clean", "corpus:clean", "--out", str(tmp_path / "m")])
    assert r.exit_code == 130
    assert "nothing was saved" in r.stderr and "work done so far is saved" not in r.stderr
    assert not (tmp_path / "m").exists()


def test_interrupt_after_writes_names_them():
    safeio.note_saved("out/summary.csv")
    msg = safeio.interrupt_message()
    assert "kept out/summary.csv" in msg


def test_html_neutralises_control_and_bidi_characters(tmp_path):
    evil = "ok\u202etxt.exe\x00\x1b[31m\x07\x85<b>x</b>\u2066"
    out = neutralise(evil)
    for ch in "\u202e\x00\x1b\x07\x85\u2066":
        assert ch not in out
    assert "[U+202E]" in out and "[U+001B]" in out and "ok" in out
    assert neutralise("line\nnext\ttab") == "line\nnext\ttab"
    from harmscope.reports._document import Document
    from harmscope.reports._html import render_html

    doc = Document(title="t\u202e", subtitle=[], blocks=[])
    html = render_html(doc, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "\u202e" not in html and "[U+202E]" in html
