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
from harmscope.types import Judgment, Probe, Response, Rule, canonical_json

JUDGES = Registry("judge")

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
    """Base class of all judges. Subclasses set ``name``, ``version``, ``kinds``, ``per_rule``."""

    name: ClassVar[str] = "judge"
    version: ClassVar[str] = "1"
    kinds: ClassVar[tuple[str, ...]] = ()
    per_rule: ClassVar[bool] = False
    args: str = ""  # spec arguments after ``name:``

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
        """Names of judges whose votes on ``rule`` this judge replaces when both are selected."""
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
            judge=self.id, judge_version=self.full_version, violation=violation,
            score=None if score is None else float(score), label=label, raw=raw, meta=meta,
        )

    # ------------------------------------------------------------------ validation figures
    def validation(self) -> dict[str, Any] | None:
        """Stored validation metrics: the user's (``judges validate``) first, else built-in.

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
        return {"name": self.id, "version": self.full_version, "kinds": list(self.kinds),
                "per_rule": self.per_rule, "validation": v.get("metrics", v) if v else None,
                "validation_source": v.get("source") if v else None}


def save_validation(path: Path, payload: dict[str, Any]) -> None:
    """Write validation metrics as pretty JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
