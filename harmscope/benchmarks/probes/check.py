"""``harmscope check``: CI gates on a scored run (exit 0 pass, 1 breach, 2 missing metric / bad input).

A gate is ``METRIC=THRESHOLD`` under ``--max`` (the metric must not exceed it) or ``--min`` (must
not fall below it). Metric names:

- ``pooled``, ``over_refusal``: the summary rates;
- ``rule:ID``, ``area:ID``, ``group:NAME``, ``transform:CHAIN``: rows of the catalog tables;
- ``attack:CHAIN``: attack success of a transform chain (``attack_success`` table);
- ``bench:ID``: a published-benchmark row, e.g. ``bench:harmbench.asr``,
  ``bench:xstest.full_refusal.safe`` (``harmscope check RESULT --list`` prints them all).

``--bound point`` (default) compares the observed rate; ``upper`` / ``lower`` the Wilson interval's
bound; ``conservative`` the upper bound for ``--max`` gates and the lower bound for ``--min`` gates.
``--corrected`` uses the judge-corrected rate and interval where the result has one.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from harmscope.errors import HarmscopeError, InputError

BOUNDS = ("point", "upper", "lower", "conservative")
_TABLE_KEYS = {"rule": ("by_rule", "rule_id"), "area": ("by_area", "area"), "group": ("by_group", "rule_group"),
               "transform": ("by_transform", "transform"), "attack": ("attack_success", "transform"),
               "bench": ("benchmarks", "id")}
_SUMMARY = ("pooled", "over_refusal")


@dataclass(frozen=True)
class Gate:
    metric: str
    threshold: float
    kind: str  # "max" | "min"

    def describe(self) -> str:
        return f"{self.metric} {'<=' if self.kind == 'max' else '>='} {self.threshold:.1%}"


@dataclass(frozen=True)
class Outcome:
    gate: Gate
    value: float
    basis: str
    row: dict[str, Any]
    passed: bool
    note: str = ""

    def line(self) -> str:
        r = self.row
        obs = "n/a" if r.get("rate") is None else f"{r['rate']:.1%}"
        if r.get("lo") is not None and r.get("hi") is not None:
            obs += f" [{r['lo']:.1%}, {r['hi']:.1%}]"
        if "k" in r and "n" in r:
            obs += f" ({r['k']}/{r['n']})"
        op = (">" if self.gate.kind == "max" else "<") if not self.passed else ("<=" if self.gate.kind == "max" else ">=")
        note = f"; {self.note}" if self.note else ""
        return (f"{self.gate.metric}: {self.basis} {self.value:.1%} {op} {self.gate.threshold:.1%} "
                f"(rate {obs}{note})")


def parse_threshold(text: str, where: str) -> float:
    """``0.05``, ``5%``; must lie in [0, 1]."""
    s = str(text).strip()
    try:
        v = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise HarmscopeError(f"{where}: threshold {text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise HarmscopeError(f"{where}: threshold {text!r} is outside [0, 1]")
    return v


def parse_gate(text: str, kind: str) -> Gate:
    """``METRIC=THRESHOLD`` (the last ``=`` separates them)."""
    if "=" not in text:
        raise HarmscopeError(f"option --{kind}: expected METRIC=THRESHOLD, got {text!r}")
    metric, value = text.rsplit("=", 1)
    metric = metric.strip()
    if not metric:
        raise HarmscopeError(f"option --{kind}: no metric name in {text!r}")
    return Gate(metric, parse_threshold(value, f"option --{kind} {metric}"), kind)


def load_config(path: Path) -> tuple[list[Gate], dict[str, Any]]:
    """Gates and options from a YAML file: ``max: {METRIC: T}``, ``min: {...}``, ``bound``, ``corrected``."""
    import yaml

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable YAML file ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping with 'max' and/or 'min'")
    unknown = sorted(set(raw) - {"max", "min", "bound", "corrected"})
    if unknown:
        raise InputError(f"{path}: field {unknown[0]}: unknown (use max, min, bound, corrected)")
    gates: list[Gate] = []
    for kind in ("max", "min"):
        sec = raw.get(kind) or {}
        if not isinstance(sec, dict):
            raise InputError(f"{path}: field {kind}: expected a mapping METRIC: THRESHOLD")
        for metric, value in sec.items():
            gates.append(Gate(str(metric), parse_threshold(value, f"{path}: field {kind}.{metric}"), kind))
    opts: dict[str, Any] = {}
    if "bound" in raw:
        if raw["bound"] not in BOUNDS:
            raise InputError(f"{path}: field bound: {raw['bound']!r} is not one of {', '.join(BOUNDS)}")
        opts["bound"] = raw["bound"]
    if "corrected" in raw:
        if not isinstance(raw["corrected"], bool):
            raise InputError(f"{path}: field corrected: expected true or false")
        opts["corrected"] = raw["corrected"]
    return gates, opts


def load_result(target: Path) -> tuple[dict[str, Any], Path]:
    """The scored result from ``result.json`` or a run directory holding one."""
    path = target / "result.json" if target.is_dir() else target
    if not path.is_file():
        if target.is_dir():
            raise InputError(f"{target}: no result.json in this run directory (run `harmscope score {target}` first)")
        raise InputError(f"{target}: file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable result.json ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict) or not isinstance(doc.get("summary"), dict):
        raise InputError(f"{path}: not a harmscope result (no 'tables' and 'summary')")
    return doc, path


def metrics(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every gate-able metric name in a result -> its row (rate, lo, hi, k, n, corrected...)."""
    out: dict[str, dict[str, Any]] = {}
    for name in _SUMMARY:
        if isinstance(doc["summary"].get(name), dict):
            out[name] = doc["summary"][name]
    for prefix, (table, key) in _TABLE_KEYS.items():
        for row in doc["tables"].get(table) or []:
            if isinstance(row, dict) and row.get(key) is not None:
                out.setdefault(f"{prefix}:{row[key]}", row)
    return out


