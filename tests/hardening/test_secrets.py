"""Class 2 and 3: the API key never reaches disk or the terminal; credentials in the URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from harmscope import secrets
from harmscope.errors import HarmscopeError
from harmscope.models.spec import _parse_string, load_model
from tests.hardening.conftest import all_bytes, cli, one_error
from tests.hardening.hostile_server import HostileServer

KEY = "sk-se/cret-1234567890abcdef"


def test_mask_covers_raw_escaped_encoded_and_truncated_forms():
    secrets.register(KEY)
    forms = [KEY, KEY.replace("/", "\\/"), quote(KEY, safe=""), KEY[:12], KEY[-9:],
             "".join(f"\\u{ord(c):04x}" for c in KEY)]
    for form in forms:
        text = f"before {form} after"
        masked = secrets.mask(text)
        assert form not in masked, form
        assert masked.startswith("before ") and masked.endswith(" after")
    assert secrets.mask("nothing secret here") == "nothing secret here"


@pytest.mark.parametrize("bad", ["sk-secret-123\n", "sk-sécret-123", "sk-secret\x1b[2J"])
def test_key_with_control_or_non_ascii_chars_is_refused_without_printing_it(bad, probes_file, tmp_path):
    r = cli(["run", "--model", "openai:m@http://127.0.0.1:9/v1", "--probes", str(probes_file),
             "--out", str(tmp_path / "run")], env={"OPENAI_API_KEY": bad})
    assert r.exit_code == 2
    line = one_error(r)
    assert "OPENAI_API_KEY" in line and "sk-s" not in r.stderr + r.stdout
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("mode", ["echo401", "echo500", "echo200"])
def test_key_echoed_by_server_appears_nowhere(mode, probes_file, tmp_path):
    with HostileServer(mode) as srv:
        args = ["run", "--model", f"openai:m@{srv.url}", "--probes", str(probes_file), "--out",
                str(tmp_path / "w" / "run"), "--max-retries", "0", "--no-preflight"]
        r = cli(args, env={"OPENAI_API_KEY": KEY})
        r2 = cli(args[:-1], env={"OPENAI_API_KEY": KEY})  # with the preflight
    out = r.stdout + r.stderr + r2.stdout + r2.stderr
    blob = all_bytes(tmp_path / "w")
    assert (tmp_path / "w" / "harmscope.sqlite").is_file()
    for form in (KEY, KEY.replace("/", "\\/"), KEY[:12], KEY[-9:]):
        assert form not in out, (form, out)
        assert form.encode() not in blob, form


def test_connection_error_and_preflight_messages_are_masked(monkeypatch):
    import httpx

    from harmscope.models.openai import OpenAIAdapter

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    a = OpenAIAdapter("m", "http://127.0.0.1:9/v1")

    async def boom(*a_, **k):
        raise httpx.ConnectError(f"refused while sending Bearer {KEY[:15]}")

    a._get_client = lambda: type("C", (), {"post": boom})()  # type: ignore[method-assign]
    import asyncio

    with pytest.raises(HarmscopeError) as ei:
        asyncio.run(a.preflight())
    assert KEY[:12] not in str(ei.value) and "cannot reach" in str(ei.value)


def test_model_at_url_with_credentials_is_parsed_and_refused():
    d = _parse_string("openai:m@http://user:pw-secret@127.0.0.1:8080/v1")
    assert d["model"] == "m" and d["base_url"] == "http://user:pw-secret@127.0.0.1:8080/v1"
    assert _parse_string("openai:org@team/m@https://h/v1")["model"] == "org@team/m"
    assert _parse_string("openai:a@b")["model"] == "a@b"
    with pytest.raises(HarmscopeError) as ei:
        load_model("openai:m@http://user:pw-secret@127.0.0.1:8080/v1")
    assert "pw-secret" not in str(ei.value) and "user:password" in str(ei.value)


def test_cli_credentials_in_url_never_printed(probes_file, tmp_path: Path):
    r = cli(["run", "--model", "openai:m@http://u:hunter2-pass@127.0.0.1:9/v1", "--probes", str(probes_file),
             "--out", str(tmp_path / "run")])
    assert r.exit_code == 2
    one_error(r)
    assert "hunter2" not in r.stderr + r.stdout
    assert not (tmp_path / "harmscope.sqlite").exists() or b"hunter2" not in all_bytes(tmp_path)
