"""Spec parsing, replay, python, baselines, reasoning split, the openai adapter and secret redaction."""

from __future__ import annotations

import asyncio
import json

import pytest

from harmscope.benchmarks.runs.engine import run_probes
from harmscope.benchmarks.runs.store import Store
from harmscope.errors import HarmscopeError, InputError
from harmscope.models import (
    MODELS,
    BaselineAdapter,
    GenParams,
    HFAdapter,
    ModelCallError,
    OpenAIAdapter,
    PythonAdapter,
    ReplayAdapter,
    load_model,
    split_reasoning,
)
from harmscope.models.openai import parse_retry_after, redact_url
from harmscope.models.testing import FakeChatServer, fake_reply, make_probe_set, messages


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------- specs
def test_string_specs():
    m = load_model("openai:llama3:8b@http://127.0.0.1:11434/v1")
    assert isinstance(m, OpenAIAdapter) and m.model == "llama3:8b" and m.base_url == "http://127.0.0.1:11434/v1"
    m = load_model("openai:org@team/model@https://host.example/v1/")
    assert m.model == "org@team/model" and m.spec == "openai:org@team/model@https://host.example/v1"
    m = load_model("openai:gpt-x")
    assert m.model == "gpt-x" and m.base_url.startswith("http")
    assert isinstance(load_model("baseline:refuse"), BaselineAdapter)
    assert load_model("baseline:echo").spec == "baseline:echo"
    assert isinstance(load_model("python:json:dumps"), PythonAdapter)
    local = load_model("local:smollm2")
    assert isinstance(local, HFAdapter) and local.spec == "local:smollm2" and local.gguf_file.endswith(".gguf")
    assert {"openai", "hf", "replay", "python", "baseline"} <= set(MODELS.names())


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty model spec"),
        ("gpt4", "bad model spec 'gpt4'"),
        ("nope:x", "unknown model kind 'nope'"),
        ("baseline:maybe", "unknown baseline 'maybe'"),
        ("local:giant", "unknown local model 'giant'"),
        ("python:no_such_module_xyz:fn", "cannot import no_such_module_xyz"),
        ("python:json:no_such_fn", "has no attribute 'no_such_fn'"),
        ("python:json", "needs 'pkg.mod:fn'"),
        ("hf:/no/such/dir", "does not exist"),
        ("replay:/no/such.jsonl", "replay file not found"),
        ("openai:m@ftp://x", None),  # '@ftp://x' is part of the name, URL defaults
        ("missing.yaml", "model spec file not found"),
    ],
)
def test_bad_specs_raise_one_line(spec, match):
    if match is None:
        assert load_model(spec).model == "m@ftp://x"
        return
    with pytest.raises(HarmscopeError, match=match) as exc:
        load_model(spec)
    assert "\n" not in str(exc.value)


