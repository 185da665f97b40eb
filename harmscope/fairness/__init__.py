"""harmscope.fairness: bias metrics by identity group and classifier audits.

Public API: :func:`bias_metrics` (Borkan et al. 2019 metrics with bootstrap CIs),
:func:`violation_disparity` (violation rates by group), :func:`audit` (full classifier audit);
:class:`BiasSettings` carries thresholds, bootstrap size and seed once for all of them.
fairlearn and the classifiers are imported lazily inside the functions that need them.
"""

from __future__ import annotations

from harmscope.fairness.audit import audit, write_audit
from harmscope.fairness.bootstrap import bootstrap_chunks, resample_counts
from harmscope.fairness.disparity import violation_disparity
from harmscope.fairness.jigsaw import BiasReport, bias_chunk, bias_metrics, power_mean, prepare_bias, rank_auc
from harmscope.fairness.settings import BiasSettings

__all__ = [
    "BiasReport",
    "BiasSettings",
    "bias_chunk",
    "bias_metrics",
    "bootstrap_chunks",
    "power_mean",
    "prepare_bias",
    "rank_auc",
    "resample_counts",
    "violation_disparity",
    "audit",
    "write_audit",
]
