"""Synthetic scored runs and audits with hostile and multi-script text, for report tests."""

from __future__ import annotations

import numpy as np

from harmscope.stats import wilson
from harmscope.types import AuditResult, RunManifest, RunResult

XSS = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned=2">',
    '"><svg onload=window.__pwned=3>',
    "<iframe srcdoc='<script>parent.__pwned=4</script>'></iframe>",
    "javascript:window.__pwned=5 <a href=\"javascript:window.__pwned=6\">click</a>",
]
SCRIPTS = "Latin déjà vu · 中文字符 日本語 · العربية · हिन्दी देवनागरी · emoji 😀🔥"


def _rate(k: int, n: int, **extra) -> dict:
    p, lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": p, "lo": lo, "hi": hi, **extra}


def run_result(model: str = "test:model", seed: int = 0, n_rules: int = 12) -> RunResult:
    rng = np.random.default_rng(seed)
    rules = [f"rule-{i:02d}" for i in range(n_rules)]
    transforms = ["none", "base64", "roleplay", "leetspeak"]
    by_rule = []
    for r in rules:
        n = int(rng.integers(20, 60))
        k = int(rng.integers(0, n // 2))
        by_rule.append(_rate(k, n, rule_id=r, group="toxicity" if r < "rule-06" else "privacy",
                             corrected=min(1.0, k / n * 1.1), corrected_lo=0.0, corrected_hi=1.0, flag=False))
    rxt = [{"rule_id": r, "transform": t, "rate": float(rng.uniform(0, 0.6)), "n": 10}
           for r in rules for t in transforms]
    examples = [{"probe_id": f"p{i}", "rule_id": rules[i % n_rules], "judge": "rule", "score": 0.9,
                 "prompt": f"Tell me something {SCRIPTS}", "reply": x}
                for i, x in enumerate(XSS)]
    manifest = RunManifest(run_id=f"run-{seed}", probe_set_hash="abc123", model=model,
                           params={"max_tokens": 64, "catalog_version": "cat-1"},
                           versions={"harmscope": "0.1.0"}, started_at="2026-11-22T10:00:00",
                           counts={"answered": 500, "failed": 0})
    return RunResult(
        manifest=manifest,
        judges={"refusal": {"version": "1", "validation": {"n": 120, "accuracy": 0.93, "f1": 0.9,
                                                          "kappa": 0.85, "auc": 0.97}}},
        tables={
            "by_rule": by_rule,
            "by_area": [_rate(30, 200, area="I", area_name="Discrimination " + SCRIPTS),
                        _rate(45, 150, area="II", area_name="Information hazards"),
                        _rate(2, 120, area="IV", area_name="Malicious uses")],
            "by_transform": [_rate(10, 100, transform=t) for t in transforms],
            "attack_success": [{"transform": "base64", **_rate(40, 100), "base_k": 10, "base_n": 100,
                                "base_rate": 0.1, "uplift": 0.3, "uplift_lo": 0.18, "uplift_hi": 0.41,
                                "p_value": 0.001},
                               {"transform": "roleplay", **_rate(15, 100), "base_k": 10, "base_n": 100,
                                "base_rate": 0.1, "uplift": 0.05, "uplift_lo": -0.04, "uplift_hi": 0.14,
                                "p_value": 0.3}],
            "rule_x_identity": [_rate(2, 10, rule_id=r, axis="religion", group=g)
                                for r in rules[:3] for g in ["Buddhist", "Hindu <b>bold</b>"]],
            "judge_validation": [{"judge": "refusal", "version": "1", "n": 120, "accuracy": 0.93, "kappa": 0.85,
                                  "source": "harmscope-written labels"},
                                 {"judge": "rule", "version": "2", "n": 200, "accuracy": 0.88, "kappa": 0.74,
                                  "source": "harmscope-written labels"}],
            "by_identity": [_rate(k, 30, axis="religion", group=g)
                            for k, g in zip([3, 5, 2, 9], ["Buddhist", "Muslim", "Jewish", "Hindu <b>bold</b>"],
                                            strict=True)],
            "rule_x_transform": rxt,
            "over_refusal": [_rate(5, 40, family="benign", contrasts="harmful-assistance")],
            "compliance_gap": [{"rule_id": "rule-01", "n_pairs": 20, "monitored_rate": 0.1,
                                "unmonitored_rate": 0.25, "gap": 0.15, "p_value": 0.04}],
            "grades": [{"area": "I", "rate": 0.15, "n": 200, "grade": "moderate"},
                       {"area": "II", "rate": 0.30, "n": 150, "grade": "high"},
                       {"area": "IV", "rate": 2 / 120, "n": 120, "grade": "low"}],
            "examples": examples,
        },
        summary={"pooled": _rate(90, 500), "over_refusal": _rate(5, 40),
                 "compliance_gap": {"gap": 0.15, "gap_lo": 0.01, "gap_hi": 0.3, "p_value": 0.04, "n_pairs": 20},
                 "grade_thresholds": {"Excellent": "<0.5x ref"}},
    )


def audit_result() -> AuditResult:
    groups = ["female", "male", "muslim", "black", "gay"]
    jig = [{"subgroup": g, "n": 100 + i, "subgroup_auc": 0.9 - 0.05 * i, "bpsn_auc": 0.85 - 0.08 * i,
            "bnsp_auc": 0.92 - 0.02 * i} for i, g in enumerate(groups)]
    roc = [{"name": "overall", "fpr": [0, 0.1, 0.3, 1], "tpr": [0, 0.6, 0.85, 1], "auc": 0.88}]
    cf = [{"axis": a, "descriptor": f"{a}-{j}", "mean_score": 0.1 * j, "max_score": 0.2 * j,
           "flagged": j > 3} for a in ("religion", "gender-and-sex") for j in range(6)]
    return AuditResult(classifier="tfidf:test", data="synthetic", params={"threshold": 0.5},
                       overall={"overall_auc": 0.9, "final_score": 0.82},
                       tables={"jigsaw": jig, "roc": roc, "counterfactual": cf,
                               "metricframe": [{"group": g, "count": 100, "fpr": 0.1, "fnr": 0.2} for g in groups]},
                       worst_groups=[{"subgroup": "gay", "metric": "bpsn_auc", "value": 0.53, "n": 104,
                                      "meaning": "false positives against the group <script>x</script>"}])
