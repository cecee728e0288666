"""A real HTTP server standing in for the web service an automated step action calls: it records each
call (path, headers, JSON body) and answers 200, or the statuses queued in `Receiver.answers`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class Receiver(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, Any]]] = []
    answers: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.calls.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body or b"null")})
        status = Receiver.answers.pop(0) if Receiver.answers else 200
        payload = json.dumps({"accepted": status < 300}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def receiving() -> Iterator[str]:
    """The receiver on a free port of 127.0.0.1, its calls and answers cleared; its base URL."""
    Receiver.calls = []
    Receiver.answers = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
