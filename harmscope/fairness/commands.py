"""``harmscope audit``: bias audit of a toxicity classifier (or of precomputed scores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from harmscope.clitypes import FiniteFloat
from harmscope.engines import engine_option
from harmscope.errors import InputError


def _read_raw(path: Path, fmt: str | None) -> pd.DataFrame:
    from harmscope.classifiers.datasets import read_any

    return read_any(path, fmt)


def _label_values(col: pd.Series, src: str, name: str) -> np.ndarray:
    """0/1, fractions, booleans or true/false/toxic/nontoxic strings -> floats (NaN when unknown)."""
    if col.dtype == bool:
        return col.to_numpy(dtype=float)
    words = {
        "true": 1.0,
        "false": 0.0,
        "toxic": 1.0,
        "nontoxic": 0.0,
        "non-toxic": 0.0,
        "bad": 1.0,
        "not_bad": 0.0,
    }
    num = pd.to_numeric(col, errors="coerce")
    as_word = col.astype(str).str.strip().str.lower().map(words)
    return num.fillna(as_word).to_numpy(dtype=float)


def load_audit_data(
    spec: str,
    *,
    fmt: str | None,
    text_col: str,
    label_col: str | None,
    group_cols: list[str] | None,
    scores_col: str | None,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The audit frame (text, target, identity columns; attrs source/group_cols) and optional scores.

    Files are read strictly: a bad label, identity value or score stops the audit with a message
    naming the file, row and column. Dataset names (``templates``, ``ethos-multi``, ...) go to
    :func:`harmscope.classifiers.datasets.load_dataset`.
    """
    from harmscope.fairness.validate import as_labels, as_membership, as_scores

    path = Path(spec)
    if not path.exists():
        if scores_col:
            raise InputError(f"{spec}: --scores-col needs a data file that holds the scores")
        from harmscope.classifiers.datasets import load_dataset

        df = load_dataset(spec, threshold=0.5)
        if group_cols:
            df.attrs["group_cols"] = group_cols
        return df, None
    raw = _read_raw(path, fmt)
    src = str(path)
    if label_col is None:
        label_col = next((c for c in ("target", "toxicity", "label") if c in raw.columns), "label")
    need = [label_col] + ([scores_col] if scores_col else [text_col])
    if group_cols is None:
        raise InputError(
            f"{src}: name the identity columns with --group-cols (columns: {', '.join(map(str, raw.columns))})"
        )
    for c in need + group_cols:
        if c not in raw.columns:
            raise InputError(f"{src}: column {c!r} not found (columns: {', '.join(map(str, raw.columns))})")
    y = as_labels(_label_values(raw[label_col], src, label_col), source=src, field=label_col)
    as_membership(raw[group_cols], len(raw), source=src)  # raises on empty / out-of-range columns
    df = pd.DataFrame({"target": y})
    if text_col in raw.columns:
        df.insert(0, "text", raw[text_col].astype(str).to_numpy())
    for g in group_cols:
        df[g] = pd.to_numeric(raw[g], errors="coerce").to_numpy(dtype=float)
    df.attrs.update({"source": src, "group_cols": list(group_cols)})
    scores = (
        as_scores(pd.to_numeric(raw[scores_col], errors="coerce"), len(raw), source=src, field=scores_col)
        if scores_col
        else None
    )
    return df, scores


def audit_label_col(data_spec: str, df: pd.DataFrame) -> str:
    """``label`` (the majority / documented binarisation) for named sets that carry one, else ``target``."""
    return "label" if not Path(data_spec).exists() and "label" in df.columns else "target"


def resolve_threshold(threshold: float | None, classifier: str | None) -> float:
    """The given threshold, else the calibrated one in the classifier's model card, else 0.5."""
    if threshold is not None:
        return float(threshold)
    if classifier:
        import json

        if classifier == "default" and not Path(classifier).exists():
            from harmscope.classifiers.backends.multihead import default_model_dir

            card = default_model_dir() / "model.json"
        else:
            card = Path(classifier) / "model.json"
        if card.is_file():
            try:
                thr = json.loads(card.read_text(encoding="utf-8")).get("threshold")
            except (OSError, ValueError):
                thr = None
            if isinstance(thr, int | float) and 0 <= thr <= 1:
                return float(thr)
    return 0.5


