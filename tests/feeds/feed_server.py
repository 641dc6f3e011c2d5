"""A real HTTP server on 127.0.0.1 for the sync tests (stdlib, in a thread).

It serves in-memory files with ETag / Last-Modified, answers conditional
requests with 304 and ``Range: bytes=N-`` with 206 (honouring If-Range), and
can misbehave on demand: cut a body in half, ignore Range, leave out validators.
:class:`ToFeedServer` sends requests for any host (the default sources' real
URLs) to it, so the sync service can be tested as it runs.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Resource:
    body: bytes
    last_modified: float = 1_700_000_000.0
    headers: dict[str, str] = field(default_factory=dict)
    validators: bool = True

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class FeedServer:
    resources: dict[str, Resource] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)  # paths whose next body is cut in half
    ignore_range: bool = False
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base_url: str = ""

    def put(self, path: str, body: bytes, **kwargs: object) -> Resource:
        resource = Resource(body, **kwargs)  # type: ignore[arg-type]
        self.resources[path] = resource
        return resource

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.requests.append((self.path, headers))
            resource = server.resources.get(self.path)
            if resource is None:
                self._reply(404, b"not found")
                return
            validators: dict[str, str] = {}
            if resource.validators:
                validators = {
                    "ETag": resource.etag,
                    "Last-Modified": formatdate(resource.last_modified, usegmt=True),
                }
            if resource.validators and self._not_modified(headers, resource):
                self._reply(304, b"", validators)
                return
            body, status, extra = resource.body, 200, dict(validators)
            start = self._range_start(headers, resource)
            if start is not None and not server.ignore_range:
                if start >= len(body):
                    self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    return
                status = 206
                extra["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                body = body[start:]
            extra.update(resource.headers)
            if self.path in server.cut:
                server.cut.discard(self.path)
                self._reply(status, body, extra, send=len(body) // 2)
                return
            self._reply(status, body, extra)

        def _not_modified(self, headers: dict[str, str], resource: Resource) -> bool:
            if "if-none-match" in headers:
                return headers["if-none-match"] == resource.etag
            if "if-modified-since" in headers:
                since = parsedate_to_datetime(headers["if-modified-since"]).timestamp()
                return resource.last_modified <= since
            return False

        def _range_start(self, headers: dict[str, str], resource: Resource) -> int | None:
            value = headers.get("range", "")
            if not value.startswith("bytes=") or not value.endswith("-"):
                return None
            if_range = headers.get("if-range")
            if if_range is not None and if_range != resource.etag:
                return None  # the file changed: send it whole
            return int(value[len("bytes=") : -1])

        def _reply(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            send: int | None = None,
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body if send is None else body[:send])
            self.wfile.flush()
            self.close_connection = True

    return Handler


class ToFeedServer(httpx.BaseTransport):
    """An HTTP transport that sends every request to the feed server, keeping
    its path: ``https://www.cisa.gov/x`` is served as ``/x`` on 127.0.0.1."""

    def __init__(self, server: FeedServer) -> None:
        self._target = httpx.URL(server.base_url)
        self._transport = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme="http", host=self._target.host, port=self._target.port
        )
        return self._transport.handle_request(request)

    def close(self) -> None:
        self._transport.close()


@contextmanager
def serve() -> Iterator[FeedServer]:
    state = FeedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
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
