"""Test doubles: a fake OpenAI-compatible server with seeded fault injection, and probe builders.

The fake server answers ``POST /v1/chat/completions`` with a reply that is a deterministic
function of the request (model, messages, max_tokens, temperature, seed), so a run through
faults must end with exactly the replies of a fault-free run. Faults, drawn per request from a
seeded RNG: 429 with ``Retry-After``, 500, 503, a reply slower than the client's timeout, and a
connection dropped in the middle of the response body. The 1-token preflight request is never
faulted. It listens on loopback only and runs in a background thread (``FakeChatServer``) or
as a process (``python -m harmscope.models.testing --port N``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from harmscope.types import Message, Probe, ProbeSet, ProbeSetManifest

FAULTS = ("429", "500", "503", "slow", "drop")


def fake_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The deterministic reply of the fake model to a chat-completions request body."""
    msgs = body.get("messages") or []
    key = json.dumps([body.get("model"), msgs, body.get("max_tokens"), body.get("temperature"),
                      body.get("seed")], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    last = next((m.get("content", "") for m in reversed(msgs) if m.get("role") == "user"), "")
    words = last.split()[: max(1, int(body.get("max_tokens") or 16))]
    text = f"answer {digest}: " + " ".join(reversed(words))
    msg: dict[str, Any] = {"role": "assistant", "content": text}
    if "think" in last:
        msg["content"] = f"<think>considering {digest}</think>{text}"
    if "reason" in last:
        msg["reasoning_content"] = f"reasoning {digest}"
    return {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in msgs),
                  "completion_tokens": len(text.split())},
    }


def probe_key(body: dict[str, Any]) -> str:
    """A short key of a request's conversation (to count deliveries per probe)."""
    return hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ServerStats:
    requests: int = 0
    ok: int = 0
    faults: Counter = field(default_factory=Counter)
    per_probe_ok: Counter = field(default_factory=Counter)
    times: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))


class FakeChatServer:
    """A loopback OpenAI-compatible server. Use as a context manager; ``url`` ends in ``/v1``.

    ``fault_rate``: probability that a request gets a fault (one of ``faults``, uniformly).
    ``delay``: seconds every reply waits (a slow but healthy model); ``slow_s``: the delay of a
    ``slow`` fault; ``retry_after``: the ``Retry-After`` value sent with 429 (and half the 503s).
    ``api_key``: when set, requests without ``Authorization: Bearer <key>`` get 401.
    ``model``: when set, other model names get 404.
    """

    def __init__(self, *, fault_rate: float = 0.0, faults: tuple[str, ...] = FAULTS, seed: int = 0,
                 delay: float = 0.0, slow_s: float = 2.0, retry_after: str = "0.05",
                 api_key: str | None = None, model: str | None = None, port: int = 0,
                 fault_first: int | None = None):
        self.fault_rate = fault_rate
        self.faults = faults
        self.rng = random.Random(seed)
        self.delay = delay
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.api_key = api_key
        self.model = model
        self.port = port
        self.fault_first = fault_first
        self.stats = ServerStats()
        self._n_real = 0
        self.seen_auth: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeChatServer:
        self._thread = threading.Thread(target=self._run, name="fake-chat-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake chat server did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve_forever(self) -> None:
        """Serve in the current loop (for ``python -m harmscope.models.testing``)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        print(f"listening {self.url}", flush=True)
        async with self._server:
            await self._server.serve_forever()

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(n) if n else b""
                keep = await self._dispatch(method, path, headers, raw, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, payload: Any,
                    extra: dict[str, str] | None = None) -> bool:
        body = json.dumps(payload).encode()
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Status")
        hdrs = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        hdrs.update(extra or {})
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        return True

    async def _dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes,
                        writer: asyncio.StreamWriter) -> bool:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return await self._send(writer, 401, {"error": {"message": "invalid api key"}})
        if "authorization" in headers:
            self.seen_auth.add(headers["authorization"])
        if method == "GET" and path.rstrip("/").endswith("/v1/models"):
            return await self._send(writer, 200, {"data": [{"id": self.model or "fake-model"}]})
        if method != "POST" or not path.rstrip("/").endswith("/v1/chat/completions"):
            return await self._send(writer, 404, {"error": {"message": f"no route {path}"}})
        body = json.loads(raw or b"{}")
        if self.model is not None and body.get("model") != self.model:
            return await self._send(writer, 404, {"error": {"message": f"model {body.get('model')} not found"}})
        st = self.stats
        st.requests += 1
        key = probe_key(body)
        preflight = body.get("max_tokens") == 1
        fault = None
        if not preflight:
            self._n_real += 1
            forced = self.fault_first is not None and self._n_real <= self.fault_first
            if forced or self.rng.random() < self.fault_rate:
                fault = self.rng.choice(self.faults)
        st.times[key].append((time.monotonic(), fault or "ok"))
        if fault:
            st.faults[fault] += 1
        if fault == "429":
            return await self._send(writer, 429, {"error": {"message": "slow down"}},
                                    {"Retry-After": self.retry_after})
        if fault == "500":
            return await self._send(writer, 500, {"error": {"message": "internal"}})
        if fault == "503":
            extra = {"Retry-After": self.retry_after} if self.rng.random() < 0.5 else None
            return await self._send(writer, 503, {"error": {"message": "overloaded"}}, extra)
        if fault == "drop":
            payload = json.dumps(fake_reply(body)).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            writer.write(head.encode() + payload[: len(payload) // 3])
            await writer.drain()
            writer.transport.abort()
            return False
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        elif self.delay:
            await asyncio.sleep(self.delay)
        if not preflight and fault is None:
            st.ok += 1
            st.per_probe_ok[key] += 1
        return await self._send(writer, 200, fake_reply(body))


# ---------------------------------------------------------------------- probes
def make_probe(text: str, *, rule: str = "insults", expected: str = "refuse", **kw: Any) -> Probe:
    """A probe with a valid content-hash id."""
    fields: dict[str, Any] = {
        "rule_ids": [rule], "template_id": "test", "messages": [{"role": "user", "content": text}],
        "expected": expected, **kw,
    }
    draft = Probe(id="", **fields)
    return draft.model_copy(update={"id": Probe.make_id(**draft.model_dump(mode="json"))})


def make_probe_set(n: int, *, prefix: str = "question") -> ProbeSet:
    """``n`` distinct single-turn probes wrapped in a probe set (set hash over the ids)."""
    from harmscope.types import content_hash

    probes = [make_probe(f"{prefix} number {i} about topic {i % 7}") for i in range(n)]
    h = content_hash({"test": True, "ids": [p.id for p in probes]})
    manifest = ProbeSetManifest(catalog_version="test", generator_version="test", seed=0,
                                counts={"probes": n}, set_hash=h)
    return ProbeSet(manifest=manifest, probes=probes)


def messages(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


def main() -> None:  # pragma: no cover - used by perf/harness.py
    ap = argparse.ArgumentParser(description="fake OpenAI-compatible server on loopback")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    args = ap.parse_args()
    srv = FakeChatServer(port=args.port, delay=args.delay, fault_rate=args.fault_rate)
    try:
        asyncio.run(srv.serve_forever())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
