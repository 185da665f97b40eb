"""Cross-encoder heads: MiniLM reading the prompt and the reply *together*, top layers fine-tuned.

The frozen-embedding heads see the prompt and the reply as two separate sentence vectors; a
cross-encoder feeds ``[CLS] prompt [SEP] reply [SEP]`` through MiniLM, so every layer attends
across both. Training on two CPU cores is made tractable by running the packaged MiniLM's lower
``frozen`` layers once per pair (:func:`lower_states`) and training only the top layers, a
mean-pooling and one linear output per task (:func:`fit_cross_encoder`).

A :class:`CrossEncoderHead` stores only what was trained (the top layers' weights and the
output layer, float16 — or the weight matrices as int8 with a scale per row, ``"storage": "int8"``
in a judge's ``cross`` config — in an ``.npz`` without pickle) and rebuilds the full network from the
packaged encoder. Scoring runs on the encoder runtime in use: ONNX Runtime int8 (exported and
quantised once, cached like the encoder) or the torch fp32 reference. Outputs are named: ``harm``
for the harm judge, rule ids for the rule judge; ``logits(prompts, replies)`` returns one column
per output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harmscope._torch import TRAIN_THREADS, pinned_threads
from harmscope.errors import HarmscopeError, InputError

MAX_LENGTH = 256
FROZEN = 4  # of MiniLM's 6 layers; the top 2 are trained
# torch's CPU kernels split reductions by thread count, so the trained weights depend on it: training
# always runs on TRAIN_THREADS threads (the same weights whatever the thread setting; measured: 1 and 2 differ)
NO_PROMPT_TEXT = "(no prompt)"


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from harmscope.classifiers.encoder import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


_TOK: Any = None


def tokenizer() -> Any:
    """The packaged MiniLM tokenizer (loaded once)."""
    global _TOK
    if _TOK is None:
        _TOK = _tokenizer()
    return _TOK


def encode_pairs(prompts: Sequence[str | None], replies: Sequence[str], max_length: int = MAX_LENGTH
                 ) -> list[tuple[list[int], list[int]]]:
    """(token ids, segment ids) of ``[CLS] prompt [SEP] reply [SEP]``, the longer side truncated
    first; a missing or empty prompt reads as ``(no prompt)``. Segment ids come from the tokenizer,
    so a literal ``[SEP]`` inside a text cannot move the prompt / reply boundary."""
    ps = [str(p) if p is not None and str(p).strip() else NO_PROMPT_TEXT for p in prompts]
    rs = ["" if r is None else str(r) for r in replies]
    enc = tokenizer()(ps, rs, truncation="longest_first", max_length=max_length, return_attention_mask=False,
                      return_token_type_ids=True)
    return list(zip(enc["input_ids"], enc["token_type_ids"], strict=True))


def _pad(rows: list[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
    width = max(len(r) for r, _ in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    tt = np.zeros_like(ids)
    for j, (r, t) in enumerate(rows):
        ids[j, :len(r)] = r
        mask[j, :len(r)] = 1
        tt[j, :len(r)] = t
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def _additive(mask: Any) -> Any:
    import torch

    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def _base() -> Any:
    from transformers import AutoModel

    from harmscope._torch import configure_threads
    from harmscope.classifiers.encoder import minilm_path

    configure_threads()
    model = AutoModel.from_pretrained(str(minilm_path()), local_files_only=True)
    model.config._attn_implementation = "eager"  # the same arithmetic in training and in the export
    return model.eval()


def _run_layers(layers: Any, h: Any, mask: Any) -> Any:
    ext = _additive(mask)
    for layer in layers:
        out = layer(h, attention_mask=ext)
        h = out[0] if isinstance(out, tuple) else out
    return h


def _net(base: Any, frozen: int, n_out: int) -> Any:
    """The full cross-encoder as a torch module: base MiniLM, its top layers trainable, mean-pool,
    linear outputs. ``forward(input_ids, attention_mask, token_type_ids).logits`` is (b, n_out)."""
    import copy
    from types import SimpleNamespace

    import torch

    class CrossEncoderNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = base.config
            self.embeddings = base.embeddings
            self.lower = torch.nn.ModuleList(base.encoder.layer[:frozen])
            self.top = torch.nn.ModuleList([copy.deepcopy(layer) for layer in base.encoder.layer[frozen:]])
            self.drop = torch.nn.Dropout(0.1)
            self.out = torch.nn.Linear(base.config.hidden_size, n_out)

        def pooled_logits(self, h: Any, mask: Any) -> Any:
            h = _run_layers(self.top, h, mask)
            m = mask.unsqueeze(-1).to(h.dtype)
            return self.out(self.drop((h * m).sum(1) / m.sum(1).clamp(min=1e-9)))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            h = _run_layers(self.lower, h, attention_mask)
            return SimpleNamespace(logits=self.pooled_logits(h, attention_mask))

    return CrossEncoderNet()


class CrossEncoderHead:
    """Trained top layers + outputs of a MiniLM cross-encoder; ``logits(prompts, replies)``."""

    def __init__(self, state: dict[str, np.ndarray], outputs: list[str], *, frozen: int = FROZEN,
                 max_length: int = MAX_LENGTH, meta: dict[str, Any] | None = None,
                 quantized: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
        self.state = {k: np.asarray(v, dtype=np.float16) for k, v in state.items()}
        # int8 storage (see quantize): weight name -> (int8 matrix, float32 scale per output row)
        self.quantized = {k: (np.asarray(q, dtype=np.int8), np.asarray(sc, dtype=np.float32))
                          for k, (q, sc) in (quantized or {}).items()}
        if set(self.state) & set(self.quantized):
            raise HarmscopeError("cross-encoder weights: a weight is stored both as float16 and as int8")
        self.outputs = list(outputs)
        self.frozen = int(frozen)
        self.max_length = int(max_length)
        self.meta = dict(meta or {})
        self._torch_net: Any = None
        self._onnx: dict[str, Any] = {}

    # ------------------------------------------------------------------ storage
    @property
    def digest(self) -> str:
        h = hashlib.sha256(json.dumps([self.outputs, self.frozen, self.max_length]).encode())
        for k in sorted(self.state):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.state[k]).tobytes())
        for k in sorted(self.quantized):  # nothing for float16 heads: their digests are unchanged
            q, sc = self.quantized[k]
            h.update(f"int8:{k}".encode())
            h.update(np.ascontiguousarray(q).tobytes())
            h.update(np.ascontiguousarray(sc).tobytes())
        return h.hexdigest()[:8]

    @property
    def storage(self) -> str:
        """``"int8"`` when the top layers' weight matrices are stored as int8, else ``"fp16"``."""
        return "int8" if self.quantized else "fp16"

    def quantize(self, storage: str = "int8") -> CrossEncoderHead:
        """This head with the given storage: ``"int8"`` stores every weight matrix of the trained
        layers as int8 with one float32 scale per output row (symmetric, max-abs / 127: half the
        float16 size; biases, LayerNorms and the output layer stay float16); ``"fp16"`` is this head.
        The figures a judge stores are computed with the stored weights, so they hold for the file."""
        check_storage(storage)
        if storage == self.storage:
            return self
        if storage == "fp16":
            raise InputError("cross-encoder storage 'fp16': this head is stored as int8, which cannot be undone")
        state, quant = {}, {}
        for k, v in self.state.items():
            if v.ndim == 2 and not k.startswith("out.") and min(v.shape) >= 64:
                w = v.astype(np.float32)
                scale = np.abs(w).max(axis=1) / 127.0
                scale[scale == 0] = 1.0
                quant[k] = (np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float32))
            else:
                state[k] = v
        return CrossEncoderHead(state, self.outputs, frozen=self.frozen, max_length=self.max_length,
                                meta=dict(self.meta), quantized=quant)

    def weights(self) -> dict[str, np.ndarray]:
        """Every stored weight as float32 (int8 ones dequantised): what the network computes with."""
        out = {k: v.astype(np.float32) for k, v in self.state.items()}
        out.update({k: q.astype(np.float32) * sc[:, None] for k, (q, sc) in self.quantized.items()})
        return out

    def arrays(self, prefix: str = "ce_") -> dict[str, np.ndarray]:
        out = {f"{prefix}p:{k}": v for k, v in self.state.items()}
        for k, (q, sc) in self.quantized.items():
            out[f"{prefix}q:{k}"] = q
            out[f"{prefix}s:{k}"] = sc
        out[f"{prefix}outputs"] = np.array(self.outputs)
        out[f"{prefix}config"] = np.array([json.dumps({"frozen": self.frozen, "max_length": self.max_length,
                                                        "meta": self.meta}, sort_keys=True)])
        return out

    def save(self, path: Path) -> None:
        """Write the arrays atomically as a compressed ``.npz`` (no pickle)."""
        from harmscope.safeio import atomic_path

        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **self.arrays())

    @classmethod
    def from_arrays(cls, z: Any, prefix: str = "ce_") -> CrossEncoderHead:
        cfg = json.loads(str(z[f"{prefix}config"][0]))
        pre, qpre, spre = f"{prefix}p:", f"{prefix}q:", f"{prefix}s:"
        state = {k[len(pre):]: z[k] for k in z.files if k.startswith(pre)}
        quant = {}
        for k in z.files:
            if k.startswith(spre) and f"{qpre}{k[len(spre):]}" not in z.files:
                raise HarmscopeError(f"cross-encoder weights: scale {k[len(spre):]!r} has no int8 weight (malformed)")
            if k.startswith(qpre):
                name = k[len(qpre):]
                if f"{spre}{name}" not in z.files:
                    raise HarmscopeError(f"cross-encoder weights: int8 weight {name!r} has no scale")
                q, sc = z[k], z[f"{spre}{name}"]
                if (q.dtype != np.int8 or q.ndim != 2 or sc.shape != (q.shape[0],) or sc.dtype.kind != "f"
                        or not np.isfinite(sc).all() or (sc <= 0).any()):
                    raise HarmscopeError(f"cross-encoder weights: int8 weight {name!r} is malformed")
                quant[name] = (q, sc)
        return cls(state, [str(o) for o in z[f"{prefix}outputs"]], frozen=cfg["frozen"],
                   max_length=cfg["max_length"], meta=cfg.get("meta"), quantized=quant)

    @classmethod
    def load(cls, path: Path) -> CrossEncoderHead:
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays(z)

    @staticmethod
    def present(z: Any, prefix: str = "ce_") -> bool:
        return f"{prefix}config" in z.files

    # ------------------------------------------------------------------ scoring
    def torch_net(self) -> Any:
        """The full network with these weights (fp32, eval mode), built once."""
        if self._torch_net is None:
            import torch

            net = _net(_base(), self.frozen, len(self.outputs))
            own = {f"top.{k}" if not k.startswith("out.") else k: torch.from_numpy(v)
                   for k, v in self.weights().items()}
            want = {k for k in net.state_dict() if k.startswith(("top.", "out."))}
            if set(own) != want:
                bad = sorted(set(own) ^ want)
                raise HarmscopeError(f"cross-encoder weights do not fit MiniLM ({len(bad)} keys differ, e.g. {bad[:2]})")
            shapes = net.state_dict()
            bad = sorted(k for k in own if tuple(own[k].shape) != tuple(shapes[k].shape))
            if bad:
                raise HarmscopeError(f"cross-encoder weights do not fit MiniLM ({len(bad)} shapes differ, e.g. "
                                     f"{bad[0]}: {tuple(own[bad[0]].shape)} for {tuple(shapes[bad[0]].shape)})")
            net.load_state_dict(own, strict=False)
            self._torch_net = net.eval()
        return self._torch_net

    def _onnx_model(self, runtime: str) -> Any:
        from harmscope.classifiers.encoder import minilm_path
        from harmscope.classifiers.onnx_runtime import OnnxModel, build, folder_digest, num_threads

        if runtime not in self._onnx:
            digest = f"{folder_digest(minilm_path())}-ce{self.digest}"
            path = build(lambda: self.torch_net(), digest, "crossenc", int8=runtime == "onnx")
            # parallelism comes from concurrent one-pair calls (see logits): one thread each
            self._onnx[runtime] = OnnxModel(path, threads=1 if _workers() > 1 else num_threads())
        return self._onnx[runtime]

    def logits(self, prompts: Sequence[str], replies: Sequence[str], *, runtime: str | None = None,
               batch_size: int = 32) -> np.ndarray:
        """(n, len(outputs)) logits for aligned prompt / reply lists. One pair per pass on every
        runtime (torch runs here on the CPU), so a pair's logits never depend on its batch-mates."""
        from harmscope.classifiers.encoder import ONNX_BATCH, TORCH_CPU_BATCH
        from harmscope.classifiers.onnx_runtime import resolve_runtime

        n = len(replies)
        out = np.zeros((n, len(self.outputs)), dtype=np.float32)
        if n == 0:
            return out
        rt = resolve_runtime(runtime)
        ids = encode_pairs(prompts, replies, self.max_length)
        order = np.argsort([len(r) for r, _ in ids], kind="stable")
        bs = min(batch_size, TORCH_CPU_BATCH if rt == "torch" else ONNX_BATCH)  # batch-independent
        if rt == "torch":
            import torch

            net = self.torch_net()
            with torch.inference_mode():
                for s in range(0, n, bs):
                    idx = order[s:s + bs]
                    b = {k: torch.from_numpy(v) for k, v in _pad([ids[i] for i in idx]).items()}
                    out[idx] = net(**b).logits.float().numpy()
            return out
        model = self._onnx_model(rt)

        def run(part: np.ndarray) -> None:
            for i in part:
                out[i] = model.run(_pad([ids[i]]))[0]

        workers = _workers()
        if workers <= 1 or n < 64:
            run(order)
            return out
        # ONNX Runtime releases the GIL: like the encoder, `workers` threads each run whole one-pair
        # calls on the shared session (each call is the computation of a serial run: equal outputs)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harmscope-crossenc") as ex:
            for f in [ex.submit(run, order[k::workers]) for k in range(workers)]:
                f.result()
        return out

    def proba(self, prompts: Sequence[str], replies: Sequence[str], **kw: Any) -> np.ndarray:
        """Sigmoid of :meth:`logits`."""
        return 1.0 / (1.0 + np.exp(-self.logits(prompts, replies, **kw)))