def _fmt(v: Any, lo: Any = None, hi: Any = None) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "undefined"
    s = f"{v:.3f}"
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        s += f" [{lo:.3f}, {hi:.3f}]"
    return s


def _short_reason(reason: str | None) -> str:
    """Compact 'm1 undefined: why; m2 undefined: why' into 'why (m1, m2)'."""
    if not reason:
        return ""
    by_why: dict[str, list[str]] = {}
    other: list[str] = []
    for part in reason.split("; "):
        metric, sep, why = part.partition(" undefined: ")
        if sep:
            by_why.setdefault(why, []).append(metric)
        else:
            other.append(part)
    return "; ".join(other + [f"{why} ({', '.join(ms)} undefined)" for why, ms in by_why.items()])


def print_summary(result: Any, out_dir: Path) -> None:
    """Rich console summary of an AuditResult."""
    from rich.console import Console
    from rich.table import Table

    con = Console(width=None if Console().is_terminal else 120)
    o = result.overall
    con.print(f"[bold]harmscope audit[/bold]: {result.classifier} on {result.data} (n={o.get('n')})")
    con.print(
        f"overall AUC {_fmt(o.get('overall_auc'), o.get('overall_auc_lo'), o.get('overall_auc_hi'))}   "
        f"final bias score {_fmt(o.get('final_score'), o.get('final_score_lo'), o.get('final_score_hi'))}"
    )
    con.print(
        "power means (p=-5): "
        + ", ".join(
            f"{m.split('_')[0]} {_fmt(o.get('power_mean_' + m))}"
            for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")
        )
        + f"   DP diff {_fmt(o.get('dp_difference'))}   EO diff {_fmt(o.get('eo_difference'))}"
        + f" at threshold {result.params.get('threshold')}"
    )
    t = Table(title="Per identity group (95% bootstrap CIs)")
    for c in ("group", "n", "subgroup AUC", "BPSN AUC", "BNSP AUC", "note"):
        t.add_column(c, overflow="fold")
    for r in result.tables.get("jigsaw", []):
        t.add_row(
            str(r["subgroup"]),
            str(r["n"]),
            *[
                _fmt(r.get(m), r.get(m + "_lo"), r.get(m + "_hi"))
                for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")
            ],
            _short_reason(r.get("reason")),
        )
    con.print(t)
    if result.worst_groups:
        con.print("[bold]Groups treated worst[/bold]")
        for w in result.worst_groups:
            if w["rank"] == 1 or w["metric"] != "subgroup_auc":
                con.print(
                    f"  lowest {w['metric']} #{w['rank']}: {w['subgroup']} {_fmt(w['value'], w['lo'], w['hi'])}"
                    + (f"  ({w['meaning']})" if w["rank"] == 1 else "")
                )
    for ax in result.tables.get("counterfactual_axes", [])[:20]:
        con.print(
            f"  counterfactual {ax['axis']}: gap {_fmt(ax['gap'], ax['gap_lo'], ax['gap_hi'])} "
            f"({ax['highest']} vs {ax['lowest']}), permutation p={_fmt(ax.get('gap_p'))}"
        )
    for n in result.notes:
        con.print(f"[yellow]note:[/yellow] {n}")
    con.print(f"wrote {out_dir / 'audit.json'} and CSV tables in {out_dir}")


