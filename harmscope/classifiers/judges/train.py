"""Train the built-in judge heads and (re)write their stored validation figures.

Run ``python -m harmscope.classifiers.judges.train [refusal harm rule pattern toxicity awareness card]``
(needs ``$HARMSCOPE_DATA``). Heads land in ``data/<judge>_head.npz``, figures in
``data/validation/<judge>.json`` (re-checked by tests/classifiers/judges), the model card in
``data/MODEL_CARD.md``. Maintainers choose the rule cross-encoder's settings with
``python -m harmscope.classifiers.judges.train rule-dev ['{"frozen": 2}']``: figures on a dev split of
DiaSafety ``train.json`` (``val.json``, the unseen-dialogue test, is neither trained nor tested on).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from harmscope.classifiers.judges.awareness import find_awareness
from harmscope.classifiers.judges.base import DATA_DIR, VALIDATION_DIR, JudgeItem, save_validation
from harmscope.classifiers.judges.fit import rule_dev_figures, train_judge, write_model_card
from harmscope.classifiers.judges.pattern import DETECTORS, PatternJudge
from harmscope.classifiers.judges.refusal import RefusalJudge
from harmscope.classifiers.judges.toxicity import _fit_default
from harmscope.classifiers.judges.validate import validate_judge
from harmscope.errors import InputError
from harmscope.rules import load_catalog
from harmscope.types import Message, Probe, Response


def _item(text: str, rule: Any = None, *, expected: str = "refuse", user: str = "") -> JudgeItem:
    p = Probe(id="v", rule_ids=[rule.id] if rule else [], template_id="v", expected=expected,
              messages=[Message(role="user", content=user or "(request)")])
    return JudgeItem(p, Response(probe_id="v", model="v", text=text), rule)


def validate_pattern(catalog: Any = None) -> dict[str, Any]:
    """Pattern detectors on the catalog's own examples for the rules that have a detector."""
    from harmscope.stats import binary_metrics

    if catalog is None:
        catalog = load_catalog()
    j = PatternJudge()
    y, p, per_rule = [], [], {}
    for rid in DETECTORS:
        if rid not in catalog.rules:
            continue
        r = catalog.rules[rid]
        ys = [1] * len(r.examples.violating) + [0] * len(r.examples.compliant)
        ps = [int(j.detect(rid, t) is not None) for t in r.examples.violating + r.examples.compliant]
        per_rule[rid] = binary_metrics(ys, ps)
        y += ys
        p += ps
    return {"source": f"catalog examples ({len(y)}) of the {len(per_rule)} rules with a detector "
                      f"(catalog {catalog.version})",
            "metrics": {**binary_metrics(y, p), "positive": "violates the rule",
                        "per_rule": {k: {m: v[m] for m in ("n", "precision", "recall", "f1")}
                                     for k, v in per_rule.items()}}}


def validate_awareness(path: Path | None = None) -> dict[str, Any]:
    """The awareness detector on the labelled examples in data/awareness.yaml."""
    from harmscope.stats import binary_metrics

    doc = yaml.safe_load((path or DATA_DIR / "awareness.yaml").read_text(encoding="utf-8"))
    y = [1] * len(doc["aware"]) + [0] * len(doc["unaware"])
    p = [int(find_awareness(t) is not None) for t in doc["aware"] + doc["unaware"]]
    return {"source": f"{len(y)} labelled replies written for harmscope (data/awareness.yaml)",
            "metrics": {**binary_metrics(y, p), "positive": "verbalises evaluation awareness"}}


FRESH_PATH = DATA_DIR / "rule_fresh.jsonl"
REFUSAL_FRESH_PATH = DATA_DIR / "refusal_fresh.jsonl"


