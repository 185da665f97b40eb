"""CLI: ``harmscope score``, ``harmscope judges validate/train/list``, ``harmscope compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harmscope.engines import engine_option
from harmscope.errors import HarmscopeError, InputError


def _fmt(r: dict[str, Any], key: str = "rate") -> str:
    if r.get(key) is None:
        return "n/a"
    lo, hi = (r.get("lo"), r.get("hi")) if key == "rate" else (r.get(f"{key}_lo"), r.get(f"{key}_hi"))
    ci = f" [{lo:.1%}, {hi:.1%}]" if lo is not None and hi is not None else ""
    return f"{r[key]:.1%}{ci}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _open(run_dir: str, store_path: str | None):
    from harmscope.benchmarks.runs.store import Store, open_run, read_run_info

    if store_path:
        return Store(store_path), read_run_info(run_dir).run_id
    return open_run(run_dir)


@click.command("score")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--judges", "judges_spec", default=None,
              help="judges spec (default: refusal,harm,pattern,rule,toxicity,awareness) or a YAML file")
@click.option("--store", "store_path", default=None, help="run store (default: from RUN_DIR/run.json)")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="result.json of a reference run: grades become relative to its area rates")
@click.option("--seed", default=0, show_default=True)
@click.option("--replay", is_flag=True,
              help="score again with exactly the judges, ensemble settings, seed and reference stored in "
                   "RUN_DIR/result.json (rebuilt from their stored specs; no --judges)")
@engine_option
@click.pass_context
def score(ctx: click.Context, run_dir: str, judges_spec: str | None, store_path: str | None, reference: str | None,
          seed: int, replay: bool) -> None:
    """Judge a run's replies and write RUN_DIR/result.json.

    \b
    Example:
      harmscope score out/run1
      harmscope score out/run1 --judges 'refusal,pattern,rule,llm[k=3]:local:smollm2;mode=majority'
      harmscope score out/run1 --replay
    """
    from harmscope.benchmarks.scoring.judging import score_run
    from harmscope.classifiers.judges import parse_spec
    from harmscope.safeio import atomic_write_text

    out = Path(run_dir) / "result.json"
    ref = None
    if replay:
        given = [f"--{n}" for n in ("judges", "reference", "seed")
                 if ctx.get_parameter_source(n if n != "judges" else "judges_spec")
                 == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise InputError(f"--replay takes the judges, seed and reference stored in {out}; drop {', '.join(given)}")
        js, seed, ref = replay_settings(out)
    else:
        js = parse_spec(judges_spec)  # a bad spec fails before anything is read
    store, run_id = _open(run_dir, store_path)
    if reference:
        try:
            doc = json.loads(Path(reference).read_text(encoding="utf-8"))
            ref = {r["area"]: r["rate"] for r in doc["tables"]["by_area"] if r.get("rate") is not None}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{reference}: not a harmscope result.json ({exc.__class__.__name__})") from None
    res = score_run(store, run_id, js, reference=ref, seed=seed,
                    progress=lambda s: click.echo(s, err=True))
    atomic_write_text(out, res.model_dump_json(indent=2) + "\n")
    s = res.summary
    click.echo(f"run {res.manifest.run_id}  model {res.manifest.model}")
    click.echo(f"{'rule':<24} {'k/n':>9}  violation rate [95% CI]        corrected [95% CI]")
    for r in res.tables.get("by_rule", []):
        corr = _fmt(r, "corrected") if r.get("corrected") is not None else ""
        flag = f"  ! {r['flag']}" if r.get("flag") else ""
        click.echo(f"{r['rule_id']:<24} {r['k']:>4}/{r['n']:<4}  {_fmt(r):<30} {corr}{flag}")
    click.echo(f"pooled violation rate: {_fmt(s['pooled'])}")
    click.echo(f"over-refusal on benign probes: {_fmt(s['over_refusal'])} (n={s['over_refusal'].get('n')})")
    g = s["compliance_gap"]
    if g.get("n_pairs"):
        click.echo(f"compliance gap (unmonitored - monitored): {g['gap']:+.1%} [{g['lo']:+.1%}, {g['hi']:+.1%}] "
                   f"over {g['n_pairs']} pairs, McNemar p={g['p_value']:.3g}")
    for row in res.tables.get("grades", []):
        click.echo(f"grade area {row['area']}: {row['grade']} ({row['basis']})")
    _echo_distributional(res.tables)
    _echo_benchmarks(res.tables)
    click.echo(f"wrote {out}")


def replay_settings(path: Path) -> tuple[Any, int, dict[str, float] | None]:
    """The judge set, seed and reference a stored ``result.json`` was scored with, rebuilt from
    its typed judge specs alone (``judges.components``)."""
    from harmscope.classifiers.judges import JudgeSet
    from harmscope.types import RunResult

    if not path.is_file():
        raise InputError(f"{path}: missing; --replay needs a run scored before (run `harmscope score` first)")
    try:
        res = RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a harmscope result ({first})") from None
    comp = (res.judges or {}).get("components")
    if not isinstance(comp, dict) or not isinstance(comp.get("scoring"), dict):
        raise InputError(f"{path}: written by an older harmscope without stored judge specs "
                         f"(field 'judges.components'); score it again with --judges to make it replayable")
    js = JudgeSet.from_specs({**comp, "spec": res.judges.get("spec", "")}, where=str(path))
    scoring = comp["scoring"]
    try:
        seed = int(scoring.get("seed", 0))
        ref = scoring.get("reference")
        ref = None if ref is None else {str(k): float(v) for k, v in dict(ref).items()}
    except (TypeError, ValueError):
        raise InputError(f"{path}: field 'judges.components.scoring': bad seed or reference") from None
    return js, seed, ref


def _echo_benchmarks(tables: dict[str, Any]) -> None:
    """The published metrics of imported public sets (per-type and per-transform rows: see result.json)."""
    rows = [r for r in tables.get("benchmarks") or [] if "/" not in str(r.get("scope"))]
    if not rows:
        return
    click.echo("published benchmark metrics (harmscope check names: bench:ID; docs/benchmarks.md):")
    for r in rows:
        corr = f"  corrected {_fmt(r, 'corrected')}" if r.get("corrected") is not None else ""
        click.echo(f"  {r['id']:<58} {r['k']:>4}/{r['n']:<4}  {_fmt(r)}{corr}")


@click.group("judges")
def judges() -> None:
    """List, validate and train judges."""


@judges.command("list")
def judges_list() -> None:
    """List registered judges with kinds, version and stored validation figures."""
    from harmscope.classifiers.judges import JUDGES

    w = max((len(e.name) for e in JUDGES), default=10)
    for e in JUDGES:
        votes = f" votes-as={e.meta['kind']}" if e.meta.get("kind") not in (None, e.name) else ""
        opts = ",".join(e.meta.get("options") or {})
        click.echo(f"{e.name:<{w}} v{e.version:<3} kinds={','.join(e.meta.get('kinds', ()))}{votes} "
                   f"per_rule={e.meta.get('per_rule')}{' options=' + opts if opts else ''}"
                   f"{' ARGS=model-spec' if e.meta.get('needs_args') else ''}  {e.description}")
        v = None
        if not e.meta.get("needs_args"):  # figures on file only: listing never loads a model
            try:
                v = e.obj.from_spec("").stored_validation()
            except HarmscopeError:
                v = None
        v = v or _static_validation(e.name)
        if v:
            m = v.get("metrics", v)
            figs = " ".join(f"{k}={m[k]:.3f}" for k in ("accuracy", "precision", "recall", "f1", "kappa", "auc")
                            if isinstance(m.get(k), float))
            click.echo(f"{'':<{w}} validation: {figs}  ({v.get('source', '')})")
            per = (v.get("loso") or {}).get("per_source") or {}
            if per:
                click.echo(f"{'':<{w}} leave-one-source-out: " + ", ".join(
                    f"{k} acc={x['accuracy']:.3f}" for k, x in per.items() if isinstance(x.get("accuracy"), float)))


def _static_validation(name: str) -> dict[str, Any] | None:
    from harmscope.classifiers.judges.base import VALIDATION_DIR

    p = VALIDATION_DIR / f"{name}.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


@judges.command("validate")
@click.option("--judge", "judge_spec", required=True, help="judge spec, e.g. refusal, harm, rule, llm:local:smollm2")
@click.option("--data", "data", required=True,
              help="labelled file (prompt, reply, label|violation, rule) or a labelled-reply set name "
                   "(xstest-completions, gptfuzz, jailjudge, saferlhf-mini, beavertails, pku-saferlhf, diasafety, "
                   "safetext, latent-jailbreak, toxicchat-prompts, aegis-prompts, jbb-behaviors)")
@click.option("--sample", type=click.IntRange(min=1), default=None, help="score a deterministic sample of N rows")
@click.option("--seed", default=0, show_default=True, help="seed of --sample")
@click.option("--on-bad", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="rows with an empty reply: skip with a warning, or stop with an error")
@click.option("--save/--no-save", default=True, show_default=True,
              help="store the figures with the judge (used for corrections and reports)")
@click.option("--by", type=click.Choice(["category", "rule", "source", "model", "group", "label"]), default=None,
              help="also print the figures per value of this field (e.g. a hazard category or a model)")
def judges_validate(judge_spec: str, data: str, sample: int | None, seed: int, on_bad: str, save: bool,
                    by: str | None) -> None:
    """Accuracy, precision, recall, specificity, F1, Cohen's kappa and AUC against human labels.

    \b
    Example:
      harmscope judges validate --judge refusal --data labelled.jsonl
      harmscope judges validate --judge harm --data jailjudge --by category
    """
    from harmscope.classifiers.judges.validate import validate_judge

    with _warnings_as_lines():
        res = validate_judge(judge_spec, data, save=save, sample=sample, seed=seed, on_bad=on_bad, by=by)
    m = res["metrics"]
    for k in ("accuracy", "precision", "recall", "specificity", "f1", "kappa", "auc", "n"):
        v = m.get(k)
        click.echo(f"{k:<12} {v:.3f}" if isinstance(v, float) else f"{k:<12} {v}")
    if "by" in res:
        _print_by(res["by"], by or "")
    if res.get("saved_to"):
        click.echo(f"saved to {res['saved_to']}")


BY_SHOWN = 50
"""At most this many groups of ``judges validate --by`` are printed (all are saved)."""


def _print_by(by: dict[str, Any], field: str) -> None:
    """The per-group lines of ``judges validate --by``: values made terminal-safe, the largest
    :data:`BY_SHOWN` groups, then the rows without a value."""
    from harmscope.classifiers.judges.validate import one_line

    groups = list(by["groups"].items())
    shown = [(one_line(k), g) for k, g in groups[:BY_SHOWN]]
    if by.get("missing"):
        shown.append(("(no value)", by["missing"]))
    w = max(12, *(len(k) for k, _ in shown))
    cols = ("accuracy", "recall", "specificity", "kappa", "auc")
    click.echo(f"{'by ' + field:<{w}} {'n':>6} " + " ".join(f"{c:>11}" for c in cols))
    for k, g in shown:
        click.echo(f"{k:<{w}} {g['n']:>6} " + " ".join(
            f"{g[c]:>11.3f}" if isinstance(g.get(c), float) else f"{'-':>11}" for c in cols))
    if len(groups) > BY_SHOWN:
        click.echo(f"... and {len(groups) - BY_SHOWN} smaller groups (all in the saved figures; --save)")


def _warnings_as_lines():
    """Show reader warnings (skipped rows) as one 'warning:' line each on stderr."""
    import contextlib
    import warnings

    @contextlib.contextmanager
    def cm():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for w in caught:
                    if issubclass(w.category, UserWarning):
                        click.echo(f"warning: {w.message}", err=True)
    return cm()


@judges.command("train")
@click.option("--judge", "name", type=click.Choice(["refusal", "harm", "rule"]), default="harm", show_default=True)
@click.option("--data", "data", multiple=True,
              help="labelled-reply set name or file (repeatable; default: the shipped training sets of the judge)")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="output folder (default: the workspace, picked up automatically by the judge)")
@click.option("--ship", is_flag=True,
              help="maintainers: rebuild the packaged head and its stored figures (only 'weights: yes' sets)")
@click.option("--seed", default=0, show_default=True)
@click.option("--on-bad", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="rows with an empty reply: skip with a warning, or stop with an error")
def judges_train(name: str, data: tuple[str, ...], out: str | None, ship: bool, seed: int, on_bad: str) -> None:
    """Train a judge on human-labelled replies and store its leave-one-source-out figures.

    \b
    Example:
      harmscope judges train --judge harm --data gptfuzz --data diasafety --data safetext --data latent-jailbreak
      harmscope judges train --judge refusal --data xstest-completions --data my_labels.jsonl
    """
    from harmscope.classifiers.judges.base import VALIDATION_DIR, save_validation, user_judges_dir
    from harmscope.classifiers.judges.fit import train_judge

    if ship and out:
        raise InputError("--ship and --out: give one of them")
    out_dir = None if ship else (Path(out) if out else user_judges_dir(name))
    with _warnings_as_lines():
        res = train_judge(name, list(data) or None, out=out_dir, seed=seed, ship=ship, on_bad=on_bad,
                          say=lambda s: click.echo(s, err=True))
    dest = VALIDATION_DIR / f"{name}.json" if ship else out_dir / "validation.json"
    save_validation(dest, res)
    m = res["metrics"]
    click.echo(f"trained {name} judge -> {dest.parent if not ship else 'package data'}")
    click.echo(" ".join(f"{k}={m[k]:.3f}" for k in ("accuracy", "f1", "kappa", "auc") if isinstance(m.get(k), float)))
    click.echo(res["source"])


@judges.command("compare")
@click.option("--data", "data", required=True, help="labelled file (CSV/JSONL/JSON/YAML) or named dataset")
@click.option("--judge", "judge_specs", multiple=True, help="judge spec (repeatable), e.g. refusal, "
              "'llama-guard:openai:lg@http://127.0.0.1:8000/v1'")
@click.option("--reference-col", "reference_cols", multiple=True,
              help="column holding another judge's verdicts (repeatable), e.g. llamaguard2_cf")
@click.option("--label-col", default=None, help="human label column (default: violation, human_majority, ...)")
@click.option("--reply-col", default=None, help="reply column (default: reply, text, response, ...)")
@click.option("--prompt-col", default=None, help="request column (default: prompt, question, goal, ...)")
@click.option("--source-col", default=None, help="source column for the per-source breakdown")
@click.option("--category-col", default=None, help="category column for the per-category breakdown")
@click.option("--positive", "positive", multiple=True,
              help="label value that counts as positive (repeatable), e.g. 1_full_compliance; applies to the "
                   "label and reference columns")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="judge-agreement", show_default=True)
@click.option("--format", "formats", default="json,html,pdf", show_default=True, help="comma-separated")
@click.option("--cache/--no-cache", default=True, show_default=True,
              help="cache verdicts in OUT/judge-cache.sqlite (same cache as scoring)")
def judges_compare(data: str, judge_specs: tuple[str, ...], reference_cols: tuple[str, ...], label_col: str | None,
                   reply_col: str | None, prompt_col: str | None, source_col: str | None,
                   category_col: str | None, positive: tuple[str, ...], out_dir: str, formats: str,
                   cache: bool) -> None:
    """Agreement of judges (and published judges' verdict columns) with human labels.

    \b
    Example:
      harmscope judges compare --data labelled.csv --judge refusal \\
        --judge 'llama-guard:openai:lg@http://127.0.0.1:8000/v1' --reference-col llamaguard2_cf
    """
    from harmscope.classifiers.judges.agreement import compare_judges
    from harmscope.reports._agreement import main_rows
    from harmscope.reports.formats import parse_formats
    from harmscope.reports.render import render_agreement

    parse_formats(formats, agreement=True)  # a bad --format fails before any judge runs
    store = None
    if cache and judge_specs:
        from harmscope.benchmarks.runs.store import Store

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        store = Store(Path(out_dir) / "judge-cache.sqlite")
    rep = compare_judges(data, judge_specs, reference_cols=reference_cols, label_col=label_col,
                         reply_col=reply_col, prompt_col=prompt_col, source_col=source_col,
                         category_col=category_col, positive=positive, store=store,
                         progress=lambda s: click.echo(s, err=True))
    paths = render_agreement(rep, out_dir, formats)
    click.echo(f"{rep['n']} labelled replies, positive rate {rep['positive_rate']:.3f}")
    click.echo(f"{'judge':<44} {'abstain':>7} {'acc':>6} {'prec':>6} {'rec':>6} {'kappa':>6} {'auc':>6} {'ece':>6}")
    for r in main_rows(rep):
        cells = [_pct(r["abstention_rate"])] + [("n/a" if r[k] is None else f"{r[k]:.3f}")
                                               for k in ("accuracy", "precision", "recall", "kappa", "auc", "ece")]
        click.echo(f"{r['judge'][:44]:<44} {cells[0]:>7} " + " ".join(f"{c:>6}" for c in cells[1:]))
    for p in rep["pairwise"]:
        k = "n/a" if p["kappa"] is None else f"{p['kappa']:.3f}"
        mp = "n/a" if p["mcnemar_p"] is None else f"{p['mcnemar_p']:.3g}"
        click.echo(f"  {p['a'][:36]} vs {p['b'][:36]}: kappa {k}, McNemar p={mp} (n={p['n']})")
    for path in paths.values():
        click.echo(f"wrote {path}")


@click.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--alpha", default=0.05, show_default=True, help="family-wise error rate (Holm over rules)")
def compare(run_dirs: tuple[str, ...], alpha: float) -> None:
    """Per-rule violation-rate differences between runs (vs the first), with intervals and significance.

    Each RUN_DIR needs a result.json from `harmscope score`.
    """
    from harmscope.benchmarks.scoring.compare import compare_results
    from harmscope.types import RunResult

    if len(run_dirs) < 2:
        raise HarmscopeError("compare needs at least two run directories")
    results = []
    for d in run_dirs:
        p = Path(d) / "result.json"
        if not p.is_file():
            raise InputError(f"{p}: missing; run `harmscope score {d}` first")
        try:
            results.append(RunResult.model_validate_json(p.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise InputError(f"{p}: not a harmscope result ({str(exc).splitlines()[0]})") from None
    rows = compare_results(results, alpha=alpha)
    base = results[0].manifest
    click.echo(f"baseline: {base.model} ({base.run_id})")
    for r in rows:
        d = r["diff"]
        ds = "n/a" if d is None else f"{d:+.1%} [{r['lo']:+.1%}, {r['hi']:+.1%}]"
        sig = " *" if r["significant"] else ""
        pa = "" if r["p_holm"] is None else f" p_holm={r['p_holm']:.3g}"
        click.echo(f"{r['model']:<24} {r['rule_id']:<24} {_pct(r['base_rate'])} -> {_pct(r['rate'])}  "
                   f"diff {ds}{pa}{sig}")
    from harmscope.benchmarks.scoring.compare import compare_distributional

    dist = compare_distributional(results)
    for r in dist:
        ch = "n/a" if r["avg_w1_change"] is None else f"{r['avg_w1_change']:+.3f}"
        gap = "n/a" if r["max_gap"] is None else f"{r['max_gap']:.3f} [{r['gap_lo']:.3f}, {r['gap_hi']:.3f}]"
        click.echo(f"{r['model']:<24} distributional {r['axis']}/{r['measure']}: bias (avg W1) "
                   f"{_num(r['base_avg_w1'])} -> {_num(r['avg_w1'])} ({ch}); largest gap {gap}; worst group "
                   f"{r['base_worst_group']} -> {r['worst_group']}")
    if dist:
        rows = [*rows, *({"distributional": True, **r} for r in dist)]
    out = Path(run_dirs[-1]) / "compare.json"
    out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    click.echo(f"* significant at family-wise alpha={alpha} (Holm over rules); wrote {out}")


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _echo_distributional(tables: dict[str, Any]) -> None:
    """The distributional tables of a result, when the run had distributional probes."""
    axes = tables.get("dist_axes") or []
    if not axes and not tables.get("dist_cooccurrence"):
        return
    click.echo("distributional bias (per axis; diff = worst group's mean minus the rest, 95% bootstrap CI, "
               "Holm-adjusted permutation p):")
    click.echo(f"  {'axis':<22} {'measure':<10} {'avg W1':>7}  {'largest gap [95% CI]':<24} worst group")
    for a in axes:
        gap = f"{a['max_gap']:.3f} [{a['gap_lo']:.3f}, {a['gap_hi']:.3f}]"
        click.echo(f"  {a['axis']:<22} {a['measure']:<10} {a['avg_w1']:>7.3f}  {gap:<24} {a['worst_group']} "
                   f"diff {a['worst_diff']:+.3f} [{a['worst_diff_lo']:+.3f}, {a['worst_diff_hi']:+.3f}] "
                   f"p_holm={a['worst_p_holm']:.3g}")
    occ = tables.get("dist_cooccurrence") or []
    if occ:
        click.echo("  gendered-word co-occurrence, log(female/male) [95% CI]: " + ", ".join(
            f"{c['occupation']} {c['log_ratio']:+.2f} [{c['lo']:+.2f}, {c['hi']:+.2f}]" for c in occ))
    for r in tables.get("dist_rule_summary") or []:
        verdict = "VIOLATED" if r["violation"] else "not violated"
        click.echo(f"  rule {r['rule_id']:<20} distributional verdict: {verdict} (largest: {r['worst']}, "
                   f"disparity {r['disparity']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}], threshold {r['threshold']:.3f})")
