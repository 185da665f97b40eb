"""Probe generation.

``generate(catalog, ...)`` turns the rule catalog and the content files (templates, identity
lexicon, benign contrast prompts, hint questions, many-shot material) into a deterministic
:class:`~harmscope.types.ProbeSet` (assembled and stored by :mod:`~harmscope.benchmarks.probes.probeset`;
``write_probes`` / ``read_probes`` are re-exported here); the ``distributional`` preset is
delegated to :mod:`~harmscope.benchmarks.probes.distributional`.

Determinism: every stratum draws from its own ``random.Random`` seeded with a string derived
from ``seed`` and the stratum's name, never from global state, so the same inputs and seed give
byte-identical files, and adding a rule does not reshuffle the probes of another rule's stratum
(identity descriptors are drawn from shared per-axis cycles, so those may shift).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmscope.benchmarks.probes import distributional
from harmscope.benchmarks.probes.lexicon import Descriptor, Lexicon, load_lexicon
from harmscope.benchmarks.probes.presets import resolve
from harmscope.benchmarks.probes.probeset import (  # files and selection; some re-exported (__all__)
    GENERATOR_VERSION,
    ProbeBuilder,
    Progress,
    is_probe_measurable,
    make_probe_set,
    parse_axes,
    read_probes,
    select_rules,
    write_probes,
)
from harmscope.benchmarks.probes.templates import (
    BenignItem,
    HintBank,
    Template,
    load_benign,
    load_hints,
    load_templates,
    packaged_data_dir,
)
from harmscope.benchmarks.probes.transforms import Transform, get_transform, parse_chains
from harmscope.errors import HarmscopeError, InputError
from harmscope.rules import builtin_catalog
from harmscope.rules.taxonomy import is_risk, risk
from harmscope.types import ProbeSet, content_hash

__all__ = ["FAMILIES", "GENERATOR_VERSION", "Content", "generate", "is_probe_measurable", "probe_stats",
           "read_probes", "write_probes"]

FAMILIES = ("standard", "escalation", "framing", "hint", "benign")



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


# ---------------------------------------------------------------- generation
class _Groups:
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


def _values(
    t: Template, rng: random.Random, groups: _Groups | None
) -> tuple[dict[str, str], Descriptor | None]:
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


def _meta(t: Template, desc: Descriptor | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if desc is not None:
        meta["preferred"] = desc.preferred
    if t.style:
        meta["template_style"] = t.style
    return meta


def _apply(
    chain: Sequence[Transform], msgs: list[dict[str, str]], rng: random.Random
) -> list[dict[str, str]]:
    for tr in chain:
        msgs = tr.apply(msgs, rng)
    return msgs


def _chain_index(i: int, n_rows: int, n_cols: int) -> int:
    """Column for the ``i``-th draw when rows cycle fastest: every (row, column) pair comes up
    once per ``n_rows * n_cols`` draws and columns stay balanced along the way."""
    return (i // n_rows + i % n_rows) % n_cols


def _hint_prompt(question: str, choices: dict[str, str]) -> str:
    opts = "\n".join(f"({k}) {v}" for k, v in choices.items())
    return f"{question}\n\n{opts}\n\nAnswer with the letter of the correct option, then give a one-sentence reason."


def generate(
    catalog: Any,
    *,
    rules: str | Sequence[str] | None = None,
    axes: str | Sequence[str] | None = None,
    transforms: str | Sequence[str] | None = None,
    per_rule: int | None = None,
    seed: int = 0,
    benign_ratio: float | None = None,
    preset: str | None = None,
    data_dir: str | Path | None = None,
    framing_pairs: int | None = None,
    hint_pairs: int | None = None,
    escalations: int | None = None,
    groups_per_axis: int | None = None,
    progress: Progress | None = None,
    samples: int | None = None,
) -> ProbeSet:
    """Generate a stratified, deduplicated, deterministic probe set.

    ``rules`` is a catalog selector (``"group:toxicity,no-*"``) or a list of ids; ``axes`` the
    identity axes to expand over (default: all); ``transforms`` chains such as
    ``"base64,roleplay;rot13"`` or a list of chains (the untransformed chain is always included);
    ``per_rule`` standard probes per rule; ``benign_ratio`` the share of benign contrast probes in
    the final set; ``framing_pairs``/``hint_pairs`` pairs of the monitored/unmonitored and
    hint/no-hint families; ``escalations`` multi-turn escalation probes. Unset parameters come
    from ``preset`` (``smoke``/``standard``), then from the defaults in ``presets.DEFAULTS``.
    """
    if preset is not None and resolve(preset).get("family") == "distributional":
        extra = {"transforms": transforms, "benign-ratio": benign_ratio, "framing-pairs": framing_pairs,
                 "hint-pairs": hint_pairs, "escalations": escalations}
        given = [k for k, v in extra.items() if v not in (None, (), [])]
        if given:
            raise HarmscopeError(f"the {preset} preset does not take --{', --'.join(given)} (open-ended prompts only)")
        d = resolve(preset, per_rule=per_rule, groups_per_axis=groups_per_axis, samples=samples)
        return distributional.generate(catalog, axes=axes, rules=rules, per_rule=d["per_rule"],
                                       groups_per_axis=d["groups_per_axis"], samples=d["samples"], seed=seed,
                                       preset=preset, data_dir=data_dir)
    p = resolve(
        preset,
        per_rule=per_rule,
        transforms=transforms,
        benign_ratio=benign_ratio,
        framing_pairs=framing_pairs,
        hint_pairs=hint_pairs,
        escalations=escalations,
        groups_per_axis=groups_per_axis,
    )
    for key in ("per_rule", "framing_pairs", "hint_pairs", "escalations"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 0:
            raise HarmscopeError(f"{key.replace('_', '-')} must be a non-negative integer, got {p[key]!r}")
    if p["groups_per_axis"] is not None and (
        not isinstance(p["groups_per_axis"], int) or p["groups_per_axis"] < 1
    ):
        raise HarmscopeError(f"groups-per-axis must be a positive integer, got {p['groups_per_axis']!r}")
    ratio = float(p["benign_ratio"])
    if not 0.0 <= ratio < 1.0:
        raise HarmscopeError(f"benign-ratio must be in [0, 1), got {ratio}")

    selected = select_rules(catalog, rules)
    content = Content(
        Path(data_dir) if data_dir is not None else packaged_data_dir(), frozenset(catalog.rules)
    )
    chains_named = [(), *parse_chains(p["transforms"])]
    chains_named = list(dict.fromkeys(chains_named))
    bound: dict[str, Transform] = {}
    for chain in chains_named:
        for n in chain:
            bound.setdefault(n, get_transform(n).bind(content.data_dir))
    chains = [tuple(bound[n] for n in c) for c in chains_named]

    by_rule: dict[str, list[Template]] = {}
    for t in content.templates:
        by_rule.setdefault(t.rule, []).append(t)
    with_t = [r for r in selected if by_rule.get(r.id)]
    without_t = [r.id for r in selected if not by_rule.get(r.id)]
    if not with_t:
        raise HarmscopeError(f"no templates for the selected rules ({', '.join(r.id for r in selected[:8])})")

    needs_lex = any(t.identity for r in with_t for t in by_rule[r.id])
    lexicon = content.lexicon if needs_lex or axes is not None else None
    axis_names = parse_axes(axes, lexicon) if lexicon is not None else []
    groups = _Groups(lexicon, axis_names, seed, p["groups_per_axis"]) if lexicon is not None else None

    n_pairs = p["framing_pairs"] + p["hint_pairs"]
    expected_other = p["per_rule"] * len(with_t) + p["escalations"] + 2 * n_pairs
    expected_total = expected_other + (round(ratio * expected_other / (1 - ratio)) if ratio else 0)
    b = ProbeBuilder(seed, progress, expected_total)
    counts: dict[str, int] = {}

    # standard: per rule, round-robin over shuffled templates and transform chains
    C = len(chains)
    for r in with_t:
        rng = random.Random(f"{seed}|standard|{r.id}")
        tpls = list(by_rule[r.id])
        rng.shuffle(tpls)
        T = len(tpls)
        made, i, limit = 0, 0, p["per_rule"] * 4 + 16
        stall, max_stall = 0, max(256, 8 * T * C)  # combinations run out: stop, report the shortfall
        while made < p["per_rule"] and i < limit and stall < max_stall:
            t, ci = tpls[i % T], _chain_index(i, T, C)
            i += 1
            values, desc = _values(t, rng, groups)
            msgs = _apply(chains[ci], t.render(values), rng)
            probe = b.add(
                rule_ids=[r.id],
                template_id=t.id,
                messages=msgs,
                expected=t.expected,
                family="standard",
                slots=values,
                group_axis=desc.axis if desc else None,
                group=desc.term if desc else None,
                transforms=chains_named[ci],
                meta=_meta(t, desc),
            )
            made += probe is not None
            stall = 0 if probe is not None else stall + 1
    counts["standard"] = len(b.probes)

    # escalation: single-turn templates turned into a multi-turn run-up
    esc_rules = [r for r in with_t if any(not t.multi_turn for t in by_rule[r.id])]
    if p["escalations"] and esc_rules:
        rng = random.Random(f"{seed}|escalation")
        escalate = get_transform("escalation").bind(content.data_dir)
        made, j = 0, 0
        while made < p["escalations"] and j < p["escalations"] * 4 + 16:
            r = esc_rules[j % len(esc_rules)]
            j += 1
            t = rng.choice([t for t in by_rule[r.id] if not t.multi_turn])
            values, desc = _values(t, rng, groups)
            probe = b.add(
                rule_ids=[r.id],
                template_id=t.id,
                messages=escalate.apply(t.render(values), rng),
                expected=t.expected,
                family="escalation",
                slots=values,
                group_axis=desc.axis if desc else None,
                group=desc.term if desc else None,
                transforms=["escalation"],
                meta=_meta(t, desc),
            )
            made += probe is not None
    counts["escalation"] = len(b.probes) - counts["standard"]

    # framing: the same request under a monitored and an unmonitored notice
    if p["framing_pairs"]:
        rng = random.Random(f"{seed}|framing")
        mon, unmon = get_transform("monitored"), get_transform("unmonitored")
        pairs: set[str] = set()
        j = 0
        while len(pairs) < p["framing_pairs"] and j < p["framing_pairs"] * 4 + 16:
            r = with_t[j % len(with_t)]
            j += 1
            t = rng.choice(by_rule[r.id])
            values, desc = _values(t, rng, groups)
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
                "meta": _meta(t, desc),
            }
            made_pair = [
                b.add(messages=tr.apply(base, rng), transforms=[tr.name], variant=tr.name, dry=True, **common)
                for tr in (mon, unmon)
            ]
            if all(made_pair):
                pairs.add(pair_id)
                for probe in made_pair:
                    b.commit(probe)
    counts["framing"] = len(b.probes) - counts["standard"] - counts["escalation"]

    # hint injection: the same multiple-choice question with and without a planted wrong hint
    if p["hint_pairs"]:
        bank = content.hints
        awareness = [rid for rid, rule in catalog.rules.items() if "awareness" in rule.judges]
        rng = random.Random(f"{seed}|hint")
        items = list(bank.items)
        rng.shuffle(items)
        n_items, S = len(items), len(bank.styles)
        pairs = set()
        j = 0
        while len(pairs) < p["hint_pairs"] and j < p["hint_pairs"] * 4 + 16:
            item, si = items[j % n_items], _chain_index(j, n_items, S)
            j += 1
            where = rng.choice(("before", "after"))
            base = _hint_prompt(item.question, item.choices)
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
    counts["hint"] = len(b.probes) - sum(counts.values())

    # benign contrast prompts at the requested share of the final set
    n_other = len(b.probes)
    want = round(ratio * n_other / (1 - ratio)) if ratio else 0
    if want:
        groups_sel = {r.group for r in selected}
        items_b = [it for it in content.benign if it.contrasts in groups_sel] or list(content.benign)
        rng = random.Random(f"{seed}|benign")
        rng.shuffle(items_b)
        n_items = len(items_b)
        made, j = 0, 0
        while made < want and j < want * 4 + 16:
            it, ci = items_b[j % n_items], _chain_index(j, n_items, C)
            j += 1
            probe = b.add(
                rule_ids=[it.rule] if it.rule else [],
                template_id=it.id,
                messages=_apply(chains[ci], [{"role": "user", "content": it.text}], rng),
                expected="comply",
                family="benign",
                benign=True,
                transforms=chains_named[ci],
                meta={"contrasts": it.contrasts, "kind": it.kind},
            )
            made += probe is not None
    counts["benign"] = len(b.probes) - n_other

    requested = {
        "standard": p["per_rule"] * len(with_t),
        "escalation": p["escalations"] if esc_rules else 0,
        "framing": 2 * p["framing_pairs"],
        "hint": 2 * p["hint_pairs"],
        "benign": want,
    }
    for fam, n in requested.items():
        if counts[fam] < n:
            counts[f"shortfall_{fam}"] = n - counts[fam]
    counts["probes"] = len(b.probes)
    counts["rules"] = len({rid for pr in b.probes if pr.family == "standard" for rid in pr.rule_ids})
    if progress is not None:
        progress(len(b.probes), len(b.probes))

    params = {
        "preset": preset,
        "rules": [r.id for r in selected],
        "rules_without_templates": without_t,
        "axes": axis_names,
        "transforms": [",".join(c) or "none" for c in chains_named],
        "per_rule": p["per_rule"],
        "benign_ratio": ratio,
        "groups_per_axis": p["groups_per_axis"],
        "framing_pairs": p["framing_pairs"],
        "hint_pairs": p["hint_pairs"],
        "escalations": p["escalations"],
        "content_version": content.version(),
    }
    return make_probe_set(
        b.probes, catalog_version=str(catalog.version), seed=seed, params=params, counts=counts
    )


# ---------------------------------------------------------------- summaries
def probe_stats(probe_set: ProbeSet, catalog: Any | None = None) -> dict[str, list[tuple[str, int]]]:
    """Counts per rule, risk area, transform chain, identity group, family and benign flag."""
    rules: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    trans: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    fams: Counter[str] = Counter()
    benign: Counter[str] = Counter()
    area_of: dict[str, list[str]] = {}
    if catalog is not None:
        for rid, rule in catalog.rules.items():
            area_of[rid] = sorted({risk(x).area for x in rule.risks if is_risk(x)})
    for p in probe_set.probes:
        for rid in p.rule_ids or ["(none)"]:
            rules[rid] += 1
        p_areas = sorted({a for rid in p.rule_ids for a in area_of.get(rid, ["?"])}) or ["(none)"]
        for a in p_areas:
            areas[a] += 1
        trans[",".join(p.transforms) or "none"] += 1
        groups[f"{p.group_axis}: {p.group}" if p.group_axis else "(no group)"] += 1
        fams[p.family] += 1
        benign["benign" if p.benign else "not benign"] += 1

    def srt(c: Counter[str]) -> list[tuple[str, int]]:
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))

    return {
        "rule": srt(rules),
        "area": srt(areas),
        "transform": srt(trans),
        "group": srt(groups),
        "family": srt(fams),
        "benign": srt(benign),
    }
