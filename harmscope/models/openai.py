"""OpenAI-compatible chat completions over HTTP (vLLM, Ollama, llama.cpp server, TGI, OpenAI).

The API key is read from the environment variable the user names (``api_key_env``) when the
adapter is built; it is sent only in the ``Authorization`` header and never appears in the spec,
the manifest, the store, logs or error messages.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from harmscope import secrets
from harmscope.errors import HarmscopeError
from harmscope.models.base import MODELS, GenParams, ModelAdapter, ModelCallError, split_reasoning
from harmscope.types import Message, Response

DEFAULT_BASE_URL = "https://api.openai.com/v1"
POOL_SHARD_SIZE = 8
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


def redact_url(url: str) -> str:
    """The URL without user:password and with query values masked."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
        netloc += ":?"
    if port:
        netloc += f":{port}"
    query = "&".join(f"{kv.split('=', 1)[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), query, ""))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@MODELS.register
class OpenAIAdapter(ModelAdapter):
    """Chat completions against ``base_url``; reasoning (``reasoning_content`` or ``<think>``) is kept apart."""

    name = "openai"
    version = "1"
    description = "OpenAI-compatible /chat/completions endpoint over HTTP"
    fields = ("model", "base_url")
    options = ("api_key_env", "headers", "headers_env", "extra_body", "max_tokens_field", "max_connections",
               "connect_timeout")

    def __init__(self, model: str, base_url: str | None = None, *, api_key_env: str | None = None,
                 headers: Mapping[str, str] | None = None, headers_env: Mapping[str, str] | None = None,
                 extra_body: Mapping[str, Any] | None = None, max_tokens_field: str = "max_tokens",
                 max_connections: int = 256, connect_timeout: float = 10.0):
        if not model:
            raise HarmscopeError("openai model spec needs a model name: openai:MODEL@URL")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise HarmscopeError(f"openai base URL must start with http:// or https://, got {redact_url(self.base_url)!r}")
        try:
            parts = urlsplit(self.base_url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise HarmscopeError(f"openai base URL {redact_url(self.base_url)!r} is not valid ({exc})") from None
        if parts.username is not None or parts.password is not None:
            for cred in (parts.username, parts.password):
                secrets.register(cred)
            raise HarmscopeError(f"openai base URL {redact_url(self.base_url)!r} holds user:password credentials; "
                                 "remove them and pass the key with api_key_env or headers_env")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in model):
            raise HarmscopeError("openai model name must not hold control characters")
        explicit = api_key_env is not None
        self.api_key_env = api_key_env or "OPENAI_API_KEY"
        key = os.environ.get(self.api_key_env)
        if explicit and not key:
            raise HarmscopeError(f"API key environment variable {self.api_key_env} is not set")
        if key:
            secrets.check_secret(key, f"API key ${self.api_key_env}")
            secrets.register(key)
        self._key = key or None
        self._headers: dict[str, str] = {"Content-Type": "application/json"}
        self._header_names = sorted(set(headers or {}) | set(headers_env or {}))
        self._headers_env = dict(headers_env or {})
        self._headers.update(headers or {})
        for name, env in (headers_env or {}).items():
            val = os.environ.get(env)
            if val is None:
                raise HarmscopeError(f"header {name}: environment variable {env} is not set")
            secrets.check_secret(val.replace(" ", "!"), f"header {name} (from ${env})")
            secrets.register(val)
            self._headers[name] = val
        for name, val in (headers or {}).items():
            if not isinstance(val, str) or any(ord(c) < 32 or ord(c) > 126 for c in val):
                raise HarmscopeError(f"header {name}: value must be printable ASCII text")
            if name.lower() in ("authorization", "api-key", "x-api-key", "proxy-authorization"):
                secrets.register(val.split(" ", 1)[-1])
        if self._key:
            self._headers["Authorization"] = f"Bearer {self._key}"
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self._clients: list[httpx.AsyncClient] = []
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._rr = 0
        self._ssl: ssl.SSLContext | None = None
        self.preflight_timeout = 30.0  # seconds for the whole test request (the engine sets --timeout)
        self.preflight_retries = 2

    def __repr__(self) -> str:
        return f"OpenAIAdapter({self.spec!r})"

    @classmethod
    def parse(cls, rest: str) -> dict[str, Any]:
        """``MODEL@URL``: split on the last '@' followed by a scheme, so an '@' inside the model name
        or inside the URL's user:password part never splits the spec."""
        cut = max(rest.rfind("@http://"), rest.rfind("@https://"))
        if cut < 0:
            return {"model": rest, "base_url": None}
        return {"model": rest[:cut], "base_url": rest[cut + 1:]}

    @classmethod
    def from_spec(cls, **args: Any) -> OpenAIAdapter:
        return cls(str(args.pop("model", "") or ""), args.pop("base_url", None), **args)

    def spec_args(self) -> dict[str, Any]:
        """Model, redacted URL and the non-secret options; the key and header values are named by
        their environment variables only (literal header values are not kept)."""
        out: dict[str, Any] = {"model": self.model, "base_url": redact_url(self.base_url)}
        if self._key:
            out["api_key_env"] = self.api_key_env
        if self._headers_env:
            out["headers_env"] = dict(self._headers_env)
        if self.extra_body:
            out["extra_body"] = self.extra_body
        if self.max_tokens_field != "max_tokens":
            out["max_tokens_field"] = self.max_tokens_field
        return out

    @property
    def spec(self) -> str:
        return f"openai:{self.model}@{redact_url(self.base_url)}"

    def identity(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.model, "base_url": redact_url(self.base_url),
                "extra_body": self.extra_body}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"model": self.model, "base_url": redact_url(self.base_url),
                  "api_key_env": self.api_key_env if self._key else None,
                  "headers": self._header_names, "extra_body": self.extra_body})
        return d

    def _get_client(self) -> httpx.AsyncClient:
        """An HTTP client of the running event loop, round-robin over a few small pools.

        httpcore's pool does work proportional to its size on every request, which caps one
        client at a few hundred requests/s under high concurrency; shards of
        ``POOL_SHARD_SIZE`` connections keep that cost flat. Clients are bound to the loop that
        made them, so a new loop (a new ``asyncio.run``) gets new clients.
        """
        loop = asyncio.get_running_loop()
        if self._client_loop is not loop or not self._clients or self._clients[0].is_closed:
            self._client_loop = loop  # clients of another (maybe closed) loop are dropped, never reused
            n = max(1, -(-self.max_connections // POOL_SHARD_SIZE))
            per = max(1, -(-self.max_connections // n))
            limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()  # one context (certifi CAs) shared by the shards
            self._clients = [
                httpx.AsyncClient(headers=self._headers, limits=limits, verify=self._ssl,
                                  timeout=httpx.Timeout(None, connect=self.connect_timeout))
                for _ in range(n)
            ]
        self._rr = (self._rr + 1) % len(self._clients)
        return self._clients[self._rr]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        for c in clients:
            await c.aclose()

    def _scrub(self, text: str, limit: int | None = None) -> str:
        """``text`` with every secret masked in all its forms (a server may echo what it got),
        then cut to ``limit`` characters: masking first, so a cut never leaves part of a key."""
        text = secrets.mask(text)
        for secret in [self._key, *(self._headers[n] for n in self._header_names)]:
            if secret and len(secret) >= 4:
                text = text.replace(secret, secrets.MASK)
        text = text.replace("\n", " ").replace("\r", " ")
        return text if limit is None or len(text) <= limit else text[:limit] + "..."

    def body(self, messages: Sequence[Message], params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in params.apply_system(messages)],
            "temperature": params.temperature,
            "top_p": params.top_p,
            self.max_tokens_field: params.max_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        body.update(self.extra_body)
        return body

    async def _post(self, body: dict[str, Any], timeout: float | None = None) -> httpx.Response:
        try:
            return await self._get_client().post(f"{self.base_url}/chat/completions", json=body,
                                                  timeout=httpx.Timeout(timeout, connect=self.connect_timeout))
        except httpx.TimeoutException as exc:
            raise ModelCallError(f"timeout ({type(exc).__name__})", retryable=True) from None
        except httpx.TransportError as exc:
            raise ModelCallError(self._scrub(f"connection error ({type(exc).__name__}: {exc})", 300),
                                 retryable=True) from None
        except httpx.HTTPError as exc:  # e.g. an invalid header or URL built from the spec
            raise ModelCallError(self._scrub(f"request error ({type(exc).__name__}: {exc})", 300)) from None

    async def generate(self, messages: Sequence[Message], params: GenParams, *, probe_id: str = "",
                       sample: int = 0) -> Response:
        t0 = time.perf_counter()
        r = await self._post(self.body(messages, params))
        if r.status_code != 200:
            snippet = self._scrub(r.text, 200)
            raise ModelCallError(
                f"HTTP {r.status_code}: {snippet}",
                retryable=r.status_code in RETRY_STATUS,
                retry_after=parse_retry_after(r.headers.get("retry-after")),
                status=r.status_code,
            )
        try:
            data = r.json()
            choice = data["choices"][0]
            msg = choice.get("message")
            if not isinstance(msg, dict):
                raise TypeError("no message")
            content = msg.get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ModelCallError(f"malformed reply: {self._scrub(r.text, 200)!r}", retryable=True) from None
        if content is None:
            raise ModelCallError(
                f"empty reply: the server sent content null (finish_reason {choice.get('finish_reason')!r})")
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        text, think = split_reasoning(content)
        if think:
            reasoning = f"{reasoning}\n\n{think}" if reasoning else think
        usage = data.get("usage") or {}
        return self._response(
            probe_id, sample, text, reasoning=reasoning or None, finish_reason=choice.get("finish_reason"),
            latency_s=round(time.perf_counter() - t0, 4),
            prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
        )

    async def preflight(self) -> None:
        """One 1-token request: fails fast on a wrong URL, key or model name.

        ``preflight_timeout`` bounds the whole request (a server dribbling an endless body
        cannot hang it); transient faults are retried ``preflight_retries`` times; a 200 must
        parse as a chat completion with a message.
        """
        where = redact_url(self.base_url)
        body = self.body([Message(role="user", content="Hi")], GenParams(max_tokens=1))
        total = float(self.preflight_timeout or 30.0)
        r: httpx.Response | None = None
        last = ""
        for attempt in range(self.preflight_retries + 1):
            if attempt:
                await asyncio.sleep(min(0.25 * 2 ** attempt, 2.0))
            try:
                r = await asyncio.wait_for(self._post(body, timeout=total), total)
            except TimeoutError:
                last = f"no complete reply within {total:g} s"
                continue
            except ModelCallError as exc:
                last = str(exc)
                if not exc.retryable:
                    break
                continue
            if r.status_code in RETRY_STATUS and attempt < self.preflight_retries:
                continue
            break
        if r is None:
            raise HarmscopeError(self._scrub(f"cannot reach {where}: {last}", 300))
        if r.status_code == 200:
            why = _not_a_completion(r)
            if why:
                raise HarmscopeError(f"{where} answered the test request with HTTP 200 but not a chat "
                                     f"completion ({why}): is the base URL right (it usually ends in /v1)?")
            return
        if r.status_code in (401, 403):
            hint = f"check ${self.api_key_env}" if self._key else f"set an API key in ${self.api_key_env}"
            raise HarmscopeError(f"{where} rejected the API key (HTTP {r.status_code}): {hint}")
        if r.status_code in (400, 404, 422):
            models = await self._list_models()
            if models is not None and self.model not in models:
                listed = self._scrub(", ".join(models) or "none", 300)
                raise HarmscopeError(f"model {self.model!r} is not served at {where} (available: {listed})")
            if r.status_code == 404 and models is None:
                raise HarmscopeError(f"{where}/chat/completions not found (HTTP 404): is the base URL right "
                                     "(it usually ends in /v1)?")
        if r.status_code in RETRY_STATUS:
            return  # busy or rate-limited now: the run's retries handle it
        snippet = self._scrub(r.text, 200)
        raise HarmscopeError(f"{where} refused a test request (HTTP {r.status_code}): {snippet}")

    async def _list_models(self) -> list[str] | None:
        try:
            t = float(self.preflight_timeout or 30.0)
            r = await asyncio.wait_for(self._get_client().get(f"{self.base_url}/models", timeout=t), t)
            if r.status_code != 200:
                return None
            return sorted(str(m.get("id")) for m in r.json().get("data", []))
        except (httpx.HTTPError, ValueError, AttributeError, TypeError, TimeoutError):
            return None


def _not_a_completion(r: httpx.Response) -> str | None:
    """Why a 200 reply is not a chat completion, or None if it is one."""
    try:
        data = r.json()
    except (ValueError, UnicodeDecodeError):
        ctype = r.headers.get("content-type", "?").split(";")[0]
        return f"not JSON, content-type {ctype}"
    if not isinstance(data, dict):
        return "JSON but not an object"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return "no choices"
    if not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        return "no message in choices[0]"
    content = choices[0]["message"].get("content")
    if content is not None and not isinstance(content, str):
        return "message content is not text"
    return None
