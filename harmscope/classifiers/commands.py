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

from harmscope.clitypes import FiniteFloat
from harmscope.engines import engine_option
from harmscope.errors import HarmscopeError, InputError

STRATEGY_NAMES = ["clean", "noisy", "union", "union-weighted", "pretrain-finetune", "filtered", "soft"]
BACKEND_NAMES = ["tfidf", "embed", "finetune"]


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
    from harmscope.classifiers.datasets import load_dataset

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


def _make(backend: str, params: dict[str, Any], seed: int, clean: pd.DataFrame | None) -> Any:
    from harmscope.classifiers.backends import BACKENDS

    cls = BACKENDS.get(backend).obj
    p = dict(params)
    if "seed" in cls().get_params():
        p.setdefault("seed", seed)
    if backend == "finetune" and clean is not None and clean.attrs.get("subtype_cols"):
        p.setdefault("subtype_cols", tuple(clean.attrs["subtype_cols"]))
    try:
        cls(**p)
    except TypeError as exc:
        raise InputError(f"--param: {exc}") from None
    _check_param_types(params, cls().get_params())
    return lambda: cls(**p)


_POSITIVE = {"C", "finetune_C", "max_iter", "batch_size", "max_length", "bits", "max_features", "min_df",
             "max_steps", "finetune_steps", "lr", "epochs", "n_estimators"}


def _check_param_types(params: dict[str, Any], defaults: dict[str, Any]) -> None:
    """``--param`` values must have the type of the backend's default (numbers stay numbers)."""
    import math

    for k, v in params.items():
        d = defaults.get(k)
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise InputError(f"--param {k}={v!r}: expected true or false")
            continue
        numeric = isinstance(d, int | float) or k in _POSITIVE
        if numeric and v is not None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InputError(f"--param {k}={v!r}: expected a number")
            if isinstance(d, int) and not isinstance(d, bool) and isinstance(v, float) and not v.is_integer():
                raise InputError(f"--param {k}={v!r}: expected an integer")
            if not math.isfinite(v):
                raise InputError(f"--param {k}={v!r}: expected a finite number")
            if k in _POSITIVE and v <= 0:
                raise InputError(f"--param {k}={v!r}: must be > 0")


def _describe(spec: str | None, df: pd.DataFrame | None) -> dict[str, Any] | None:
    if df is None:
        return None
    d = {"spec": spec, "n": len(df), "positive_rate": round(float(df["label"].mean()), 4),
         "group_cols": list(df.attrs.get("group_cols", [])), "skipped_rows": len(df.attrs.get("skipped", []))}
    if "noisy_label" in df.columns:
        d["noisy_positive_rate"] = round(float(df["noisy_label"].mean()), 4)
    return d


