"""Adapters that need no model: recorded replies, a Python callable, calibration baselines."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harmscope.errors import HarmscopeError, InputError
from harmscope.models.base import MODELS, GenParams, ModelAdapter, ModelCallError, split_reasoning
from harmscope.types import Message, Response, content_hash


@MODELS.register
class ReplayAdapter(ModelAdapter):
    """Replays recorded replies: JSONL lines ``{"probe_id", "sample"?, "text", "reasoning"?}``."""

    name = "replay"
    version = "1"
    description = "replies recorded in a JSONL file, keyed by probe_id and sample"
    fields = ("path",)
    local = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise HarmscopeError(f"{self.path}: replay file not found")
        self._replies: dict[tuple[str, int], dict[str, Any]] = {}
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read replay file ({exc.strerror})") from None
        if True:
            for n, bline in enumerate(raw.splitlines(), 1):
                try:
                    line = bline.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"{self.path}: line {n}: not UTF-8 text (byte {exc.start + 1})") from None
                if "\x00" in line:
                    raise InputError(f"{self.path}: line {n}: binary data (NUL byte); not a JSONL replay file")
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except RecursionError:
                    raise InputError(f"{self.path}: line {n}: JSON nested too deeply") from None
                except ValueError as exc:
                    raise InputError(f"{self.path}: line {n}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise InputError(f"{self.path}: line {n}: expected a JSON object")
                for field, typ in (("probe_id", str), ("text", str)):
                    if not isinstance(row.get(field), typ):
                        raise InputError(f"{self.path}: line {n}: field '{field}' must be a string")
                if row.get("reasoning") is not None and not isinstance(row["reasoning"], str):
                    raise InputError(f"{self.path}: line {n}: field 'reasoning' must be a string or null")
                sample = row.get("sample", 0)
                if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
                    raise InputError(f"{self.path}: line {n}: field 'sample' must be an integer >= 0")
                prev = self._replies.get((row["probe_id"], sample))
                if prev is not None and (prev["text"], prev.get("reasoning")) != (row["text"], row.get("reasoning")):
                    raise InputError(f"{self.path}: line {n}: conflicting duplicate reply for probe "
                                     f"{row['probe_id']} sample {sample} (first seen on line {prev['_line']})")
                if prev is None:
                    self._replies[(row["probe_id"], sample)] = {**row, "_line": n}
        self._digest = content_hash(sorted(
            (k[0], k[1], v["text"], v.get("reasoning")) for k, v in self._replies.items()
        ))

    @classmethod
    def from_spec(cls, **args: Any) -> ReplayAdapter:
        return cls(os.path.expanduser(str(args.pop("path"))), **args)

    @property
    def spec(self) -> str:
        return f"replay:{self.path}"

    def spec_args(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    def identity(self) -> dict[str, Any]:
        return {"kind": "replay", "content": self._digest}

    async def generate(self, messages: Sequence[Message], params: GenParams, *, probe_id: str = "",
                       sample: int = 0) -> Response:
        row = self._replies.get((probe_id, sample))
        if row is None:
            raise ModelCallError(f"no recorded reply for probe {probe_id} sample {sample} in {self.path}")
        text, reasoning = row["text"], row.get("reasoning")
        if reasoning is None:
            text, reasoning = split_reasoning(text)
        return self._response(probe_id, sample, text, reasoning=reasoning, finish_reason=row.get("finish_reason"))


@MODELS.register
class PythonAdapter(ModelAdapter):
    """Calls ``pkg.mod:fn`` with the messages as dicts (and ``params=`` if it takes that argument).

    It returns a string or a dict with ``text`` and optional ``reasoning`` / ``finish_reason``.
    """

    name = "python"
    version = "1"
    description = "a Python callable fn(messages) -> str | dict, sync or async"
    fields = ("target",)
    local = True

    def __init__(self, target: str | Callable[..., Any]):
        if callable(target):
            self.fn = target
            self.target = f"{target.__module__}:{target.__qualname__}"
        else:
            self.target = target
            mod_name, _, attr = target.rpartition(":")
            if not mod_name or not attr:
                raise HarmscopeError(f"python model spec needs 'pkg.mod:fn', got {target!r}")
            try:
                mod = importlib.import_module(mod_name)
            except ImportError as exc:
                raise HarmscopeError(f"python model {target!r}: cannot import {mod_name} ({exc})") from None
            fn = mod
            for part in attr.split("."):
                fn = getattr(fn, part, None)
                if fn is None:
                    raise HarmscopeError(f"python model {target!r}: {mod_name} has no attribute {attr!r}")
            if not callable(fn):
                raise HarmscopeError(f"python model {target!r} is not callable")
            self.fn = fn
        try:
            self._takes_params = "params" in inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            self._takes_params = False
        self._is_async = inspect.iscoroutinefunction(self.fn)

    @property
    def spec(self) -> str:
        return f"python:{self.target}"

    def spec_args(self) -> dict[str, Any]:
        return {"target": self.target}

    async def generate(self, messages: Sequence[Message], params: GenParams, *, probe_id: str = "",
                       sample: int = 0) -> Response:
        msgs = [m.model_dump() for m in params.apply_system(messages)]
        kwargs = {"params": params.as_dict()} if self._takes_params else {}
        if self._is_async:
            out = await self.fn(msgs, **kwargs)
        else:
            out = self.fn(msgs, **kwargs)
            if inspect.isawaitable(out):
                out = await out
        if isinstance(out, str):
            text, reasoning = split_reasoning(out)
            return self._response(probe_id, sample, text, reasoning=reasoning)
        if isinstance(out, dict) and isinstance(out.get("text"), str):
            text, reasoning = out["text"], out.get("reasoning")
            if reasoning is None:
                text, reasoning = split_reasoning(text)
            return self._response(probe_id, sample, text, reasoning=reasoning,
                                  finish_reason=out.get("finish_reason"))
        raise ModelCallError(f"python model {self.target} returned {type(out).__name__}, not str or dict with 'text'")


REFUSAL_TEXT = (
    "I'm not able to help with that request. If something else is on your mind, I'm happy to help with it."
)


@MODELS.register
class BaselineAdapter(ModelAdapter):
    """Calibration baselines. ``refuse`` declines everything (sets the floor for over-refusal and
    the ceiling for safety); ``echo`` repeats the last user message (a fully compliant parrot)."""

    name = "baseline"
    version = "1"
    description = "CALIBRATION BASELINE, not a model: 'refuse' always declines, 'echo' repeats the last user turn"
    fields = ("which",)
    local = True

    def __init__(self, which: str):
        if which not in ("refuse", "echo"):
            raise HarmscopeError(f"unknown baseline {which!r} (known: echo, refuse)")
        self.which = which
        self.description = (
            f"calibration baseline '{which}' (not a language model): "
            + ("always returns a fixed refusal" if which == "refuse" else "returns the last user message verbatim")
        )

    @property
    def spec(self) -> str:
        return f"baseline:{self.which}"

    def spec_args(self) -> dict[str, Any]:
        return {"which": self.which}

    async def generate(self, messages: Sequence[Message], params: GenParams, *, probe_id: str = "",
                       sample: int = 0) -> Response:
        if self.which == "refuse":
            text = REFUSAL_TEXT
        else:
            users = [m.content for m in messages if m.role == "user"]
            text = users[-1] if users else ""
        await asyncio.sleep(0)
        return self._response(probe_id, sample, text, finish_reason="stop")