def _workers() -> int:
    """Concurrent one-pair ONNX calls: as many as the encoder makes (``$HARMSCOPE_TORCH_THREADS``)."""
    from harmscope.classifiers.onnx_runtime import onnx_workers

    return onnx_workers()


# cross-encoder config keys that only decide how its output is used or which rows/rules it gets,
# never how it trains: left out of the training settings (and so out of the fold-cache key)
COMBINE_KEYS = frozenset({"weight", "skip", "min_rows", "single_source", "rows", "storage", "band", "vs"})


STORAGES = ("fp16", "int8")


def check_storage(storage: Any) -> str:
    """``storage`` if it names a cross-encoder storage (:data:`STORAGES`), else an InputError."""
    if storage not in STORAGES:
        raise InputError(f"cross-encoder storage {storage!r}: use 'fp16' or 'int8'")
    return str(storage)


def training_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a judge's ``cross`` config that :func:`fit_cached` trains with (and keys its cache by)."""
    return {k: v for k, v in cfg.items() if k not in COMBINE_KEYS}


def mix_logits(p: np.ndarray, z: np.ndarray, weight: float) -> np.ndarray:
    """sigmoid(weight * z + (1 - weight) * logit(p)): a probability ``p`` averaged in logit space with a
    cross-encoder's logit ``z`` (how the harm and rule heads combine theirs)."""
    zp = np.log(np.clip(p, 1e-7, 1.0)) - np.log(np.clip(1.0 - p, 1e-7, 1.0))
    return 1.0 / (1.0 + np.exp(-(weight * np.asarray(z, dtype=np.float64) + (1.0 - weight) * zp)))


