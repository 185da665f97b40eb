"""Judges: turn (probe, reply, rule) into Judgments. See docs/judges.md.

Importing this package registers the built-in judges (``refusal``, ``harm``, ``rule``, ``pattern``,
``toxicity``, ``llm``, ``awareness``) in :data:`JUDGES`; none of them imports torch until used.
"""

import harmscope.classifiers.judges.guards  # noqa: F401  (guard-model judges)
from harmscope.classifiers.judges import awareness, harm, llm, pattern, refusal, rule_model, toxicity  # noqa: F401
from harmscope.classifiers.judges.base import JUDGES, REPLY_RULE, Judge, JudgeItem
from harmscope.classifiers.judges.ensemble import (
           DEFAULT_SPEC,
           JudgeSet,
           combine,
           decide,
           load_judge,
           parse_spec,
)

__all__ = ["DEFAULT_SPEC", "JUDGES", "REPLY_RULE", "Judge", "JudgeItem", "JudgeSet", "combine", "decide",
           "load_judge", "parse_spec"]
