"""Probe families: one registered unit per family, looked up through ``FAMILIES``.

A **section** family (``standalone = False``) adds its probes to the mixed set that
:func:`~harmscope.benchmarks.probes.generate.generate` assembles; sections run in registration
order (standard, escalation, framing, hint, benign, then any plugin's), which is their order in the
file. Each gets the shared :class:`Section` (resolved parameters, selected rules, templates,
transform chains, identity-group cycles and the probe builder), adds probes with
``section.builder.add`` and returns how many it was asked for (a shortfall is recorded in the
manifest). A **standalone** family (``standalone = True``, such as ``distributional``) builds a
whole set of its own and is chosen by a preset's ``family`` key; ``options`` names the generation
options it reads (any other given option is an error for it).

Determinism: every family draws from its own ``random.Random`` seeded with a string derived from
``seed`` and its name, never from global state.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harmscope.benchmarks.probes.lexicon import Descriptor, Lexicon, load_lexicon
from harmscope.benchmarks.probes.probeset import ProbeBuilder
from harmscope.benchmarks.probes.templates import (
    BenignItem,
    HintBank,
    Template,
    load_benign,
    load_hints,
    load_templates,
    packaged_data_dir,
)
from harmscope.benchmarks.probes.transforms import Transform, get_transform
from harmscope.errors import HarmscopeError, InputError
from harmscope.registry import Registry
from harmscope.rules import builtin_catalog
from harmscope.types import Rule, content_hash

FAMILIES = Registry("probe family", meta_attrs=("standalone", "options"), ordered=True)

# every generation option, in the order errors name them
OPTIONS = ("per_rule", "transforms", "benign_ratio", "framing_pairs", "hint_pairs", "escalations",
           "groups_per_axis", "samples")


# ---------------------------------------------------------------- content
@dataclass
class Content:
    """The content files of one data folder, loaded lazily and validated against a catalog."""

    data_dir: Path
    rule_ids: frozenset[str]
    _templates: list[Template] | None = None
    _lexicon: Lexicon | None = None
    _benign: list[BenignItem] | None = None
    _hints: HintBank | None = None

    @property
    def templates(self) -> list[Template]:
        if self._templates is None:
            tdir = self.data_dir / "templates"
            if not tdir.is_dir():
                raise InputError(f"{tdir}: template folder not found")
            self._templates = load_templates(tdir, self.known_rules())
        return self._templates

    def known_rules(self) -> frozenset[str]:
        """Rule ids content may name: the catalog's, plus the built-in ones for packaged content
        (so a user catalog without the built-in rules can still use the packaged templates;
        templates for rules outside the selection are simply not used)."""
        if self.data_dir.resolve() == packaged_data_dir().resolve():
            return self.rule_ids | frozenset(builtin_catalog().rules)
        return self.rule_ids

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            self._lexicon = load_lexicon(self.data_dir / "lexicon.yaml")
        return self._lexicon

    @property
    def benign(self) -> list[BenignItem]:
        if self._benign is None:
            self._benign = load_benign(self.data_dir / "benign.yaml", self.known_rules())
        return self._benign

    @property
    def hints(self) -> HintBank:
        if self._hints is None:
            self._hints = load_hints(self.data_dir / "hints.yaml")
        return self._hints

    def version(self) -> str:
        """Hash of every content file's bytes (so a template edit changes the set hash)."""
        h = hashlib.sha256()
        for f in sorted(self.data_dir.rglob("*.y*ml")):
            h.update(f.relative_to(self.data_dir).as_posix().encode())
            h.update(b"\0")
            h.update(f.read_bytes())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------- shared helpers
class Groups:
    """Round-robin over the selected axes, then over each axis's (seed-shuffled) descriptors."""

    def __init__(self, lexicon: Lexicon | None, axes: list[str], seed: int, per_axis: int | None):
        self.axes = axes
        self.order: dict[str, list[Descriptor]] = {}
        self.pos: dict[str, int] = {}
        for a in axes:
            ds = list(lexicon.axes[a]) if lexicon is not None else []
            random.Random(f"{seed}|axis|{a}").shuffle(ds)
            self.order[a] = ds[:per_axis] if per_axis else ds
            self.pos[a] = 0
        self.turn = 0

    def next(self) -> Descriptor:
        axis = self.axes[self.turn % len(self.axes)]
        self.turn += 1
        ds = self.order[axis]
        d = ds[self.pos[axis] % len(ds)]
        self.pos[axis] += 1
        return d


def fill(t: Template, rng: random.Random, groups: Groups | None) -> tuple[dict[str, str], Descriptor | None]:
    """Slot values for one rendering of ``t`` (the identity slots from the next group)."""
    values = {k: rng.choice(v) for k, v in t.fills.items()}
    desc = None
    if t.identity:
        if groups is None:
            raise HarmscopeError(
                f"{t.source}: template {t.id!r} uses identity slots but no lexicon is loaded"
            )
        desc = groups.next()
        values["term"], values["plural"] = desc.term, desc.plural
    used = t.used
    return {k: v for k, v in values.items() if k in used}, desc


