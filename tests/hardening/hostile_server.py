"""A hostile OpenAI-compatible server on 127.0.0.1 for the hardening tests.

``mode`` picks the behaviour (it can be changed while the server runs); every loop is bounded.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harmscope.models.testing import fake_reply

MODES = ("ok", "echo401", "echo500", "dribble", "html", "badjson", "nochoices", "null", "drop-first",
         "slow", "echo200")


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - /v1/models
        self._send(200, json.dumps({"data": [{"id": "m"}]}).encode())

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        srv = self.server
        with srv.lock:
            srv.requests += 1
            count = srv.requests
        mode = srv.mode
        auth = self.headers.get("Authorization", "")
        preflight = body.get("max_tokens") == 1
        if mode in ("echo401", "echo500", "echo200"):
            key = auth.removeprefix("Bearer ")
            escaped = json.dumps(key)[1:-1].replace("/", "\\/")
            text = (f"invalid api key {key} ({escaped}); " + "x" * 150 + f" you sent: {auth}"
                    + " trailing " + key[: len(key) // 2])
            if mode == "echo200":
                self._send(200, json.dumps({"choices": [{"message": {"role": "assistant",
                                                                     "content": f"echo {key}"}}]}).encode())
                return
            self._send(401 if mode == "echo401" else 500,
                       json.dumps({"error": {"message": text}}).encode())
            return
        if mode == "dribble":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(200):  # bounded: at most ~40 s, the client gives up long before
                    self.wfile.write(b"1\r\n \r\n")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            self.close_connection = True
            return
        if mode == "html":
            self._send(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
            return
        if mode == "badjson":
            self._send(200, b"{not json")
            return
        if mode == "nochoices":
            self._send(200, b'{"choices": []}')
            return
        if mode == "drop-first" and count == 1:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        reply = fake_reply(body)
        if mode == "null" and not preflight:
            reply["choices"][0]["message"]["content"] = None
        if mode == "slow" and not preflight:
            srv.gate.wait(timeout=srv.delay)  # held until the test opens the gate (bounded)
        self._send(200, json.dumps(reply).encode())


class HostileServer(ThreadingHTTPServer):
    """``with HostileServer("echo401") as s: s.url``"""

    daemon_threads = True

    def __init__(self, mode: str = "ok", delay: float = 0.3):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.delay = delay
        self.requests = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
