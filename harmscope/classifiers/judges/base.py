"""Judge base class, the judge registry and validation-metric storage.

A judge turns (probe, reply, rule) items into :class:`~harmscope.types.Judgment` objects.
*Reply-level* judges (``refusal``, ``toxicity``, ``awareness``) give one judgment per reply under
the pseudo rule id ``REPLY_RULE``; *rule-level* judges (``rule``, ``pattern``, ``llm``) give one per
(reply, rule). No judge imports torch at module import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harmscope.benchmarks.runs.store import text_hash
from harmscope.paths import workspace_dir
from harmscope.registry import Registry
from harmscope.types import ComponentSpec, Judgment, Probe, Response, Rule, canonical_json

#: Judges by name. A judge class declares ``name``, ``version``, ``description``, ``kind``,
#: ``kinds``, ``per_rule``, ``grader``, ``needs_args`` and ``options`` as class attributes and
#: registers with a bare ``@JUDGES.register``.
JUDGES = Registry("judge", meta_attrs=("kind", "kinds", "per_rule", "grader", "needs_args", "options"))

#: A judge option: (type, lowest, highest); a spec sets it as ``name[key=value]:ARGS``.
Option = tuple[type, float, float]

REPLY_RULE = "_reply"  # rule id of reply-level judgments
DATA_DIR = Path(__file__).resolve().parent / "data"
VALIDATION_DIR = DATA_DIR / "validation"


@dataclass(frozen=True)
class JudgeItem:
    """One thing to judge: a probe, one reply to it and (for rule-level judges) one rule."""

    probe: Probe
    response: Response
    rule: Rule | None = None

    @property
    def user_text(self) -> str:
        """The last user message of the conversation."""
        for m in reversed(self.probe.messages):
            if m.role == "user":
                return m.content
        return ""


def user_judges_dir(name: str) -> Path:
    """Where ``judges train`` / ``judges validate`` keep user artefacts for judge ``name``."""
    return workspace_dir() / "judges" / name.replace(":", "_").replace("/", "_")


class Judge:
    """Base class of all judges. Subclasses declare their metadata once, as class attributes.

    - ``name``: the registry name a judges spec uses; judgments carry ``name`` (or ``name:args``).
    - ``kind``: the ballot the judge fills when votes are combined (default: its ``name``). Two
      judges of one kind cannot be selected together; the ``refusal`` kind gates rule verdicts on
      refuse-expected probes, so a judge that stands in for the refusal judge declares
      ``kind = "refusal"``.
    - ``kinds``: the rule-catalogue judge kinds it answers for (``rules/taxonomy.JUDGE_KINDS``).
    - ``per_rule``: one judgment per (reply, rule) rather than one per reply.
    - ``grader``: a model-backed grader, validated per model rather than shipping figures.
    - ``needs_args``: it cannot be built without ``:ARGS`` (a model spec).
    - ``options``: the ``[key=value]`` options it takes: name -> (type, lowest, highest).
    """

    name: ClassVar[str] = "judge"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "judge"
    kinds: ClassVar[tuple[str, ...]] = ()
    per_rule: ClassVar[bool] = False
    grader: ClassVar[bool] = False
    needs_args: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {}
    args: str = ""  # spec arguments after ``name:``
    spec_options: dict[str, Any] = {}  # the options it was built with (set by :meth:`from_spec`)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" not in cls.__dict__:  # a class that does not declare its ballot votes as itself
            cls.kind = cls.name

    @classmethod
    def from_spec(cls, args: str = "", **options: Any) -> Judge:
        """Build the judge from its spec arguments (``:ARGS`` and options); what ``JUDGES.create`` calls."""
        judge = cls(args, **options)
        judge.spec_options = dict(options)
        return judge

    def component_spec(self) -> ComponentSpec:
        """The replayable spec of this judge: name, version, ``args`` and the options it was built with."""
        return ComponentSpec(kind=JUDGES.kind, name=self.name, version=str(self.version),
                             args={"args": self.args, **self.spec_options})

    @property
    def id(self) -> str:
        """Judge id as stored in judgments: ``name`` or ``name:args``."""
        return f"{self.name}:{self.args}" if self.args else self.name

    @property
    def full_version(self) -> str:
        """Version string that also changes whenever trained weights change (cache key)."""
        return self.version

    def applies(self, item: JudgeItem) -> bool:
        """Whether this judge has anything to say about ``item`` (default: yes)."""
        return True

    def claims(self, rule: Rule) -> bool:
        """Whether this judge votes on ``rule`` even though the rule does not list its kind."""
        return False

    def supersedes(self, rule: Rule) -> tuple[str, ...]:
        """Kinds of judges whose votes on ``rule`` this judge replaces when both are selected."""
        return ()

    def cache_key(self, item: JudgeItem) -> str:
        """Hash of everything the verdict depends on (reply text, reasoning, context, rule)."""
        ctx = {
            "text": item.response.text,
            "reasoning": item.response.reasoning,
            "expected": item.probe.expected,
            "benign": item.probe.benign,
            "user": item.user_text,
            "rule": item.rule.text if item.rule is not None else None,
        }
        return text_hash(canonical_json(ctx))

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make(self, item: JudgeItem, violation: bool | None, *, score: float | None = None,
             label: str | None = None, raw: str | None = None, **meta: Any) -> Judgment:
        """Build a Judgment for ``item``."""
        return Judgment(
            probe_id=item.probe.id, sample=item.response.sample,
            rule_id=item.rule.id if (self.per_rule and item.rule is not None) else REPLY_RULE,
            # ``judge_items`` pins the version for a batch (a head digest hashes its weights)
            judge=self.id, judge_version=self.__dict__.get("_pinned_version") or self.full_version,
            violation=violation,
            score=None if score is None else float(score), label=label, raw=raw, meta=meta,
        )

    # ------------------------------------------------------------------ validation figures
    def validation(self) -> dict[str, Any] | None:
        """Validation metrics of this judge (default: :meth:`stored_validation`)."""
        return self.stored_validation()

    def stored_validation(self) -> dict[str, Any] | None:
        """Stored validation metrics, read from files only: the user's (``judges validate``) first,
        else built-in.

        Built-in figures recomputed per encoder runtime (``<name>.runtimes.json``, keyed by
        ``full_version``) take precedence when they match this judge's version and runtime.
        """
        user = user_judges_dir(self.id) / "validation.json"
        per_runtime = VALIDATION_DIR / f"{self.name}.runtimes.json"
        if not user.is_file() and per_runtime.is_file():
            hit = json.loads(per_runtime.read_text(encoding="utf-8")).get(self.full_version)
            if hit:
                return hit
        for path in (user, VALIDATION_DIR / f"{self.name}.json"):
            if path.is_file():
                return json.loads(path.read_text(encoding="utf-8"))
        return None

    def describe(self) -> dict[str, Any]:
        """Name, version, kinds and validation summary (goes into RunResult.judges)."""
        v = self.validation() or {}
        return {"name": self.id, "version": self.full_version, "kind": self.kind, "kinds": list(self.kinds),
                "per_rule": self.per_rule, "validation": v.get("metrics", v) if v else None,
                "validation_source": v.get("source") if v else None}


def save_validation(path: Path, payload: dict[str, Any]) -> None:
    """Write validation metrics as pretty JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
