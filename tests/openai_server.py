"""A small OpenAI-compatible HTTP server on loopback for the openai backend's tests.

It speaks real HTTP (the official client talks to it over a socket) and can be told to misbehave:
answer 429 with Retry-After, 500, garbage JSON, 401, an error quoting the request's headers
(``reflect``), or answer slowly, for the next N requests. It records each request's arrival time
and the most slow answers it held at once (``peak``), so tests check timing without a clock.
Its "model" is a rule a test can compute by hand: words are tokens (each keeps its leading
spaces), log p(token i | prefix) = ``token_logprob(prefix, token)``, and the greedy next token
after a prefix of n tokens is ``" g<n>"`` with log-prob ``-0.1 - 0.01 n``.

``mode`` picks how it echoes: ``"openai"`` (the spec: every prompt token, the first null),
``"generated_only"`` (llama.cpp's llama-server: echo accepted, log-probs of generated tokens
only) and ``"shifted"`` (llama-cpp-python's server on a text without BOS: each token paired with
the next position's distribution).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = re.compile(r"\s*\S+|\s+$")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


def token_logprob(prefix: str, token: str) -> float:
    """A fixed, hand-computable log-prob in [-5, -1); it can count to 8 (the probe's question)."""
    if prefix.endswith("7,") and token == " 8":
        return -0.05
    h = int(hashlib.sha256((prefix + "\x00" + token).encode()).hexdigest()[:8], 16) / 16**8
    return -1.0 - 4.0 * h


def greedy(n_prefix_tokens: int) -> tuple[str, float]:
    return f" g{n_prefix_tokens}", -0.1 - 0.01 * n_prefix_tokens


class FakeOpenAI:
    def __init__(self, mode: str = "openai") -> None:
        self.mode = mode
        self.faults: deque[tuple[str, Any]] = deque()  # (kind, arg) served before normal answers
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # time.monotonic() at each request's arrival
        self.active = self.peak = 0  # slow answers being waited on now, and the most at once
        self.chat_top: list[tuple[str, float]] = [("positive", -0.2), (" positive", -2.5), ("neg", -1.9), ("The", -3.0)]
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, kind: str, times: int = 1, arg: Any = None) -> None:
        for _ in range(times):
            self.faults.append((kind, arg))

    # --- the "model" ----------------------------------------------------------------------
    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["prompt"]
        tokens = tokenize(prompt)
        gen, gen_lp = greedy(len(tokens))
        max_tokens = body.get("max_tokens", 16)
        text = gen if max_tokens >= 1 else ""
        result: dict[str, Any] = {"text": (prompt + text) if body.get("echo") else text, "index": 0, "finish_reason": "length"}
        if body.get("logprobs") is not None:
            k = int(body["logprobs"])
            listed = ([*tokens, gen] if body.get("echo") and self.mode != "generated_only" else [gen])
            start = 0 if listed[0] is not gen else len(tokens)
            toks, lps, tops, offsets = [], [], [], []
            for j, tok in enumerate(listed):
                i = start + j
                row = i + 1 if self.mode == "shifted" else i  # the position whose distribution is used
                if tok is gen and i == len(tokens):
                    value = gen_lp
                else:
                    value = token_logprob("".join(tokens[:row]), tok)
                top_token, top_lp = greedy(row)
                top = {top_token: top_lp} if k >= 1 else {}
                top[tok] = value if not (tok is gen and i == len(tokens)) else gen_lp
                toks.append(tok)
                lps.append(value)
                tops.append(top)
                offsets.append(len("".join(tokens[:i])))
            if body.get("echo") and self.mode != "generated_only":
                lps[0], tops[0] = None, None
            result["logprobs"] = {"tokens": toks, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}
        else:
            result["logprobs"] = None
        return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"], "choices": [result],
                "usage": {"prompt_tokens": len(tokens), "completion_tokens": 1, "total_tokens": len(tokens) + 1}}

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        content = body["messages"][-1]["content"]
        top = [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in self.chat_top]
        logprobs = None
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            first = self.chat_top[0]
            logprobs = {"content": [{"token": first[0], "logprob": first[1], "bytes": list(first[0].encode()), "top_logprobs": top[:k]}]}
        message = {"role": "assistant", "content": f"echo: {content}"[: 4 * body.get("max_tokens", 16)]}
        return {"id": "chat-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow answer closed the socket: expected here


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _fault(self) -> bool:
        fake = self.fake
        with fake._lock:
            fault = fake.faults.popleft() if fake.faults else None
        if fault is None:
            return False
        kind, arg = fault
        if kind == "429":
            self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": str(arg or 1)})
        elif kind == "500":
            self._json(500, {"error": {"message": "boom", "type": "server_error"}})
        elif kind == "401":
            self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        elif kind == "reflect":  # a server that quotes the request back in its error
            quoted = {"headers": dict(self.headers), "path": self.path}
            self._json(int(arg or 400), {"error": {"message": f"bad request {json.dumps(quoted)}", "type": "invalid_request_error"}})
        elif kind == "garbage":
            self._send(200, b"{not json at all")
        elif kind == "slow":
            # Counted only while sleeping, i.e. before the answer is sent: a client that waits for
            # one answer before its next request can then never be seen twice, however late the
            # handler thread of the answered request finishes.
            with fake._lock:
                fake.active += 1
                fake.peak = max(fake.peak, fake.active)
            try:
                time.sleep(float(arg or 2))
            finally:
                with fake._lock:
                    fake.active -= 1
            return False  # then answer normally (the client has given up by then)
        return True

    def do_GET(self) -> None:
        self.fake.headers.append(dict(self.headers))
        self.fake.times.append(time.monotonic())
        if self._fault():
            return
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.fake.requests.append({"path": self.path, **body})
        self.fake.headers.append(dict(self.headers))
        self.fake.times.append(time.monotonic())
        if self._fault():
            return
        if self.path.endswith("/completions") and "/chat/" not in self.path:
            if self.fake.mode == "chat_only":
                self._json(404, {"error": {"message": "This is a chat model and not supported in the v1/completions endpoint."}})
            else:
                self._json(200, self.fake.completion(body))
        elif self.path.endswith("/chat/completions"):
            self._json(200, self.fake.chat(body))
        else:
            self._json(404, {"error": {"message": "not found"}})