# ---------------------------------------------------------------------- training
class LowerStates:
    """The frozen lower layers' outputs for a list of pairs (float32), concatenated row by row."""

    def __init__(self, hidden: np.ndarray, lengths: np.ndarray, type_ids: np.ndarray, frozen: int, max_length: int):
        self.hidden, self.lengths, self.type_ids = hidden, lengths, type_ids
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.frozen, self.max_length = frozen, max_length

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx: np.ndarray) -> tuple[Any, Any]:
        import torch

        width = int(self.lengths[idx].max())
        h = torch.zeros(len(idx), width, self.hidden.shape[1])
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for j, i in enumerate(idx):
            n = int(self.lengths[i])
            h[j, :n] = torch.from_numpy(self.hidden[self.offsets[i]:self.offsets[i + 1]].astype(np.float32))
            mask[j, :n] = 1
        return h, mask


def lower_states(prompts: Sequence[str], replies: Sequence[str], *, frozen: int = FROZEN,
                 max_length: int = MAX_LENGTH, batch_size: int = 32,
                 progress: Callable[[int, int], None] | None = None) -> LowerStates:
    """Run the packaged MiniLM's embeddings and lower ``frozen`` layers once per pair (torch fp32)."""
    import torch

    if len(prompts) != len(replies):
        raise InputError("prompts and replies differ in length")
    base = _base()
    ids = encode_pairs(prompts, replies, max_length)
    order = np.argsort([len(r) for r, _ in ids], kind="stable")
    lengths = np.array([len(r) for r, _ in ids], dtype=np.int64)
    parts: list[np.ndarray | None] = [None] * len(ids)
    # these states are training inputs: pinned like the training
    with pinned_threads(TRAIN_THREADS), torch.inference_mode():
        for s in range(0, len(ids), batch_size):
            idx = order[s:s + batch_size]
            b = {k: torch.from_numpy(v) for k, v in _pad([ids[i] for i in idx]).items()}
            h = base.embeddings(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"])
            h = _run_layers(base.encoder.layer[:frozen], h, b["attention_mask"])
            for j, i in enumerate(idx):
                parts[i] = h[j, :lengths[i]].numpy().astype(np.float32)
            if progress:
                progress(min(s + batch_size, len(ids)), len(ids))
    dim = base.config.hidden_size
    hidden = np.concatenate([p for p in parts if p is not None]) if len(ids) else np.zeros((0, dim), np.float32)
    type_ids = np.concatenate([np.array(t) for _, t in ids]) if len(ids) else np.zeros(0, np.int64)
    return LowerStates(hidden, lengths, type_ids, frozen, max_length)


def _train_batches(idx: np.ndarray, lengths: np.ndarray, bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length (chunks of 50 batches sorted by length, then shuffled)."""
    idx = idx[rng.permutation(len(idx))]
    out: list[np.ndarray] = []
    chunk = bs * 50
    for s in range(0, len(idx), chunk):
        c = idx[s:s + chunk]
        c = c[np.argsort(lengths[c], kind="stable")]
        out += [c[k:k + bs] for k in range(0, len(c), bs)]
    return [out[i] for i in rng.permutation(len(out))]


def fit_cross_encoder(states: LowerStates, y: np.ndarray, outputs: list[str], *, output_index: np.ndarray | None = None,
                      rows: np.ndarray | None = None, epochs: float = 2.0, lr: float = 5e-5, head_lr: float = 1e-3,
                      batch_size: int = 16, weight_decay: float = 0.01, seed: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> CrossEncoderHead:
    """Train the top layers and outputs on ``rows`` of ``states`` (binary targets ``y``; each row
    trains output ``output_index[row]``, default 0). AdamW, linear warm-up (10%) and decay;
    deterministic under ``seed`` for a given torch thread count."""
    y = np.asarray(y, dtype=np.float32)
    rows = np.arange(len(states)) if rows is None else np.asarray(rows)
    if len(rows) == 0 or len(set(y[rows].tolist())) < 2:
        raise InputError("cross-encoder training needs both classes among its rows")
    oi = np.zeros(len(states), dtype=np.int64) if output_index is None else np.asarray(output_index, dtype=np.int64)
    base = _base()
    with pinned_threads(TRAIN_THREADS):
        net = _train(base, states, y, oi, rows, len(outputs), epochs=epochs, lr=lr, head_lr=head_lr,
                     batch_size=batch_size, weight_decay=weight_decay, seed=seed, progress=progress)
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items() if k.startswith(("top.", "out."))}
    state = {(k[4:] if k.startswith("top.") else k): v for k, v in sd.items()}
    return CrossEncoderHead(state, outputs, frozen=states.frozen, max_length=states.max_length,
                            meta={"epochs": epochs, "lr": lr, "head_lr": head_lr, "batch_size": batch_size,
                                  "seed": seed, "trained_rows": int(len(rows)), "threads": TRAIN_THREADS})


def _train(base: Any, states: LowerStates, y: np.ndarray, oi: np.ndarray, rows: np.ndarray, n_out: int, *,
           epochs: float, lr: float, head_lr: float, batch_size: int, weight_decay: float, seed: int,
           progress: Callable[[int, int], None] | None) -> Any:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _net(base, states.frozen, n_out)
    opt = torch.optim.AdamW([{"params": net.top.parameters(), "lr": lr},
                             {"params": net.out.parameters(), "lr": head_lr}], weight_decay=weight_decay)
    per_epoch = len(_train_batches(rows, states.lengths, batch_size, np.random.default_rng(0)))
    total = max(1, int(epochs * per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1.0, 0.1 * total)) * max(0.0, (total - s) / total))
    net.train()
    step = 0
    while step < total:
        for b in _train_batches(rows, states.lengths, batch_size, rng):
            if step >= total:
                break
            h, mask = states.batch(b)
            logits = net.pooled_logits(h, mask).gather(1, torch.from_numpy(oi[b])[:, None]).squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress:
                progress(step, total)
    return net


def fit_cached(cache_dir: Path | None, states: LowerStates, keys: Sequence[str], rows: np.ndarray, y: np.ndarray,
               outputs: list[str], output_index: np.ndarray | None, settings: dict[str, Any], seed: int,
               *, storage: str = "fp16") -> CrossEncoderHead:
    """:func:`fit_cross_encoder` on ``rows`` (``y``, ``output_index``: aligned with all of ``states``),
    read back from ``cache_dir`` when the same rows (by their text ``keys``), labels, outputs,
    settings and seed were trained before: a long rebuild resumes where it stopped. The cache
    keeps the float16 model; ``storage`` (:meth:`CrossEncoderHead.quantize`) applies to what is
    returned, so a fold model serves both storages."""
    check_storage(storage)  # before a training, not after it
    rows = np.asarray(rows)
    oi = np.zeros(len(states), dtype=np.int64) if output_index is None else np.asarray(output_index, dtype=np.int64)
    h = hashlib.blake2b(digest_size=16)
    for i in rows:
        h.update(f"{keys[i]}\x1e{int(y[i])}\x1f{int(oi[i])}\x1d".encode("utf-8", "surrogatepass"))
    # the encoder is the packaged MiniLM, fixed by the package version (clear the cache after changing it)
    h.update(json.dumps([outputs, sorted(settings.items()), seed, states.frozen, states.max_length,
                         TRAIN_THREADS]).encode())
    path = None if cache_dir is None else Path(cache_dir) / "crossenc" / f"{h.hexdigest()}.npz"
    if path is not None and path.is_file():
        try:
            cached = CrossEncoderHead.load(path)
        except Exception:  # a truncated or foreign file in the cache: train again
            path.unlink(missing_ok=True)
        else:
            return cached.quantize(storage)
    from harmscope.progress import progress_bar

    with progress_bar(None, f"cross-encoder ({', '.join(outputs[:3])}{', ...' if len(outputs) > 3 else ''}; "
                            f"{len(rows)} rows)", eta=True, transient=True) as bar:
        head = fit_cross_encoder(states, y, outputs, output_index=oi, rows=rows,
                                 epochs=float(settings.get("epochs", 2.0)), lr=float(settings.get("lr", 5e-5)),
                                 head_lr=float(settings.get("head_lr", 1e-3)),
                                 batch_size=int(settings.get("batch_size", 16)), seed=seed,
                                 progress=lambda done, total: bar.update(completed=done, total=total))
    if path is not None:
        head.save(path)
    return head.quantize(storage)


def state_logits(head: CrossEncoderHead, states: LowerStates, rows: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Logits of ``head`` on cached lower states (torch; the training-time path, for validation;
    pinned to TRAIN_THREADS like the training, so the figures do not depend on the thread setting)."""
    import torch

    net = head.torch_net()
    out = np.zeros((len(rows), len(head.outputs)), dtype=np.float32)
    order = np.argsort(states.lengths[rows], kind="stable")
    with pinned_threads(TRAIN_THREADS), torch.inference_mode():
        for s in range(0, len(rows), batch_size):
            pos = order[s:s + batch_size]
            h, mask = states.batch(rows[pos])
            out[pos] = net.pooled_logits(h, mask).float().numpy()
    return out
