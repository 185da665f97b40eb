"""Model adapters: one interface for every model under test.

``load_model(spec)`` builds an adapter from ``PREFIX:rest`` (``openai:MODEL@URL``, ``hf:PATH``,
``local:smollm2``, ``replay:FILE``, ``python:pkg.mod:fn``, ``baseline:refuse``/``baseline:echo``,
or any prefix a plugin registers in :data:`MODELS`) or a YAML file. The ``hf`` and ``local``
adapters are registered lazily: their module (and torch, transformers) load only when used.
"""

from typing import Any

from harmscope.models.base import MODELS, GenParams, ModelAdapter, ModelCallError, split_reasoning
from harmscope.models.openai import OpenAIAdapter
from harmscope.models.simple import BaselineAdapter, PythonAdapter, ReplayAdapter
from harmscope.models.spec import SPEC_HELP, load_model

MODELS.register_lazy("hf", "harmscope.models.hf:HFAdapter", version="1",
                     description="local transformers causal LM (model folder or GGUF file)",
                     local=True)
MODELS.register_lazy("local", "harmscope.models.hf:LocalAdapter", version="1",
                     description="a small model shipped with an extra, run locally (local:smollm2)",
                     local=True)

_LAZY = {"HFAdapter": "HFAdapter", "LocalAdapter": "LocalAdapter", "smollm2_gguf": "smollm2_gguf"}


def __getattr__(name: str) -> Any:
    """``HFAdapter``, ``LocalAdapter`` and ``smollm2_gguf`` load ``harmscope.models.hf`` on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module("harmscope.models.hf"), _LAZY[name])
    raise AttributeError(f"module 'harmscope.models' has no attribute {name!r}")


__all__ = [
    "MODELS",
    "SPEC_HELP",
    "BaselineAdapter",
    "GenParams",
    "HFAdapter",
    "LocalAdapter",
    "ModelAdapter",
    "ModelCallError",
    "OpenAIAdapter",
    "PythonAdapter",
    "ReplayAdapter",
    "load_model",
    "smollm2_gguf",
    "split_reasoning",
]
