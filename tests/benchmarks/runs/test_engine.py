"""The run engine with in-process models: resume, samples, retries, failures, rate limits, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from harmscope.benchmarks.runs.engine import TokenBucket, arun_probes, run_id_for, run_probes
from harmscope.benchmarks.runs.store import Store, open_run
from harmscope.errors import HarmscopeError
from harmscope.models import BaselineAdapter, GenParams, ModelCallError, PythonAdapter
from harmscope.models.testing import make_probe_set


def _echo_upper(messages):
    return messages[-1]["content"].upper()


def test_run_stores_every_reply_once_and_resumes(tmp_path):
    ps = make_probe_set(40)
    st = Store(tmp_path / "s.sqlite")
    model = PythonAdapter(_echo_upper)
    m1 = run_probes(ps, model, st, concurrency=5, progress=False, run_dir=tmp_path / "run")
    assert m1.counts == {"total": 40, "answered": 40, "failed": 0, "cached": 0, "missing": 0, "retries": 0}
    replies = st.replies(m1.run_id)
    assert [r.probe_id for r in replies] == [p.id for p in ps.probes]
    assert all(r.text == p.messages[0].content.upper() for r, p in zip(replies, ps.probes, strict=True))
    assert m1.ended_at is not None and m1.started_at is not None
    # same command again: same run id, nothing re-generated, same replies
    m2 = run_probes(ps, model, st, concurrency=5, progress=False, run_dir=tmp_path / "run")
    assert m2.run_id == m1.run_id and m2.started_at == m1.started_at
    assert m2.counts["cached"] == 40 and m2.counts["answered"] == 0
    assert st.replies(m1.run_id) == replies
    assert len(st.list_runs()) == 1
    # the run directory points at the store and the run
    st2, rid = open_run(tmp_path / "run")
    assert rid == m1.run_id and len(st2.replies(rid)) == 40
    saved = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert saved["counts"]["cached"] == 40 and saved["model"].startswith("python:")


def test_run_id_depends_on_what_defines_the_answers():
    p = GenParams()
    base = run_id_for("ps", "m", p, 1)
    assert base == run_id_for("ps", "m", GenParams(), 1)
    assert len({base, run_id_for("ps2", "m", p, 1), run_id_for("ps", "m2", p, 1),
                run_id_for("ps", "m", GenParams(temperature=0.5), 1), run_id_for("ps", "m", p, 2)}) == 5


def test_samples_and_params_reach_the_model(tmp_path):
    seen = []

    def fn(messages, params):
        seen.append((messages[0]["role"], params["temperature"], params["max_tokens"]))
        return "ok"

    ps = make_probe_set(3)
    st = Store(tmp_path / "s.sqlite")
    params = GenParams(temperature=0.7, max_tokens=9, system="be brief")
    m = run_probes(ps, PythonAdapter(fn), st, params=params, samples=3, progress=False)
    assert m.counts["total"] == 9 and m.counts["answered"] == 9
    assert sorted((r.probe_id, r.sample) for r in st.replies(m.run_id)) == sorted(
        (p.id, s) for p in ps.probes for s in range(3))
    assert seen == [("system", 0.7, 9)] * 9
    assert m.params["temperature"] == 0.7 and m.params["samples"] == 3
    # more samples later: the first three per probe are reused
    m2 = run_probes(ps, PythonAdapter(fn), st, params=params, samples=4, progress=False)
    assert m2.run_id != m.run_id and m2.counts["cached"] == 9 and m2.counts["answered"] == 3


def test_duplicate_probes_are_sent_once(tmp_path):
    ps = make_probe_set(5)
    ps = ps.model_copy(update={"probes": ps.probes + ps.probes[:2]})
    calls = []
    m = run_probes(ps, PythonAdapter(lambda msgs: calls.append(1) or "x"), Store(tmp_path / "s.sqlite"),
                   progress=False)
    assert len(calls) == 5 and m.counts["total"] == 5


def test_retries_then_success_counts_attempts(tmp_path):
    failures: dict[str, int] = {}

    async def flaky(messages):
        k = messages[-1]["content"]
        failures[k] = failures.get(k, 0) + 1
        if failures[k] <= 2:
            raise ModelCallError("HTTP 503", retryable=True)
        return f"fine {k}"

    ps = make_probe_set(10)
    st = Store(tmp_path / "s.sqlite")
    m = run_probes(ps, PythonAdapter(flaky), st, progress=False, backoff_base=0.001, max_retries=5)
    assert m.counts["answered"] == 10 and m.counts["retries"] == 20
    assert {r.attempts for r in st.replies(m.run_id)} == {3}
    assert all(r.text.startswith("fine ") for r in st.replies(m.run_id))


def test_bounded_retries_record_failure_and_rerun_retries_them(tmp_path):
    state = {"broken": True, "calls": 0}

    def fn(messages):
        state["calls"] += 1
        if state["broken"]:
            raise ModelCallError("HTTP 500: boom", retryable=True)
        return "recovered"

    ps = make_probe_set(4)
    st = Store(tmp_path / "s.sqlite")
    m = run_probes(ps, PythonAdapter(fn), st, progress=False, backoff_base=0.001, max_retries=2)
    assert m.counts["failed"] == 4 and m.counts["answered"] == 0
    assert state["calls"] == 4 * 3  # 1 try + 2 retries each
    assert all(r.error == "HTTP 500: boom" and r.attempts == 3 for r in st.replies(m.run_id))
    state["broken"] = False
    m2 = run_probes(ps, PythonAdapter(fn), st, progress=False)
    assert m2.counts["answered"] == 4 and m2.counts["cached"] == 0
    assert [r.text for r in st.replies(m.run_id)] == ["recovered"] * 4
    assert st._query("SELECT COUNT(*) FROM replies")[0][0] == 4


def test_non_retryable_errors_fail_at_once(tmp_path):
    calls = []

    def fn(messages):
        calls.append(1)
        raise ValueError("adapter bug")

    m = run_probes(make_probe_set(3), PythonAdapter(fn), Store(tmp_path / "s.sqlite"), progress=False)
    assert len(calls) == 3 and m.counts["failed"] == 3


def test_timeout_applies_to_remote_models(tmp_path):
    class Slow(BaselineAdapter):
        local = False

        async def generate(self, messages, params, *, probe_id="", sample=0):
            await asyncio.sleep(5)

    st = Store(tmp_path / "s.sqlite")
    t0 = time.monotonic()
    m = run_probes(make_probe_set(2), Slow("echo"), st, timeout=0.05, max_retries=1, backoff_base=0.001,
                   progress=False)
    assert time.monotonic() - t0 < 3
    assert m.counts["failed"] == 2
    assert all(r.error == "timeout after 0.05s" and r.attempts == 2 for r in st.replies(m.run_id))


def test_rate_limit_spaces_requests(tmp_path):
    stamps = []

    def fn(messages):
        stamps.append(time.monotonic())
        return "x"

    run_probes(make_probe_set(12), PythonAdapter(fn), Store(tmp_path / "s.sqlite"), rate=20, concurrency=8,
               progress=False)
    # bucket of 2 (rate/10) then 20/s: 12 requests need at least (12 - 2) / 20 = 0.5 s
    assert stamps[-1] - stamps[0] >= 0.45


def test_token_bucket_math():
    async def go():
        b = TokenBucket(100.0, capacity=10)
        t0 = time.monotonic()
        await b.acquire(10)  # full bucket: immediate
        assert time.monotonic() - t0 < 0.05
        await b.acquire(5)  # needs 5 tokens at 100/s = 0.05 s
        dt = time.monotonic() - t0
        assert 0.04 <= dt < 0.5
        b.refund(100)
        assert b.tokens == pytest.approx(10, abs=1e-6)

    asyncio.run(go())
    with pytest.raises(HarmscopeError):
        TokenBucket(0)


def test_tokens_per_min_limits(tmp_path):
    stamps = []

    def fn(messages):
        stamps.append(time.monotonic())
        return "x"

    # each request is estimated at ~5 + 8 + 20 tokens; 6000 tokens/min = 100 tokens/s, bucket 1000
    ps = make_probe_set(40)
    run_probes(ps, PythonAdapter(fn), Store(tmp_path / "s.sqlite"), tokens_per_min=6000,
               params=GenParams(max_tokens=20), concurrency=4, progress=False)
    # ~40 * 33 = 1320 tokens: 1000 in the bucket, the rest at 100/s -> >= ~3 s
    assert stamps[-1] - stamps[0] >= 2.5


def test_cancel_leaves_store_consistent_and_resume_completes(tmp_path):
    async def slowish(messages):
        await asyncio.sleep(0.01)
        return "done " + messages[-1]["content"]

    ps = make_probe_set(200)
    st = Store(tmp_path / "s.sqlite")
    model = PythonAdapter(slowish)

    async def interrupted():
        task = asyncio.create_task(arun_probes(ps, model, st, concurrency=4, progress=False,
                                               run_dir=tmp_path / "run"))
        await asyncio.sleep(0.15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    (run_id,) = st.list_runs()["run_id"]
    part = st.get_run(run_id)
    assert part.ended_at is None and 0 < part.counts["answered"] < 200
    assert part.counts["missing"] == 200 - part.counts["answered"]
    assert len(st.replies(run_id)) == part.counts["answered"]
    m = run_probes(ps, model, st, concurrency=4, progress=False)
    assert m.run_id == run_id and m.counts["cached"] == part.counts["answered"]
    assert m.counts["cached"] + m.counts["answered"] == 200
    texts = [r.text for r in st.replies(run_id)]
    assert texts == ["done " + p.messages[0].content for p in ps.probes]


def test_bad_arguments():
    ps = make_probe_set(1)
    with pytest.raises(HarmscopeError, match="concurrency"):
        run_probes(ps, BaselineAdapter("echo"), ":memory:", concurrency=0, progress=False)
    with pytest.raises(HarmscopeError, match="store or a run_dir"):
        run_probes(ps, BaselineAdapter("echo"), None, progress=False)


def test_manifest_fields(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    m = run_probes(make_probe_set(2), BaselineAdapter("refuse"), st, progress=False)
    assert m.model == "baseline:refuse"
    assert m.probe_set_hash == make_probe_set(2).manifest.set_hash
    assert "calibration baseline" in m.params["model_adapter"]["description"]
    assert m.versions["engine"] == "1" and "python" in m.versions and "pydantic" in m.versions
    assert m.params["engine"]["concurrency"] == 8
    assert st.get_run(m.run_id) == m


def test_store_write_failure_stops_the_run(tmp_path):
    import sqlite3

    st = Store(tmp_path / "s.sqlite")
    calls = []

    def broken(run_id, items):
        raise sqlite3.OperationalError("disk I/O error")

    st.put_replies = broken

    async def slowish(messages):
        calls.append(1)
        await asyncio.sleep(0.001)
        return "x"

    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        run_probes(make_probe_set(200), PythonAdapter(slowish), st, concurrency=2, progress=False)
    assert len(calls) < 200  # stopped early instead of generating replies it cannot keep
