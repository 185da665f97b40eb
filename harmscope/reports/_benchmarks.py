"""Report section for imported public benchmarks: the metric each source publishes.

``benchmark_sections(result)`` reads ``result.tables["benchmarks"]`` (written by
:func:`harmscope.benchmarks.scoring.tables.benchmark_tables`) and returns one subsection per imported
benchmark (HarmBench ASR per functional and semantic category, XSTest full/partial refusal on
safe vs unsafe prompts, refusal rates per harm area for SimpleSafetyTests and Do-Not-Answer...),
or nothing when the run holds no imported set. It is registered (lazily) in ``_document.SECTIONS`` for ``run`` reports.
All cells are plain text; the renderers escape them.
"""

from __future__ import annotations

from typing import Any

from harmscope.reports._document import Block, _table

NAMES = {
    "harmbench": "HarmBench",
    "advbench": "AdvBench",
    "xstest": "XSTest",
    "simple-safety-tests": "SimpleSafetyTests",
    "do-not-answer": "Do-Not-Answer",
    "jbb": "JailbreakBench (JBB-Behaviors)",
}

DEFINITIONS = {
    "asr": "ASR (attack success rate) = share of harmful items whose reply violates a mapped catalog rule, as "
           "decided by the run's judges (a refusal is never a success).",
    "full_refusal": "Full refusal = share of replies the refusal judge labels 'refusal'; partial refusal = "
                    "labelled 'partial' (refuses, then helps in part).",
}

NOTES = {
    "harmbench": "HarmBench reports ASR per functional category (standard, contextual, copyright) and per semantic "
                 "category. HarmBench judges copyright items by hashing against the original text; harmscope "
                 "judges them like any other request, so copyright ASR is not comparable to the paper's.",
    "xstest": "XSTest reports full and partial refusal on its 250 safe prompts (refusing them is over-refusal: "
              "lower is better) and on its 200 unsafe contrast prompts (higher is better).",
    "simple-safety-tests": "SimpleSafetyTests prompts are all clearly harmful: a good model refuses or redirects "
                           "every one.",
    "do-not-answer": "Do-Not-Answer prompts should not be followed; refusal rate per risk area (human-chatbot "
                     "interaction prompts call for a careful answer rather than a bare refusal).",
    "jbb": "JailbreakBench reports ASR on the 100 harmful behaviours and the refusal rate on the 100 benign "
           "look-alikes (over-refusal).",
    "advbench": "AdvBench has no categories: one ASR over all behaviours.",
}

COLS = ["scope", "metric", "k", "n", "rate", "lo", "hi", "corrected", "corrected_lo", "corrected_hi"]


def _headline(rows: list[dict[str, Any]]) -> str:
    parts = []
    for r in rows:
        if r.get("rate") is None or "/" in str(r.get("scope")) or str(r.get("scope", "")).count(":") > 1:
            continue
        if r["scope"] in ("all", "benign") or str(r["scope"]).startswith("label:"):
            lo, hi = r.get("lo"), r.get("hi")
            ci = f" [{100 * lo:.1f}%, {100 * hi:.1f}%]" if lo is not None and hi is not None else ""
            where = "" if r["scope"] == "all" else f" ({r['scope']})"
            parts.append(f"{r['metric'].replace('_', ' ')}{where} {100 * r['rate']:.1f}%{ci}, n={r['n']}")
    return "; ".join(parts)


def benchmark_sections(result: Any) -> list[Block]:
    """One section with a subsection per imported benchmark (empty when there is none)."""
    rows = [r for r in (getattr(result, "tables", {}) or {}).get("benchmarks") or [] if isinstance(r, dict)]
    if not rows:
        return []
    blocks = [Block("heading", "Public benchmarks: published metrics", level=1),
              Block("para", "Probes imported from public safety sets (harmscope probes import) are scored twice: "
                            "in the catalog tables above, and here with the metric each set's authors report, "
                            "with Wilson 95% intervals and, where a validated judge decided, the Rogan-Gladen "
                            "judge-corrected rate. " + " ".join(DEFINITIONS.values()))]
    for bench in sorted({str(r.get("benchmark")) for r in rows}):
        sub = [r for r in rows if r.get("benchmark") == bench]
        name = NAMES.get(bench, bench)
        note = " ".join(x for x in (NOTES.get(bench, ""), _headline(sub)) if x)
        blocks += _table(name, sub, COLS, note)
    return blocks
