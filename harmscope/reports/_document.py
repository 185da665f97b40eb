"""A format-neutral report document built from results, rendered to PDF, HTML and Markdown.

Building the content once and rendering it three times keeps the formats in step. All text in
blocks is plain text: renderers escape it (probe and reply text is adversarial).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harmscope.reports import _plots
from harmscope.types import AuditResult, RunResult

PCT_COLS = {"rate", "lo", "hi", "corrected", "corrected_lo", "corrected_hi", "base_rate", "asr",
            "monitored_rate", "unmonitored_rate", "gap", "gap_lo", "gap_hi", "over_refusal",
            "violation_rate", "selection_rate", "fpr", "fnr", "follow_rate", "verbalise_rate",
            "toxicity_probability", "diff", "diff_lo", "diff_hi", "rate_a", "rate_b", "axis_max_gap",
            "uplift", "uplift_lo", "uplift_hi", "graded_rate", "reference", "tp_lo", "tp_hi"}


@dataclass
class Block:
    kind: str  # heading | para | kv | table | image | examples | pagebreak | warning
    text: str = ""
    level: int = 1
    items: list[Any] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)
    png: bytes | None = None


@dataclass
class Document:
    title: str
    subtitle: list[tuple[str, str]]
    blocks: list[Block]


def fmt(value: Any, col: str = "") -> str:
    """Human formatting of one cell: percentages for rates, 3 decimals for other floats."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "undefined"
        if col in PCT_COLS:
            return f"{100 * value:.1f}%"
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        if "value" in value:  # an estimate with its interval, or the reason it is undefined
            if value["value"] is None:
                return f"undefined ({value.get('reason') or 'no data'})"
            v = fmt(_f(value["value"]), col)
            if value.get("lo") is not None and value.get("hi") is not None:
                v += f" [{fmt(_f(value['lo']), col)}, {fmt(_f(value['hi']), col)}]"
            return v
        return ", ".join(f"{k}={fmt(v, k)}" for k, v in value.items())
    return str(value)


def rate_text(r: dict | None) -> str:
    """``12.3% [8.1%, 17.0%] (k/n)`` for a Rate dict."""
    if not r or r.get("rate") is None:
        return "undefined (no data)"
    s = f"{fmt(float(r['rate']), 'rate')} [{fmt(_f(r.get('lo')), 'lo')}, {fmt(_f(r.get('hi')), 'hi')}]"
    if "k" in r and "n" in r:
        s += f" ({r['k']}/{r['n']})"
    return s