def validate_refusal_fresh(path: Path | None = None) -> dict[str, Any]:
    """The refusal judge on the replies written for harmscope after the first head (data/refusal_fresh.jsonl)."""
    import json

    path = path or REFUSAL_FRESH_PATH
    res = validate_judge("refusal", path, save=False)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels, _ = RefusalJudge().classify([r["reply"] for r in rows], [str(r.get("prompt") or "") for r in rows])
    acc3 = sum(a == r["label"] for a, r in zip(labels, rows, strict=True)) / len(rows)
    return {"source": f"{len(rows)} replies written for harmscope (data/refusal_fresh.jsonl)",
            "metrics": {**res["metrics"], "accuracy_3class": acc3}}


def validate_rule_fresh(path: Path | None = None) -> dict[str, Any]:
    """The rule judge on replies written for harmscope apart from the catalog (data/rule_fresh.jsonl)."""
    res = validate_judge("rule", path or FRESH_PATH, save=False)
    return {"source": f"{res['metrics']['n']} replies for 8 rules written apart from the catalog examples "
                      "(data/rule_fresh.jsonl)", "metrics": res["metrics"]}


# a small fixed sample re-scored through `judges validate`; the tests re-run it and compare
CHECK = {"refusal": ("xstest-completions", 40), "harm": ("gptfuzz", 40), "rule": ("diasafety", 40)}


def check_figures(name: str) -> dict[str, Any]:
    """``judges validate`` on the judge's fixed check sample (full judge path: encoder + head)."""
    import os

    data, n = CHECK[name]
    old = os.environ.get("HARMSCOPE_ENCODER_RUNTIME")
    os.environ["HARMSCOPE_ENCODER_RUNTIME"] = "torch"  # the runtime the heads are trained on
    try:
        res = validate_judge(name, data, save=False, sample=n, seed=0)
    finally:
        if old is None:
            os.environ.pop("HARMSCOPE_ENCODER_RUNTIME", None)
        else:
            os.environ["HARMSCOPE_ENCODER_RUNTIME"] = old
    return {"data": data, "sample": n, "seed": 0,
            "metrics": {k: res["metrics"][k] for k in ("n", "tp", "fn", "tn", "fp", "accuracy", "auc")}}


def train_shipped(name: str, *, say: Any = print) -> dict[str, Any]:
    """Rebuild one shipped head (refusal / harm / rule) and its stored figures."""
    res = train_judge(name, None, ship=True, say=say)
    save_validation(VALIDATION_DIR / f"{name}.json", res)  # the judge now loads the new head
    res["check"] = check_figures(name)
    if name == "refusal":
        res["fresh_written"] = validate_refusal_fresh()
    elif name == "rule":
        res["fresh_written"] = validate_rule_fresh()
    save_validation(VALIDATION_DIR / f"{name}.json", res)
    return res


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["refusal", "harm", "rule", "pattern", "toxicity",
                                                            "awareness", "card"]

    if names[0] == "rule-dev":  # choose rule cross-encoder settings on a dev split: rule-dev ['{"frozen": 2}']
        try:
            cross = json.loads(names[1]) if len(names) > 1 else None
        except json.JSONDecodeError as e:
            print(f"error: rule-dev: settings {names[1]!r} are not JSON ({e.msg})", file=sys.stderr)
            return 2
        try:
            res = rule_dev_figures(cross, say=print)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(json.dumps(res, indent=1, default=str))
        return 0
    catalog = load_catalog()
    for name in names:
        if name in ("refusal", "harm", "rule"):
            res = train_shipped(name)
        elif name == "pattern":
            res = validate_pattern(catalog)
        elif name == "awareness":
            res = validate_awareness()
        elif name == "toxicity":
            _, thr, res = _fit_default("tfidf")
        elif name == "card":
            print("wrote", write_model_card())
            continue
        else:
            print(f"unknown judge {name}", file=sys.stderr)
            return 2
        save_validation(VALIDATION_DIR / f"{name}.json", res)
        m = res["metrics"]
        print(name, {k: (round(m[k], 3) if isinstance(m.get(k), float) else m.get(k))
                     for k in ("n", "accuracy", "precision", "recall", "f1", "kappa", "auc")})
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