def test_yaml_and_dict_specs(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-secret-123")
    f = tmp_path / "model.yaml"
    f.write_text("spec: openai:m1@http://127.0.0.1:9/v1\napi_key_env: MY_TEST_KEY\nheaders: {X-Team: red}\n")
    m = load_model(str(f))
    assert isinstance(m, OpenAIAdapter) and m.model == "m1" and m._headers["X-Team"] == "red"
    assert m.describe()["headers"] == ["X-Team"] and m.describe()["api_key_env"] == "MY_TEST_KEY"
    m2 = load_model({"adapter": "baseline", "which": "echo"})
    assert m2.spec == "baseline:echo"
    f.write_text("spec: baseline:echo\nbatch_size: 3\n")
    with pytest.raises(HarmscopeError, match="unknown option"):
        load_model(str(f))
    f.write_text("- a list\n")
    with pytest.raises(HarmscopeError, match="must be a mapping"):
        load_model(str(f))
    f.write_text("api_key_env: X\n")
    with pytest.raises(HarmscopeError, match="needs 'spec'"):
        load_model(str(f))
    monkeypatch.delenv("MISSING_KEY_VAR", raising=False)
    with pytest.raises(HarmscopeError, match="MISSING_KEY_VAR is not set"):
        load_model({"spec": "openai:m@http://127.0.0.1:9/v1", "api_key_env": "MISSING_KEY_VAR"})


def test_genparams_validation_and_system():
    p = GenParams(system="S")
    assert [m.role for m in p.apply_system(messages("hi"))] == ["system", "user"]
    own = [messages("x")[0].model_copy(update={"role": "system"}), *messages("hi")]
    assert p.apply_system(own) == own  # the probe's own system turn wins
    assert GenParams().hash() == GenParams().hash() != GenParams(seed=1).hash()
    with pytest.raises(ValueError):
        GenParams(max_tokens=0)
    with pytest.raises(ValueError):
        GenParams(temperature=-1)


# ---------------------------------------------------------------- reasoning
@pytest.mark.parametrize(
    ("raw", "text", "reasoning"),
    [
        ("plain answer", "plain answer", None),
        ("<think>step one</think>The answer.", "The answer.", "step one"),
        ("<think>a</think>x<think>b</think>y", "xy", "a\n\nb"),
        ("hidden start</think> visible", "visible", "hidden start"),
        ("visible <think>never closed", "visible", "never closed"),
        ("<think></think>only", "only", None),
    ],
)
def test_split_reasoning(raw, text, reasoning):
    assert split_reasoning(raw) == (text, reasoning)


# ---------------------------------------------------------------- replay / python / baselines
def test_replay(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text(
        json.dumps({"probe_id": "a", "text": "A0"}) + "\n\n"
        + json.dumps({"probe_id": "a", "sample": 1, "text": "<think>hm</think>A1"}) + "\n"
        + json.dumps({"probe_id": "b", "text": "B", "reasoning": "why"}) + "\n"
    )
    m = ReplayAdapter(f)
    p = GenParams()
    assert run(m.generate(messages("q"), p, probe_id="a")).text == "A0"
    r1 = run(m.generate(messages("q"), p, probe_id="a", sample=1))
    assert (r1.text, r1.reasoning) == ("A1", "hm")
    assert run(m.generate(messages("q"), p, probe_id="b")).reasoning == "why"
    with pytest.raises(ModelCallError, match="no recorded reply for probe c"):
        run(m.generate(messages("q"), p, probe_id="c"))
    # identity follows the content, not the file name
    g = tmp_path / "copy.jsonl"
    g.write_text(f.read_text())
    assert ReplayAdapter(g).spec_hash == m.spec_hash


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{bad json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: expected a JSON object"),
        ('{"text": "x"}', "line 2: field 'probe_id'"),
        ('{"probe_id": "x", "text": 3}', "line 2: field 'text'"),
        ('{"probe_id": "x", "text": "t", "sample": -1}', "line 2: field 'sample'"),
        ('{"probe_id": "x", "text": "t", "reasoning": 5}', "line 2: field 'reasoning'"),
    ],
)
def test_replay_bad_lines(tmp_path, line, match):
    f = tmp_path / "r.jsonl"
    f.write_text('{"probe_id": "ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(InputError, match=match) as exc:
        ReplayAdapter(f)
    assert str(f) in str(exc.value)


def test_python_adapter_sync_async_dict(tmp_path, monkeypatch):
    mod = tmp_path / "my_test_models.py"
    mod.write_text(
        "async def shout(messages):\n    return messages[-1]['content'].upper()\n"
        "def structured(messages, params):\n"
        "    return {'text': f\"t={params['temperature']} n={len(messages)}\", 'reasoning': 'r'}\n"
        "def bad(messages):\n    return 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    p = GenParams(temperature=0.5, system="sys")
    assert run(load_model("python:my_test_models:shout").generate(messages("hey"), p)).text == "HEY"
    r = run(load_model("python:my_test_models:structured").generate(messages("hey"), p, probe_id="z"))
    assert (r.text, r.reasoning, r.probe_id) == ("t=0.5 n=2", "r", "z")
    with pytest.raises(ModelCallError, match="returned int"):
        run(load_model("python:my_test_models:bad").generate(messages("hey"), p))


def test_baselines_are_labelled_and_behave():
    refuse, echo = BaselineAdapter("refuse"), BaselineAdapter("echo")
    assert "calibration baseline" in refuse.describe()["description"]
    assert "not a language model" in echo.describe()["description"]
    conv = [*messages("first"), messages("x")[0].model_copy(update={"role": "assistant"}), *messages("last")]
    assert run(echo.generate(conv, GenParams())).text == "last"
    assert "not able to help" in run(refuse.generate(conv, GenParams())).text


def test_generate_batch_default():
    out = run(BaselineAdapter("echo").generate_batch([messages("a"), messages("b")], GenParams(),
                                                     probe_ids=["1", "2"], samples=[0, 3]))
    assert [(r.text, r.probe_id, r.sample) for r in out] == [("a", "1", 0), ("b", "2", 3)]


# ---------------------------------------------------------------- openai over HTTP
def test_openai_reply_usage_and_reasoning():
    p = GenParams(max_tokens=5, seed=1)
    with FakeChatServer() as srv:
        m = OpenAIAdapter("fake", srv.url)
        r = run(m.generate(messages("please think about this"), p, probe_id="q"))
        body = m.body(messages("please think about this"), p)
        want = fake_reply(body)["choices"][0]["message"]["content"]
        assert want.startswith("<think>")
        assert r.text == want.split("</think>", 1)[1] and r.reasoning.startswith("considering ")
        assert r.completion_tokens == fake_reply(body)["usage"]["completion_tokens"]
        r2 = run(m.generate(messages("give a reason"), p))
        assert r2.reasoning.startswith("reasoning ") and "<think>" not in r2.text
        assert r2.finish_reason == "stop" and r2.latency_s >= 0


def test_openai_body_fields():
    m = OpenAIAdapter("mm", "http://127.0.0.1:9/v1", extra_body={"top_k": 3}, max_tokens_field="max_completion_tokens")
    b = m.body(messages("x"), GenParams(stop=("END",), seed=None, system="S"))
    assert b["max_completion_tokens"] == 256 and "max_tokens" not in b and b["stop"] == ["END"]
    assert "seed" not in b and b["top_k"] == 3 and b["messages"][0] == {"role": "system", "content": "S"}


def test_openai_http_errors_are_classified():
    with FakeChatServer(fault_rate=1.0, faults=("429",), retry_after="7") as srv:
        with pytest.raises(ModelCallError) as exc:
            run(OpenAIAdapter("fake", srv.url).generate(messages("x"), GenParams()))
    assert exc.value.retryable and exc.value.status == 429 and exc.value.retry_after == 7.0
    with FakeChatServer(model="right") as srv:
        with pytest.raises(ModelCallError) as exc:
            run(OpenAIAdapter("wrong", srv.url).generate(messages("x"), GenParams()))
    assert exc.value.status == 404 and not exc.value.retryable


def test_preflight_fails_fast_with_clear_messages(monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(HarmscopeError, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        run(OpenAIAdapter("m", f"http://127.0.0.1:{port}/v1").preflight())
    monkeypatch.setenv("T_KEY", "sk-wrong")
    with FakeChatServer(model="served-model", api_key="sk-right") as srv:
        with pytest.raises(HarmscopeError, match="rejected the API key.*T_KEY"):
            run(OpenAIAdapter("served-model", srv.url, api_key_env="T_KEY").preflight())
        monkeypatch.setenv("T_KEY", "sk-right")
        with pytest.raises(HarmscopeError, match=r"model 'nope' is not served .*available: served-model"):
            run(OpenAIAdapter("nope", srv.url, api_key_env="T_KEY").preflight())
        run(OpenAIAdapter("served-model", srv.url, api_key_env="T_KEY").preflight())
        with pytest.raises(HarmscopeError, match="not found .*base URL"):
            run(OpenAIAdapter("served-model", srv.url.replace("/v1", "/v2"), api_key_env="T_KEY").preflight())


def test_secret_never_stored(tmp_path, monkeypatch):
    secret = "sk-test-DO-NOT-LEAK-93a7"
    monkeypatch.setenv("HS_TEST_KEY", secret)
    ps = make_probe_set(5)
    with FakeChatServer(api_key=secret) as srv:
        m = load_model({"spec": f"openai:fake@{srv.url}", "api_key_env": "HS_TEST_KEY"})
        assert secret not in repr(m) and secret not in json.dumps(m.describe())
        st = Store(tmp_path / "s.sqlite")
        man = run_probes(ps, m, st, run_dir=tmp_path / "run", progress=False)
        assert srv.seen_auth == {f"Bearer {secret}"}
    assert man.counts["answered"] == 5
    st.close()
    for f in [tmp_path / "s.sqlite", *(tmp_path / "run").iterdir()]:
        assert secret.encode() not in f.read_bytes(), f
    wal = tmp_path / "s.sqlite-wal"
    if wal.exists():
        assert secret.encode() not in wal.read_bytes()
    assert "HS_TEST_KEY" in (tmp_path / "run" / "manifest.json").read_text()  # the variable's name only


def test_url_redaction_and_retry_after_parsing():
    assert redact_url("https://user:pw@host:8443/v1/?key=abc&x=1") == "https://host:8443/v1?key=***&x=***"
    assert parse_retry_after("3") == 3.0 and parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


def test_echoed_secret_is_scrubbed_from_errors(monkeypatch):
    import httpx

    secret = "sk-echo-me-4242"
    monkeypatch.setenv("ECHO_KEY", secret)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad request, you sent {request.headers['authorization']}")

    m = OpenAIAdapter("m", "http://127.0.0.1:9/v1", api_key_env="ECHO_KEY")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), headers=m._headers)
    monkeypatch.setattr(m, "_get_client", lambda: client)
    with pytest.raises(ModelCallError) as exc:
        run(m.generate(messages("x"), GenParams()))
    assert secret not in str(exc.value) and "Bearer ***" in str(exc.value)
    with pytest.raises(HarmscopeError) as exc2:
        run(m.preflight())
    assert secret not in str(exc2.value)


# ---------------------------------------------------------------- typed specs (registry)
def test_component_specs_are_redacted_and_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-secret-spec-123456")
    monkeypatch.setenv("MY_TEAM_TOKEN", "tok-secret-987654")
    m = load_model({"spec": "openai:m1@http://127.0.0.1:9/v1?key=qsecret", "api_key_env": "MY_TEST_KEY",
                    "headers": {"X-Team": "red"}, "headers_env": {"X-Token": "MY_TEAM_TOKEN"},
                    "max_tokens_field": "max_completion_tokens"})
    cs = m.component_spec()
    assert (cs.kind, cs.name, cs.version) == ("model adapter", "openai", MODELS.get("openai").version)
    assert cs.args == {"model": "m1", "base_url": "http://127.0.0.1:9/v1?key=***", "api_key_env": "MY_TEST_KEY",
                       "headers_env": {"X-Token": "MY_TEAM_TOKEN"}, "max_tokens_field": "max_completion_tokens"}
    dumped = cs.model_dump_json()
    assert "sk-secret" not in dumped and "tok-secret" not in dumped and "qsecret" not in dumped
    again = MODELS.create(cs)  # the key and the header come back from the environment, by name
    assert again._headers["X-Token"] == "tok-secret-987654" and again._key == "sk-secret-spec-123456"
    for spec, args in (("baseline:refuse", {"which": "refuse"}), ("python:json:dumps", {"target": "json:dumps"})):
        a = load_model(spec)
        assert a.component_spec().args == args and load_model(a.component_spec()).spec == spec
    f = tmp_path / "r.jsonl"
    f.write_text('{"probe_id": "p", "text": "x"}\n')
    r = load_model(f"replay:{f}")
    assert r.component_spec().args == {"path": str(f)} and MODELS.create(r.component_spec()).spec_hash == r.spec_hash


def test_spec_prefixes_and_options_come_from_the_registry(tmp_path):
    from harmscope.models.base import ModelAdapter

    @MODELS.register
    class EchoTwice(ModelAdapter):
        """Echo, twice (a test adapter reached only through the registry)."""

        name = "h2-echo-twice"
        version = "1"
        fields = ("word",)
        options = ("times",)
        local = True

        def __init__(self, word: str, times: int = 2):
            self.word, self.times = word, times

        @property
        def spec(self) -> str:
            return f"h2-echo-twice:{self.word}"

        async def generate(self, messages, params, *, probe_id="", sample=0):
            return self._response(probe_id, sample, " ".join([self.word] * self.times))

    try:
        m = load_model("h2-echo-twice:hey")
        assert isinstance(m, EchoTwice) and m.kind == "h2-echo-twice"
        assert run(m.generate(messages("x"), GenParams())).text == "hey hey"
        assert load_model({"spec": "h2-echo-twice:ho", "times": 3}).times == 3
        with pytest.raises(HarmscopeError, match="unknown option.*for h2-echo-twice: batch_size"):
            load_model({"spec": "h2-echo-twice:ho", "batch_size": 3})
        assert m.component_spec().args == {"word": "hey"}
    finally:
        MODELS._entries.pop("h2-echo-twice", None)
