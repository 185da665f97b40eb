"""Load, validate and select rule catalogs.

A catalog file is YAML: either a mapping ``{group: NAME, description: ..., rules: [...]}`` (the
``group`` is the default for rules that do not name one) or a bare list of rules. Every problem is
reported as one line ``FILE:LINE: field 'x': message``; all problems of all files are collected
and raised together as :class:`harmscope.errors.ValidationErrors`.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harmscope.errors import HarmscopeError, InputError, ValidationErrors
from harmscope.rules import taxonomy
from harmscope.types import Rule, content_hash

BUILTIN_DIR = Path(__file__).resolve().parent / "catalog"
_YAML_SUFFIXES = (".yaml", ".yml")
_FILE_KEYS = ("group", "description", "rules")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SELECTOR_KEYS = ("group", "area", "risk", "severity", "purpose", "judge", "axis")

PathLike = str | Path


@dataclass(frozen=True)
class _Parsed:
    """Rules of one file with their line numbers, plus the problems found in it."""

    rules: tuple[tuple[Rule, int], ...]
    problems: tuple[str, ...]


# ---------------------------------------------------------------- YAML helpers
def _line(node: Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _locate(node: Node | None, loc: Sequence[Any]) -> int:
    """Line of the YAML node that a pydantic error location points at (best effort)."""
    line = _line(node)
    for key in loc:
        if isinstance(node, MappingNode):
            for knode, vnode in node.value:
                if isinstance(knode, ScalarNode) and knode.value == str(key):
                    line, node = _line(knode), vnode
                    break
            else:
                return line
        elif isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
            line = _line(node)
        else:
            return line
    return line


def _construct(node: Node) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _duplicate_keys(path: Path, root: Node | None) -> list[str]:
    """One problem per mapping key given twice (YAML keeps the last silently)."""
    out: list[str] = []
    stack = [root] if root is not None else []
    seen_nodes: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:  # aliases may share nodes
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for knode, vnode in node.value:
                if isinstance(knode, ScalarNode):
                    if knode.value in first:
                        out.append(f"{path}:{_line(knode)}: duplicate key '{knode.value}' "
                                   f"(first at line {first[knode.value]})")
                    else:
                        first[knode.value] = _line(knode)
                stack.append(vnode)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return out


def _describe(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------- per-file parsing
def _parse_file(path: Path) -> _Parsed:
    """Parse and validate one catalog file; never raises for bad content."""
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return _Parsed((), (f"{path}:1: file is not UTF-8 text ({exc.reason})",))
    except OSError as exc:
        return _Parsed((), (f"{path}:1: cannot read file: {exc.strerror or exc}",))
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = _construct(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join((exc.problem or exc.context or "invalid YAML").split())
        ctx = exc.context_mark
        if exc.context and ctx is not None and ctx.line + 1 != line:
            what += f" ({' '.join(exc.context.split())} at line {ctx.line + 1})"
        return _Parsed((), (f"{path}:{line}: YAML syntax error: {what}",))
    except yaml.YAMLError as exc:
        first = (str(exc).strip().splitlines() or ["invalid YAML"])[0]
        return _Parsed((), (f"{path}:1: YAML error: {first}",))
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # e.g. a timestamp-looking scalar that is not a real date, or deeply nested aliases
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _Parsed((), (f"{path}:1: YAML value error: {first}",))

    dups = _duplicate_keys(path, root)
    if dups:
        return _Parsed((), tuple(dups))
    file_group: str | None = None
    if isinstance(data, dict) and isinstance(root, MappingNode):
        for key in data:
            if key not in _FILE_KEYS:
                problems.append(
                    f"{path}:{_locate(root, [key])}: field '{key}': unknown top-level field "
                    f"(allowed: {', '.join(_FILE_KEYS)})"
                )
        group = data.get("group")
        if group is not None and not (isinstance(group, str) and group.strip()):
            problems.append(f"{path}:{_locate(root, ['group'])}: field 'group': must be a non-empty string")
        elif isinstance(group, str):
            file_group = group
        if "rules" not in data:
            return _Parsed((), (*problems, f"{path}:{_line(root)}: field 'rules': missing required field"))
        items, seq = data["rules"], _child(root, "rules")
    elif isinstance(data, list) and isinstance(root, SequenceNode):
        items, seq = data, root
    else:
        return _Parsed(
            (),
            (
                f"{path}:{_line(root)}: field 'rules': expected a mapping with a 'rules' list or a list of "
                f"rules, got {_describe(data)}",
            ),
        )
    if not isinstance(items, list) or not isinstance(seq, SequenceNode):
        return _Parsed(
            (), (*problems, f"{path}:{_line(seq)}: field 'rules': expected a list, got {_describe(items)}")
        )

    rules: list[tuple[Rule, int]] = []
    for i, (item, node) in enumerate(zip(items, seq.value, strict=False)):
        rule, rule_problems = _parse_rule(path, i, item, node, file_group)
        problems.extend(rule_problems)
        if rule is not None:
            rules.append((rule, _line(node)))
    return _Parsed(tuple(rules), tuple(problems))


def _child(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for knode, vnode in node.value:
            if isinstance(knode, ScalarNode) and knode.value == key:
                return vnode
    return None


def _parse_rule(
    path: Path, index: int, item: Any, node: Node, file_group: str | None
) -> tuple[Rule | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"{path}:{_line(node)}: field 'rules.{index}': expected a rule mapping, got {_describe(item)}"]
    rid = item.get("id")
    who = f" (rule '{rid}')" if isinstance(rid, str) else f" (rule #{index + 1})"
    problems = [f"{path}:{line}: field '{field}': {msg}{who}" for line, field, msg in _vocab_problems(item, node)]
    data = dict(item)
    if file_group is not None and "group" not in data:
        data["group"] = file_group
    data["source"] = str(path)
    try:
        rule = Rule.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = [k for k in err["loc"] if isinstance(k, str | int)]
            field = ".".join(str(k) for k in loc) or "rule"
            if err["type"] == "missing":
                msg = "missing required field"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (allowed: " + ", ".join(k for k in Rule.model_fields if k != "source") + ")"
            else:
                msg = " ".join(str(err["msg"]).split())
            problems.append(f"{path}:{_locate(node, loc)}: field '{field}': {msg}{who}")
        return None, problems
    return (rule if not problems else None), problems


def _vocab_problems(item: dict, node: Node) -> Iterator[tuple[int, str, str]]:
    """Checks beyond the shared types: taxonomy ids, axes, judges, examples."""
    risks = item.get("risks")
    if isinstance(risks, list):
        for i, r in enumerate(risks):
            if isinstance(r, str) and not taxonomy.is_risk(r):
                yield _locate(node, ["risks", i]), f"risks.{i}", (
                    f"unknown risk id '{r}' (known: I.1..I.4, II.1..II.3, III.1..III.3, IV.1..IV.4, "
                    "V.1..V.3, VI.1..VI.4)"
                )
    judges = item.get("judges")
    if isinstance(judges, list):
        for i, j in enumerate(judges):
            if isinstance(j, str) and j not in taxonomy.JUDGE_KINDS:
                yield _locate(node, ["judges", i]), f"judges.{i}", (
                    f"unknown judge '{j}' (known: {', '.join(taxonomy.JUDGE_KINDS)})"
                )
    chars = item.get("characteristics")
    axes = chars.get("axes") if isinstance(chars, dict) else None
    if isinstance(axes, list):
        for i, a in enumerate(axes):
            if isinstance(a, str) and a not in taxonomy.AXES:
                hint = difflib.get_close_matches(a, taxonomy.AXES, n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(taxonomy.AXES)})"
                yield _locate(node, ["characteristics", "axes", i]), f"characteristics.axes.{i}", (
                    f"unknown axis '{a}'{extra}"
                )
    examples = item.get("examples")
    if isinstance(examples, dict):
        seen: dict[str, str] = {}
        for kind in ("violating", "compliant"):
            texts = examples.get(kind)
            if not isinstance(texts, list):
                continue
            for i, t in enumerate(texts):
                if not isinstance(t, str):
                    continue
                loc = ["examples", kind, i]
                key = " ".join(t.split()).lower()
                if not key:
                    yield _locate(node, loc), ".".join(map(str, loc)), "example is empty"
                elif key in seen:
                    yield _locate(node, loc), ".".join(map(str, loc)), (
                        f"example repeats an earlier {seen[key]} example"
                    )
                else:
                    seen[key] = kind


@functools.lru_cache(maxsize=64)
def _parse_cached(path: str, mtime_ns: int, size: int) -> _Parsed:
    return _parse_file(Path(path))


def parse_file(path: PathLike) -> _Parsed:
    """Parse one file; built-in files are cached by path, modification time and size."""
    p = Path(path)
    if p.parent != BUILTIN_DIR:
        return _parse_file(p)
    try:
        st = p.stat()
    except OSError:
        return _parse_file(p)
    return _parse_cached(str(p), st.st_mtime_ns, st.st_size)


def _expand(paths: Iterable[PathLike]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix in _YAML_SUFFIXES and f.is_file())
            if not found:
                raise InputError(f"{p}: no catalog files (*.yaml, *.yml) in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such catalog file or folder")
    return files


# ---------------------------------------------------------------- the catalog
class Catalog:
    """An ordered set of validated rules.

    ``rules`` maps id -> :class:`Rule` in load order; ``version`` is a content hash of the rules
    (independent of file names and order); ``locations`` maps id -> ``(file, line)``.
    """

    def __init__(self, rules: dict[str, Rule], locations: dict[str, tuple[str, int]] | None = None):
        self.rules: dict[str, Rule] = dict(rules)
        self.locations: dict[str, tuple[str, int]] = dict(locations or {})
        dumped = sorted(
            (r.model_dump(mode="json", exclude={"source"}) for r in self.rules.values()), key=lambda d: d["id"]
        )
        self.version: str = content_hash(dumped)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules.values())

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self.rules

    def __repr__(self) -> str:
        return f"Catalog({len(self)} rules, version={self.version})"

    def get(self, rule_id: str) -> Rule:
        """The rule with this id; unknown ids raise :class:`HarmscopeError` with suggestions."""
        try:
            return self.rules[rule_id]
        except KeyError:
            raise HarmscopeError(f"unknown rule id '{rule_id}'{self._suggest(rule_id)}") from None

    def groups(self) -> list[str]:
        """Group names in catalog order."""
        return list(dict.fromkeys(r.group for r in self))

    @staticmethod
    def areas_of(rule: Rule) -> list[str]:
        """Risk-area ids (``I`` .. ``VI``) a rule touches, in taxonomy order."""
        areas = {taxonomy.risk(r).area for r in rule.risks}
        return [a.id for a in taxonomy.AREAS if a.id in areas]

    def rules_for_risk(self, risk_id: str) -> list[Rule]:
        """Rules that list ``risk_id``."""
        taxonomy.risk(risk_id)
        return [r for r in self if risk_id in r.risks]

    # ------------------------------------------------------------ selection
    def select(self, selector: str | None = None) -> list[Rule]:
        """Rules matching a selector, in catalog order.

        ``selector`` is a comma-separated list of terms: rule ids (``insults``), globs (``no-*``),
        ``group:NAME``, ``area:I``, ``risk:I.3``, ``severity:high`` (or ``severity:>=high``),
        ``purpose:harm``, ``judge:toxicity``, ``axis:religion``. A term prefixed with ``-`` removes
        rules. ``None``, ``""`` or ``all`` select every rule. Unknown terms raise
        :class:`HarmscopeError`.
        """
        if selector is None or selector.strip().lower() in ("", "all"):
            return list(self)
        include: set[str] = set()
        exclude: set[str] = set()
        any_include = False
        for raw in selector.split(","):
            term = raw.strip()
            if not term:
                continue
            if term[0] in "-!":
                exclude |= self._match(term[1:].strip())
            else:
                any_include = True
                include |= self._match(term)
        if not any_include:
            include = set(self.rules)
        return [r for r in self if r.id in include and r.id not in exclude]

    def _match(self, term: str) -> set[str]:
        if not term:
            raise HarmscopeError("empty rule selector term")
        if ":" in term:
            key, _, value = term.partition(":")
            key, value = key.strip().lower(), value.strip()
            if key not in _SELECTOR_KEYS:
                raise HarmscopeError(
                    f"unknown rule selector '{term}' (use ids, globs like 'no-*', or "
                    + ", ".join(f"{k}:" for k in _SELECTOR_KEYS)
                    + ")"
                )
            return self._match_key(term, key, value)
        if any(c in term for c in "*?["):
            hits = {rid for rid in self.rules if fnmatch.fnmatchcase(rid, term)}
            if not hits:
                raise HarmscopeError(f"rule selector '{term}' matches no rule id")
            return hits
        if term not in self.rules:
            raise HarmscopeError(f"unknown rule id '{term}' in selector{self._suggest(term)}")
        return {term}

    def _match_key(self, term: str, key: str, value: str) -> set[str]:
        def known(values: Iterable[str]) -> str:
            return ", ".join(values)

        if key == "group":
            if value not in self.groups():
                raise HarmscopeError(f"unknown group in selector '{term}' (known: {known(self.groups())})")
            return {r.id for r in self if r.group == value}
        if key == "area":
            area_id = value.upper()
            taxonomy.area(area_id)
            return {r.id for r in self if area_id in self.areas_of(r)}
        if key == "risk":
            risk_id = value.upper()
            taxonomy.risk(risk_id)
            return {r.id for r in self if risk_id in r.risks}
        if key == "severity":
            levels = list(taxonomy.SEVERITIES)
            op = ">=" if value.startswith(">=") or value.endswith("+") else "=="
            level = value.removeprefix(">=").removesuffix("+").strip().lower()
            if level not in levels:
                raise HarmscopeError(f"unknown severity in selector '{term}' (known: {known(levels)})")
            if op == ">=":
                return {r.id for r in self if levels.index(r.severity) >= levels.index(level)}
            return {r.id for r in self if r.severity == level}
        if key == "purpose":
            if value not in taxonomy.PURPOSES:
                raise HarmscopeError(f"unknown purpose in selector '{term}' (known: {known(taxonomy.PURPOSES)})")
            return {r.id for r in self if r.purpose == value}
        if key == "judge":
            if value not in taxonomy.JUDGE_KINDS:
                raise HarmscopeError(f"unknown judge in selector '{term}' (known: {known(taxonomy.JUDGE_KINDS)})")
            return {r.id for r in self if value in r.judges}
        # axis
        if value not in taxonomy.AXES:
            raise HarmscopeError(f"unknown axis in selector '{term}' (known: {known(taxonomy.AXES)})")
        return {r.id for r in self if value in r.characteristics.axes}

    def _suggest(self, rule_id: str) -> str:
        close = difflib.get_close_matches(rule_id, list(self.rules), n=3)
        return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""

    # ------------------------------------------------------------ tables
    def to_frame(self):
        """One row per rule (lists joined with ``;``), as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for r in self:
            c = r.characteristics
            rows.append(
                {
                    "id": r.id,
                    "name": r.name,
                    "group": r.group,
                    "purpose": r.purpose,
                    "severity": r.severity,
                    "risks": ";".join(r.risks),
                    "areas": ";".join(self.areas_of(r)),
                    "harm_type": c.harm_type,
                    "scope": c.scope,
                    "recipients": ";".join(c.recipients),
                    "context_dependence": c.context_dependence,
                    "axes": ";".join(c.axes),
                    "judges": ";".join(r.judges),
                    "exceptions": ";".join(r.exceptions),
                    "n_violating": len(r.examples.violating),
                    "n_compliant": len(r.examples.compliant),
                    "text": r.text,
                    "source": r.source,
                }
            )
        return pd.DataFrame(rows)

    def examples_frame(self, selector: str | None = None):
        """Example replies as a DataFrame: ``rule_id``, ``group``, ``kind``, ``label`` (1 = violating), ``text``."""
        import pandas as pd

        rows = []
        for r in self.select(selector):
            for kind, label in (("violating", 1), ("compliant", 0)):
                for text in getattr(r.examples, kind):
                    rows.append({"rule_id": r.id, "group": r.group, "kind": kind, "label": label, "text": text})
        return pd.DataFrame(rows, columns=["rule_id", "group", "kind", "label", "text"])

    def coverage(self):
        """One row per risk: area, name, measurable, n_rules, rule ids, why_not."""
        import pandas as pd

        rows = []
        for risk in taxonomy.RISKS:
            ids = [r.id for r in self if risk.id in r.risks]
            rows.append(
                {
                    "risk": risk.id,
                    "area": risk.area,
                    "name": risk.name,
                    "measurable": risk.measurable,
                    "n_rules": len(ids),
                    "rules": ";".join(ids),
                    "why_not": risk.why_not or "",
                }
            )
        return pd.DataFrame(rows)