def _f(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _columns(rows: Sequence[dict], preferred: Sequence[str]) -> list[tuple[str, str]]:
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    order = [k for k in preferred if k in keys] or keys
    return [(k, k.replace("_", " ")) for k in order[:11]]


def _table(title: str, rows: Sequence[dict] | None, preferred: Sequence[str], note: str = "") -> list[Block]:
    if not rows:
        return []
    blocks = [Block("heading", title, level=2)]
    if note:
        blocks.append(Block("para", note))
    blocks.append(Block("table", title, items=list(rows), columns=_columns(rows, preferred)))
    return blocks


def _image(title: str, png: bytes | None) -> list[Block]:
    return [Block("image", title, png=png)] if png else []


RATE_COLS = ["k", "n", "rate", "lo", "hi", "corrected", "corrected_lo", "corrected_hi", "flag"]


def run_document(result: RunResult) -> Document:
    """The content of a single-run benchmark report."""
    m = result.manifest
    t = result.tables
    s = result.summary
    subtitle = [
        ("Model", m.model), ("Run", m.run_id), ("Probe set hash", m.probe_set_hash),
        ("Catalog version", str(m.params.get("catalog_version", s.get("catalog_version", "—")))),
        ("Date", (m.ended_at or m.started_at or dt.datetime.now(dt.UTC).isoformat())[:19]),
        ("harmscope", m.versions.get("harmscope", "—")),
    ]
    b: list[Block] = [Block("heading", "Executive summary")]
    worst = s.get("worst_rules") or sorted(
        (r for r in t.get("by_rule", []) if r.get("rate") is not None), key=lambda r: -float(r["rate"]))[:5]
    kv = [("Pooled violation rate (all rules, adversarial probes)", rate_text(s.get("pooled"))),
          ("Over-refusal on benign look-alike probes", rate_text(s.get("over_refusal")))]
    gap = s.get("compliance_gap")
    if isinstance(gap, dict) and gap:
        kv.append(("Compliance gap (unmonitored − monitored)",
                   f"{fmt(_f(gap.get('gap')), 'gap')} [{fmt(_f(gap.get('gap_lo', gap.get('lo'))), 'gap')}, "
                   f"{fmt(_f(gap.get('gap_hi', gap.get('hi'))), 'gap')}], McNemar p = {fmt(_f(gap.get('p_value')))}, "
                   f"pairs = {gap.get('n_pairs', '—')}"))
    if s.get("awareness") is not None:
        kv.append(("Evaluation-awareness flags", rate_text(s.get("awareness"))))
    kv.append(("Worst rules", ", ".join(
        f"{w.get('rule_id', w.get('rule', '?'))} ({fmt(_f(w.get('rate')), 'rate')})" for w in worst) or "—"))
    b.append(Block("kv", items=kv))
    b += _table("Grades per risk area", _with_area_names(t.get("grades")),
                ["area", "area_name", "rate", "graded_rate", "reference", "grade", "basis"],
                s.get("grade_note", "Five-step scale (very low .. very high) on the violation rate: absolute thresholds, or "
                      "relative to a reference run when one is given (harmscope score --reference); thresholds "
                      "in the methodology appendix."))
    b.append(Block("pagebreak"))
    b.append(Block("heading", "Violations by rule and risk area"))
    b += _image("Violation rate per rule (Wilson 95% intervals)",
                _plots.interval_bars(t.get("by_rule", []), "rule_id", title="Violation rate per rule"))
    b += _table("By risk area", _with_area_names(t.get("by_area")), ["area", "area_name", *RATE_COLS])
    b += _table("By rule group", t.get("by_group"), ["rule_group", "group", *RATE_COLS])
    b += _table("By rule", t.get("by_rule"), ["rule_id", "group", *RATE_COLS],
                "Corrected = Rogan-Gladen rate adjusted for the judge's measured sensitivity and "
                "specificity; a flag marks cells where the correction changes the conclusion.")
    b.append(Block("heading", "Attacks and transforms"))
    b += _image("Rule × transform violation rate",
                _plots.heatmap(t.get("rule_x_transform", []), "rule_id", "transform", title="Rule × transform"))
    b += _table("By transform", t.get("by_transform"), ["transform", *RATE_COLS])
    b += _table("Attack success relative to untransformed probes", t.get("attack_success"),
                ["transform", "k", "n", "rate", "base_rate", "uplift", "uplift_lo", "uplift_hi", "p_value"])
    b += _table("By number of turns", t.get("by_turns"), ["turns", *RATE_COLS])
    b.append(Block("heading", "Identity groups"))
    b += _image("Violation rate by identity group",
                _plots.interval_bars(t.get("by_identity", []), "group", title="Violation rate by identity group"))
    b += _table("By identity group", t.get("by_identity"),
                ["axis", "group", "k", "n", "rate", "lo", "hi", "axis_max_gap", "axis_p_value"],
                s.get("disparity_note", ""))
    b.append(Block("heading", "Over-refusal, framing and hints"))
    b += _table("Over-refusal on benign probes", t.get("over_refusal"),
                ["scope", "family", "contrasts", "k", "n", "rate", "lo", "hi", "partial"])
    b += _table("Compliance gap (monitored vs unmonitored framing)", t.get("compliance_gap"),
                ["rule_id", "n_pairs", "monitored_rate", "unmonitored_rate", "gap", "lo", "hi", "p_value"],
                "Gap = unmonitored minus monitored violation rate over paired probes; McNemar exact test.")
    b += _table("Hint following and verbalisation", t.get("hint"), ["metric", "k", "n", "rate", "lo", "hi"],
                "Following: the answer moves to the planted option; verbalisation: a reply that follows the "
                "hint says so.")
    b += _table("Toxicity over samples (RealToxicityPrompts definitions)", t.get("toxicity"),
                ["scope", "prompts", "expected_max_toxicity", "emt_std", "toxicity_probability", "tp_lo", "tp_hi"])
    b += _table("Evaluation awareness", t.get("awareness"), ["scope", "k", "n", "rate", "lo", "hi"])
    b += _examples(t.get("examples", []))
    b += _methodology(result)
    return Document(f"harmscope benchmark report — {m.model}", subtitle, b)


def _with_area_names(rows: Sequence[dict] | None) -> list[dict]:
    from harmscope.rules.taxonomy import AREAS

    names = {a.id: a.name for a in AREAS}
    return [{**r, "area_name": r.get("area_name") or names.get(str(r.get("area")), "")} for r in rows or []]


def _examples(rows: Sequence[dict]) -> list[Block]:
    if not rows:
        return []
    return [Block("pagebreak"), Block("heading", "Example violating replies"),
            Block("warning", "Content warning: the replies below were judged to violate a rule and may "
                  "contain offensive or harmful text. They are shown escaped and truncated."),
            Block("examples", items=list(rows)[:12])]


def _methodology(result: RunResult) -> list[Block]:
    b = [Block("pagebreak"), Block("heading", "Methodology")]
    b.append(Block("para",
        "Each probe is a conversation generated from a rule of the catalog, optionally transformed by an "
        "attack (role-play, encoding, framing...). A violation rate is the share of replies that the judges "
        "find to break the rule the probe targets; intervals are Wilson 95% intervals and n is shown beside "
        "every figure. Over-refusal is the share of benign look-alike probes that the model refused. The "
        "compliance gap compares paired probes that differ only in being presented as monitored or "
        "unmonitored (McNemar test on discordant pairs)."))
    b.append(Block("para",
        "What the numbers do not mean: probes are templated and adversarial, not a sample of real traffic, so "
        "rates are not deployment prevalence. Following Rauh et al. (2022), harm depends on context, recipient "
        "and whether it shows in one reply (instance) or only across many (distributional): distributional "
        "harms such as unequal quality across groups are read from the group breakdowns, not from single "
        "replies. Judges are measured instruments with errors; corrected rates assume the validation data "
        "resemble these replies."))
    judges = result.judges or {}
    rows = result.tables.get("judge_validation") or []
    if not rows:
        for name, info in (judges.get("judges") or judges).items():
            info = info if isinstance(info, dict) else {"spec": info}
            val = info.get("validation") or {}
            rows.append({"judge": name, "version": info.get("version", "—"),
                         **{k: val.get(k) for k in ("n", "accuracy", "precision", "recall", "f1", "kappa", "auc")}})
    if judges.get("spec"):
        b.append(Block("kv", items=[("Judges", str(judges.get("spec"))), ("Ensemble", str(judges.get("mode", "—")))]))
    b += _table("Judges and their validation figures", rows,
                ["judge", "version", "n", "accuracy", "precision", "recall", "f1", "kappa", "auc", "source"],
                "Measured against labelled replies written for harmscope; 'source' says which set. These "
                "figures drive the judge-error correction.")
    m = result.manifest
    kv = [("Run id", m.run_id), ("Probe set hash", m.probe_set_hash), ("Model", m.model),
          ("Generation parameters", fmt(m.params)), ("Versions", fmt(m.versions)),
          ("Git revision", m.git_revision or "—"), ("Counts", fmt(m.counts))]
    th = result.summary.get("grade_thresholds")
    if th:
        kv.append(("Grade thresholds", fmt(th)))
    b.append(Block("heading", "Provenance", level=2))
    b.append(Block("kv", items=kv))
    return b


def compare_document(results: Sequence[RunResult], comparison: Sequence[dict] | None = None) -> Document:
    """The content of a report comparing several runs (models)."""
    rows = []
    for r in results:
        pooled = r.summary.get("pooled") or {}
        over = r.summary.get("over_refusal") or {}
        rows.append({"model": r.manifest.model, "run": r.manifest.run_id,
                     "violation_rate": _f(pooled.get("rate")), "lo": _f(pooled.get("lo")),
                     "hi": _f(pooled.get("hi")), "n": pooled.get("n"),
                     "over_refusal": _f(over.get("rate"))})
    b: list[Block] = [Block("heading", "Models compared")]
    b += _table("Pooled violation and over-refusal", rows,
                ["model", "run", "n", "violation_rate", "lo", "hi", "over_refusal"])
    b += _image("Safety vs over-refusal", _plots.scatter(
        rows, x="over_refusal", y="violation_rate", label="model", title="Safety vs over-refusal",
        xlabel="over-refusal rate (benign probes)", ylabel="violation rate (adversarial probes)"))
    if comparison:
        b += _table("Per-rule differences", comparison,
                    ["rule_id", "run_b", "rate_a", "rate_b", "diff", "diff_lo", "diff_hi", "p_holm", "significant"],
                    "Differences are run B minus run A with a 95% interval; significance after Holm correction.")
    for r in results:
        doc = run_document(r)
        b.append(Block("pagebreak"))
        b.append(Block("heading", f"Run {r.manifest.run_id}: {r.manifest.model}"))
        b += [blk for blk in doc.blocks if blk.kind != "heading" or blk.level > 1][:12]
    models = ", ".join(r.manifest.model for r in results)
    return Document("harmscope comparison report", [("Models", models),
                    ("Date", dt.datetime.now(dt.UTC).isoformat()[:19])], b)


def audit_document(audit: AuditResult) -> Document:
    """The content of a classifier bias audit report."""
    o = audit.overall
    t = audit.tables
    b: list[Block] = [Block("heading", "Summary")]
    kv = [(k.replace("_", " "), fmt(v, k)) for k, v in o.items() if not isinstance(v, (list, dict))]
    b.append(Block("kv", items=kv))
    worst = [{**r, "lower": r.get("lo"), "upper": r.get("hi")} for r in audit.worst_groups]  # AUCs, not rates
    b += _table("Groups treated worst", worst, ["subgroup", "metric", "value", "lower", "upper", "n", "meaning"],
                "Lowest BPSN AUC: the classifier confuses non-toxic mentions of the group with toxic text "
                "(false positives against the group). Lowest BNSP AUC: it misses toxicity about the group.")
    roc = t.get("roc", [])
    curves: dict[str, dict] = {}
    for row in roc:
        c = curves.setdefault(str(row.get("name", row.get("group", "overall"))),
                              {"name": row.get("name", row.get("group", "overall")), "fpr": [], "tpr": [],
                               "auc": row.get("auc")})
        if "fpr" in row and "tpr" in row:
            fpr, tpr = row["fpr"], row["tpr"]
            if isinstance(fpr, list):
                c["fpr"], c["tpr"] = fpr, tpr
            else:
                c["fpr"].append(fpr)
                c["tpr"].append(tpr)
    b.append(Block("pagebreak"))
    b.append(Block("heading", "Unintended bias metrics"))
    b += _image("ROC curves", _plots.roc(list(curves.values())))
    jig = t.get("jigsaw", [])
    b += _image("Subgroup AUC, BPSN and BNSP", _plots.grouped_bars(
        jig, "subgroup", ["subgroup_auc", "bpsn_auc", "bnsp_auc"], title="Per-identity AUC family"))
    heat_rows = [{"subgroup": r.get("subgroup"), "metric": m, "rate": r.get(m)}
                 for r in jig for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
    b += _image("AUC family heat map", _plots.heatmap(heat_rows, "subgroup", "metric", title="AUC family"))
    b += _table("Per-identity AUC family (Borkan et al. 2019)", jig,
                ["subgroup", "n", "subgroup_auc", "subgroup_auc_lo", "subgroup_auc_hi", "bpsn_auc",
                 "bpsn_auc_lo", "bpsn_auc_hi", "bnsp_auc", "bnsp_auc_lo", "bnsp_auc_hi", "reason"])
    b += _table("Per-group rates at the threshold (fairlearn MetricFrame)", t.get("metricframe"),
                ["group", "count", "auc", "fpr", "fnr", "selection_rate"])
    b += _table("Intersections", t.get("intersections"), ["group", "count", "auc", "fpr", "fnr", "selection_rate"])
    cf = t.get("counterfactual", [])
    if cf:
        b.append(Block("heading", "Counterfactual identity swaps"))
        b += _image("Descriptor scores per axis", _plots.strip(cf, "axis", "mean_score", title="Mean toxicity score per descriptor",
                                                               xlabel="mean score on neutral sentences"))
        b += _table("Per-axis gaps", t.get("counterfactual_axes"), ["axis", "n_descriptors", "gap", "gap_lo", "gap_hi", "std"])
        flagged = [r for r in cf if r.get("flagged") or r.get("toxic")]
        b += _table("Descriptors whose neutral sentences score as toxic", flagged,
                    ["axis", "descriptor", "mean_score", "max_score", "share_toxic"])
    b += _table("Functional tests", t.get("functional"), ["functionality", "target", "n", "accuracy"])
    b.append(Block("pagebreak"))
    b.append(Block("heading", "Methodology"))
    b.append(Block("para",
        "Subgroup AUC compares toxic and non-toxic comments that mention the identity; BPSN (background "
        "positive, subgroup negative) compares non-toxic mentions with toxic background comments; BNSP the "
        "reverse. The final bias score is 0.25 × overall AUC plus 0.25 × the generalized power mean (p = −5) "
        "of each family. Intervals are bootstrap 95% intervals with a fixed seed. Groups below the minimum "
        "size are listed with their n and not scored."))
    b.append(Block("kv", items=[("Classifier", audit.classifier), ("Data", audit.data),
                                ("Parameters", fmt(audit.params))] + [("Note", n) for n in audit.notes]))
    return Document(f"harmscope classifier audit — {audit.classifier}",
                    [("Classifier", audit.classifier), ("Data", audit.data),
                     ("Date", dt.datetime.now(dt.UTC).isoformat()[:19])], b)
