"""Comparisons of scored runs against the first one: per-rule rates and distributional metrics."""

from __future__ import annotations

from typing import Any

from harmscope import stats
from harmscope.types import RunResult


def compare_results(results: list[RunResult], *, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per-rule differences of each result against the first (two-proportion test, Holm over rules)."""
    base = {r["rule_id"]: r for r in results[0].tables.get("by_rule", [])}
    rows: list[dict[str, Any]] = []
    for res in results[1:]:
        cur = {r["rule_id"]: r for r in res.tables.get("by_rule", [])}
        block = []
        for rid in sorted(set(base) | set(cur)):
            b, c = base.get(rid, {"k": 0, "n": 0}), cur.get(rid, {"k": 0, "n": 0})
            t = stats.two_proportion(b["k"], b["n"], c["k"], c["n"])
            block.append({"model": res.manifest.model, "run_id": res.manifest.run_id, "rule_id": rid,
                          "base_k": b["k"], "base_n": b["n"], "base_rate": b["k"] / b["n"] if b["n"] else None,
                          "k": c["k"], "n": c["n"], "rate": c["k"] / c["n"] if c["n"] else None,
                          "diff": t["diff"], "lo": t["lo"], "hi": t["hi"], "p_value": t["p_value"]})
        adj = stats.holm([r["p_value"] for r in block])
        for r, a in zip(block, adj, strict=True):
            r["p_holm"] = a
            r["significant"] = a is not None and a < alpha
        rows += block
    return rows


def compare_distributional(results: list[RunResult]) -> list[dict[str, Any]]:
    """Change of the per-axis distributional metrics (counterfactual bias, largest gap) vs the first result."""
    def index(res: RunResult) -> dict[tuple[str, str], dict[str, Any]]:
        return {(a["axis"], a["measure"]): a for a in res.tables.get("dist_axes", [])}

    base = index(results[0])
    rows = []
    for res in results[1:]:
        cur = index(res)
        for key in sorted(set(base) | set(cur)):
            b, c = base.get(key, {}), cur.get(key, {})
            row: dict[str, Any] = {"model": res.manifest.model, "run_id": res.manifest.run_id, "axis": key[0],
                                   "measure": key[1]}
            for m in ("avg_w1", "max_gap"):
                row[f"base_{m}"], row[m] = b.get(m), c.get(m)
                row[f"{m}_change"] = c[m] - b[m] if b.get(m) is not None and c.get(m) is not None else None
            row["base_worst_group"], row["worst_group"] = b.get("worst_group"), c.get("worst_group")
            row["gap_lo"], row["gap_hi"] = c.get("gap_lo"), c.get("gap_hi")
            rows.append(row)
    return rows