# ---------------------------------------------------------------- entry point
#: Order of the built-in groups (roughly by risk area); other files follow alphabetically.
GROUP_ORDER: tuple[str, ...] = (
    "discrimination",
    "toxicity",
    "privacy",
    "misinformation",
    "harmful-assistance",
    "anthropomorphism",
    "dialogue",
)


def builtin_files() -> list[Path]:
    """The built-in catalog files, one per group, in :data:`GROUP_ORDER`."""
    files = [f for f in BUILTIN_DIR.iterdir() if f.suffix in _YAML_SUFFIXES]
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(files, key=lambda f: (rank.get(f.stem, len(rank)), f.name))


def load_catalog(
    paths: PathLike | Sequence[PathLike] | None = None, *, builtin: bool = True, override: bool = False
) -> Catalog:
    """Load the built-in catalog and/or user catalog files or folders.

    Files load in order (built-in first); a rule id defined twice is an error unless
    ``override=True``, in which case the later file's rule replaces the earlier one (in place).
    Duplicates inside one file are always an error. All problems are raised together as
    :class:`ValidationErrors`, one ``FILE:LINE: field 'x': message`` line each.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files = (builtin_files() if builtin else []) + _expand(paths or [])
    if not files:
        raise InputError("no catalog files to load (builtin=False and no paths given)")
    problems: list[str] = []
    rules: dict[str, Rule] = {}
    where: dict[str, tuple[str, int]] = {}
    seen_in_file: set[tuple[str, str]] = set()
    unique: dict[Path, Path] = {}
    for f in files:  # a file named twice (even by another spelling) loads once
        unique.setdefault(f.resolve(), f)
    for f in unique.values():
        parsed = parse_file(f)
        problems.extend(parsed.problems)
        for rule, line in parsed.rules:
            fname = str(f)
            if rule.id in where:
                first_file, first_line = where[rule.id]
                same_file = (fname, rule.id) in seen_in_file
                if same_file or not override:
                    hint = "" if same_file else "; use override=True (--override) to replace it"
                    problems.append(
                        f"{fname}:{line}: field 'id': duplicate rule id '{rule.id}' "
                        f"(first defined at {first_file}:{first_line}){hint}"
                    )
                    continue
            rules[rule.id] = rule
            where[rule.id] = (fname, line)
            seen_in_file.add((fname, rule.id))
    if problems:
        raise ValidationErrors([_one_line(p) for p in problems])
    return Catalog(rules, where)


def _one_line(text: str) -> str:
    """Escape control and line-separator characters so a problem stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@functools.lru_cache(maxsize=1)
def _builtin_cached(stamp: tuple[tuple[str, int], ...]) -> Catalog:
    return load_catalog()


def builtin_catalog() -> Catalog:
    """The built-in catalog (cached while its files are unchanged)."""
    return _builtin_cached(tuple((str(f), f.stat().st_mtime_ns) for f in builtin_files()))
