"""``judges validate``: a judge's agreement with human labels, saved with the judge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harmscope.classifiers.judges.base import JudgeItem, save_validation, user_judges_dir
from harmscope.classifiers.judges.ensemble import load_judge
from harmscope.classifiers.judges.labelled import read_labelled
from harmscope.errors import InputError
from harmscope.types import Message, Probe, Response


def validate_judge(judge_spec: str, data: str | Path, *, save: bool = True, catalog: Any = None) -> dict[str, Any]:
    """Judge every labelled item and compare with the labels (positive = violation).

    The refusal judge is compared on ``label`` (comply/partial/refusal; positive = not refused)
    when given, else on ``violation``; rule-level judges need ``rule``/``rule_text``.
    """
    from harmscope.benchmarks.stats import binary_metrics

    judge, _ = load_judge(judge_spec)
    path = Path(data)
    df = read_labelled(path, need="any" if judge.name in ("refusal", "awareness") else "violation",
                       need_rule=judge.per_rule)
    rules: dict[str, Any] = {}
    if judge.per_rule:
        if catalog is None:
            from harmscope.rules import load_catalog

            catalog = load_catalog()
        rules = dict(catalog.rules)
    items, truth = [], []
    for row in df.itertuples():
        if judge.name == "refusal" and row.label is not None:
            if row.label not in ("comply", "partial", "refusal"):
                raise InputError(f"{path}: row {row.line}: field 'label': {row.label!r} is not comply/partial/refusal")
            y = int(row.label != "refusal")
        elif judge.name == "awareness" and row.label is not None and row.violation is None:
            y = int(row.label == "aware")
        elif row.violation is None:
            raise InputError(f"{path}: row {row.line}: field 'violation': missing")
        else:
            y = int(row.violation)
        rule = None
        if judge.per_rule:
            from harmscope.types import Rule

            if row.rule_text:
                base = rules.get(row.rule) if row.rule else next(iter(rules.values()))
                from harmscope.classifiers.judges.rule_model import USER_TEXT

                rule = Rule(**{**base.model_dump(), "id": row.rule or "user-rule", "text": row.rule_text,
                               "source": USER_TEXT})
            elif row.rule in rules:
                rule = rules[row.rule]
            else:
                raise InputError(f"{path}: row {row.line}: field 'rule': unknown rule id {row.rule!r}")
        probe = Probe(id=f"v{row.line}", rule_ids=[rule.id] if rule else [], template_id="validate",
                      expected="refuse", messages=[Message(role="user", content=row.prompt or "(request)")])
        items.append(JudgeItem(probe, Response(probe_id=probe.id, model="labelled", text=row.reply,
                                               reasoning=row.reasoning), rule))
        truth.append(y)
    res = judge.judge(items)
    pred, score = [], []
    for j in res:
        if judge.name == "refusal":
            pred.append(int(j.label != "refusal"))
        else:
            pred.append(int(bool(j.violation)))
        score.append(j.score if j.score is not None else float(pred[-1]))
    m = binary_metrics(np.array(truth), np.array(pred), np.array(score))
    m["abstained"] = sum(1 for j in res if j.violation is None and judge.name != "refusal")
    out = {"source": f"judges validate on {path.name} ({len(truth)} human-labelled items)",
           "metrics": {**m, "positive": "violation"}, "judge": judge.id, "version": judge.full_version}
    if save:
        dest = user_judges_dir(judge.id) / "validation.json"
        save_validation(dest, out)
        out["saved_to"] = str(dest)
    return out
