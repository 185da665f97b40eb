"""The shared data types of harmscope, defined once and imported everywhere.

Data flows one way: ``Rule`` -> ``Probe``/``ProbeSet`` -> ``Response`` -> ``Judgment``
-> ``RunResult``/``AuditResult``. Every persisted object carries a ``schema_version``.
Ids are content hashes of what defines the object (see :func:`content_hash`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

HarmType = Literal["representational", "allocational", "capability-fairness", "other"]
Scope = Literal["instance", "distributional"]
Recipient = Literal["subject", "reader", "author", "society"]
ContextDependence = Literal["low", "medium", "high"]
Purpose = Literal["harm", "correctness", "helpfulness"]
Severity = Literal["low", "medium", "high", "critical"]
Expected = Literal["comply", "refuse", "comply-without-violating"]
Role = Literal["system", "user", "assistant"]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that gets hashed."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hex digest of ``obj`` (sha256 over its canonical JSON)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- rules
class Characteristics(_Frozen):
    """Characteristics of harmful text after Rauh et al. (2022)."""

    harm_type: HarmType
    scope: Scope
    recipients: list[Recipient] = Field(min_length=1)
    context_dependence: ContextDependence
    axes: list[str] = Field(default_factory=list)


class RuleExamples(_Frozen):
    violating: list[str] = Field(min_length=4)
    compliant: list[str] = Field(min_length=4)


class Rule(_Frozen):
    """One natural-language rule of the catalog."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    name: str = Field(min_length=1)
    text: str = Field(min_length=10)
    group: str = Field(min_length=1)
    purpose: Purpose
    risks: list[str] = Field(min_length=1)
    characteristics: Characteristics
    severity: Severity
    exceptions: list[str] = Field(default_factory=list)
    judges: list[str] = Field(min_length=1)
    examples: RuleExamples
    source: str | None = None  # file the rule was loaded from (not part of the YAML)


# ---------------------------------------------------------------- probes
class Message(_Frozen):
    role: Role
    content: str


class Probe(_Frozen):
    """One conversation to send to a model. ``id`` is a hash of the defining fields."""

    id: str
    rule_ids: list[str]
    template_id: str
    messages: list[Message]
    slots: dict[str, str] = Field(default_factory=dict)
    group_axis: str | None = None
    group: str | None = None
    transforms: list[str] = Field(default_factory=list)
    expected: Expected
    benign: bool = False
    family: str = "standard"  # standard | benign | framing | hint | ...
    pair_id: str | None = None  # links paired probes (monitored/unmonitored, hint/no-hint)
    variant: str | None = None  # e.g. "monitored", "unmonitored", "hint", "nohint"
    meta: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0

    @staticmethod
    def make_id(**fields: Any) -> str:
        """Hash of everything that defines a probe (all fields but ``id`` and ``seed``)."""
        fields = {k: v for k, v in fields.items() if k not in ("id", "seed")}
        return content_hash(fields)


class ProbeSetManifest(_Frozen):
    schema_version: int = SCHEMA_VERSION
    catalog_version: str
    generator_version: str
    seed: int
    params: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    set_hash: str


class ProbeSet(BaseModel):
    manifest: ProbeSetManifest
    probes: list[Probe]


# ---------------------------------------------------------------- model replies
class Response(_Frozen):
    """One reply from a model under test (or a recorded failure)."""

    probe_id: str
    sample: int = 0
    model: str  # redacted model spec
    text: str = ""
    reasoning: str | None = None  # reasoning trace kept apart from the final answer
    finish_reason: str | None = None
    error: str | None = None  # set when every retry failed
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------- verdicts
class Judgment(_Frozen):
    """One judge's verdict on one reply for one rule."""

    probe_id: str
    sample: int = 0
    rule_id: str
    judge: str
    judge_version: str
    violation: bool | None  # None when the judge abstains
    score: float | None = None  # P(violation) or a raw score
    label: str | None = None  # e.g. comply / refuse / partial for the refusal judge
    raw: str | None = None  # raw judge output kept for audit
    meta: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- runs and results
class ComponentSpec(_Frozen):
    """What rebuilds one pluggable component: its registry kind, name, version and arguments.

    Stored for every component a run or a score used; ``REGISTRY.create(spec)`` rebuilds it.
    """

    kind: str
    name: str
    version: str
    args: dict[str, Any] = Field(default_factory=dict)


class RunManifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    probe_set_hash: str
    model: str  # redacted spec
    params: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    git_revision: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    components: list[ComponentSpec] = Field(default_factory=list)  # replayable specs (model adapter, ...)


class Rate(BaseModel):
    """A proportion with its interval and n."""

    k: int
    n: int
    rate: float | None
    lo: float | None
    hi: float | None
    corrected: float | None = None
    corrected_lo: float | None = None
    corrected_hi: float | None = None


class RunResult(BaseModel):
    schema_version: int = SCHEMA_VERSION
    manifest: RunManifest
    judges: dict[str, Any] = Field(default_factory=dict)  # name -> spec + validation figures
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # breakdown name -> rows
    summary: dict[str, Any] = Field(default_factory=dict)


class AuditResult(BaseModel):
    schema_version: int = SCHEMA_VERSION
    classifier: str
    data: str
    params: dict[str, Any] = Field(default_factory=dict)
    overall: dict[str, Any] = Field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    worst_groups: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
