"""Unintended-bias metrics of Borkan et al. (2019) with chunked bootstrap confidence intervals.

For each identity subgroup ``g`` (rows whose identity value exceeds ``group_threshold``) and the
background (every other row):

* subgroup AUC: AUC on the subgroup's rows only;
* BPSN AUC (background positive, subgroup negative): low values mean non-toxic text about the group
  scores above toxic text elsewhere -> false positives against the group;
* BNSP AUC (background negative, subgroup positive): low values mean toxic text about the group
  scores below non-toxic text elsewhere -> missed toxicity about the group;
* positive / negative average equality gap (AEG): ``0.5 - U / (n_a n_b)`` where ``U`` is the
  Mann-Whitney count of (subgroup, background) pairs with the subgroup example scoring higher
  (ties count 1/2), within the toxic (positive AEG) or the non-toxic (negative AEG) examples.
  0 means equal score distributions; negative means the subgroup scores higher.

Final score = 0.25 overall AUC + 0.25 x (power mean, p = -5, of each of the three AUC families).

Every AUC is a weighted Mann-Whitney count computed from one global sort: for each row the
weight of positives (negatives) with a lower score, plus half the tied weight, is a cumulative
sum over the sorted scores; each subgroup figure is then a weighted sum over that group's rows
only. Bootstrap resamples enter as row weights (draw counts; rows are resampled in score-sorted
order), so all resamples of a chunk are evaluated together; ties are handled exactly as in
``sklearn.metrics.roc_auc_score``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from harmscope.fairness.bootstrap import BootChunk, basic_ci, percentile_ci, resample_counts
from harmscope.fairness.settings import DEFAULT_MIN_SIZE, POWER, BiasSettings
from harmscope.fairness.validate import as_labels, as_membership, as_scores

__all__ = ["DEFAULT_MIN_SIZE", "POWER", "BiasData", "BiasReport", "BiasSettings", "bias_chunk", "bias_metrics",
           "intersection_columns", "power_mean", "prepare_bias", "rank_auc"]
AUC_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
GAP_METRICS = ("aeg_pos", "aeg_neg")
RATE_METRICS = ("selection_rate", "fpr", "fnr")


# ------------------------------------------------------------------ plain helpers
def rank_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC from average ranks (Mann-Whitney); NaN when only one class is present."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=float)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    ends = np.r_[starts[1:], ss.size]
    avg_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each tie block
    ranks = np.empty(s.size)
    ranks[order] = np.repeat(avg_rank, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def power_mean(values: Sequence[float] | np.ndarray, p: float = POWER, axis: int = -1) -> np.ndarray | float:
    """Generalized mean ``(mean(v ** p)) ** (1 / p)``, ignoring NaN entries."""
    v = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = np.nanmean(np.power(v, p), axis=axis) ** (1.0 / p)
    return float(out) if np.ndim(out) == 0 else out


def intersection_columns(
    groups: pd.DataFrame, pairs: Sequence[tuple[str, str]], sep: str = " & "
) -> pd.DataFrame:
    """Identity columns for intersections: the row-wise minimum of each pair of columns."""
    cols = {f"{a}{sep}{b}": np.fmin(groups[a].astype(float), groups[b].astype(float)) for a, b in pairs}
    return pd.DataFrame(cols, index=groups.index)


# ------------------------------------------------------------------ prepared data
@dataclass
class BiasData:
    """Inputs of the metrics in score order, ready for :func:`bias_chunk` (picklable)."""

    names: list[str]
    score: np.ndarray  # sorted scores
    order: np.ndarray  # original row index of each sorted position
    pos: np.ndarray  # float 0/1, sorted
    member: np.ndarray  # (n, G) bool, sorted
    starts: np.ndarray  # start of each tie block in the sorted scores
    inv: np.ndarray  # tie block of each sorted row
    group_rows: list[np.ndarray]  # sorted positions of each group's rows
    group_starts: list[np.ndarray]
    group_inv: list[np.ndarray]
    pred: np.ndarray | None = None  # float 0/1 decisions at the threshold, sorted

    @property
    def n(self) -> int:
        return int(self.score.size)


def _ties(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    new = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]] if sorted_scores.size else np.zeros(0, bool)
    starts = np.flatnonzero(new)
    inv = np.cumsum(new) - 1
    return starts, inv


def prepare_bias(
    y_true: Any,
    y_score: Any,
    groups: pd.DataFrame,
    settings: BiasSettings | None = None,
    *,
    source: str = "data",
    **overrides: Any,
) -> BiasData:
    """Validate inputs and sort them by score once (thresholds from ``settings`` / ``overrides``)."""
    cfg = BiasSettings.of(settings, **overrides)
    y = as_labels(y_true, source=source)
    s = as_scores(y_score, y.size, source=source)
    names, member = as_membership(groups, y.size, threshold=cfg.group_threshold, source=source)
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    starts, inv = _ties(ss)
    mem = member[order]
    rows, gstarts, ginv = [], [], []
    for j in range(mem.shape[1]):
        r = np.flatnonzero(mem[:, j])
        st, iv = _ties(ss[r])
        rows.append(r)
        gstarts.append(st)
        ginv.append(iv)
    pred = None if cfg.threshold is None else (ss >= cfg.threshold).astype(np.float64)
    return BiasData(
        names=names,
        score=ss,
        order=order,
        pos=(y[order] >= cfg.label_threshold).astype(np.float64),
        member=mem,
        starts=starts,
        inv=inv,
        group_rows=rows,
        group_starts=gstarts,
        group_inv=ginv,
        pred=pred,
    )


def _below(w: np.ndarray, starts: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Per row: total weight ``w`` of rows with a lower score plus half the weight of tied rows."""
    if starts.size == w.shape[1]:  # no ties
        cum = np.cumsum(w, axis=1)
        cum -= 0.5 * w
        return cum
    block = np.add.reduceat(w, starts, axis=1)
    cum = np.cumsum(block, axis=1)
    cum -= 0.5 * block
    return cum[:, inv]


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of two ``(B, k)`` arrays without a temporary."""
    return np.einsum("ij,ij->i", a, b)


def _stats(data: BiasData, W: np.ndarray) -> dict[str, np.ndarray]:
    """All figures for weight rows ``W`` (shape ``(B, n)``, sorted order): arrays ``(B, G)`` / ``(B,)``.

    Full-length work is two cumulative sums (weights of positives / negatives below each row);
    everything per group only touches that group's rows.
    """
    pos = data.pos
    Wp = W * pos
    Wn = W - Wp
    Pb = _below(Wp, data.starts, data.inv)
    Nb = _below(Wn, data.starts, data.inv)
    W_pos = Wp.sum(1)
    W_neg = Wn.sum(1)
    overall_num = _rowdot(Wp, Nb)
    B, G = W.shape[0], len(data.group_rows)
    names = ["Wsp", "Wsn", "S_posNb", "S_negPb", "S_posPb", "S_negNb", "U_sg"]
    if data.pred is not None:
        names += ["Wg", "sel", "fp", "fn"]
    acc = {k: np.zeros((B, G)) for k in names}
    for j, rows in enumerate(data.group_rows):
        if rows.size == 0:
            continue
        Wg = W[:, rows]
        pg = pos[rows]
        Wpg = Wg * pg
        Wng = Wg - Wpg
        Pbg, Nbg = Pb[:, rows], Nb[:, rows]
        acc["Wsp"][:, j] = Wpg.sum(1)
        acc["Wsn"][:, j] = Wng.sum(1)
        acc["S_posNb"][:, j] = _rowdot(Wpg, Nbg)
        acc["S_negPb"][:, j] = _rowdot(Wng, Pbg)
        acc["S_posPb"][:, j] = _rowdot(Wpg, Pbg)
        acc["S_negNb"][:, j] = _rowdot(Wng, Nbg)
        acc["U_sg"][:, j] = _rowdot(Wpg, _below(Wng, data.group_starts[j], data.group_inv[j]))
        if data.pred is not None:
            dg = data.pred[rows]
            acc["Wg"][:, j] = Wg.sum(1)
            acc["sel"][:, j] = Wg @ dg
            acc["fp"][:, j] = Wng @ dg
            acc["fn"][:, j] = Wpg @ (1.0 - dg)
    Wsp, Wsn, U_sg = acc["Wsp"], acc["Wsn"], acc["U_sg"]
    Wpos, Wneg = W_pos[:, None], W_neg[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "overall_auc": overall_num / (W_pos * W_neg),
            "subgroup_auc": U_sg / (Wsp * Wsn),
            "bpsn_auc": (Wsn * Wpos - acc["S_negPb"] - U_sg) / ((Wpos - Wsp) * Wsn),
            "bnsp_auc": (acc["S_posNb"] - U_sg) / (Wsp * (Wneg - Wsn)),
            "aeg_pos": 0.5 - (acc["S_posPb"] - 0.5 * Wsp**2) / (Wsp * (Wpos - Wsp)),
            "aeg_neg": 0.5 - (acc["S_negNb"] - 0.5 * Wsn**2) / (Wsn * (Wneg - Wsn)),
        }
        if data.pred is not None:
            out["selection_rate"] = acc["sel"] / acc["Wg"]
            out["fpr"] = acc["fp"] / Wsn
            out["fnr"] = acc["fn"] / Wsp
    # exact zero denominators give inf/nan; make every undefined figure NaN
    for v in out.values():
        v[~np.isfinite(v)] = np.nan
    return out


def bias_chunk(data: BiasData, chunk: BootChunk) -> dict[str, np.ndarray]:
    """Bootstrap figures for one chunk of resamples (the unit of work a parallel engine maps)."""
    return _stats(data, resample_counts(data.n, chunk))


def _serial_map(fn: Callable[[BootChunk], dict[str, np.ndarray]], chunks: list[BootChunk]) -> list[dict]:
    return [fn(c) for c in chunks]


# ------------------------------------------------------------------ report
@dataclass
class BiasReport:
    """Result of :func:`bias_metrics`."""

    per_group: pd.DataFrame
    overall: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    boot: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def worst(self, metric: str = "bpsn_auc", k: int = 3) -> pd.DataFrame:
        """The ``k`` scored groups with the lowest ``metric``."""
        df = self.per_group.dropna(subset=[metric])
        return df.nsmallest(k, metric)


def _reasons(n_sp: int, n_sn: int, n_bp: int, n_bn: int) -> dict[str, str | None]:
    def r(parts: list[tuple[bool, str]]) -> str | None:
        missing = [msg for bad, msg in parts if bad]
        return "; ".join(missing) if missing else None

    return {
        "subgroup_auc": r(
            [(n_sp == 0, "no toxic rows in subgroup"), (n_sn == 0, "no non-toxic rows in subgroup")]
        ),
        "bpsn_auc": r(
            [(n_sn == 0, "no non-toxic rows in subgroup"), (n_bp == 0, "no toxic rows in background")]
        ),
        "bnsp_auc": r(
            [(n_sp == 0, "no toxic rows in subgroup"), (n_bn == 0, "no non-toxic rows in background")]
        ),
        "aeg_pos": r([(n_sp == 0, "no toxic rows in subgroup"), (n_bp == 0, "no toxic rows in background")]),
        "aeg_neg": r(
            [(n_sn == 0, "no non-toxic rows in subgroup"), (n_bn == 0, "no non-toxic rows in background")]
        ),
        "selection_rate": None,
        "fpr": r([(n_sn == 0, "no non-toxic rows in subgroup")]),
        "fnr": r([(n_sp == 0, "no toxic rows in subgroup")]),
    }


def _range(x: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Max minus min over the selected group columns, per row; NaN if fewer than two defined."""
    sub = x[:, cols]
    ok = np.isfinite(sub).sum(1) >= 2
    out = np.full(sub.shape[0], np.nan)
    if ok.any():
        out[ok] = np.nanmax(sub[ok], axis=1) - np.nanmin(sub[ok], axis=1)
    return out


