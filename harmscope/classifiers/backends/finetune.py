"""The ``finetune`` backend: a BERT-family encoder fine-tuned end to end (torch and transformers
are imported only when a model is built, trained or loaded)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope._torch import configure_threads
from harmscope.classifiers.backends.base import BACKENDS, BaseBackend, check_labels, construct, texts_of
from harmscope.classifiers.encoder import ONNX_BATCH, bucket_batches, minilm_path
from harmscope.classifiers.onnx_runtime import module_digest, module_model, resolve_runtime
from harmscope.errors import HarmscopeError, InputError


@BACKENDS.register
class FinetuneClassifier(BaseBackend):
    """A BERT-family encoder (default: packaged MiniLM) fine-tuned end to end.

    Head 0 is toxicity; ``subtype_cols`` add one sigmoid head each (e.g. Jigsaw subtypes), read
    from the columns of a DataFrame ``X`` (missing values are masked out of the loss). Training
    runs ``min(max_steps, epochs * batches)`` AdamW steps; ``partial_fit`` continues from the
    current weights for ``finetune_steps`` steps.
    """

    name = "finetune"
    version = "1"
    description = "MiniLM fine-tuned end to end (sigmoid heads, Jigsaw subtypes optional)"

    def __init__(self, *, base_model: str | None = None, max_steps: int = 200, finetune_steps: int = 100,
                 epochs: int = 3, learning_rate: float = 5e-5, batch_size: int = 16, max_length: int = 64,
                 weight_decay: float = 0.01, subtype_cols: Sequence[str] = (), device: str | None = None,
                 eval_batch_size: int = 128, seed: int = 0):
        self.base_model = base_model
        self.max_steps = max_steps
        self.finetune_steps = finetune_steps
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.weight_decay = weight_decay
        self.subtype_cols = subtype_cols
        self.device = device
        self.eval_batch_size = eval_batch_size
        self.seed = seed

    @property
    def class_names(self) -> list[str]:
        return ["toxicity", *self.subtype_cols]

    def _dev(self) -> str:
        import torch

        configure_threads()

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")

    def _init_model(self) -> None:
        import torch

        configure_threads()
        from transformers import AutoTokenizer, BertForSequenceClassification

        torch.manual_seed(self.seed)
        path = self.base_model or str(minilm_path())
        self.tokenizer_ = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model_ = BertForSequenceClassification.from_pretrained(
            path, num_labels=len(self.class_names), problem_type="multi_label_classification",
            local_files_only=True, ignore_mismatched_sizes=True)
        self.model_.config.id2label = dict(enumerate(self.class_names))
        self.model_.config.label2id = {n: i for i, n in enumerate(self.class_names)}
        self.model_.to(self._dev())

    def _targets(self, X: Any, y: np.ndarray) -> np.ndarray:
        T = np.full((len(y), len(self.class_names)), np.nan, dtype=np.float32)
        T[:, 0] = y
        if isinstance(X, pd.DataFrame):
            for j, c in enumerate(self.subtype_cols, start=1):
                if c in X.columns:
                    T[:, j] = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float32)
        return T

    def _train(self, texts: list[str], T: np.ndarray, w: np.ndarray, steps: int) -> None:
        import torch

        configure_threads()

        torch.manual_seed(self.seed)
        dev = self._dev()
        model, tok = self.model_, self.tokenizer_
        opt = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / max(1, steps)))
        rng = np.random.default_rng(self.seed)
        order = np.array([], dtype=int)
        model.train()
        for _ in range(steps):
            if len(order) < self.batch_size:
                order = np.concatenate([order, rng.permutation(len(texts))])
            idx, order = order[:self.batch_size], order[self.batch_size:]
            batch = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                        return_tensors="pt").to(dev)
            logits = model(**batch).logits
            tgt = torch.from_numpy(T[idx]).to(dev)
            mask = ~torch.isnan(tgt)
            loss_el = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.nan_to_num(tgt), reduction="none") * mask
            wt = torch.from_numpy(w[idx].astype(np.float32)).to(dev).unsqueeze(1)
            loss = (loss_el * wt).sum() / (mask * wt).sum().clamp(min=1e-6)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        model.eval()
        self._onnx_digest_ = None  # the weights changed: the next ONNX predict re-exports

    def _steps(self, n: int, cap: int) -> int:
        return max(1, min(cap, self.epochs * -(-n // self.batch_size)))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FinetuneClassifier:
        texts = texts_of(X)
        yy = check_labels(y, len(texts))
        self._init_model()
        w = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self._train(texts, self._targets(X, yy), w, self._steps(len(texts), self.max_steps))
        self.classes_ = np.array([0, 1])
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FinetuneClassifier:
        """Continue training from the current weights (the fine-tune step)."""
        if not hasattr(self, "model_"):
            return self.fit(X, y, sample_weight)
        texts = texts_of(X)
        yy = check_labels(y, len(texts))
        w = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self._train(texts, self._targets(X, yy), w, self._steps(len(texts), self.finetune_steps))
        return self

    def predict_all(self, X: Any) -> np.ndarray:
        """Sigmoid scores for every head, (n, 1 + len(subtype_cols))."""
        import torch

        configure_threads()

        if not hasattr(self, "model_"):
            raise HarmscopeError("finetune classifier is not fitted")
        texts = texts_of(X)
        dev = self._dev()
        if dev == "cpu":
            rt = resolve_runtime()
            if rt != "torch":  # ONNX Runtime (int8 by default): see harmscope.classifiers.onnx_runtime
                return self._predict_onnx(texts, int8=rt == "onnx")
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.class_names)), dtype=np.float64)
        with torch.inference_mode():
            for s in range(0, len(texts), self.eval_batch_size):
                idx = order[s:s + self.eval_batch_size]
                batch = self.tokenizer_([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt").to(dev)
                out[idx] = torch.sigmoid(self.model_(**batch).logits.float()).cpu().numpy()
        return out

    def _predict_onnx(self, texts: list[str], *, int8: bool) -> np.ndarray:
        """``predict_all`` on ONNX Runtime: the model is exported (and quantised) once per weights digest."""
        key = (module_digest(self.model_) if getattr(self, "_onnx_digest_", None) is None
               else self._onnx_digest_)
        self._onnx_digest_ = key
        sess = module_model(self.model_, int8=int8, digest=key)  # sessions are cached per process
        out = np.zeros((len(texts), len(self.class_names)), dtype=np.float64)
        # one text per call, as the encoder does: dynamic int8 scales activations per call, so a
        # batch made a text's score depend on its batch-mates; also 2x fewer CPU-s (#18)
        for idx, batch in bucket_batches(self.tokenizer_, texts, max_length=self.max_length,
                                         batch_size=min(self.eval_batch_size, ONNX_BATCH)):
            out[idx] = 1.0 / (1.0 + np.exp(-sess.run(batch).astype(np.float64)))
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.predict_all(X)[:, 0]
        return np.column_stack([1.0 - p, p])

    def save(self, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        d = Path(d)
        (d / "hf").mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(d / "hf", safe_serialization=True)
        self.tokenizer_.save_pretrained(d / "hf")
        self._write_card(d, {"classes": self.class_names, **(card or {})})
        return d

    @classmethod
    def load(cls, d: str | Path) -> FinetuneClassifier:
        from transformers import AutoTokenizer, BertForSequenceClassification

        d = Path(d)
        card = cls._read_card(d)
        self = construct(cls, {k: (tuple(v) if k == "subtype_cols" and isinstance(v, list) else v)
                                for k, v in card.get("params", {}).items()}, d)
        try:
            self.tokenizer_ = AutoTokenizer.from_pretrained(str(d / "hf"), local_files_only=True)
            self.model_ = BertForSequenceClassification.from_pretrained(  # safetensors only: never a pickle
                str(d / "hf"), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise InputError(f"{d / 'hf'}: cannot load the fine-tuned model "
                             f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None
        self.model_.to(self._dev()).eval()
        self.classes_ = np.array([0, 1])
        self.card_ = {k: v for k, v in card.items() if k not in ("params", "backend", "classes")}
        return self

