"""Probe generation.

``generate(catalog, ...)`` turns the rule catalog and the content files (templates, identity
lexicon, benign contrast prompts, hint questions, many-shot material) into a deterministic
:class:`~harmscope.types.ProbeSet` (assembled and stored by :mod:`~harmscope.benchmarks.probes.probeset`;
``write_probes`` / ``read_probes`` are re-exported here). The families are looked up in the
``FAMILIES`` registry (:mod:`~harmscope.benchmarks.probes.families`): the section families add
their probes in registration order; a preset whose ``family`` is a standalone family (the
``distributional`` preset: :mod:`~harmscope.benchmarks.probes.distributional`) is delegated to it.

Determinism: every stratum draws from its own ``random.Random`` seeded with a string derived
from ``seed`` and the stratum's name, never from global state, so the same inputs and seed give
byte-identical files, and adding a rule does not reshuffle the probes of another rule's stratum
(identity descriptors are drawn from shared per-axis cycles, so those may shift).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harmscope.benchmarks.probes import distributional  # noqa: F401  (registers the distributional family)
from harmscope.benchmarks.probes.families import FAMILIES, OPTIONS, Content, Groups, Section
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
from harmscope.benchmarks.probes.templates import Template, packaged_data_dir
from harmscope.benchmarks.probes.transforms import Transform, get_transform, parse_chains
from harmscope.errors import HarmscopeError
from harmscope.rules.taxonomy import is_risk, risk
from harmscope.types import ProbeSet

__all__ = ["FAMILIES", "GENERATOR_VERSION", "Content", "generate", "is_probe_measurable", "probe_stats",
           "read_probes", "write_probes"]


def _standalone(family: str, catalog: Any, preset: str, given: dict[str, Any], **common: Any) -> ProbeSet:
    """A preset whose ``family`` builds a set of its own: look it up in ``FAMILIES`` and delegate."""
    entry = FAMILIES.get(family)
    if not entry.meta.get("standalone"):
        raise HarmscopeError(f"preset {preset!r} names the probe family {family!r}, which builds no set of its own")
    takes = tuple(entry.meta.get("options", ()))
    refused = [k for k in OPTIONS if k not in takes and given.get(k) not in (None, (), [])]
    if refused:
        scope = getattr(entry.obj, "scope", "")
        raise HarmscopeError(f"the {preset} preset does not take --{', --'.join(k.replace('_', '-') for k in refused)}"
                             + (f" ({scope})" if scope else ""))
    d = resolve(preset, **{k: given.get(k) for k in takes})
    return entry.obj().build_set(catalog, preset=preset, **common, **{k: d.get(k) for k in takes})


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
    given = {"per_rule": per_rule, "transforms": transforms, "benign_ratio": benign_ratio,
             "framing_pairs": framing_pairs, "hint_pairs": hint_pairs, "escalations": escalations,
             "groups_per_axis": groups_per_axis, "samples": samples}
    family = resolve(preset).get("family") if preset is not None else None
    if family is not None:
        return _standalone(family, catalog, preset, given, rules=rules, axes=axes, seed=seed, data_dir=data_dir)
    p = resolve(preset, **{k: v for k, v in given.items() if k != "samples"})
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
    groups = Groups(lexicon, axis_names, seed, p["groups_per_axis"]) if lexicon is not None else None

    b = ProbeBuilder(seed, progress, 0)
    section = Section(catalog=catalog, p=p, seed=seed, ratio=ratio, content=content, selected=selected,
                      with_t=with_t, by_rule=by_rule, chains_named=chains_named, chains=chains, groups=groups,
                      builder=b)
    sections = [e.obj() for e in FAMILIES if not e.meta.get("standalone")]
    for fam in sections:  # the progress total: what every section plans, in order
        b.expected_total += fam.planned(section, b.expected_total)
    counts: dict[str, int] = {}
    requested: dict[str, int] = {}
    for fam in sections:
        before = len(b.probes)
        requested[fam.name] = fam.build(section)
        counts[fam.name] = len(b.probes) - before
    for fam_name, n in requested.items():
        if counts[fam_name] < n:
            counts[f"shortfall_{fam_name}"] = n - counts[fam_name]
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
