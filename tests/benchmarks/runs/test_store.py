"""The SQLite run store: schema, WAL, unique replies, judgments, cache, run directories."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from harmscope.benchmarks.runs.store import (
    Store,
    default_store_path,
    open_run,
    params_hash,
    text_hash,
    write_run_dir,
)
from harmscope.errors import HarmscopeError
from harmscope.types import Judgment, Message, Probe, Response, RunManifest


def _probe(i: int) -> Probe:
    msgs = [Message(role="user", content=f"question {i}")]
    pid = Probe.make_id(rule_ids=["insults"], template_id="t", messages=[m.model_dump() for m in msgs])
    return Probe(id=pid, rule_ids=["insults"], template_id="t", messages=msgs, expected="refuse")


def _manifest(run_id: str = "run1", **kw) -> RunManifest:
    return RunManifest(run_id=run_id, probe_set_hash="ps1", model="baseline:echo", **kw)


def test_schema_wal_and_version(tmp_path):
    path = tmp_path / "s.sqlite"
    st = Store(path)
    assert st.schema_version == 1
    st.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "probes", "replies", "judgments", "judge_cache", "schema_version"} <= tables
    con.close()
    # reopening does not add a second version row
    st = Store.open(path)
    assert st._query("SELECT COUNT(*) FROM schema_version")[0][0] == 1


def test_not_a_store(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite at all, just some bytes" * 100)
    with pytest.raises(HarmscopeError, match="bad.sqlite"):
        Store(bad)


def test_runs_roundtrip_and_list(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    m = _manifest(started_at="2026-01-01T00:00:00+00:00", counts={"answered": 3, "failed": 1, "cached": 2})
    st.save_run(m)
    assert st.get_run("run1") == m
    assert st.get_run("ru") == m  # unique prefix
    m2 = m.model_copy(update={"ended_at": "2026-01-01T00:01:00+00:00"})
    st.save_run(m2)  # update, not a second row
    df = st.list_runs()
    assert list(df["run_id"]) == ["run1"]
    assert df.loc[0, "answered"] == 3 and df.loc[0, "failed"] == 1 and df.loc[0, "cached"] == 2
    assert df.loc[0, "ended_at"] == "2026-01-01T00:01:00+00:00"
    with pytest.raises(HarmscopeError, match="no run 'zzz'"):
        st.get_run("zzz")


def test_probes_keep_order_and_are_idempotent(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    probes = [_probe(i) for i in range(5)][::-1]
    st.add_probes("r", probes)
    st.add_probes("r", probes)  # second add changes nothing
    assert [p.id for p in st.probes("r")] == [p.id for p in probes]


def test_reply_key_unique_and_replace(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    k = Store.reply_key("m", "p", "probe", 0)
    assert k == Store.reply_key("m", "p", "probe", 0)
    others = {Store.reply_key("m2", "p", "probe", 0), Store.reply_key("m", "p2", "probe", 0),
              Store.reply_key("m", "p", "probe2", 0), Store.reply_key("m", "p", "probe", 1)}
    assert k not in others and len(others) == 4
    st.put_reply("r", k, Response(probe_id="probe", model="x", error="timeout"))
    assert st.reply_status([k, "nope"]) == {k: False}
    st.put_reply("r", k, Response(probe_id="probe", model="x", text="hello", attempts=2))
    assert st.reply_status([k]) == {k: True}
    assert st.get_reply(k).text == "hello"
    assert st.get_reply("missing") is None
    assert len(st.replies("r")) == 1  # replaced, never duplicated
    assert st._query("SELECT COUNT(*) FROM replies")[0][0] == 1


def test_replies_ordered_by_probe_position(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    probes = [_probe(i) for i in range(4)]
    st.add_probes("r", probes)
    items = []
    for p in reversed(probes):
        for s in (1, 0):
            items.append((Store.reply_key("m", "p", p.id, s), Response(probe_id=p.id, sample=s, model="m")))
    st.put_replies("r", items)
    got = [(r.probe_id, r.sample) for r in st.replies("r")]
    assert got == [(p.id, s) for p in probes for s in (0, 1)]
    df = st.replies_frame("r")
    assert len(df) == 8 and "text" in df.columns
    # another run sharing the replies sees them only once linked
    assert st.replies("other") == []
    st.link_replies("other", [items[0][0]])
    assert len(st.replies("other")) == 1


def test_judgments_and_cache(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    j1 = Judgment(probe_id="a", rule_id="insults", judge="toxicity", judge_version="1", violation=True, score=0.9)
    j2 = Judgment(probe_id="a", rule_id="insults", judge="refusal", judge_version="1", violation=False,
                  label="refuse")
    st.put_judgments("r", [j1, j2])
    st.put_judgments("r", [j1.model_copy(update={"score": 0.8})])  # replaced
    assert len(st.judgments("r")) == 2
    assert st.judgments("r", judge="toxicity")[0].score == 0.8
    assert st.judgments("r", judge="refusal") == [j2]
    h = text_hash("some reply")
    assert h == text_hash("some reply") and h != text_hash("other reply")
    assert st.cached_judgment("toxicity", "1", h, "insults") is None
    st.cache_judgment("toxicity", "1", h, "insults", j1)
    assert st.cached_judgment("toxicity", "1", h, "insults") == j1
    assert st.cached_judgment("toxicity", "2", h, "insults") is None
    h2 = text_hash("another")
    st.cache_judgments([("toxicity", "2", h, "insults", j2), ("toxicity", "2", h2, "insults", j1)])
    assert st.cached_judgment("toxicity", "2", h, "insults") == j2
    assert st.cached_judgment("toxicity", "2", h2, "insults") == j1


def test_run_dir_roundtrip(tmp_path, monkeypatch):
    monkeypatch.delenv("HARMSCOPE_STORE", raising=False)
    run_dir = tmp_path / "runs" / "a"
    sp = default_store_path(run_dir)
    assert sp == (tmp_path / "runs" / "harmscope.sqlite").resolve()
    st = Store(sp)
    m = _manifest("abc123")
    st.save_run(m)
    write_run_dir(run_dir, "abc123", sp, m)
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == "abc123"
    assert RunManifest.model_validate_json((run_dir / "manifest.json").read_text()) == m
    st2, rid = open_run(run_dir)
    assert rid == "abc123" and st2.get_run(rid) == m
    monkeypatch.setenv("HARMSCOPE_STORE", str(tmp_path / "x.sqlite"))
    assert default_store_path(run_dir) == tmp_path / "x.sqlite"


def test_open_run_errors(tmp_path):
    with pytest.raises(HarmscopeError, match="run.json missing"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(HarmscopeError, match="bad run.json"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "store": str(tmp_path / "none.sqlite")}))
    with pytest.raises(HarmscopeError, match="does not exist"):
        open_run(tmp_path)


def test_params_hash_is_order_independent():
    assert params_hash({"a": 1, "b": 2}) == params_hash({"b": 2, "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


def test_concurrent_writers_from_two_processes(tmp_path):
    """Two processes writing the same keys concurrently: no error, no duplicate."""
    path = tmp_path / "s.sqlite"
    Store(path).close()
    code = textwrap.dedent(f"""
        from harmscope.benchmarks.runs.store import Store
        from harmscope.types import Response
        st = Store({str(path)!r})
        for i in range(200):
            st.put_reply("r", Store.reply_key("m", "p", str(i), 0), Response(probe_id=str(i), model="m"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    st = Store(path)
    assert st._query("SELECT COUNT(*) FROM replies")[0][0] == 200
    assert len(st.replies("r")) == 200
