"""Export fitted classifiers: Detoxify-compatible checkpoints and model cards.

``export_detoxify(model, out_dir)`` writes ``out_dir/checkpoint.ckpt`` and ``out_dir/config/``
(Hugging Face config with the right ``num_labels`` and a tokenizer whose ``model_max_length`` is
the training ``max_length``) so that::

    detoxify.Detoxify(checkpoint="out/checkpoint.ckpt", huggingface_config_path="out/config")

loads and predicts offline. The checkpoint stores the absolute config folder as ``model_type``,
a concrete ``model_name`` and the class names, exactly what ``detoxify.load_checkpoint`` reads.
Linear models are saved without pickle by their own ``save`` (JSON + ``.npy``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harmscope.classifiers.backends.base import CARD, versions
from harmscope.classifiers.backends.finetune import FinetuneClassifier
from harmscope.errors import HarmscopeError


def export_detoxify(model: FinetuneClassifier, out_dir: str | Path, *,
                    card: dict[str, Any] | None = None) -> Path:
    """Write a Detoxify checkpoint for a fitted :class:`FinetuneClassifier`; returns its path."""
    import torch

    if not isinstance(model, FinetuneClassifier) or not hasattr(model, "model_"):
        raise HarmscopeError("only a fitted finetune classifier can be exported to Detoxify")
    out = Path(out_dir).resolve()
    cfg_dir = out / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    hf = model.model_
    hf.config.save_pretrained(cfg_dir)
    tok = model.tokenizer_
    tok.model_max_length = model.max_length  # Detoxify truncates at model_max_length
    tok.save_pretrained(cfg_dir)
    arch = {"model_type": str(cfg_dir), "model_name": type(hf).__name__,
            "tokenizer_name": type(tok).__name__, "num_classes": len(model.class_names)}
    state = {k: v.detach().cpu().clone() for k, v in hf.state_dict().items()}
    ckpt = {"config": {"name": "harmscope-finetune", "arch": {"type": "harmscope", "args": arch},
                       "dataset": {"type": "harmscope", "args": {"classes": list(model.class_names)}}},
            "state_dict": state}
    path = out / "checkpoint.ckpt"
    torch.save(ckpt, path)
    info = {"backend": "detoxify-export", "checkpoint": "checkpoint.ckpt", "config": "config",
            "classes": list(model.class_names), "source_backend": "finetune",
            "params": model.get_params(), "versions": versions()}
    info.update(getattr(model, "card_", {}) or {})
    info.update(card or {})
    (out / CARD).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return path


def model_card(*, backend: str, strategy: str | None, data: dict[str, Any], seed: int,
               metrics: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.json`` fields that describe how a model was made."""
    return {"backend": backend, "strategy": strategy, "data": data, "seed": seed,
            "metrics": metrics or {}, "train_params": params or {}, "versions": versions()}
