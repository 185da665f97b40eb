"""Model adapters: one interface for every model under test.

``load_model(spec)`` builds an adapter from ``openai:MODEL@URL``, ``hf:PATH``, ``local:smollm2``,
``replay:FILE``, ``python:pkg.mod:fn``, ``baseline:refuse``/``baseline:echo`` or a YAML file.
torch and transformers are imported only when an ``hf`` model is used.
"""

from harmscope.models.base import MODELS, GenParams, ModelAdapter, ModelCallError, split_reasoning
from harmscope.models.hf import HFAdapter, smollm2_gguf
from harmscope.models.openai import OpenAIAdapter
from harmscope.models.simple import BaselineAdapter, PythonAdapter, ReplayAdapter
from harmscope.models.spec import SPEC_HELP, load_model

__all__ = [
    "MODELS",
    "SPEC_HELP",
    "BaselineAdapter",
    "GenParams",
    "HFAdapter",
    "ModelAdapter",
    "ModelCallError",
    "OpenAIAdapter",
    "PythonAdapter",
    "ReplayAdapter",
    "load_model",
    "smollm2_gguf",
    "split_reasoning",
]