def template_meta(t: Template, desc: Descriptor | None) -> dict[str, Any]:
    """A templated probe's ``meta``: the descriptor's preferred flag and the template style."""
    meta: dict[str, Any] = {}
    if desc is not None:
        meta["preferred"] = desc.preferred
    if t.style:
        meta["template_style"] = t.style
    return meta


def apply_chain(
    chain: Sequence[Transform], msgs: list[dict[str, str]], rng: random.Random
) -> list[dict[str, str]]:
    """Apply the transforms of ``chain`` left to right."""
    for tr in chain:
        msgs = tr.apply(msgs, rng)
    return msgs


def chain_index(i: int, n_rows: int, n_cols: int) -> int:
    """Column for the ``i``-th draw when rows cycle fastest: every (row, column) pair comes up
    once per ``n_rows * n_cols`` draws and columns stay balanced along the way."""
    return (i // n_rows + i % n_rows) % n_cols


def hint_prompt(question: str, choices: dict[str, str]) -> str:
    """A multiple-choice question with lettered options."""
    opts = "\n".join(f"({k}) {v}" for k, v in choices.items())
    return f"{question}\n\n{opts}\n\nAnswer with the letter of the correct option, then give a one-sentence reason."


@dataclass
class Section:
    """What a section family works from: resolved parameters, selection, content and the builder."""

    catalog: Any
    p: dict[str, Any]  # resolved generation parameters (presets.resolve)
    seed: int
    ratio: float  # benign_ratio as a float
    content: Content
    selected: list[Rule]
    with_t: list[Rule]  # selected rules that have templates, in selection order
    by_rule: dict[str, list[Template]]
    chains_named: list[tuple[str, ...]]
    chains: list[tuple[Transform, ...]]
    groups: Groups | None
    builder: ProbeBuilder


class Family:
    """Base of the section families: ``planned`` (for the progress total) and ``build``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    standalone: ClassVar[bool] = False
    options: ClassVar[tuple[str, ...]] = ()

    def planned(self, s: Section, n_before: int) -> int:
        """Probes this family expects to add (``n_before`` were planned before it); progress only."""
        return 0

    def build(self, s: Section) -> int:
        """Add this family's probes to ``s.builder``; return how many were requested."""
        raise NotImplementedError


# ---------------------------------------------------------------- the section families
@FAMILIES.register
class Standard(Family):
    """Per rule, round-robin over seed-shuffled templates and transform chains."""

    name = "standard"
    options = ("per_rule", "transforms", "groups_per_axis")

    def planned(self, s: Section, n_before: int) -> int:
        return s.p["per_rule"] * len(s.with_t)

    def build(self, s: Section) -> int:
        b, C = s.builder, len(s.chains)
        for r in s.with_t:
            rng = random.Random(f"{s.seed}|standard|{r.id}")
            tpls = list(s.by_rule[r.id])
            rng.shuffle(tpls)
            T = len(tpls)
            made, i, limit = 0, 0, s.p["per_rule"] * 4 + 16
            stall, max_stall = 0, max(256, 8 * T * C)  # combinations run out: stop, report the shortfall
            while made < s.p["per_rule"] and i < limit and stall < max_stall:
                t, ci = tpls[i % T], chain_index(i, T, C)
                i += 1
                values, desc = fill(t, rng, s.groups)
                msgs = apply_chain(s.chains[ci], t.render(values), rng)
                probe = b.add(
                    rule_ids=[r.id],
                    template_id=t.id,
                    messages=msgs,
                    expected=t.expected,
                    family="standard",
                    slots=values,
                    group_axis=desc.axis if desc else None,
                    group=desc.term if desc else None,
                    transforms=s.chains_named[ci],
                    meta=template_meta(t, desc),
                )
                made += probe is not None
                stall = 0 if probe is not None else stall + 1
        return s.p["per_rule"] * len(s.with_t)


@FAMILIES.register
class Escalation(Family):
    """Single-turn templates turned into a multi-turn run-up."""

    name = "escalation"
    options = ("escalations",)

    def planned(self, s: Section, n_before: int) -> int:
        return s.p["escalations"]

    def build(self, s: Section) -> int:
        esc_rules = [r for r in s.with_t if any(not t.multi_turn for t in s.by_rule[r.id])]
        n = s.p["escalations"]
        if n and esc_rules:
            rng = random.Random(f"{s.seed}|escalation")
            escalate = get_transform("escalation").bind(s.content.data_dir)
            made, j = 0, 0
            while made < n and j < n * 4 + 16:
                r = esc_rules[j % len(esc_rules)]
                j += 1
                t = rng.choice([t for t in s.by_rule[r.id] if not t.multi_turn])
                values, desc = fill(t, rng, s.groups)
                probe = s.builder.add(
                    rule_ids=[r.id],
                    template_id=t.id,
                    messages=escalate.apply(t.render(values), rng),
                    expected=t.expected,
                    family="escalation",
                    slots=values,
                    group_axis=desc.axis if desc else None,
                    group=desc.term if desc else None,
                    transforms=["escalation"],
                    meta=template_meta(t, desc),
                )
                made += probe is not None
        return n if esc_rules else 0


@FAMILIES.register
class Framing(Family):
    """The same request under a monitored and an unmonitored notice (pairs)."""

    name = "framing"
    options = ("framing_pairs",)

    def planned(self, s: Section, n_before: int) -> int:
        return 2 * s.p["framing_pairs"]

    def build(self, s: Section) -> int:
        n, b = s.p["framing_pairs"], s.builder
        if n:
            rng = random.Random(f"{s.seed}|framing")
            mon, unmon = get_transform("monitored"), get_transform("unmonitored")
            pairs: set[str] = set()
            j = 0
            while len(pairs) < n and j < n * 4 + 16:
                r = s.with_t[j % len(s.with_t)]
                j += 1
                t = rng.choice(s.by_rule[r.id])
                values, desc = fill(t, rng, s.groups)
                base = t.render(values)
                pair_id = content_hash({"family": "framing", "template": t.id, "messages": base})
                if pair_id in pairs:
                    continue
                common = {
                    "rule_ids": [r.id],
                    "template_id": t.id,
                    "expected": t.expected,
                    "family": "framing",
                    "slots": values,
                    "group_axis": desc.axis if desc else None,
                    "group": desc.term if desc else None,
                    "pair_id": pair_id,
                    "meta": template_meta(t, desc),
                }
                made_pair = [
                    b.add(messages=tr.apply(base, rng), transforms=[tr.name], variant=tr.name, dry=True, **common)
                    for tr in (mon, unmon)
                ]
                if all(made_pair):
                    pairs.add(pair_id)
                    for probe in made_pair:
                        b.commit(probe)
        return 2 * n


@FAMILIES.register
class Hint(Family):
    """The same multiple-choice question with and without a planted wrong hint (pairs)."""

    name = "hint"
    options = ("hint_pairs",)

    def planned(self, s: Section, n_before: int) -> int:
        return 2 * s.p["hint_pairs"]

    def build(self, s: Section) -> int:
        n, b = s.p["hint_pairs"], s.builder
        if n:
            bank = s.content.hints
            awareness = [rid for rid, rule in s.catalog.rules.items() if "awareness" in rule.judges]
            rng = random.Random(f"{s.seed}|hint")
            items = list(bank.items)
            rng.shuffle(items)
            n_items, S = len(items), len(bank.styles)
            pairs: set[str] = set()
            j = 0
            while len(pairs) < n and j < n * 4 + 16:
                item, si = items[j % n_items], chain_index(j, n_items, S)
                j += 1
                where = rng.choice(("before", "after"))
                base = hint_prompt(item.question, item.choices)
                hint = bank.styles[si].replace("{hinted}", item.hinted)
                hinted = f"{hint}\n\n{base}" if where == "before" else f"{base}\n\n{hint}"
                pair_id = content_hash({"family": "hint", "item": item.id, "style": si, "where": where})
                if pair_id in pairs:
                    continue
                meta = {
                    "answer": item.answer,
                    "hinted": item.hinted,
                    "choices": dict(item.choices),
                    "style": si,
                    "hint_text": hint,
                    "position": where,
                }
                made_pair = [
                    b.add(
                        rule_ids=awareness,
                        template_id=item.id,
                        messages=[{"role": "user", "content": text}],
                        expected="comply",
                        family="hint",
                        pair_id=pair_id,
                        variant=variant,
                        meta=meta,
                        dry=True,
                    )
                    for variant, text in (("hint", hinted), ("nohint", base))
                ]
                if all(made_pair):
                    pairs.add(pair_id)
                    for probe in made_pair:
                        b.commit(probe)
        return 2 * n


def _benign_share(ratio: float, n_other: int) -> int:
    return round(ratio * n_other / (1 - ratio)) if ratio else 0


@FAMILIES.register
class Benign(Family):
    """Benign contrast prompts at the requested share of the set (of the probes made before it)."""

    name = "benign"
    options = ("benign_ratio", "transforms")

    def planned(self, s: Section, n_before: int) -> int:
        return _benign_share(s.ratio, n_before)

    def build(self, s: Section) -> int:
        b, C = s.builder, len(s.chains)
        want = _benign_share(s.ratio, len(b.probes))
        if want:
            groups_sel = {r.group for r in s.selected}
            items_b = [it for it in s.content.benign if it.contrasts in groups_sel] or list(s.content.benign)
            rng = random.Random(f"{s.seed}|benign")
            rng.shuffle(items_b)
            n_items = len(items_b)
            made, j = 0, 0
            while made < want and j < want * 4 + 16:
                it, ci = items_b[j % n_items], chain_index(j, n_items, C)
                j += 1
                probe = b.add(
                    rule_ids=[it.rule] if it.rule else [],
                    template_id=it.id,
                    messages=apply_chain(s.chains[ci], [{"role": "user", "content": it.text}], rng),
                    expected="comply",
                    family="benign",
                    benign=True,
                    transforms=s.chains_named[ci],
                    meta={"contrasts": it.contrasts, "kind": it.kind},
                )
                made += probe is not None
        return want
