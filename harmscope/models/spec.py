"""Parse a model spec (string, dict or YAML file) into a :class:`ModelAdapter`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harmscope.errors import HarmscopeError
from harmscope.models.base import ModelAdapter

SPEC_HELP = ("openai:MODEL@URL, hf:PATH, local:smollm2, replay:FILE, python:pkg.mod:fn, "
             "baseline:refuse, baseline:echo, or a YAML file")

_OPTIONS = {
    "openai": {"api_key_env", "headers", "headers_env", "extra_body", "max_tokens_field", "max_connections",
               "connect_timeout"},
    "hf": {"device", "dtype", "batch_size", "max_wait_ms", "threads"},
    "local": {"device", "dtype", "batch_size", "max_wait_ms", "threads"},
}


def _parse_string(spec: str) -> dict[str, Any]:
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise HarmscopeError(f"bad model spec {spec!r}: expected one of {SPEC_HELP}")
    kind = kind.strip().lower()
    if kind == "openai":
        # split on the last '@' that is followed by a scheme: an '@' inside the model name or
        # inside the URL's user:password part never splits the spec
        cut = max(rest.rfind("@http://"), rest.rfind("@https://"))
        if cut < 0:
            return {"adapter": "openai", "model": rest, "base_url": None}
        return {"adapter": "openai", "model": rest[:cut], "base_url": rest[cut + 1:]}
    if kind in ("hf", "replay"):
        return {"adapter": kind, "path": rest}
    if kind == "python":
        return {"adapter": "python", "target": rest}
    if kind == "baseline":
        return {"adapter": "baseline", "which": rest}
    if kind == "local":
        return {"adapter": "local", "name": rest}
    raise HarmscopeError(f"unknown model kind {kind!r} in spec {spec!r}: expected one of {SPEC_HELP}")


def _from_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarmscopeError(f"{path}: cannot read model spec ({first})") from None
    if not isinstance(data, dict):
        raise HarmscopeError(f"{path}: a model spec file must be a mapping (adapter:/spec: and options)")
    return _normalise(data, str(path))


def _normalise(d: dict[str, Any], where: str) -> dict[str, Any]:
    d = dict(d)
    if "spec" in d:
        base = _parse_string(str(d.pop("spec")))
        for k, v in base.items():
            d.setdefault(k, v)
    if "adapter" not in d:
        raise HarmscopeError(f"{where}: model spec needs 'spec' (e.g. openai:MODEL@URL) or 'adapter'")
    return d


def _build(d: dict[str, Any], where: str) -> ModelAdapter:
    from harmscope.models.hf import HFAdapter, smollm2_gguf
    from harmscope.models.openai import OpenAIAdapter
    from harmscope.models.simple import BaselineAdapter, PythonAdapter, ReplayAdapter

    d = dict(d)
    kind = str(d.pop("adapter")).lower()
    allowed = {
        "openai": {"model", "base_url"}, "hf": {"path"}, "local": {"name"}, "replay": {"path"},
        "python": {"target"}, "baseline": {"which"},
    }
    if kind not in allowed:
        raise HarmscopeError(f"{where}: unknown model adapter {kind!r} (known: {', '.join(sorted(allowed))})")
    unknown = set(d) - allowed[kind] - _OPTIONS.get(kind, set())
    if unknown:
        raise HarmscopeError(f"{where}: unknown option(s) for {kind}: {', '.join(sorted(unknown))}")
    try:
        if kind == "openai":
            return OpenAIAdapter(str(d.pop("model", "") or ""), d.pop("base_url", None), **d)
        if kind == "hf":
            return HFAdapter(os.path.expanduser(str(d.pop("path"))), **d)
        if kind == "local":
            name = str(d.pop("name"))
            if name.lower() != "smollm2":
                raise HarmscopeError(f"{where}: unknown local model {name!r} (known: smollm2)")
            return HFAdapter(smollm2_gguf(), spec_name="local:smollm2", **d)
        if kind == "replay":
            return ReplayAdapter(os.path.expanduser(str(d.pop("path"))))
        if kind == "python":
            return PythonAdapter(str(d.pop("target")))
        return BaselineAdapter(str(d.pop("which")))
    except TypeError as exc:
        raise HarmscopeError(f"{where}: bad options for {kind} ({exc})") from None


def load_model(spec: str | dict[str, Any] | Path) -> ModelAdapter:
    """Build the adapter a spec names. A bad spec raises a one-line :class:`HarmscopeError`.

    Strings: ``openai:MODEL@URL``, ``hf:PATH``, ``local:smollm2``, ``replay:FILE``,
    ``python:pkg.mod:fn``, ``baseline:refuse|echo``; or the path of a YAML file with ``spec:``
    (or ``adapter:`` + fields) and options such as ``api_key_env``, ``headers``, ``batch_size``.
    """
    if isinstance(spec, ModelAdapter):
        return spec
    if isinstance(spec, dict):
        return _build(_normalise(spec, "model spec"), "model spec")
    s = str(spec).strip()
    if not s:
        raise HarmscopeError(f"empty model spec: expected one of {SPEC_HELP}")
    p = Path(s)
    if p.suffix.lower() in (".yaml", ".yml"):
        if not p.is_file():
            raise HarmscopeError(f"{p}: model spec file not found")
        return _build(_from_yaml(p), str(p))
    return _build(_parse_string(s), f"model spec {s!r}")
