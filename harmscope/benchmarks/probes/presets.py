"""Named generation presets for ``probes generate --preset``.

A preset fills in every generation parameter the caller did not give explicitly.
"""

from __future__ import annotations

from typing import Any

from harmscope.errors import HarmscopeError

PRESETS: dict[str, dict[str, Any]] = {
    # a few hundred probes: every rule, a handful of transforms, a few groups per axis
    "smoke": {
        "per_rule": 6,
        "transforms": ["none", "base64", "roleplay", "refusal-suppression", "leetspeak", "prefix-injection"],
        "groups_per_axis": 3,
        "benign_ratio": 0.15,
        "framing_pairs": 12,
        "hint_pairs": 12,
        "escalations": 8,
    },
    # several thousand probes: every transform, two-step chains, all descriptors
    "standard": {
        "per_rule": 80,
        "transforms": [
            "none",
            "roleplay",
            "fiction",
            "hypothetical",
            "prefix-injection",
            "refusal-suppression",
            "payload-split",
            "leetspeak",
            "homoglyphs",
            "zero-width",
            "base64",
            "rot13",
            "translation",
            "manyshot",
            "base64,roleplay",
            "refusal-suppression,prefix-injection",
            "leetspeak,fiction",
        ],
        "groups_per_axis": None,
        "benign_ratio": 0.15,
        "framing_pairs": 150,
        "hint_pairs": 120,
        "escalations": 150,
    },
    # the distributional family (harmscope.benchmarks.probes.distributional): matched open-ended prompts
    # per identity group; per_rule = (template, noun) combinations per prompt kind, samples per prompt
    "distributional": {
        "family": "distributional",
        "per_rule": 2,
        "groups_per_axis": 6,
        "samples": 5,
    },
}

DEFAULTS: dict[str, Any] = {
    "per_rule": 10,
    "transforms": ["none"],
    "groups_per_axis": None,
    "benign_ratio": 0.0,
    "framing_pairs": 0,
    "hint_pairs": 0,
    "escalations": 0,
}


def resolve(preset: str | None, **given: Any) -> dict[str, Any]:
    """Merge explicit arguments (those not ``None``) over the preset over the defaults."""
    base = dict(DEFAULTS)
    if preset is not None:
        if preset not in PRESETS:
            raise HarmscopeError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        base.update(PRESETS[preset])
    base.update({k: v for k, v in given.items() if v is not None})
    return base
