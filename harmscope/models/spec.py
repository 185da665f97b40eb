"""Parse a model spec (string, dict or YAML file) into a :class:`ModelAdapter`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harmscope.errors import HarmscopeError
from harmscope.models.base import MODELS, ModelAdapter
from harmscope.types import ComponentSpec

SPEC_HELP = ("openai:MODEL@URL, hf:PATH, local:smollm2, replay:FILE, python:pkg.mod:fn, "
             "baseline:refuse, baseline:echo, or a YAML file")


def _adapter(prefix: str) -> type[ModelAdapter]:
    """The adapter class registered under ``prefix`` (a lazy entry is imported here)."""
    return MODELS.get(prefix).obj


def _parse_string(spec: str) -> dict[str, Any]:
    prefix, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise HarmscopeError(f"bad model spec {spec!r}: expected one of {SPEC_HELP}")
    prefix = prefix.strip().lower()
    if prefix not in MODELS:
        raise HarmscopeError(f"unknown model kind {prefix!r} in spec {spec!r}: expected one of {SPEC_HELP} "
                             f"(registered: {', '.join(MODELS.names())})")
    return {"adapter": prefix, **_adapter(prefix).parse(rest)}


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
    d = dict(d)
    prefix = str(d.pop("adapter")).lower()
    if prefix not in MODELS:
        raise HarmscopeError(f"{where}: unknown model adapter {prefix!r} (known: {', '.join(MODELS.names())})")
    cls = _adapter(prefix)
    unknown = set(d) - set(cls.fields) - set(cls.options)
    if unknown:
        raise HarmscopeError(f"{where}: unknown option(s) for {prefix}: {', '.join(sorted(unknown))}")
    try:
        return cls.from_spec(**d)
    except TypeError as exc:
        raise HarmscopeError(f"{where}: bad options for {prefix} ({exc})") from None


def load_model(spec: str | dict[str, Any] | Path | ComponentSpec) -> ModelAdapter:
    """Build the adapter a spec names. A bad spec raises a one-line :class:`HarmscopeError`.

    Strings are ``PREFIX:rest``: the adapter registered in :data:`MODELS` under ``PREFIX`` parses
    ``rest`` and builds itself (``openai:MODEL@URL``, ``hf:PATH``, ``local:smollm2``,
    ``replay:FILE``, ``python:pkg.mod:fn``, ``baseline:refuse|echo``, or a plugin's prefix); or the
    path of a YAML file with ``spec:`` (or ``adapter:`` + fields) and options such as
    ``api_key_env``, ``headers``, ``batch_size``; or a stored :class:`ComponentSpec`.
    """
    if isinstance(spec, ModelAdapter):
        return spec
    if isinstance(spec, ComponentSpec):
        return MODELS.create(spec)
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
