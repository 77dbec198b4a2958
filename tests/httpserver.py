"""A local HTTP server for tool tests: records requests, can delay and fail on demand."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    def __init__(self):
        self.requests: list[dict] = []
        self.delay_s = 0.0
        self.status = 200
        self.body: str | None = None  # what to answer instead of a small JSON document
        self.lock = threading.Lock()
        self.in_flight = self.peak_in_flight = 0

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for request in self.requests if request["path"] == path)


def serve() -> tuple[ThreadingHTTPServer, Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with recorder.lock:
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body.decode() or None,
                    }
                )
                recorder.in_flight += 1
                recorder.peak_in_flight = max(recorder.peak_in_flight, recorder.in_flight)
            time.sleep(recorder.delay_s)
            with recorder.lock:
                recorder.in_flight -= 1
            payload = json.dumps({"ok": recorder.status < 400, "path": self.path}).encode()
            if recorder.body is not None:
                payload = recorder.body.encode()
            self.send_response(recorder.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.request_queue_size = 128  # many calls connect at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, recorder
