"""Loaders and validators for the probe content files.

All content lives in ``harmscope/benchmarks/probes/data/`` (or a ``data_dir`` given by the caller):
``templates/<group>.yaml``, ``benign.yaml``, ``hints.yaml``, ``manyshot.yaml`` (and
``lexicon.yaml``, see :mod:`harmscope.benchmarks.probes.lexicon`). Formats are described in
``docs/probes.md``. Every loader validates and reports all problems, one line each, naming the
file and the item id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, get_args

import yaml

from harmscope.errors import InputError, ValidationErrors
from harmscope.types import Expected

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
IDENTITY_SLOTS = frozenset({"term", "plural"})
RULE_GROUPS = (
    "discrimination",
    "toxicity",
    "anthropomorphism",
    "misinformation",
    "harmful-assistance",
    "privacy",
    "dialogue",
)
BENIGN_KINDS = (
    "homonym",
    "figurative",
    "safe-target",
    "safe-context",
    "definition",
    "history",
    "privacy-public",
    "fiction",
)
_EXPECTED = set(get_args(Expected))


def packaged_data_dir() -> Path:
    """The content shipped with harmscope: ``harmscope/benchmarks/probes/data``."""
    return Path(__file__).resolve().parent / "data"


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> Any:
    """``yaml.safe_load`` a file; a missing file or a syntax error -> ``InputError`` FILE:LINE.

    Parsed files are cached by path, size and modification time; callers must not mutate them.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    return _load_yaml_cached(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=64)
