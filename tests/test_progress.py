"""The one progress bar: no-op when disabled, the same columns everywhere when on."""

from __future__ import annotations

import io

from rich.console import Console

from harmscope.progress import ProgressBar, progress_bar


def test_disabled_bar_accepts_every_call():
    for bar in (progress_bar(10, "x", enabled=False), progress_bar(0, "x", enabled=True)):
        assert not bar.enabled
        bar.advance(3, failed=1)
        bar.update(completed=5, total=20)
        bar.stop()
        with bar:
            pass


def test_none_means_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: False))
    assert not progress_bar(10, "x").enabled
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    bar = progress_bar(10, "x")
    assert bar.enabled
    bar.stop()


def test_enabled_bar_shows_label_counts_fields_and_rate(monkeypatch):
    buf = io.StringIO()
    real = Console.__init__

    def to_buffer(self, *a, **kw):
        kw.pop("stderr", None)
        real(self, *a, file=buf, force_terminal=False, width=120, **kw)

    monkeypatch.setattr(Console, "__init__", to_buffer)
    bar = ProgressBar("run 1a2b", 5, enabled=True, completed=1, fields={"failed": 0}, rate=True, eta=True)
    bar.advance(failed=0)
    bar.advance(2, failed=1)
    bar.stop()
    out = buf.getvalue().splitlines()[-1]
    assert "run 1a2b" in out and "4/5" in out and "failed 1" in out and "/s" in out and "ETA" in out