@click.command("audit")
@click.option(
    "--classifier",
    "classifier",
    metavar="SPEC",
    help="Model directory saved by harmscope, detoxify:CHECKPOINT, ...",
)
@click.option(
    "--scores-col", metavar="COL", help="Audit precomputed scores from this column of --data instead."
)
@click.option(
    "--data", "data_spec", required=True, metavar="FILE", help="CSV/JSONL/Parquet file or dataset name."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "jsonl", "parquet"]),
    help="File format (default: extension).",
)
@click.option("--text-col", default="text", show_default=True)
@click.option(
    "--label-col", default=None, help="Label column, values in [0,1] (default: target/toxicity/label)."
)
@click.option("--group-cols", default=None, help="Comma-separated identity columns (values in [0,1]).")
@click.option(
    "--threshold", default=None, type=FiniteFloat(0.0, 1.0),
    help="Decision threshold for FPR/FNR/DP/EO (default: the classifier's calibrated threshold, else 0.5)."
)
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--min-size", default=30, show_default=True, type=click.IntRange(1), help="Smallest group that is scored."
)
@click.option(
    "--counterfactual/--no-counterfactual",
    default=True,
    show_default=True,
    help="Identity-swap test (needs --classifier).",
)
@click.option(
    "--counterfactual-file",
    type=click.Path(dir_okay=False),
    help="Sentences to swap (default: built-in templates).",
)
@click.option(
    "--lexicon", type=click.Path(dir_okay=False), help="Identity lexicon YAML (default: the probe lexicon)."
)
@click.option(
    "--functional", "functional_file", type=click.Path(dir_okay=False), help="HateCheck-style suite CSV."
)
@click.option(
    "--functional-cols",
    default="test_case,label_gold,functionality,target_ident",
    show_default=True,
    help="Suite columns: text,gold,functionality[,target].",
)
@click.option(
    "--intersections",
    default=None,
    help="Axis pairs, e.g. 'race:gender,religion:gender' (default: all pairs).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="AUDIT_DIR")
@engine_option
def audit(
    classifier: str | None,
    scores_col: str | None,
    data_spec: str,
    fmt: str | None,
    text_col: str,
    label_col: str | None,
    group_cols: str | None,
    threshold: float,
    n_boot: int,
    seed: int,
    min_size: int,
    counterfactual: bool,
    counterfactual_file: str | None,
    lexicon: str | None,
    functional_file: str | None,
    functional_cols: str,
    intersections: str | None,
    out_dir: str,
) -> None:
    """Audit a toxicity classifier for identity bias: subgroup/BPSN/BNSP AUC with bootstrap CIs,
    fairlearn group metrics, intersections, counterfactual identity swaps, functional suites.

    \b
    Example:
      harmscope audit --scores-col score --data scored.csv --group-cols female,male,muslim --out audit/
      harmscope audit --classifier models/tfidf --data templates --out audit/
    """
    from harmscope.fairness.audit import audit as run_audit
    from harmscope.fairness.audit import write_audit
    from harmscope.fairness.settings import BiasSettings

    if bool(classifier) == bool(scores_col):
        raise InputError("give exactly one of --classifier SPEC or --scores-col COL")
    from harmscope.safeio import check_output_dir

    check_output_dir(out_dir, "--out")  # before any work
    gcols = [c.strip() for c in group_cols.split(",") if c.strip()] if group_cols else None
    df, scores = load_audit_data(
        data_spec, fmt=fmt, text_col=text_col, label_col=label_col, group_cols=gcols, scores_col=scores_col
    )
    pairs = None
    if intersections:
        pairs = []
        for item in intersections.split(","):
            parts = [p.strip() for p in item.split(":")]
            if len(parts) != 2 or not all(parts):
                raise InputError(f"--intersections: {item!r} is not AXIS:AXIS")
            pairs.append((parts[0], parts[1]))
    suite = None
    if functional_file:
        from harmscope.fairness.functional import read_suite

        cols = [c.strip() for c in functional_cols.split(",")]
        if len(cols) not in (3, 4):
            raise InputError("--functional-cols: give text,gold,functionality[,target]")
        suite = read_suite(
            functional_file,
            text_col=cols[0],
            label_col=cols[1],
            functionality_col=cols[2],
            target_col=cols[3] if len(cols) == 4 else None,
        )
    sentences = None
    if counterfactual_file:
        from harmscope.fairness.counterfactual import read_sentences

        sentences = read_sentences(counterfactual_file, text_col=text_col)
    threshold = resolve_threshold(threshold, classifier)
    result = run_audit(
        classifier if classifier else scores,
        df,
        BiasSettings(threshold=threshold, n_boot=n_boot, seed=seed, min_size=min_size),
        group_cols=df.attrs.get("group_cols"),
        text_col="text",
        label_col=audit_label_col(data_spec, df),
        intersections=pairs,
        counterfactual=counterfactual,
        counterfactual_sentences=sentences,
        lexicon=lexicon,
        functional=suite,
        data_name=str(df.attrs.get("source", data_spec)),
    )
    out = Path(out_dir)
    write_audit(result, out)
    if result.tables.get("jigsaw"):
        from harmscope.fairness.audit import plot_bias_aucs

        plot_bias_aucs(result, out / "bias_aucs.png")
    print_summary(result, out)
