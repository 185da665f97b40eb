"""Export a run's tables (probes, replies, judgments) from the store to Parquet or CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harmscope.errors import HarmscopeError


def run_frames(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """``probes``, ``replies`` and ``judgments`` of a run as DataFrames (nested fields as JSON)."""
    from harmscope.benchmarks.runs.store import open_run

    store, run_id = open_run(run_dir)

    def frame(objs: list) -> pd.DataFrame:
        rows = []
        for o in objs:
            d = o.model_dump(mode="json")
            rows.append({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                         for k, v in d.items()})
        return pd.DataFrame.from_records(rows)

    return {"probes": frame(store.probes(run_id)), "replies": frame(store.replies(run_id)),
            "judgments": frame(store.judgments(run_id))}


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, fmt: str = "parquet") -> dict[str, Path]:
    out = Path(out_dir) if out_dir else Path(run_dir) / "export"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarmscopeError(f"{out}: cannot create output folder ({exc.strerror})") from None
    written = {}
    for name, df in run_frames(run_dir).items():
        path = out / f"{name}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
        written[name] = path
    return written
