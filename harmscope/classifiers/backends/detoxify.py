"""The ``detoxify`` backend: scores from a Detoxify checkpoint the user names (inference only;
torch, transformers and detoxify are imported on first use)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope._torch import configure_threads
from harmscope.classifiers.backends.base import BACKENDS, BaseBackend, construct, texts_of, torch_load_checked
from harmscope.errors import HarmscopeError, InputError


@BACKENDS.register
class DetoxifyClassifier(BaseBackend):
    """Scores from a Detoxify checkpoint file (inference only).

    Checkpoints are read with ``torch.load(weights_only=True)`` (tensors and plain containers,
    no code); a checkpoint that needs full unpickling is refused unless the user passed
    ``--trust-checkpoint FILE`` for that very file. ``config_path`` is a local folder with the
    Hugging Face config (with the right ``num_labels``) and tokenizer; without it the checkpoint's
    ``model_type`` must itself be an absolute local folder. Nothing is downloaded.
    """

    name = "detoxify"
    version = "1"
    description = "a Detoxify checkpoint named explicitly by the user"

    def __init__(self, *, checkpoint: str | None = None, config_path: str | None = None,
                 class_name: str = "toxicity", device: str | None = None, batch_size: int = 64,
                 max_length: int | None = None):
        self.checkpoint = checkpoint
        self.config_path = config_path
        self.class_name = class_name
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DetoxifyClassifier:
        raise HarmscopeError("the detoxify backend only scores: train with tfidf, embed or finetune")

    partial_fit = fit

    def _load(self) -> None:
        if getattr(self, "model_", None) is not None:
            return
        import torch

        configure_threads()
        if not self.checkpoint:
            raise HarmscopeError("detoxify backend: name a checkpoint file, e.g. detoxify:/path/model.ckpt")
        ckpt = Path(self.checkpoint).expanduser()
        if not ckpt.is_file():
            raise InputError(f"{ckpt}: Detoxify checkpoint not found")
        loaded = torch_load_checked(ckpt)  # weights only, unless the user trusted this very file
        import transformers
        try:
            arch = dict(loaded["config"]["arch"]["args"])
            classes = list(loaded["config"]["dataset"]["args"]["classes"])
            state = loaded["state_dict"]
        except (KeyError, TypeError):
            raise InputError(f"{ckpt}: not a Detoxify checkpoint (needs config.arch.args, "
                             "config.dataset.args.classes and state_dict)") from None
        rename = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}
        classes = [rename.get(c, c) for c in classes]
        model_name = str(arch.get("model_name", ""))
        if not hasattr(transformers, model_name) or model_name.startswith("Auto"):
            raise InputError(f"{ckpt}: model_name {model_name!r} must be a concrete transformers class "
                             "such as BertForSequenceClassification")
        cfg_dir = Path(self.config_path).expanduser() if self.config_path else Path(str(arch.get("model_type")))
        if not (cfg_dir.is_absolute() and (cfg_dir / "config.json").is_file()):
            raise InputError(f"{ckpt}: model_type {arch.get('model_type')!r} is not a local config folder; "
                             "pass the Hugging Face config folder (detoxify:CKPT::CONFIG_DIR)")
        cfg = json.loads((cfg_dir / "config.json").read_text(encoding="utf-8"))
        n_labels = cfg.get("num_labels", len(cfg.get("id2label", {})) or None)
        if n_labels != len(classes):
            raise InputError(f"{cfg_dir / 'config.json'}: num_labels is {n_labels} but the checkpoint has "
                             f"{len(classes)} classes")
        if self.class_name not in classes:
            raise InputError(f"{ckpt}: no class {self.class_name!r} (classes: {', '.join(classes)})")
        from detoxify.detoxify import get_model_and_tokenizer

        arch["model_type"] = str(cfg_dir)  # rewritten: never a hub name
        model, tok = get_model_and_tokenizer(**arch, state_dict=state, huggingface_config_path=str(cfg_dir))
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model_, self.tokenizer_, self.classes_names_ = model.to(dev).eval(), tok, classes
        self._dev = dev

    def predict_all(self, X: Any) -> pd.DataFrame:
        """Scores for every Detoxify class."""
        import torch

        configure_threads()

        self._load()
        texts = texts_of(X)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.classes_names_)))
        kw = {"max_length": self.max_length} if self.max_length else {}
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                idx = order[s:s + self.batch_size]
                batch = self.tokenizer_([texts[i] for i in idx], return_tensors="pt", truncation=True,
                                        padding=True, **kw).to(self._dev)
                out[idx] = torch.sigmoid(self.model_(**batch)[0].float()).cpu().numpy()
        return pd.DataFrame(out, columns=self.classes_names_)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.predict_all(X)[self.class_name].to_numpy()
        self.classes_ = np.array([0, 1])
        return np.column_stack([1.0 - p, p])

    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        self._write_card(d, card)
        return d

    @classmethod
    def load(cls, d: str | Path) -> DetoxifyClassifier:
        return construct(cls, cls._read_card(Path(d)).get("params", {}), Path(d))

