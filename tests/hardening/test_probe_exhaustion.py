"""Bad input: ``probes generate --per-rule 100000000`` stops when the combinations run out."""

from __future__ import annotations

import time

from harmscope.benchmarks.probes.generate import generate
from harmscope.rules import load_catalog


def test_huge_per_rule_stops_when_combinations_run_out():
    cat = load_catalog()
    rule = next(iter(cat.rules))
    t0 = time.monotonic()
    ps = generate(cat, rules=[rule], per_rule=100_000_000, transforms=[], benign_ratio=0.0, framing_pairs=0,
                  hint_pairs=0, escalations=0, seed=0)
    took = time.monotonic() - t0
    c = ps.manifest.counts
    assert took < 30  # was: ~4e8 tries per rule (75 minutes for the smoke preset)
    assert 0 < c["standard"] < 100_000_000
    assert c["shortfall_standard"] == 100_000_000 - c["standard"] > 0