def auc_ci(y: np.ndarray, s: np.ndarray, *, n_boot: int, seed: int) -> tuple[float, float | None, float | None]:
    """ROC AUC with a percentile bootstrap interval (resampling rows)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return float("nan"), None, None
    auc = float(roc_auc_score(y, s))
    if n_boot <= 0:
        return auc, None, None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            vals.append(roc_auc_score(y[i], s[i]))
    lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (None, None)
    return auc, float(lo), float(hi)


def evaluate(scores: np.ndarray, eval_df: pd.DataFrame, *, n_boot: int, seed: int) -> tuple[dict, pd.DataFrame]:
    """Overall AUC and, when the eval set has identity columns, the Borkan et al. metrics."""
    groups = [g for g in eval_df.attrs.get("group_cols", []) if g in eval_df.columns]
    y = eval_df["label"].to_numpy()
    if groups:
        try:
            from harmscope.fairness import bias_metrics
        except ImportError:
            bias_metrics = None
        if bias_metrics is not None:
            rep = bias_metrics(y, scores, eval_df[groups], n_boot=n_boot, seed=seed,
                               source=str(eval_df.attrs.get("source", "eval")))
            return dict(rep.overall), rep.per_group
    auc, lo, hi = auc_ci(y, scores, n_boot=n_boot, seed=seed)
    return {"n": len(y), "overall_auc": auc, "overall_auc_lo": lo, "overall_auc_hi": hi}, pd.DataFrame()


TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq")


def _write_table(df: pd.DataFrame, path: Path) -> None:
    from harmscope.safeio import atomic_path

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
@click.option("--backend", default="tfidf", show_default=True, help="tfidf, embed or finetune.")
@click.option("--strategy", default="clean", show_default=True, type=click.Choice(STRATEGY_NAMES))
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
    from harmscope.classifiers import strategies
    from harmscope.classifiers.export import export_detoxify as _export
    from harmscope.classifiers.export import model_card
    from harmscope.safeio import check_output_dir

    _quiet_hf()
    check_output_dir(out_dir, "--out")
    data_opts["seed"] = seed
    hp = parse_params(params)
    _make(backend, hp, seed, None)  # a bad --param fails before any data is read
    clean = _load(clean_spec, data_opts)
    noisy = _load(noisy_spec, data_opts, noisy=True)
    ev = _load(eval_spec, data_opts)
    make = _make(backend, hp, seed, clean)
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
    from harmscope.classifiers.backends import save_model

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
        path = _export(model, out / "detoxify", card=card)
        click.echo(f"Detoxify checkpoint: {path} (config folder {path.parent / 'config'})")


# ---------------------------------------------------------------- experiment
@click.group("experiment")
def experiment() -> None:
    """Compare training strategies for noisy toxicity labels."""


SUMMARY_COLS = ["overall_auc", "power_mean_subgroup_auc", "power_mean_bpsn_auc", "power_mean_bnsp_auc",
                "final_score"]


@experiment.command("strategies")
@click.option("--backend", default="tfidf", show_default=True, help="tfidf, embed or finetune.")
@click.option("--clean", "clean_spec", default=None, help="Small clean labelled set (FILE or name).")
@click.option("--noisy", "noisy_spec", default=None, help="Large noisy labelled set (FILE or name).")
@click.option("--eval", "eval_spec", default=None, help="Eval set, with identity columns for fairness metrics.")
@click.option("--data", "data_spec", default=None,
              help="Instead of --clean/--noisy/--eval: one set with clean and noisy labels of the same texts "
                   "(e.g. toxigen-annotated); a hash-chosen 20%% is held out, --budgets rows keep clean labels.")
@click.option("--budgets", default="250,1000,4000", show_default=True,
              help="With --data: comma-separated clean-label budgets.")
@click.option("--strategies", "names", default=",".join(STRATEGY_NAMES), show_default=True,
              help="Comma-separated strategies to run.")
@_data_options
@click.option("--seed", default=0, show_default=True)
@click.option("--n-boot", default=200, show_default=True, help="Bootstrap resamples for the CIs.")
@click.option("--param", "params", multiple=True, help="Backend hyper-parameter KEY=VALUE (repeatable).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for summary.csv, per_group.csv and results.json.")
@engine_option
def experiment_strategies(backend: str, clean_spec: str | None, noisy_spec: str | None, eval_spec: str | None,
                          data_spec: str | None, budgets: str, names: str, seed: int, n_boot: int, params: tuple[str, ...], out_dir: str, **data_opts: Any) -> None:
    """Train every strategy with the same seed and compare overall AUC and bias metrics.

    \b
    Example:
      harmscope experiment strategies --backend tfidf --clean corpus:clean \\
          --noisy corpus:noisy --eval corpus:eval --out results/strategies
    """
    from harmscope.classifiers.backends import versions
    from harmscope.safeio import check_output_dir

    _quiet_hf()
    check_output_dir(out_dir, "--out")
    chosen = [s.strip() for s in names.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STRATEGY_NAMES]
    if unknown:
        raise InputError(f"--strategies: unknown {', '.join(unknown)} (known: {', '.join(STRATEGY_NAMES)})")
    data_opts["seed"] = seed
    hp = parse_params(params)
    _make(backend, hp, seed, None)  # a bad --param fails before any data is read
    if data_spec:
        from harmscope.classifiers.study import run_budget_cli

        run_budget_cli(backend, data_spec, budgets, chosen, seed=seed, n_boot=n_boot, params=hp, out_dir=out_dir,
                       data_opts=data_opts)
        return
    if not (clean_spec and noisy_spec and eval_spec):
        raise InputError("give --clean, --noisy and --eval, or --data with a set holding clean and noisy labels")
    clean = _load(clean_spec, data_opts)
    noisy = _load(noisy_spec, data_opts, noisy=True)
    ev = _load(eval_spec, data_opts)
    results = run_strategies(backend, clean, noisy, ev, strategies=chosen, seed=seed, n_boot=n_boot, params=hp,
                             progress=lambda m: click.echo(m, err=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary, per_group = results["summary"], results["per_group"]
    from harmscope.safeio import atomic_path, atomic_write_text

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


def run_strategies(backend: str, clean: pd.DataFrame, noisy: pd.DataFrame, ev: pd.DataFrame, *,
                   strategies: list[str] | None = None, seed: int = 0, n_boot: int = 200,
                   params: dict[str, Any] | None = None, progress: Any = None) -> dict[str, pd.DataFrame]:
    """Train each strategy, score ``ev``; returns ``summary`` (one row per strategy) and
    ``per_group`` (strategy x subgroup) frames."""
    from harmscope.classifiers import strategies as strat

    make = _make(backend, params or {}, seed, clean)
    rows, groups = [], []
    for name in strategies or STRATEGY_NAMES:
        t0 = time.perf_counter()
        model = strat.train(name, make, clean, noisy, seed=seed)
        train_s = time.perf_counter() - t0
        scores = model.predict_proba(ev)[:, 1]
        overall, per_group = evaluate(scores, ev, n_boot=n_boot, seed=seed)
        row = {"strategy": name, **{k: v for k, v in overall.items() if not isinstance(v, dict | list)},
               "train_seconds": round(train_s, 2)}
        card = getattr(model, "card_", {}) or {}
        if "filtered_out" in card:
            row["filtered_out"] = card["filtered_out"]
        rows.append(row)
        if len(per_group):
            groups.append(per_group.assign(strategy=name))
        if progress:
            progress(f"{name}: AUC {row['overall_auc']:.4f} ({train_s:.1f} s)")
    per = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame()
    if len(per):
        per = per[["strategy", *[c for c in per.columns if c != "strategy"]]]
    return {"summary": pd.DataFrame(rows), "per_group": per}


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
    from harmscope.classifiers.backends import load_classifier
    from harmscope.classifiers.datasets import read_texts
    from harmscope.safeio import check_output_file

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


def _register_build_default() -> None:
    from harmscope.classifiers.build_default import build_default_cmd

    experiment.add_command(build_default_cmd)


_register_build_default()
