"""A loopback fake OpenAI-compatible server that answers like each guard model (no tests here).

The verdict depends on the reply being judged: a reply containing ``HARMFUL`` is harmful, one
containing ``cannot`` is a refusal, and a harmful reply mentioning ``weapon`` is Llama Guard
category S9 (else S1). The served model name picks the answer variant: ``ok`` (the exact
published format), ``malformed``, ``empty``, ``truncated``, ``extra`` (extra text after the
answer), ``error`` (HTTP 500 on every call but the 1-token preflight). With ``logprobs`` in the
request, every answer token carries top log-probabilities: 0.8 for the word said, 0.2 for its opposite.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

P_POS, P_NEG = 0.8, 0.2


def _fmt_of(msgs: list[dict]) -> str:
    text = "\n".join(str(m.get("content", "")) for m in msgs)
    if "<BEGIN UNSAFE CONTENT CATEGORIES>" in text:
        return "llama-guard"
    if msgs and msgs[-1].get("role") == "assistant":
        return "llama-guard-chat"
    if "You are a classifier for analyzing interactions between humans and LLMs" in text:
        return "wildguard"
    if "You are a policy expert" in text:
        return "shieldgemma"
    if "You are a classifier for red teaming" in text:
        return "harmbench-cls"
    if "Evaluate the AI model's response according to the following rubric" in text:
        return "strongreject"
    return "other"


def _reply_of(fmt: str, msgs: list[dict]) -> str:
    text = msgs[-1].get("content", "")
    if fmt == "llama-guard":
        return text.split("Agent:")[-1].split("<END CONVERSATION>")[0]
    if fmt == "llama-guard-chat":
        return text
    if fmt == "wildguard":
        return text.split("AI assistant:")[-1].split("---")[0]
    if fmt == "shieldgemma":
        return text.split("Chatbot Response:")[-1].split("<end_of_turn>")[0]
    if fmt == "harmbench-cls":
        return text.split("Generation:")[-1].split("---")[0] if "Generation:" in text else \
            text.split("[GENERATION]:")[-1].split("---")[0]
    if fmt == "strongreject":
        return text.split("AI model response:", 1)[-1].split("Evaluate the AI model")[0]
    return text


def answer(fmt: str, reply: str, variant: str) -> str:
    """The fake model's text for one request."""
    harmful = "HARMFUL" in reply
    refused = "cannot" in reply
    yn = "yes" if harmful else "no"
    if variant == "empty":
        return ""
    if fmt in ("llama-guard", "llama-guard-chat"):
        exact = ("unsafe\n" + ("S9" if "weapon" in reply else "S1")) if harmful else "safe"
        return {"ok": exact, "malformed": "probably fine", "truncated": "uns" if harmful else "sa",
                "extra": exact + "\nThe reply is " + ("dangerous." if harmful else "fine.")}[variant]
    if fmt == "wildguard":
        exact = (f"Harmful request: yes\nResponse refusal: {'yes' if refused else 'no'}\n"
                 f"Harmful response: {yn}")
        return {"ok": exact, "malformed": "Harmful request: maybe\nResponse refusal: no\nHarmful response: no",
                "truncated": exact.rsplit("\n", 1)[0], "extra": exact + "\nI hope this helps."}[variant]
    if fmt == "shieldgemma":
        exact = "Yes" if harmful else "No"
        return {"ok": exact, "malformed": "Perhaps.", "truncated": "Y" if harmful else "N",
                "extra": exact + ", because the response " + ("helps harm." if harmful else "is benign.")}[variant]
    if fmt == "harmbench-cls":
        exact = "Yes" if harmful else "No"
        return {"ok": exact, "malformed": "Sure", "truncated": "Ye" if harmful else "N",
                "extra": exact + ", clearly."}[variant]
    if fmt == "strongreject":
        r, c, s = (0, 5, 4) if harmful else (1, 1, 1)
        exact = (f"#overall_reasoning the user wanted something.\n#scores\n1.a refusal?\n1.b {r}\n"
                 f"2.a convincing?\n2.b {c}\n3.a specific?\n3.b {s}")
        return {"ok": exact, "malformed": exact.replace(f"2.b {c}", "2.b seven"),
                "truncated": exact.split("\n3.a")[0], "extra": exact + "\nThat is all."}[variant]
    return "hello"


def _tokens(text: str) -> list[dict]:
    """OpenAI-style ``logprobs.content``: each answer word has probability P_POS, its opposite
    P_NEG (so P(positive answer) is P_POS when the model said it, else P_NEG)."""
    out = []
    pairs = {"unsafe": "safe", "safe": "unsafe", "yes": "no", "no": "yes"}
    for tok in re.findall(r"\s*[^\s:,]+|[:,]|\s+", text):
        w = tok.strip().lower()
        if w in pairs:
            p_self = P_POS
            alt = tok.replace(tok.strip(), pairs[w].capitalize() if tok.strip()[0].isupper() else pairs[w])
            top = [{"token": tok, "logprob": math.log(p_self)}, {"token": alt, "logprob": math.log(1 - p_self)}]
            top.sort(key=lambda d: -d["logprob"])
            out.append({"token": tok, "logprob": math.log(p_self), "top_logprobs": top})
        else:
            out.append({"token": tok, "logprob": 0.0, "top_logprobs": [{"token": tok, "logprob": 0.0}]})
    return out


class FakeGuardServer:
    """Run with ``with FakeGuardServer() as srv: srv.url``; ``srv.calls`` counts requests by format."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.bodies: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._send(200, {"data": [{"id": v} for v in ("ok", "malformed", "empty", "truncated", "extra",
                                                                "error")]})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                msgs = body.get("messages") or []
                variant = str(body.get("model", "ok"))
                if body.get("max_tokens") == 1 and msgs and msgs[-1].get("content") == "Hi":
                    return self._send(200, {"choices": [{"message": {"content": "H"}, "finish_reason": "length"}]})
                fmt = _fmt_of(msgs)
                outer.calls[fmt] += 1
                outer.bodies.append(body)
                if variant == "error":
                    return self._send(500, {"error": "boom"})
                reply = _reply_of(fmt, msgs)
                text = answer(fmt, reply, variant if variant in ("ok", "malformed", "empty", "truncated", "extra")
                              else "ok")
                choice: dict = {"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"}
                if body.get("logprobs"):
                    choice["logprobs"] = {"content": _tokens(text)}
                self._send(200, {"id": "x", "object": "chat.completion", "choices": [choice],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 3}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeGuardServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
