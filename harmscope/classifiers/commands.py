"""``harmscope train``, ``harmscope experiment strategies`` and ``harmscope predict``.

FILE arguments take a file (CSV/TSV/JSONL/Parquet; Civil Comments, HF civil_comments and Toxic
Comment layouts are recognised from their columns) or a dataset name: ``davidson``, ``ethos``,
``toxigen``, ``madlibs``, ``templates``, ``wiki-toxicity``, ``corpus:clean``/``corpus:noisy``/
``corpus:eval`` (the embedded synthetic corpus; ``corpus:eval:SEED`` for another seed).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from harmscope.classifiers import strategies
from harmscope.classifiers.datasets.load import load_dataset, read_texts
from harmscope.classifiers.strategies import STRATEGIES, strategy_names
from harmscope.clitypes import FiniteFloat
from harmscope.engines import engine_option
from harmscope.errors import HarmscopeError, InputError
from harmscope.safeio import atomic_path, atomic_write_text, check_output_dir, check_output_file


def _quiet_hf() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE parsed as JSON when it can be (numbers, lists, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(val)
        except json.JSONDecodeError:
            out[key.strip()] = val
        if isinstance(out[key.strip()], list):
            out[key.strip()] = tuple(out[key.strip()])
    return out


def _load(spec: str | None, opts: dict[str, Any], *, noisy: bool = False) -> pd.DataFrame | None:
    if not spec:
        return None
    groups = [g.strip() for g in opts["group_cols"].split(",") if g.strip()] if opts.get("group_cols") else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_dataset(spec, text_col=opts.get("text_col"), label_col=opts.get("label_col"),
                          group_cols=groups, noisy_label_col=opts.get("noisy_label_col") if noisy else None,
                          fmt=opts.get("fmt"), threshold=opts.get("threshold", 0.5),
                          on_bad=opts.get("on_bad", "skip"), seed=opts.get("seed", 0))
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    return df


def _describe(spec: str | None, df: pd.DataFrame | None) -> dict[str, Any] | None:
    if df is None:
        return None
    d = {"spec": spec, "n": len(df), "positive_rate": round(float(df["label"].mean()), 4),
         "group_cols": list(df.attrs.get("group_cols", [])), "skipped_rows": len(df.attrs.get("skipped", []))}
    if "noisy_label" in df.columns:
        d["noisy_positive_rate"] = round(float(df["noisy_label"].mean()), 4)
    return d


def evaluate(scores: np.ndarray, eval_df: pd.DataFrame, *, n_boot: int, seed: int) -> tuple[dict, pd.DataFrame]:
    """Overall AUC with a bootstrap interval and, when the eval set has identity columns, the
    Borkan et al. metrics: both from :func:`harmscope.fairness.bias_metrics` (one bootstrap)."""
    from harmscope.fairness import bias_metrics  # the library imports below load sklearn: kept out of --help
    groups = [g for g in eval_df.attrs.get("group_cols", []) if g in eval_df.columns]
    y = eval_df["label"].to_numpy()
    source = str(eval_df.attrs.get("source", "eval"))
    if groups:
        rep = bias_metrics(y, scores, eval_df[groups], n_boot=n_boot, seed=seed, source=source)
        return dict(rep.overall), rep.per_group
    # no identity columns: one empty group, so only the overall figures are computed
    rep = bias_metrics(y, scores, pd.DataFrame({"(none)": np.zeros(len(y))}), n_boot=n_boot, seed=seed,
                       source=source)
    overall = {k: rep.overall[k] for k in ("n", "overall_auc", "overall_auc_lo", "overall_auc_hi")}
    if overall["overall_auc"] is None:
        overall["overall_auc"] = float("nan")
    return overall, pd.DataFrame()


TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq")


def _write_table(df: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:  # a failed write keeps the previous file
        if suffix in (".jsonl", ".ndjson"):
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif suffix in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        elif suffix == ".tsv":
            df.to_csv(tmp, sep="\t", index=False)
        else:
            df.to_csv(tmp, index=False)


def _data_options(f: Any) -> Any:
    opts = [
        click.option("--text-col", default=None, help="Text column of generic files."),
        click.option("--label-col", default=None, help="Label column (0/1, bool or fraction)."),
        click.option("--group-cols", default=None, help="Comma-separated identity columns."),
        click.option("--noisy-label-col", default=None, help="Noisy label column of the noisy file."),
        click.option("--format", "fmt", default=None, type=click.Choice(["csv", "tsv", "jsonl", "parquet"]),
                     help="File format (default: from the extension)."),
        click.option("--threshold", default=0.5, show_default=True, type=FiniteFloat(0.0, 1.0),
                     help="Binarise fractional labels at."),
        click.option("--on-bad", default="skip", show_default=True, type=click.Choice(["skip", "error"]),
                     help="Skip (with a warning) or reject rows with missing/empty/non-UTF-8 text."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


# ---------------------------------------------------------------- train
@click.command("train")
@click.option("--backend", default="tfidf", show_default=True, help="A registered backend: tfidf, embed, finetune, ...")
@click.option("--strategy", default="clean", show_default=True,
              help="A registered training strategy: clean, noisy, union, union-weighted, pretrain-finetune, filtered, "
                   "soft, ...")
@click.option("--clean", "clean_spec", default=None, help="Clean labelled training data (FILE or name).")
@click.option("--noisy", "noisy_spec", default=None, help="Noisy / weakly labelled training data.")
@click.option("--eval", "eval_spec", default=None, help="Optional held-out data for the model card metrics.")
@_data_options
@click.option("--seed", default=0, show_default=True)
@click.option("--n-boot", default=200, show_default=True, help="Bootstrap resamples for --eval CIs.")
@click.option("--param", "params", multiple=True, help="Backend hyper-parameter KEY=VALUE (repeatable).")
@click.option("--export-detoxify", is_flag=True, help="finetune only: also write a Detoxify checkpoint.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Model folder.")
def train(backend: str, strategy: str, clean_spec: str | None, noisy_spec: str | None, eval_spec: str | None,
          seed: int, n_boot: int, params: tuple[str, ...], export_detoxify: bool, out_dir: str,
          **data_opts: Any) -> None:
    """Train a toxicity classifier with one strategy and save it (no pickle).

    \b
    Example:
      harmscope train --backend tfidf --strategy pretrain-finetune \\
          --clean corpus:clean --noisy corpus:noisy --eval corpus:eval --out models/tfidf-pf
    """
    from harmscope.classifiers.backends.base import save_model
    from harmscope.classifiers.export import export_detoxify as write_detoxify_checkpoint
    from harmscope.classifiers.export import model_card
    from harmscope.classifiers.study import backend_factory

    _quiet_hf()
    check_output_dir(out_dir, "--out")
    if strategy not in STRATEGIES:
        raise InputError(f"--strategy: unknown {strategy!r} (known: {', '.join(strategy_names())})")
    data_opts["seed"] = seed
    hp = parse_params(params)
    backend_factory(backend, hp, seed, None)  # a bad --param fails before any data is read
    clean = _load(clean_spec, data_opts)
    noisy = _load(noisy_spec, data_opts, noisy=True)
    ev = _load(eval_spec, data_opts)
    make = backend_factory(backend, hp, seed, clean)
    t0 = time.perf_counter()
    model = strategies.train(strategy, make, clean, noisy, seed=seed)
    train_s = time.perf_counter() - t0
    metrics: dict[str, Any] = {"train_seconds": round(train_s, 2)}
    if ev is not None:
        overall, _ = evaluate(model.predict_proba(ev)[:, 1], ev, n_boot=n_boot, seed=seed)
        metrics.update({k: v for k, v in overall.items() if isinstance(v, int | float | None)})
    extra = getattr(model, "card_", {}) or {}
    card = model_card(backend=backend, strategy=strategy, seed=seed, metrics=metrics, params=hp,
                      data={"clean": _describe(clean_spec, clean), "noisy": _describe(noisy_spec, noisy),
                            "eval": _describe(eval_spec, ev)})
    card.update({k: v for k, v in extra.items() if k not in card})
    out = Path(out_dir)
    save_model(model, out, card=card)  # atomic: a failed save keeps the previous model
    msg = f"saved {backend}/{strategy} model to {out} (trained in {train_s:.1f} s)"
    if "overall_auc" in metrics:
        msg += f"; eval AUC {metrics['overall_auc']:.4f}"
        if metrics.get("final_score") is not None:
            msg += f", final bias score {metrics['final_score']:.4f}"
    click.echo(msg)
    if export_detoxify:
        if backend != "finetune":
            raise HarmscopeError("--export-detoxify needs --backend finetune")
        path = write_detoxify_checkpoint(model, out / "detoxify", card=card)
        click.echo(f"Detoxify checkpoint: {path} (config folder {path.parent / 'config'})")


# ---------------------------------------------------------------- experiment
@click.group("experiment")
def experiment() -> None:
    """Compare training strategies for noisy toxicity labels."""


SUMMARY_COLS = ["overall_auc", "power_mean_subgroup_auc", "power_mean_bpsn_auc", "power_mean_bnsp_auc",
                "final_score"]


@experiment.command("strategies")
@click.option("--backend", default="tfidf", show_default=True, help="A registered backend: tfidf, embed, finetune, ...")
@click.option("--clean", "clean_spec", default=None, help="Small clean labelled set (FILE or name).")
@click.option("--noisy", "noisy_spec", default=None, help="Large noisy labelled set (FILE or name).")
@click.option("--eval", "eval_spec", default=None, help="Eval set, with identity columns for fairness metrics.")
@click.option("--data", "data_spec", default=None,
              help="Instead of --clean/--noisy/--eval: one set with clean and noisy labels of the same texts "
                   "(e.g. toxigen-annotated); a hash-chosen 20%% is held out, --budgets rows keep clean labels.")
@click.option("--budgets", default="250,1000,4000", show_default=True,
              help="With --data: comma-separated clean-label budgets.")
@click.option("--strategies", "names", default=None,
              help="Comma-separated strategies to run (default: every registered one).")
@_data_options
@click.option("--seed", default=0, show_default=True)
@click.option("--n-boot", default=200, show_default=True, help="Bootstrap resamples for the CIs.")
@click.option("--param", "params", multiple=True, help="Backend hyper-parameter KEY=VALUE (repeatable).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for summary.csv, per_group.csv and results.json.")
@engine_option
def experiment_strategies(backend: str, clean_spec: str | None, noisy_spec: str | None, eval_spec: str | None,
                          data_spec: str | None, budgets: str, names: str | None, seed: int, n_boot: int, params: tuple[str, ...], out_dir: str, **data_opts: Any) -> None:
    """Train every strategy with the same seed and compare overall AUC and bias metrics.

    \b
    Example:
      harmscope experiment strategies --backend tfidf --clean corpus:clean \\
          --noisy corpus:noisy --eval corpus:eval --out results/strategies
    """
    from harmscope.classifiers.backends.base import versions
    from harmscope.classifiers.study import backend_factory, run_strategies

    _quiet_hf()
    check_output_dir(out_dir, "--out")
    chosen = [s.strip() for s in names.split(",") if s.strip()] if names is not None else strategy_names()
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise InputError(f"--strategies: unknown {', '.join(unknown)} (known: {', '.join(strategy_names())})")
    data_opts["seed"] = seed
    hp = parse_params(params)
    backend_factory(backend, hp, seed, None)  # a bad --param fails before any data is read
    if data_spec:
        run_budget_cli(backend, data_spec, budgets, chosen, seed=seed, n_boot=n_boot, params=hp, out_dir=out_dir,
                       data_opts=data_opts)
        return
    if not (clean_spec and noisy_spec and eval_spec):
        raise InputError("give --clean, --noisy and --eval, or --data with a set holding clean and noisy labels")
    clean = _load(clean_spec, data_opts)
    noisy = _load(noisy_spec, data_opts, noisy=True)
    ev = _load(eval_spec, data_opts)
    results = run_strategies(backend, clean, noisy, ev, evaluate=evaluate, strategies=chosen, seed=seed,
                             n_boot=n_boot, params=hp, progress=lambda m: click.echo(m, err=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary, per_group = results["summary"], results["per_group"]
    for name, frame in (("summary.csv", summary), ("per_group.csv", per_group)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    payload = {"backend": backend, "seed": seed, "n_boot": n_boot, "params": hp,
               "data": {"clean": _describe(clean_spec, clean), "noisy": _describe(noisy_spec, noisy),
                        "eval": _describe(eval_spec, ev)},
               "summary": json.loads(summary.to_json(orient="records")),
               "per_group": json.loads(per_group.to_json(orient="records")), "versions": versions()}
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    _print_summary(summary, backend)
    click.echo(f"wrote {out / 'summary.csv'}, {out / 'per_group.csv'}, {out / 'results.json'}")


def run_budget_cli(backend: str, data_spec: str, budgets: str, strategies: list[str], *, seed: int, n_boot: int,
                   params: dict[str, Any], out_dir: str, data_opts: dict[str, Any]) -> None:
    """``harmscope experiment strategies --data ...``: run, write tables, JSON and a plot, print."""
    from harmscope.classifiers.backends.base import versions
    from harmscope.classifiers.study import markdown_table, parse_budgets, plot_budget_study, run_budget_study

    bs = parse_budgets(budgets)
    df = _load(data_spec, data_opts, noisy=True)
    if df is None or "noisy_label" not in df.columns:
        raise InputError(f"--data {data_spec}: needs a set with clean and noisy labels of the same texts "
                         "(e.g. toxigen-annotated)")
    t0 = time.perf_counter()
    res = run_budget_study(backend, df, bs, strategies, evaluate=evaluate, seed=seed, n_boot=n_boot, params=params,
                           progress=lambda m: click.echo(m, err=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("summary", "per_group"):
        with atomic_path(out / f"{name}.csv") as tmp:
            res[name].to_csv(tmp, index=False)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(markdown_table(res["summary"]) + "\n", encoding="utf-8")
    plot = plot_budget_study(res["summary"], out / "strategies.png",
                             title=f"{data_spec}: clean+noisy strategies, backend {backend}")
    payload = {"backend": backend, "data": data_spec, "budgets": bs, "seed": seed, "n_boot": n_boot,
               "params": params, "seconds": round(time.perf_counter() - t0, 1),
               "summary": json.loads(res["summary"].to_json(orient="records")),
               "per_group": json.loads(res["per_group"].to_json(orient="records")), "versions": versions()}
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    for b in bs:
        _print_summary(res["summary"][res["summary"]["budget"] == b].reset_index(drop=True),
                       f"{backend}, {b} clean labels")
    click.echo(f"wrote {out / 'summary.csv'}, {out / 'summary.md'}, {out / 'per_group.csv'}, "
               f"{out / 'results.json'}, {plot}")


def _fmt(row: pd.Series, col: str) -> str:
    v = row.get(col)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
    if lo is None or hi is None or (isinstance(lo, float) and np.isnan(lo)):
        return f"{v:.4f}"
    return f"{v:.4f} [{lo:.3f}, {hi:.3f}]"


def _print_summary(summary: pd.DataFrame, backend: str) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = [c for c in SUMMARY_COLS if c in summary.columns]
    titles = {"overall_auc": "overall AUC", "power_mean_subgroup_auc": "subgroup AUC (pm)",
              "power_mean_bpsn_auc": "BPSN (pm)", "power_mean_bnsp_auc": "BNSP (pm)", "final_score": "final bias"}
    table = Table(title=f"strategies, backend {backend} (95% bootstrap CIs)")
    table.add_column("strategy")
    for c in cols:
        table.add_column(titles[c], justify="right")
    table.add_column("train s", justify="right")
    best = {c: summary[c].max() for c in cols}
    for _, r in summary.iterrows():
        cells = []
        for c in cols:
            s = _fmt(r, c)
            cells.append(f"[bold]{s}[/bold]" if r.get(c) == best[c] else s)
        table.add_row(str(r["strategy"]), *cells, f"{r['train_seconds']:.1f}")
    Console(width=160).print(table)


# ---------------------------------------------------------------- predict
@click.command("predict")
@click.option("--classifier", "spec", required=True,
              help="Model folder, detoxify:CHECKPOINT[::CONFIG_DIR], or an exported Detoxify folder.")
@click.option("--data", "data_spec", required=True, help="FILE or dataset name with texts to score.")
@click.option("--text-col", default=None, help="Text column (default: text/comment_text/comment/...).")
@click.option("--format", "fmt", default=None, type=click.Choice(["csv", "tsv", "jsonl", "parquet"]))
@click.option("--on-bad", default="skip", show_default=True, type=click.Choice(["skip", "error"]))
@click.option("--all-heads", is_flag=True, help="Also write every head's score (finetune / detoxify).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output file (.csv, .jsonl or .parquet): the input columns plus 'score'.")
@engine_option
def predict(spec: str, data_spec: str, text_col: str | None, fmt: str | None, on_bad: str, all_heads: bool,
            out_path: str) -> None:
    """Score texts with a trained classifier.

    \b
    Example:
      harmscope predict --classifier models/tfidf-pf --data comments.csv --out scored.csv
    """
    from harmscope.classifiers.backends.base import load_classifier

    _quiet_hf()
    check_output_file(out_path, "--out", TABLE_SUFFIXES)
    model = load_classifier(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_texts(data_spec, text_col=text_col, fmt=fmt, on_bad=on_bad)  # type: ignore[arg-type]
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    t0 = time.perf_counter()
    df = df.copy()
    from harmscope.classifiers.partitioned import predict_dataset

    df["score"] = predict_dataset(model, df, spec=spec)[:, 1]
    if all_heads and hasattr(model, "predict_all"):
        heads = model.predict_all(df)
        if isinstance(heads, np.ndarray):
            heads = pd.DataFrame(heads, columns=model.class_names)
        for c in heads.columns:
            df[f"score_{c}"] = np.asarray(heads[c])
    dt = time.perf_counter() - t0
    _write_table(df, Path(out_path))
    msg = f"scored {len(df)} texts in {dt:.1f} s -> {out_path}"
    if "label" in df.columns and df["label"].nunique() == 2:
        from sklearn.metrics import roc_auc_score

        msg += f" (AUC against 'label': {roc_auc_score(df['label'], df['score']):.4f})"
    click.echo(msg)


@experiment.command("build-default")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Model folder to write (default: only print the figures).")
@click.option("--variants", default="stack", show_default=True,
              help="Comma-separated: stack (MiniLM + TF-IDF, the shipped one), tfidf, embed (the first "
                   "is saved; the others are compared in its card).")
@click.option("--cache", "cache_dir", default=".harmscope-emb-cache", show_default=True,
              type=click.Path(file_okay=False), help="Embedding cache folder (embed/stack variants).")
@click.option("--no-loso", is_flag=True, help="Skip the leave-one-source-out runs.")
@click.option("--seed", default=0, show_default=True)
def build_default_cmd(out_dir: str | None, variants: str, cache_dir: str, no_loso: bool, seed: int) -> None:
    """Rebuild the default classifier from the 'weights: yes' sets (needs $HARMSCOPE_DATA) and print
    held-out, leave-one-source-out and external figures."""
    from harmscope.classifiers.build_default import build

    names = tuple(v.strip() for v in variants.split(",") if v.strip())
    bad = [v for v in names if v not in ("tfidf", "embed", "stack")]
    if bad or not names:
        raise InputError(f"--variants: unknown {', '.join(bad) or '(none)'} (use tfidf, embed, stack)")
    rep = build(out_dir, cache_dir, variants=names, loso=not no_loso, seed=seed,
                progress=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "held_out_test"}
                           for k, v in rep["variants"].items()}, indent=1))
    if out_dir:
        click.echo(f"saved the default classifier to {out_dir}")

