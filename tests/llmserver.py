"""A local LLM vendor for tests: speaks Anthropic's, OpenAI's and Ollama's wire formats.

Each test scripts the replies as a queue of behaviours, answered in turn (then the default):
    ("ok", text, input_tokens, output_tokens)
    ("status", code) / ("status", code, headers) / ("status", code, headers, message)
        an error in the vendor's own error document
    ("malformed",)     200 with a body that is not JSON
    ("no_usage",)      200 with a good reply minus its usage
    ("json", document) 200 with exactly this document
    ("sleep", seconds) wait, then the default reply
"""

import contextlib
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KIND_BY_PATH = {
    "/v1/messages": "anthropic",
    "/v1/chat/completions": "openai",
    "/api/chat": "ollama",
}
DEFAULT_REPLY = ("ok", "Hello from the test vendor.", 12, 7)

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
OPENAI_ERROR_TYPES = {  # (type, code)
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class LLMRecorder:
    def __init__(self):
        self.root = ""  # http://127.0.0.1:PORT, set once the server listens
        self.requests: list[dict] = []  # path, headers (lower-cased names), json, at (monotonic)
        self.delay_s = 0.0  # before every reply
        self.script: deque[tuple] = deque()
        self.lock = threading.Lock()

    def base_url(self, kind: str) -> str:
        """Return the base_url a provider of this kind would be configured with."""
        return self.root + "/v1" if kind == "openai" else self.root

    def then(self, *behaviours: tuple) -> None:
        with self.lock:
            self.script.extend(behaviours)

    def take(self) -> tuple:
        with self.lock:
            return self.script.popleft() if self.script else DEFAULT_REPLY


def serve_llm() -> tuple[ThreadingHTTPServer, LLMRecorder]:
    recorder = LLMRecorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            with recorder.lock:
                recorder.requests.append(
                    {
                        "path": self.path,
                        "headers": {name.lower(): value for name, value in self.headers.items()},
                        "json": body,
                        "at": time.monotonic(),
                    }
                )
            time.sleep(recorder.delay_s)
            kind = KIND_BY_PATH.get(self.path)
            if kind is None:
                self._answer(404, {"error": {"message": f"no route {self.path}"}})
                return
            model = (body or {}).get("model", "")
            # A client that gave up waiting (as timeout tests mean it to) closed the socket.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._behave(kind, model, recorder.take())

        def _behave(self, kind: str, model: str, behaviour: tuple) -> None:
            name, *args = behaviour
            if name == "sleep":
                time.sleep(args[0])
                name, *args = DEFAULT_REPLY
            if name == "ok":
                self._answer(200, ok_document(kind, model, *args))
            elif name == "no_usage":
                self._answer(200, without_usage(kind, ok_document(kind, model, *DEFAULT_REPLY[1:])))
            elif name == "json":
                self._answer(200, args[0])
            elif name == "malformed":
                self._answer(200, '{"choices": [{"message": ')
            elif name == "status":
                status, headers, message = (*args, None, None)[:3]
                self._answer(status, error_document(kind, status, message), headers)
            else:
                raise ValueError(f"unknown behaviour {behaviour!r}")

        def _answer(self, status: int, document, headers: dict | None = None) -> None:
            payload = (document if isinstance(document, str) else json.dumps(document)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.request_queue_size = 128  # many calls connect at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.root = f"http://127.0.0.1:{server.server_port}"
    # A short poll lets close() return at once instead of after the default half second.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, recorder


def close(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def ok_document(kind: str, model: str, text: str, input_tokens: int, output_tokens: int) -> dict:
    if kind == "anthropic":
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    if kind == "openai":
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
    return {
        "model": model,
        "created_at": "2024-07-01T12:00:00.000000Z",
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000,
        "prompt_eval_count": input_tokens,
        "eval_count": output_tokens,
    }


def without_usage(kind: str, document: dict) -> dict:
    fields = {"prompt_eval_count", "eval_count"} if kind == "ollama" else {"usage"}
    return {key: value for key, value in document.items() if key not in fields}


def error_document(kind: str, status: int, message: str | None = None) -> dict:
    message = message or f"test vendor says {status}"
    if kind == "anthropic":
        error_type = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}
    if kind == "openai":
        error_type, code = OPENAI_ERROR_TYPES.get(status, ("server_error", None))
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return {"error": message}
