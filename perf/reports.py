"""Report generation time for a 10,000-reply run (target: under 10 s for PDF+HTML+JSON+MD).

Usage: python perf/reports.py [--n 10000]. Builds a synthetic 10,000-reply run with the same
builder as perf/judges.py, scores it with the fast judges (pattern, awareness) so the timing is
about rendering, then times ``render_run`` for all four formats and a three-run comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from judges import build_run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    from harmscope.benchmarks.runs.store import Store
    from harmscope.benchmarks.scoring.judging import score_run
    from harmscope.reports import render_comparison, render_run

    with tempfile.TemporaryDirectory() as tmp:
        run_id = build_run(Path(tmp) / "s.sqlite", args.n)
        store = Store(Path(tmp) / "s.sqlite")
        t0 = time.perf_counter()
        result = score_run(store, run_id, "pattern,awareness")
        print(f"score with pattern+awareness: {time.perf_counter() - t0:.1f} s for {args.n} replies")
        for fmt in ("pdf", "html", "json", "md"):
            t0 = time.perf_counter()
            render_run(result, Path(tmp) / "out", fmt)
            print(f"render {fmt:<4}: {time.perf_counter() - t0:6.2f} s")
        t0 = time.perf_counter()
        render_run(result, Path(tmp) / "all")
        total = time.perf_counter() - t0
        print(f"render all four formats: {total:.2f} s (target < 10 s: {'met' if total < 10 else 'NOT met'})")
        t0 = time.perf_counter()
        render_comparison([result, result, result], Path(tmp) / "cmp")
        print(f"three-run comparison, all formats: {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