def bias_metrics(
    y_true: Any,
    y_score: Any,
    groups: pd.DataFrame,
    settings: BiasSettings | None = None,
    *,
    map_chunks: Callable[[Callable, list[BootChunk]], list[dict]] | None = None,
    source: str = "data",
    **overrides: Any,
) -> BiasReport:
    """Subgroup / BPSN / BNSP AUC, AEGs and the final bias score with bootstrap CIs.

    ``y_true``: labels or toxicity fractions in [0, 1] (positive at ``>= label_threshold``).
    ``groups``: one column per identity, values in [0, 1] (member at ``> group_threshold``).
    ``settings`` (a :class:`BiasSettings`; ``overrides`` replace single fields by name) carries the
    thresholds, bootstrap size and seed. Groups with fewer than ``min_size`` rows are listed with
    their n and a skip reason. With a decision ``threshold`` the per-group selection rate, FPR and
    FNR at that threshold and the demographic-parity / equalized-odds differences are added.
    ``map_chunks(fn, chunks)`` may run the bootstrap chunks elsewhere (e.g. on Dask workers);
    the result is identical to the serial run for the same ``seed`` and ``chunk_size``.
    """
    cfg = BiasSettings.of(settings, **overrides)
    label_threshold, n_boot, min_size, threshold = cfg.label_threshold, cfg.n_boot, cfg.min_size, cfg.threshold
    level, power = cfg.level, cfg.power
    data = prepare_bias(y_true, y_score, groups, cfg, source=source)
    point = _stats(data, np.ones((1, data.n)))
    chunks = cfg.chunks()
    mapper = map_chunks or _serial_map
    parts = mapper(partial(bias_chunk, data), chunks) if chunks else []  # picklable for process workers
    keys = list(point)
    boot = {k: np.concatenate([p[k] for p in parts], axis=0) if parts else point[k][:0] for k in keys}

    G = len(data.names)
    pos, M = data.pos, data.member
    n_g = M.sum(0)
    n_sp = (M & (pos[:, None] > 0)).sum(0)
    n_sn = n_g - n_sp
    N_pos = int(pos.sum())
    N_neg = data.n - N_pos
    metrics = list(AUC_METRICS + GAP_METRICS) + (list(RATE_METRICS) if threshold is not None else [])
    rows: list[dict[str, Any]] = []
    scored = np.zeros(G, dtype=bool)
    for j, name in enumerate(data.names):
        row: dict[str, Any] = {
            "subgroup": name,
            "n": int(n_g[j]),
            "n_pos": int(n_sp[j]),
            "n_neg": int(n_sn[j]),
        }
        reasons: list[str] = []
        if n_g[j] < min_size:
            for m in metrics:
                row[m] = row[m + "_lo"] = row[m + "_hi"] = np.nan
            reasons.append(f"skipped: n={int(n_g[j])} below min_size={min_size}")
        else:
            scored[j] = True
            why = _reasons(int(n_sp[j]), int(n_sn[j]), N_pos - int(n_sp[j]), N_neg - int(n_sn[j]))
            for m in metrics:
                lo, hi = percentile_ci(boot[m][:, j], level)
                row[m] = float(point[m][0, j])
                row[m + "_lo"], row[m + "_hi"] = float(lo), float(hi)
                if why[m]:
                    row[m] = row[m + "_lo"] = row[m + "_hi"] = np.nan
                    reasons.append(f"{m} undefined: {why[m]}")
        row["reason"] = "; ".join(reasons) if reasons else None
        row["skipped"] = not scored[j]
        rows.append(row)
    per_group = pd.DataFrame(rows)
    notes: list[str] = []
    if N_pos == 0 or N_neg == 0:
        cls = "toxic" if N_neg == 0 else "non-toxic"
        notes.append(
            f"every row is {cls} (label threshold {label_threshold}): AUC-based metrics are undefined"
        )
    skipped = [r["subgroup"] for r in rows if r["skipped"]]
    if skipped:
        notes.append(f"{len(skipped)} group(s) below min_size={min_size} skipped: {', '.join(skipped)}")

    overall: dict[str, Any] = {
        "n": data.n,
        "n_pos": N_pos,
        "n_neg": N_neg,
        "n_groups_scored": int(scored.sum()),
    }

    def put(name: str, value: float, draws: np.ndarray, gap: bool = False) -> None:
        lo, hi = basic_ci(value, draws, level) if gap else percentile_ci(draws, level)
        overall[name] = None if not np.isfinite(value) else float(value)
        overall[name + "_lo"] = None if not np.isfinite(lo) else float(lo)
        overall[name + "_hi"] = None if not np.isfinite(hi) else float(hi)

    put("overall_auc", float(point["overall_auc"][0]), boot["overall_auc"])
    cols = np.flatnonzero(scored)
    pms_point, pms_boot = [], []
    for m in AUC_METRICS:
        defined = cols[np.isfinite(per_group[m].to_numpy()[cols])]
        pv = power_mean(point[m][0, defined], power) if defined.size else float("nan")
        pb = power_mean(boot[m][:, defined], power, axis=1) if defined.size else np.full(n_boot, np.nan)
        put(f"power_mean_{m}", pv, pb)
        pms_point.append(pv)
        pms_boot.append(pb)
    fs_point = 0.25 * float(point["overall_auc"][0]) + 0.25 * sum(pms_point)
    fs_boot = 0.25 * boot["overall_auc"] + 0.25 * sum(pms_boot) if n_boot else np.zeros(0)
    put("final_score", fs_point, fs_boot)
    if not np.isfinite(fs_point):
        notes.append("final_score undefined: no scored group has all three AUCs defined")
    put(
        "subgroup_auc_difference",
        float(_range(point["subgroup_auc"], cols)[0]),
        _range(boot["subgroup_auc"], cols),
    )
    if threshold is not None:
        put(
            "dp_difference",
            float(_range(point["selection_rate"], cols)[0]),
            _range(boot["selection_rate"], cols),
        )
        eo_p = np.fmax(_range(point["fpr"], cols), _range(point["fnr"], cols))
        eo_b = np.fmax(_range(boot["fpr"], cols), _range(boot["fnr"], cols))
        put("eo_difference", float(eo_p[0]), eo_b, True)
    return BiasReport(per_group=per_group, overall=overall, params=cfg.params(), notes=notes, boot=boot)
