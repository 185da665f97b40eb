"""Replica runs: probes spread over two fake endpoints, written once to the client's store; a worker
killed mid-run; resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import pytest

from harmscope import engines as ex
from harmscope.benchmarks.runs.engine import run_probes
from harmscope.benchmarks.runs.replicas import run_replicas
from harmscope.benchmarks.runs.store import Store
from harmscope.errors import HarmscopeError
from harmscope.models import OpenAIAdapter
from harmscope.models.testing import FakeChatServer, make_probe_set

MODEL = "fake-model"


def _reference(tmp_path, ps, url, samples=1):
    """Replies of a plain single-endpoint run (the run engine), keyed by (probe, sample)."""
    st = Store(tmp_path / "ref.sqlite")
    m = run_probes(ps, OpenAIAdapter(MODEL, url), st, concurrency=4, samples=samples, progress=False)
    return m, {(r.probe_id, r.sample): r for r in st.replies(m.run_id)}


def _counts(path):
    with sqlite3.connect(path) as c:
        return (c.execute("SELECT COUNT(*) FROM replies").fetchone()[0],
                c.execute("SELECT COUNT(DISTINCT key) FROM replies").fetchone()[0])


def test_replicas_match_single_endpoint_and_resume(dask2, tmp_path):
    ps = make_probe_set(48)
    with FakeChatServer(delay=0.01) as a, FakeChatServer(delay=0.01) as b:
        specs = [f"openai:{MODEL}@{a.url}", f"openai:{MODEL}@{b.url}"]
        st = Store(tmp_path / "s.sqlite")
        m = run_replicas(ps, specs, st, samples=2, per_endpoint_concurrency=3, engine=dask2, batch_size=8,
                            run_dir=tmp_path / "run")
        assert m.counts == {"total": 96, "answered": 96, "failed": 0, "cached": 0, "missing": 0, "retries": 0}
        assert a.stats.ok > 0 and b.stats.ok > 0  # both endpoints did work
        assert a.stats.ok + b.stats.ok == 96  # and nothing was asked twice
        per = m.params["engine"]["replies_per_endpoint"]
        assert sorted(per.values()) == sorted([a.stats.ok, b.stats.ok])
        ref_m, ref = _reference(tmp_path, ps, a.url, samples=2)
        # same run id and same reply keys as a plain run against the first endpoint
        assert m.run_id == ref_m.run_id
        got = {(r.probe_id, r.sample): r for r in st.replies(m.run_id)}
        assert got.keys() == ref.keys()
        assert all(got[k].text == ref[k].text and got[k].model == ref[k].model for k in ref)
        assert _counts(st.path) == (96, 96)
        # resume: the same call asks no endpoint anything
        before = a.stats.requests + b.stats.requests
        m2 = run_replicas(ps, specs, st, samples=2, engine=dask2, preflight=False)
        assert m2.counts["cached"] == 96 and m2.counts["answered"] == 0
        assert a.stats.requests + b.stats.requests == before
        # a replica run also resumes a partial single-endpoint run (only the missing replies are asked for)
        st3 = Store(tmp_path / "s3.sqlite")
        half = make_probe_set(48)
        half.probes = half.probes[:20]
        run_probes(half, OpenAIAdapter(MODEL, a.url), st3, progress=False)
        before = a.stats.ok + b.stats.ok
        m3 = run_replicas(ps, specs, st3, engine=dask2, preflight=False)
        assert m3.counts["cached"] == 20 and m3.counts["answered"] == 28
        assert a.stats.ok + b.stats.ok - before == 28


def test_replicas_on_the_local_engine_and_faults(tmp_path):
    ps = make_probe_set(30)
    with FakeChatServer(fault_rate=0.3, seed=1) as a, FakeChatServer() as b:
        specs = [f"openai:{MODEL}@{a.url}", f"openai:{MODEL}@{b.url}"]
        st = Store(tmp_path / "s.sqlite")
        m = run_replicas(ps, specs, st, engine="local", per_endpoint_concurrency=2, batch_size=5,
                         max_retries=8)
        assert m.counts["answered"] == 30 and m.counts["failed"] == 0
        # 429/5xx/dropped replies were retried by the run engine ('slow' stays under the timeout)
        assert m.counts["retries"] == sum(v for k, v in a.stats.faults.items() if k != "slow") > 0
        _, ref = _reference(tmp_path, ps, b.url)
        got = {(r.probe_id, r.sample): r.text for r in st.replies(m.run_id)}
        assert got == {k: r.text for k, r in ref.items()}


def test_replicas_bad_input(tmp_path):
    ps = make_probe_set(2)
    with pytest.raises(HarmscopeError, match="at least one"):
        run_replicas(ps, [], tmp_path / "s.sqlite", engine="local")
    with pytest.raises(HarmscopeError, match="listed twice"):
        run_replicas(ps, ["baseline:echo", "baseline:echo"], tmp_path / "s.sqlite", engine="local")


@pytest.mark.slow
def test_killed_worker_mid_run_completes_without_duplicates(tmp_path):
    ps = make_probe_set(80)
    path = tmp_path / "s.sqlite"
    killed: list[int] = []
    with ex.engine_scope("dask:2") as eng, FakeChatServer(delay=0.06) as a, FakeChatServer(delay=0.06) as b:
        specs = [f"openai:{MODEL}@{a.url}", f"openai:{MODEL}@{b.url}"]
        pids = list(eng.worker_pids().values())

        def killer():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    n, _ = _counts(path)
                except sqlite3.Error:
                    n = 0
                if n >= 8:  # the first batch is stored, the rest is in flight
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(n)
                    return
                time.sleep(0.02)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        m = run_replicas(ps, specs, Store(path), per_endpoint_concurrency=2, batch_size=8, engine=eng)
        t.join(5)
        assert killed and killed[0] < 80, "the worker was not killed mid-run"
        assert m.counts["answered"] == 80 and m.counts["missing"] == 0
        assert _counts(path) == (80, 80)
        with sqlite3.connect(path) as c:
            assert c.execute("SELECT COUNT(*) FROM run_replies WHERE run_id = ?", (m.run_id,)).fetchone()[0] == 80
        _, ref = _reference(tmp_path, ps, a.url)
        got = {(r.probe_id, r.sample): r.text for r in Store(path).replies(m.run_id)}
        assert got == {k: r.text for k, r in ref.items()}
