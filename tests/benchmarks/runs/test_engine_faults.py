"""The engine over HTTP through injected faults, and killed with SIGKILL then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harmscope.benchmarks.runs.engine import run_probes
from harmscope.benchmarks.runs.store import Store
from harmscope.models import GenParams, OpenAIAdapter
from harmscope.models.testing import FakeChatServer, fake_reply, make_probe_set, probe_key

PARAMS = GenParams(max_tokens=12, seed=3)


def _texts(store: Store, run_id: str) -> list[tuple[str, int, str, str | None, str | None]]:
    return [(r.probe_id, r.sample, r.text, r.reasoning, r.finish_reason) for r in store.replies(run_id)]


def _expected(ps, model="fake") -> list[str]:
    out = []
    for p in ps.probes:
        body = {"model": model, "messages": [m.model_dump() for m in p.messages], "max_tokens": PARAMS.max_tokens,
                "temperature": PARAMS.temperature, "seed": PARAMS.seed}
        out.append(fake_reply(body)["choices"][0]["message"]["content"])
    return out


def test_500_probes_through_faults_match_a_fault_free_run(tmp_path):
    ps = make_probe_set(500)
    with FakeChatServer() as clean:
        st0 = Store(tmp_path / "clean.sqlite")
        m0 = run_probes(ps, OpenAIAdapter("fake", clean.url), st0, params=PARAMS, concurrency=32,
                        progress=False)
    assert m0.counts["answered"] == 500 and clean.stats.faults == {}
    reference = _texts(st0, m0.run_id)
    assert [t[2] for t in reference] == _expected(ps)

    with FakeChatServer(fault_rate=0.3, seed=11, slow_s=1.0, retry_after="0.05") as srv:
        st = Store(tmp_path / "faulty.sqlite")
        m = run_probes(ps, OpenAIAdapter("fake", srv.url), st, params=PARAMS, concurrency=32, timeout=0.3,
                       max_retries=12, backoff_base=0.01, backoff_max=0.2, progress=False)
    faults = srv.stats.faults
    # every kind of fault happened, and often
    assert set(faults) == {"429", "500", "503", "slow", "drop"} and min(faults.values()) >= 15
    assert m.counts["answered"] == 500 and m.counts["failed"] == 0
    assert m.counts["retries"] >= sum(faults.values()) - faults["slow"]
    # every probe answered exactly once in the store, identical to the fault-free run
    assert _texts(st, m.run_id) == reference
    assert st._query("SELECT COUNT(*) FROM replies")[0][0] == 500
    assert sum(r.attempts - 1 for r in st.replies(m.run_id)) == m.counts["retries"]


def test_retry_after_is_honoured(tmp_path):
    ps = make_probe_set(6)
    with FakeChatServer(fault_rate=1.0, faults=("429",), retry_after="0.4", fault_first=6) as srv:
        srv.fault_rate = 0.0  # only the first 6 requests get a 429
        st = Store(tmp_path / "s.sqlite")
        m = run_probes(ps, OpenAIAdapter("fake", srv.url), st, params=PARAMS, concurrency=6,
                       backoff_base=0.001, progress=False)
    assert m.counts["answered"] == 6 and srv.stats.faults["429"] == 6
    for key, hits in srv.stats.times.items():
        if key == probe_key({"messages": [{"role": "user", "content": "Hi"}]}):
            continue  # the preflight request
        kinds = [k for _, k in hits]
        assert kinds == ["429", "ok"], kinds
        assert hits[1][0] - hits[0][0] >= 0.39  # waited the server's Retry-After, not the 1 ms backoff


def test_persistent_faults_end_in_recorded_failures(tmp_path):
    ps = make_probe_set(5)
    with FakeChatServer(fault_rate=1.0, faults=("500", "drop")) as srv:
        st = Store(tmp_path / "s.sqlite")
        m = run_probes(ps, OpenAIAdapter("fake", srv.url), st, params=PARAMS, max_retries=3,
                       backoff_base=0.001, progress=False)
    assert m.counts["failed"] == 5 and m.counts["answered"] == 0
    errors = [r.error for r in st.replies(m.run_id)]
    assert all(e.startswith(("HTTP 500", "connection error")) for e in errors), errors
    assert all(r.attempts == 4 for r in st.replies(m.run_id))


_CHILD = textwrap.dedent("""
    import sys
    from harmscope.benchmarks.runs.engine import run_probes
    from harmscope.models import GenParams, OpenAIAdapter
    from harmscope.models.testing import make_probe_set
    from harmscope.benchmarks.runs.store import Store
    url, store, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    m = run_probes(make_probe_set(n), OpenAIAdapter("fake", url), Store(store),
                   params=GenParams(max_tokens=12, seed=3), concurrency=4, progress=False)
    print("DONE", m.run_id, m.counts["answered"], m.counts["cached"])
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_midway_then_resume_loses_and_duplicates_nothing(tmp_path):
    n = 120
    ps = make_probe_set(n)
    store_path = tmp_path / "s.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with FakeChatServer(delay=0.02) as srv:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, srv.url, str(store_path), str(n)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while srv.stats.ok < 40 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert child.poll() is None, child.communicate()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        st = Store(store_path)
        (run_id,) = st.list_runs()["run_id"]
        stored_before = len(st.replies(run_id))
        assert 0 < stored_before < n
        assert st.get_run(run_id).ended_at is None
        out = subprocess.run([sys.executable, "-c", _CHILD, srv.url, str(store_path), str(n)], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        done, rid, answered, cached = out.stdout.split()
        assert rid == run_id and int(cached) == stored_before and int(answered) == n - stored_before
    # nothing lost, nothing duplicated, identical to an uninterrupted run
    assert st._query("SELECT COUNT(*) FROM replies")[0][0] == n
    assert [r.text for r in st.replies(run_id)] == _expected(ps)
    assert st.get_run(run_id).ended_at is not None