def _load_yaml_cached(name: str, mtime_ns: int, size: int) -> Any:
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{line}: YAML error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: YAML error: {exc}") from None


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders with ``values[name]``; other braces are left alone."""
    if "{" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


# ---------------------------------------------------------------- templates
@dataclass(frozen=True)
class Template:
    """One elicitation template of one rule."""

    id: str
    rule: str
    expected: str
    turns: tuple[tuple[str, str], ...]  # (role, text); alternating, last one is user
    system: str | None = None
    slots: tuple[str, ...] = ()
    fills: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""
    style: str | None = None  # optional elicitation style label (direct, roleplay, ...)

    @property
    def identity(self) -> bool:
        """True when the template uses identity slots and is expanded over groups."""
        return bool(self.used & IDENTITY_SLOTS)

    @cached_property
    def used(self) -> frozenset[str]:
        out: set[str] = set()
        for _, text in self.turns:
            out |= placeholders(text)
        if self.system:
            out |= placeholders(self.system)
        return frozenset(out)

    @property
    def multi_turn(self) -> bool:
        return len(self.turns) > 1

    def render(self, values: Mapping[str, str]) -> list[dict[str, str]]:
        """The conversation as message dicts with placeholders filled."""
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": fill(self.system, values)})
        for role, text in self.turns:
            msgs.append({"role": role, "content": fill(text, values)})
        return msgs


def _parse_template(raw: Any, source: str, rule_ids: set[str] | None, problems: list[str]) -> Template | None:
    if not isinstance(raw, dict):
        problems.append(f"{source}: every template must be a mapping, got {type(raw).__name__}")
        return None
    tid = raw.get("id")
    if not isinstance(tid, str) or not tid:
        problems.append(f"{source}: a template has no 'id'")
        return None
    at = f"{source}: template {tid!r}"
    n0 = len(problems)
    unknown = set(raw) - {"id", "rule", "expected", "slots", "fills", "system", "turns", "style"}
    if unknown:
        problems.append(f"{at}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    rule = raw.get("rule")
    if not isinstance(rule, str) or not rule:
        problems.append(f"{at}: field 'rule' is missing")
    elif rule_ids is not None and rule not in rule_ids:
        problems.append(f"{at}: unknown rule {rule!r}")
    expected = raw.get("expected")
    if expected not in _EXPECTED:
        problems.append(
            f"{at}: field 'expected' must be one of {', '.join(sorted(_EXPECTED))}, got {expected!r}"
        )
    slots = raw.get("slots") or []
    if not isinstance(slots, list) or not all(isinstance(s, str) for s in slots):
        problems.append(f"{at}: field 'slots' must be a list of names")
        slots = []
    fills_raw = raw.get("fills") or {}
    fills: dict[str, tuple[str, ...]] = {}
    if not isinstance(fills_raw, dict):
        problems.append(f"{at}: field 'fills' must be a mapping of name -> list of values")
    else:
        for name, values in fills_raw.items():
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str | int | float) for v in values)
            ):
                problems.append(f"{at}: fills.{name} must be a non-empty list of strings")
                continue
            fills[str(name)] = tuple(str(v) for v in values)
    style = raw.get("style")
    if style is not None and not isinstance(style, str):
        problems.append(f"{at}: field 'style' must be a string")
    system = raw.get("system")
    if system is not None and not isinstance(system, str):
        problems.append(f"{at}: field 'system' must be a string or null")
        system = None
    turns_raw = raw.get("turns")
    turns: list[tuple[str, str]] = []
    if not isinstance(turns_raw, list) or not turns_raw:
        problems.append(f"{at}: field 'turns' must be a non-empty list")
    else:
        for i, turn in enumerate(turns_raw):
            if (
                not isinstance(turn, dict)
                or len(turn) != 1
                or next(iter(turn)) not in ("user", "assistant")
                or not isinstance(next(iter(turn.values())), str)
            ):
                problems.append(f"{at}: turn {i + 1} must be {{user: TEXT}} or {{assistant: TEXT}}")
                continue
            role, text = next(iter(turn.items()))
            want = "user" if i % 2 == 0 else "assistant"
            if role != want:
                problems.append(
                    f"{at}: turn {i + 1} should be a {want} turn (turns alternate, starting with user)"
                )
            if not text.strip():
                problems.append(f"{at}: turn {i + 1} is empty")
            turns.append((role, text))
        if turns and turns[-1][0] != "user":
            problems.append(f"{at}: the last turn must be a user turn")
    if len(problems) > n0:
        return None
    tpl = Template(tid, rule, expected, tuple(turns), system, tuple(slots), fills, source, style)
    declared = set(slots) | set(fills)
    for name in sorted(tpl.used - declared):
        problems.append(f"{at}: placeholder {{{name}}} is not declared in slots or fills")
    for name in sorted(set(slots) - IDENTITY_SLOTS - set(fills)):
        problems.append(f"{at}: slot {name!r} has no values in fills")
    return tpl if len(problems) == n0 else None


def load_templates(path: str | Path, rule_ids: Iterable[str] | None = None) -> list[Template]:
    """Load every ``*.yaml`` under ``path`` (a folder) or one file; validates against ``rule_ids``."""
    path = Path(path)
    files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no template files (*.yaml) found")
    known = set(rule_ids) if rule_ids is not None else None
    problems: list[str] = []
    out: list[Template] = []
    seen: dict[str, str] = {}
    for f in files:
        data = load_yaml(f)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
            problems.append(f"{f}: expected a mapping with a 'templates' list")
            continue
        for raw in data["templates"]:
            tpl = _parse_template(raw, str(f), known, problems)
            if tpl is None:
                continue
            if tpl.id in seen:
                problems.append(f"{f}: template {tpl.id!r}: duplicate id (also in {seen[tpl.id]})")
                continue
            seen[tpl.id] = str(f)
            out.append(tpl)
    if problems:
        raise ValidationErrors(problems)
    return out


# ---------------------------------------------------------------- benign contrast prompts
@dataclass(frozen=True)
class BenignItem:
    id: str
    contrasts: str
    kind: str
    text: str
    rule: str | None = None


def load_benign(path: str | Path, rule_ids: Iterable[str] | None = None) -> list[BenignItem]:
    """Load ``benign.yaml``: safe prompts that look dangerous (over-refusal contrast set)."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("benign"), list):
        raise InputError(f"{path}: expected a mapping with a 'benign' list")
    known = set(rule_ids) if rule_ids is not None else None
    problems: list[str] = []
    out: list[BenignItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["benign"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            problems.append(f"{path}: item {i + 1} has no 'id'")
            continue
        at = f"{path}: benign item {raw['id']!r}"
        n0 = len(problems)
        if raw["id"] in seen:
            problems.append(f"{at}: duplicate id")
        if raw.get("contrasts") not in RULE_GROUPS:
            problems.append(f"{at}: 'contrasts' must be one of {', '.join(RULE_GROUPS)}")
        if raw.get("kind") not in BENIGN_KINDS:
            problems.append(f"{at}: 'kind' must be one of {', '.join(BENIGN_KINDS)}")
        if not isinstance(raw.get("text"), str) or not raw["text"].strip():
            problems.append(f"{at}: 'text' must be a non-empty string")
        rule = raw.get("rule")
        if rule is not None and (not isinstance(rule, str) or (known is not None and rule not in known)):
            problems.append(f"{at}: unknown rule {rule!r}")
        if len(problems) == n0:
            seen.add(raw["id"])
            out.append(BenignItem(raw["id"], raw["contrasts"], raw["kind"], raw["text"], rule))
    if problems:
        raise ValidationErrors(problems)
    return out


# ---------------------------------------------------------------- hint-injection questions
@dataclass(frozen=True)
class HintItem:
    id: str
    question: str
    choices: dict[str, str]
    answer: str
    hinted: str


@dataclass(frozen=True)
class HintBank:
    styles: tuple[str, ...]
    items: tuple[HintItem, ...]


def load_hints(path: str | Path) -> HintBank:
    """Load ``hints.yaml``: multiple-choice questions, each with a wrong hinted choice."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with 'hint_styles' and 'items'")
    problems: list[str] = []
    styles = data.get("hint_styles")
    if not isinstance(styles, list) or not styles:
        problems.append(f"{path}: 'hint_styles' must be a non-empty list")
        styles = []
    for i, s in enumerate(styles):
        if not isinstance(s, str) or "{hinted}" not in s or "\n\n" in s:
            problems.append(f"{path}: hint style {i + 1} must be one paragraph of text containing {{hinted}}")
    items: list[HintItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("items") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            problems.append(f"{path}: item {i + 1} has no 'id'")
            continue
        at = f"{path}: hint item {raw['id']!r}"
        n0 = len(problems)
        choices = raw.get("choices")
        if raw["id"] in seen:
            problems.append(f"{at}: duplicate id")
        if not isinstance(raw.get("question"), str) or not raw["question"].strip():
            problems.append(f"{at}: 'question' must be a non-empty string")
        if not isinstance(choices, dict) or len(choices) < 2:
            problems.append(f"{at}: 'choices' must map at least two letters to answers")
            choices = {}
        if raw.get("answer") not in choices:
            problems.append(f"{at}: 'answer' must be one of the choice letters")
        if raw.get("hinted") not in choices or raw.get("hinted") == raw.get("answer"):
            problems.append(f"{at}: 'hinted' must be a choice letter other than the answer")
        if len(problems) == n0:
            seen.add(raw["id"])
            items.append(
                HintItem(
                    raw["id"],
                    raw["question"],
                    {str(k): str(v) for k, v in choices.items()},
                    raw["answer"],
                    raw["hinted"],
                )
            )
    if not items and not problems:
        problems.append(f"{path}: 'items' must be a non-empty list")
    if problems:
        raise ValidationErrors(problems)
    return HintBank(tuple(styles), tuple(items))


# ---------------------------------------------------------------- many-shot material
def load_manyshot(path: str | Path) -> list[tuple[str, str]]:
    """Load ``manyshot.yaml``: ``shots: [{user: ..., assistant: ...}]``."""
    path = Path(path)
    data = load_yaml(path)
    shots = data.get("shots") if isinstance(data, dict) else None
    if not isinstance(shots, list) or not shots:
        raise InputError(f"{path}: expected a mapping with a non-empty 'shots' list")
    out: list[tuple[str, str]] = []
    for i, s in enumerate(shots):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("user"), str)
            or not isinstance(s.get("assistant"), str)
        ):
            raise InputError(f"{path}: shot {i + 1} must have 'user' and 'assistant' strings")
        out.append((s["user"], s["assistant"]))
    return out
