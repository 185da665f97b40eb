"""Shared machinery of the model-backed judges (``llm`` and the guard models in :mod:`.guards`).

- :func:`call_models`: send many grading conversations to a model adapter with the run engine's
  fault handling: a concurrency cap, an optional requests/s token bucket, a per-request timeout
  (remote adapters only), retries with exponential backoff and jitter on retryable failures
  (429/5xx, timeouts, dropped connections, malformed replies) honouring ``Retry-After``. With
  ``logprobs=True`` an OpenAI-compatible adapter is asked for the top log-probabilities of
  each generated token (``logprobs``/``top_logprobs``); a server that rejects them is asked again
  without, and remembered.
- :func:`answer_probability`: P(yes-like) from the top log-probabilities of the first answer
  token after a marker, e.g. P(``unsafe``) for Llama Guard or P(``Yes``) for ShieldGemma.
- :func:`first_json_object`: the first JSON object of a text that matches a JSON schema (the
  ``llm`` judge's strict parser).

Settings come from keyword arguments or the environment: ``HARMSCOPE_JUDGE_CONCURRENCY``
(default 4), ``HARMSCOPE_JUDGE_RATE`` (requests/s, default none), ``HARMSCOPE_JUDGE_TIMEOUT``
(seconds, default 120) and ``HARMSCOPE_JUDGE_RETRIES`` (default 3).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harmscope.errors import HarmscopeError
from harmscope.types import Message

TOP_LOGPROBS = 5
_OBJ = re.compile(r"\{[^{}]*\}", re.S)


@dataclass(frozen=True)
class CallSettings:
    """Concurrency, rate limit, timeout and retry settings of judge calls."""

    concurrency: int = 4
    rate: float | None = None
    timeout: float | None = 120.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    seed: int = 0

    @classmethod
    def from_env(cls, **overrides: Any) -> CallSettings:
        """Settings from ``HARMSCOPE_JUDGE_*`` environment variables, then ``overrides``."""
        env: dict[str, Any] = {}
        for key, var, conv in (("concurrency", "HARMSCOPE_JUDGE_CONCURRENCY", int),
                               ("rate", "HARMSCOPE_JUDGE_RATE", float),
                               ("timeout", "HARMSCOPE_JUDGE_TIMEOUT", float),
                               ("max_retries", "HARMSCOPE_JUDGE_RETRIES", int)):
            raw = os.environ.get(var)
            if raw:
                try:
                    env[key] = conv(raw)
                except ValueError:
                    raise HarmscopeError(f"${var}: expected a number, got {raw!r}") from None
        env.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**env)
        if s.concurrency < 1:
            raise HarmscopeError(f"judge concurrency must be >= 1, got {s.concurrency}")
        if s.max_retries < 0:
            raise HarmscopeError(f"judge retries must be >= 0, got {s.max_retries}")
        return s


@dataclass
class CallResult:
    """The outcome of one grading call: text (and token log-probabilities) or an error."""

    text: str = ""
    error: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    attempts: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


def _is_openai(model: Any) -> bool:
    from harmscope.models.openai import OpenAIAdapter

    return isinstance(model, OpenAIAdapter)


async def _openai_call(model: Any, msgs: Sequence[Message], params: Any, timeout: float | None) -> CallResult:
    """One chat completion with ``logprobs`` requested (OpenAIAdapter only)."""
    from harmscope.models.base import ModelCallError, split_reasoning
    from harmscope.models.openai import RETRY_STATUS, parse_retry_after

    body = model.body(msgs, params)
    body["logprobs"] = True
    body["top_logprobs"] = TOP_LOGPROBS
    r = await model._post(body, timeout)
    if r.status_code != 200:
        snippet = model._scrub(r.text[:200].replace("\n", " "))
        raise ModelCallError(f"HTTP {r.status_code}: {snippet}", retryable=r.status_code in RETRY_STATUS,
                             retry_after=parse_retry_after(r.headers.get("retry-after")), status=r.status_code)
    try:
        data = r.json()
        choice = data["choices"][0]
        content = (choice.get("message") or {}).get("content") or ""
        lp = choice.get("logprobs") or {}
        tokens = lp.get("content") if isinstance(lp, dict) else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ModelCallError(f"malformed reply: {model._scrub(r.text[:200])!r}", retryable=True) from None
    text, _ = split_reasoning(content)
    return CallResult(text=text, logprobs=tokens if isinstance(tokens, list) else None,
                      meta={"finish_reason": choice.get("finish_reason")})


async def acall_models(model: Any, convs: Sequence[Sequence[Message]], params: Any,
                       settings: CallSettings | None = None, *, logprobs: bool = False) -> list[CallResult]:
    """Send every conversation in ``convs`` to ``model``; results in input order, never raising
    for a failed call (its ``error`` is set after the retries)."""
    from harmscope.benchmarks.runs.engine import TokenBucket
    from harmscope.models.base import ModelCallError

    settings = settings or CallSettings.from_env()
    rng = random.Random(settings.seed)
    bucket = TokenBucket(settings.rate) if settings.rate else None
    timeout = settings.timeout if (settings.timeout and not getattr(model, "local", False)) else None
    sem = asyncio.Semaphore(settings.concurrency)
    want_lp = logprobs and _is_openai(model) and not getattr(model, "_harmscope_no_logprobs", False)

    async def one(msgs: Sequence[Message]) -> CallResult:
        use_lp = want_lp and not getattr(model, "_harmscope_no_logprobs", False)
        lp_refused = False
        tries = 0
        async with sem:
            while True:
                tries += 1
                if bucket is not None:
                    await bucket.acquire(1)
                retry_after: float | None = None
                try:
                    if use_lp:
                        res = await _openai_call(model, msgs, params, timeout)
                    else:
                        coro = model.generate(msgs, params)
                        resp = await (asyncio.wait_for(coro, timeout) if timeout else coro)
                        res = CallResult(text=resp.text, meta={"finish_reason": resp.finish_reason})
                        if lp_refused:  # the same request without logprobs went through
                            model._harmscope_no_logprobs = True
                    res.attempts = tries
                    return res
                except ModelCallError as exc:
                    if use_lp and exc.status in (400, 422):  # maybe the server does not do logprobs
                        use_lp, lp_refused = False, True
                        tries -= 1
                        continue
                    retryable, retry_after, msg = exc.retryable, exc.retry_after, str(exc)
                except TimeoutError:
                    retryable, msg = True, f"timeout after {timeout:g}s"
                except (ConnectionError, OSError) as exc:
                    retryable, msg = True, f"connection error ({type(exc).__name__})"
                except HarmscopeError:
                    raise
                except Exception as exc:  # noqa: BLE001 - an adapter bug: recorded, not fatal
                    retryable, msg = False, f"{type(exc).__name__}: {exc}"
                if not retryable or tries > settings.max_retries:
                    return CallResult(error=msg, attempts=tries)
                if retry_after is not None:
                    delay = min(retry_after, 300.0) + rng.uniform(0, min(1.0, 0.1 * retry_after))
                else:
                    cap = min(settings.backoff_max, settings.backoff_base * 2 ** (tries - 1))
                    delay = cap / 2 + rng.uniform(0, cap / 2)
                await asyncio.sleep(delay)

    return list(await asyncio.gather(*(one(m) for m in convs)))


def call_models(model: Any, convs: Sequence[Sequence[Message]], params: Any,
                settings: CallSettings | None = None, *, logprobs: bool = False,
                preflight: bool = False) -> list[CallResult]:
    """Synchronous :func:`acall_models` (one event loop per batch; connections closed after).

    ``preflight`` first asks the adapter for one tiny answer, so a dead endpoint fails fast
    with one :class:`HarmscopeError` line instead of N retried calls.
    """
    async def go() -> list[CallResult]:
        try:
            if preflight:
                await model.preflight()
            return await acall_models(model, convs, params, settings, logprobs=logprobs)
        finally:
            if _is_openai(model):  # HTTP clients are bound to this event loop: close them with it
                try:
                    await model.aclose()
                except Exception:  # noqa: BLE001 - closing must not hide the outcome
                    pass

    t0 = time.perf_counter()
    out = asyncio.run(go())
    for r in out:
        r.meta.setdefault("batch_s", round(time.perf_counter() - t0, 3))
    return out


# ---------------------------------------------------------------------- log-probabilities
def _norm_token(tok: str) -> str:
    return tok.replace("\u2581", " ").replace("\u0120", " ").strip().lower()


def answer_probability(tokens: list[dict[str, Any]] | None, yes: Sequence[str], no: Sequence[str], *,
                       after: str = "") -> float | None:
    """P(yes) / (P(yes) + P(no)) at the first non-blank generated token after the text ``after``.

    ``tokens`` is an OpenAI ``choices[0].logprobs.content`` list. A top-logprob token counts for
    the side whose word it matches longest (its lower-cased, stripped text a prefix of the word or
    the word a prefix of it), so ``uns`` counts for ``unsafe`` and ``safe`` for ``safe``. None when there are no log-probabilities, the marker never appears, or neither
    answer is among the top tokens.
    """
    if not tokens:
        return None
    text = ""
    start = None
    for i, t in enumerate(tokens):
        tok = str(t.get("token", ""))
        if start is None and (not after or after.lower() in text.lower()):
            if tok.strip():
                start = i
                break
        text += tok
    if start is None:
        return None
    cand = tokens[start].get("top_logprobs") or [{"token": tokens[start].get("token", ""),
                                                   "logprob": tokens[start].get("logprob", 0.0)}]
    p_yes = p_no = 0.0
    seen: set[str] = set()
    for c in cand:
        raw = str(c.get("token", ""))
        if raw in seen:
            continue
        seen.add(raw)
        tok = _norm_token(raw)
        try:
            p = math.exp(float(c.get("logprob")))
        except (TypeError, ValueError, OverflowError):
            continue
        if not tok:
            continue
        ly, ln = _longest(tok, yes), _longest(tok, no)
        if ly > ln:
            p_yes += p
        elif ln > ly:
            p_no += p
    if p_yes + p_no <= 0:
        return None
    return p_yes / (p_yes + p_no)


def _longest(tok: str, words: Sequence[str]) -> int:
    """Length of the longest match between ``tok`` and one of ``words`` (prefix either way)."""
    best = 0
    for w in words:
        if tok.startswith(w):
            best = max(best, len(w))
        elif w.startswith(tok):
            best = max(best, len(tok))
    return best


# ---------------------------------------------------------------------- strict JSON
def first_json_object(text: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``{...}`` object in ``text`` that parses and matches ``schema``, else None."""
    import jsonschema

    for m in _OBJ.finditer(text or ""):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        try:
            jsonschema.validate(obj, schema)
        except jsonschema.ValidationError:
            continue
        return obj
    return None


def fail_on_errors(judge_id: str, where: str, results: Sequence[CallResult]) -> None:
    """Raise one :class:`HarmscopeError` line when calls failed after their retries.

    Failed calls are not turned into abstentions: an abstention would be cached as a verdict
    and a later run would not ask again. Verdicts of earlier batches stay cached.
    """
    bad = [r for r in results if r.error is not None]
    if bad:
        raise HarmscopeError(f"judge {judge_id}: {len(bad)} of {len(results)} calls to {where} failed after "
                             f"retries (first: {bad[0].error})")
