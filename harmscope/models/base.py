"""The model adapter interface, generation parameters and the adapter registry."""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from harmscope.registry import Registry
from harmscope.types import ComponentSpec, Message, Response, content_hash

#: Model adapters by spec prefix: ``load_model("PREFIX:rest")`` looks ``PREFIX`` up here only.
MODELS = Registry("model adapter", meta_attrs=("fields", "options", "local"))


class GenParams(BaseModel):
    """Generation parameters. ``temperature=0`` means greedy decoding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(256, ge=1)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = 0
    system: str | None = None  # system prompt put before the probe's own messages

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        return content_hash(self.as_dict())

    def apply_system(self, messages: Sequence[Message]) -> list[Message]:
        """The messages with the system prompt (if any) first; a probe's own system turn wins."""
        msgs = list(messages)
        if self.system and not (msgs and msgs[0].role == "system"):
            msgs.insert(0, Message(role="system", content=self.system))
        return msgs


class ModelCallError(Exception):
    """A failed model call. ``retryable`` calls are retried by the engine with backoff."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_reasoning(text: str) -> tuple[str, str | None]:
    """Split ``<think>...</think>`` blocks off a reply: ``(answer, reasoning or None)``.

    A reply holding ``</think>`` without an opening tag (the tag was in the chat template) counts
    everything before it as reasoning; an unclosed ``<think>`` counts the rest as reasoning.
    """
    if "<think>" not in text and "</think>" not in text:
        return text, None
    parts: list[str] = []
    if "</think>" in text and ("<think>" not in text or text.index("</think>") < text.index("<think>")):
        head, text = text.split("</think>", 1)
        parts.append(head.strip())
    parts.extend(m.strip() for m in _THINK.findall(text))
    text = _THINK.sub("", text)
    if "<think>" in text:
        text, rest = text.split("<think>", 1)
        parts.append(rest.strip())
    reasoning = "\n\n".join(p for p in parts if p)
    return text.strip(), reasoning or None


class ModelAdapter(ABC):
    """A model under test. Subclasses implement :meth:`generate` and :meth:`spec_args`.

    A subclass declares its registry metadata once, as class attributes: ``name`` (the spec
    prefix, ``name:rest``), ``version``, ``description``, ``fields`` (the arguments a spec string
    or a YAML file sets; the first takes the text after ``name:``) and ``options`` (further YAML
    options), then registers with a bare ``@MODELS.register``.

    ``spec`` is the redacted spec string (never a secret); ``spec_hash`` identifies what answers
    (it goes into reply keys and run ids, so it must not change between runs of the same model).
    ``local`` adapters compute in-process: the engine applies no per-request timeout to them.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: str = ""
    fields: ClassVar[tuple[str, ...]] = ("path",)
    options: ClassVar[tuple[str, ...]] = ()
    local: bool = False

    @property
    def kind(self) -> str:
        """The adapter's registry name (``openai``, ``hf``, ...)."""
        return self.name or "model"

    # ------------------------------------------------------------------ specs
    @classmethod
    def parse(cls, rest: str) -> dict[str, Any]:
        """The arguments a spec string ``name:rest`` sets (default: ``rest`` is the first field)."""
        return {cls.fields[0]: rest}

    @classmethod
    def from_spec(cls, **args: Any) -> ModelAdapter:
        """Build the adapter from spec arguments (a parsed spec string, a YAML file or a stored
        :class:`~harmscope.types.ComponentSpec`)."""
        return cls(**args)

    def spec_args(self) -> dict[str, Any]:
        """Arguments that rebuild this adapter with :meth:`from_spec`, redacted: never a secret
        (an API key is named by its environment variable only)."""
        return {self.fields[0]: self.spec.partition(":")[2]}

    def component_spec(self) -> ComponentSpec:
        """The typed, redacted spec of this adapter (stored in run manifests)."""
        return ComponentSpec(kind=MODELS.kind, name=self.name, version=str(self.version), args=self.spec_args())

    @property
    @abstractmethod
    def spec(self) -> str:
        """The redacted spec string."""

    def identity(self) -> dict[str, Any]:
        """What defines the answers (hashed into ``spec_hash``); secrets never go here."""
        return {"spec": self.spec}

    @property
    def spec_hash(self) -> str:
        return content_hash(self.identity())

    def describe(self) -> dict[str, Any]:
        """The redacted spec as a dict (for manifests)."""
        return {
            "spec": self.spec,
            "adapter": self.name,
            "version": str(self.version),
            "description": self.description or type(self).description,
            "spec_hash": self.spec_hash,
        }

    async def preflight(self) -> None:
        """Fail fast (``HarmscopeError``) when the model cannot answer at all."""
        return None

    @abstractmethod
    async def generate(self, messages: Sequence[Message], params: GenParams, *, probe_id: str = "",
                       sample: int = 0) -> Response:
        """One reply to ``messages``. Raise :class:`ModelCallError` on a failed call."""

    async def generate_batch(self, batch: Sequence[Sequence[Message]], params: GenParams, *,
                             probe_ids: Sequence[str] | None = None,
                             samples: Sequence[int] | None = None) -> list[Response]:
        """Replies to several conversations (default: concurrent :meth:`generate` calls)."""
        ids = list(probe_ids) if probe_ids is not None else [""] * len(batch)
        smp = list(samples) if samples is not None else [0] * len(batch)
        return list(await asyncio.gather(
            *(self.generate(m, params, probe_id=i, sample=s) for m, i, s in zip(batch, ids, smp, strict=True))
        ))

    async def aclose(self) -> None:
        """Release connections, threads, models."""
        return None

    def _response(self, probe_id: str, sample: int, text: str, **kw: Any) -> Response:
        return Response(probe_id=probe_id, sample=sample, model=self.spec, text=text, **kw)
