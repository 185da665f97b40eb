"""harmscope: benchmark language models for harm and audit toxicity classifiers for bias.

The core (rules, probes, scoring, fairness, linear classifiers, reports) imports without torch
or transformers; neural parts import lazily.
"""

from harmscope.types import (
    AuditResult,
    Judgment,
    Message,
    Probe,
    ProbeSet,
    Response,
    Rule,
    RunManifest,
    RunResult,
)

__version__ = "0.1.0"

__all__ = [
    "AuditResult",
    "Judgment",
    "Message",
    "Probe",
    "ProbeSet",
    "Response",
    "Rule",
    "RunManifest",
    "RunResult",
    "__version__",
]
