"""A real HTTP server on 127.0.0.1 serving a directory (stdlib, in a thread).

``http.server``'s file handler already sends Last-Modified and answers
If-Modified-Since with 304; this adds an ETag (If-None-Match → 304), a request
log, and misbehaviour on demand: an error status, a body cut short, or other
bytes than the file's.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class RepoServer:
    root: Path
    base_url: str = ""
    status: dict[str, int] = field(default_factory=dict)  # path -> error status
    cut: set[str] = field(default_factory=set)  # paths whose body is cut in half
    replace: dict[str, bytes] = field(default_factory=dict)  # path -> body served instead
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class _Handler(SimpleHTTPRequestHandler):
    state: RepoServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state = self.state
        headers = {k.lower(): v for k, v in self.headers.items()}
        state.requests.append((self.path, headers))
        if self.path in state.status:
            self.send_error(state.status[self.path])
            return
        file = Path(self.translate_path(self.path))
        if not file.is_file():
            self.send_error(404)
            return
        body = state.replace.get(self.path, file.read_bytes())
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if headers.get("if-none-match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        if "if-none-match" not in headers and "if-modified-since" in headers:
            super().do_GET()  # the stdlib handler answers If-Modified-Since
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", self.date_time_string(int(file.stat().st_mtime)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in state.cut:
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)


@contextmanager
def serve(root: Path) -> Iterator[RepoServer]:
    state = RepoServer(root)
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