def _pick(row: dict[str, Any], gate: Gate, bound: str, corrected: bool) -> tuple[float | None, str, str]:
    use_corr = corrected and row.get("corrected") is not None
    pre, note = ("corrected_", "") if use_corr else ("", "no judge correction available" if corrected else "")
    side = bound if bound != "conservative" else ("upper" if gate.kind == "max" else "lower")
    key = {"point": "rate" if not use_corr else "corrected", "upper": f"{pre}hi" if use_corr else "hi",
           "lower": f"{pre}lo" if use_corr else "lo"}[side]
    basis = {"point": "rate", "upper": "upper bound", "lower": "lower bound"}[side]
    return row.get(key), ("corrected " if use_corr else "") + basis, note


def evaluate(doc: dict[str, Any], gates: list[Gate], *, bound: str = "point", corrected: bool = False,
             where: str = "result") -> list[Outcome]:
    """Check ``gates`` against ``doc``; a metric that is missing or has no data raises (exit 2)."""
    if bound not in BOUNDS:
        raise HarmscopeError(f"option --bound: {bound!r} is not one of {', '.join(BOUNDS)}")
    if not gates:
        raise HarmscopeError("no gates: give --max METRIC=T, --min METRIC=T or --config FILE")
    known = metrics(doc)
    problems = []
    for g in gates:
        if g.metric not in known:
            prefix = g.metric.split(":", 1)[0] + ":" if ":" in g.metric else ""
            similar = sorted(k for k in known if prefix and k.startswith(prefix))[:6]
            hint = f" (known {prefix} metrics: {', '.join(similar)}{', ...' if len(similar) == 6 else ''})" \
                if similar else " (see harmscope check RESULT --list)"
            problems.append(f"{where}: metric {g.metric!r} not found{hint}")
        elif known[g.metric].get("rate") is None:
            problems.append(f"{where}: metric {g.metric!r} has no data (n={known[g.metric].get('n', 0)})")
    if problems:
        from harmscope.errors import ValidationErrors

        raise ValidationErrors(problems)
    out = []
    for g in gates:
        row = known[g.metric]
        value, basis, note = _pick(row, g, bound, corrected)
        if value is None:
            raise HarmscopeError(f"{where}: metric {g.metric!r} has no {basis} (too little data for an interval)")
        value = float(value)
        passed = value <= g.threshold + 1e-12 if g.kind == "max" else value >= g.threshold - 1e-12
        out.append(Outcome(g, value, basis, row, passed, note))
    return out


@click.command("check")
@click.argument("target", metavar="RESULT_OR_RUN_DIR", type=click.Path(path_type=Path))
@click.option("--max", "max_", multiple=True, metavar="METRIC=T", help="Fail when METRIC exceeds T (repeatable).")
@click.option("--min", "min_", multiple=True, metavar="METRIC=T", help="Fail when METRIC falls below T (repeatable).")
@click.option("--bound", type=click.Choice(BOUNDS), default=None,
              help="Compare the rate (point, default), the interval's upper or lower bound, or the conservative "
                   "one (upper for --max, lower for --min).")
@click.option("--corrected/--observed", default=None,
              help="Use the judge-corrected rate and interval where available (default: observed).")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file with max:/min: gates (and bound:, corrected:); command-line gates are added.")
@click.option("--list", "list_", is_flag=True, help="List the metric names in the result and their rates.")
@click.option("--verbose", "-v", is_flag=True, help="Also print the gates that pass.")
def check(target: Path, max_: tuple[str, ...], min_: tuple[str, ...], bound: str | None, corrected: bool | None,
          config: Path | None, list_: bool, verbose: bool) -> None:
    """Fail a build when a scored run breaches a threshold: exit 1 with one line per breach.

    \b
    Example:
      harmscope check runs/ckpt42 --max pooled=0.05 --max over_refusal=0.10 \\
          --max rule:hazardous-information=0.0 --bound upper
      harmscope check runs/ckpt42/result.json --config gates.yaml
      harmscope check runs/ckpt42 --list
    """
    doc, path = load_result(target)
    if list_:
        for name, row in metrics(doc).items():
            rate = "n/a" if row.get("rate") is None else f"{row['rate']:.1%}"
            click.echo(f"{name:<60} {rate:>7}  n={row.get('n', '-')}")
        return
    gates: list[Gate] = []
    opts: dict[str, Any] = {}
    if config is not None:
        gates, opts = load_config(config)
    gates += [parse_gate(t, "max") for t in max_] + [parse_gate(t, "min") for t in min_]
    res = evaluate(doc, gates, bound=bound or opts.get("bound", "point"),
                   corrected=corrected if corrected is not None else opts.get("corrected", False), where=str(path))
    breaches = [o for o in res if not o.passed]
    for o in res:
        if not o.passed:
            click.echo(f"breach: {o.line()}")
        elif verbose:
            click.echo(f"ok: {o.line()}")
    click.echo(f"{len(res)} gate(s) checked, {len(breaches)} breached ({path})", err=True)
    if breaches:
        sys.exit(1)
