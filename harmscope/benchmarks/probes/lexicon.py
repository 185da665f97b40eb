"""The identity lexicon: axes of identity descriptors used to fill ``{term}``/``{plural}`` slots.

Format (``harmscope/benchmarks/probes/data/lexicon.yaml``)::

    axes:
      religion:
        - {term: Buddhist, plural: Buddhist people, preferred: true}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmscope.benchmarks.probes.templates import load_yaml
from harmscope.errors import ValidationErrors

IDENTITY_SLOTS = ("term", "plural")


@dataclass(frozen=True)
class Descriptor:
    """One identity descriptor of one axis."""

    axis: str
    term: str
    plural: str
    preferred: bool


@dataclass(frozen=True)
class Lexicon:
    """Identity axes in file order, each a tuple of descriptors in file order."""

    axes: dict[str, tuple[Descriptor, ...]]
    source: str = ""

    def axis_names(self) -> list[str]:
        return list(self.axes)

    def __len__(self) -> int:
        return sum(len(v) for v in self.axes.values())


def parse_lexicon(data: Any, source: str) -> Lexicon:
    """Validate the parsed YAML of a lexicon; every problem is reported, one line each."""
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("axes"), dict) or not data["axes"]:
        raise ValidationErrors([f"{source}: expected a mapping with a non-empty 'axes' mapping"])
    axes: dict[str, tuple[Descriptor, ...]] = {}
    for axis, items in data["axes"].items():
        where = f"{source}: axis {axis!r}"
        if not isinstance(axis, str) or not axis:
            problems.append(f"{where}: axis names must be non-empty strings")
            continue
        if not isinstance(items, list) or not items:
            problems.append(f"{where}: expected a non-empty list of descriptors")
            continue
        seen: set[str] = set()
        out: list[Descriptor] = []
        for i, item in enumerate(items):
            at = f"{where} item {i + 1}"
            if not isinstance(item, dict):
                problems.append(f"{at}: expected a mapping with term, plural, preferred")
                continue
            unknown = set(item) - {"term", "plural", "preferred"}
            if unknown:
                problems.append(f"{at}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
            term, plural, pref = item.get("term"), item.get("plural"), item.get("preferred")
            if not isinstance(term, str) or not term.strip():
                problems.append(f"{at}: field 'term' must be a non-empty string")
                continue
            if term in seen:
                problems.append(f"{at}: duplicate term {term!r}")
                continue
            seen.add(term)
            if not isinstance(plural, str) or not plural.strip():
                problems.append(f"{at} ({term}): field 'plural' must be a non-empty string")
                continue
            if not isinstance(pref, bool):
                problems.append(f"{at} ({term}): field 'preferred' must be true or false")
                continue
            out.append(Descriptor(axis, term, plural, pref))
        axes[axis] = tuple(out)
    if problems:
        raise ValidationErrors(problems)
    return Lexicon(axes, source)


def load_lexicon(path: str | Path) -> Lexicon:
    """Load and validate ``lexicon.yaml``; raises ``ValidationErrors``/``InputError`` naming the file."""
    path = Path(path)
    return parse_lexicon(load_yaml(path), str(path))
