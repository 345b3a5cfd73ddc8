"""A small threaded HTTP server for the sandbox's stand-ins, bound to 127.0.0.1 on a free port.

Each stand-in is an ``App``: a function from a ``Request`` to a ``Reply``.
Keep-alive works (HTTP/1.1 with a Content-Length on every reply), so clients
and benchmarks see connection reuse as they would against Envoy.  The access
log holds method, path (no query), status and time: never a header or body.

A listener started with ``envoy=True`` writes its headers as Istio's ingress
gateway (Envoy) does: every name in lower case, ``server: istio-envoy``.
Redirects are written as Go's ``http.Redirect`` writes them, since Dex,
oidc-authservice and oauth2-proxy are Go programs.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Protocol
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """What a stand-in sees of a request."""

    method: str
    target: str  # path and query as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items()}

    def form(self) -> dict[str, str]:
        """The urlencoded body as a dict."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def cookies(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                found[name] = value
        return found


@dataclass
class Reply:
    """A response: status, headers (repeatable, e.g. Set-Cookie) and body."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "text/plain; charset=utf-8"  # None: no Content-Type header

    @classmethod
    def html(cls, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Reply:
        return cls(status, text.encode(), headers or [], "text/html; charset=utf-8")

    @classmethod
    def json_text(cls, status: int, text: str) -> Reply:
        return cls(status, text.encode(), [], "application/json")

    @classmethod
    def redirect(cls, method: str, status: int, location: str, headers: list[tuple[str, str]] | None = None) -> Reply:
        """A redirect as Go's ``net/http.Redirect`` answers the request ``method``.

        GET gets ``<a href="URL">Found</a>.`` and two newlines (``See Other`` for
        303) as text/html; HEAD the content type without a body; any other method
        (a POST of credentials) neither body nor content type.
        """
        extra = [("Location", _hex_escape_non_ascii(location)), *(headers or [])]
        if method == "GET":
            body = f'<a href="{_go_html_escape(location)}">{_STATUS_TEXT.get(status, "Found")}</a>.\n\n'
            return cls(status, body.encode(), extra, "text/html; charset=utf-8")
        return cls(status, b"", extra, "text/html; charset=utf-8" if method == "HEAD" else None)


_STATUS_TEXT = {301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect"}


def _go_html_escape(text: str) -> str:
    """net/http's htmlEscape (not html/template's): & < > " ' only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;")


def _hex_escape_non_ascii(text: str) -> str:
    """net/http's hexEscapeNonASCII for the Location header: bytes >= 0x80 as %XX."""
    return "".join(f"%{byte:02x}" if byte >= 0x80 else chr(byte) for byte in text.encode())


App = Callable[[Request], Reply]


class H2App(Protocol):
    """What serves a connection that speaks HTTP/2 (sandbox.grpcfront.GrpcFront)."""

    def wants(self, connection: socket.socket) -> bool: ...

    def __call__(self, connection: socket.socket) -> None: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY a keep-alive
    # client waits on delayed ACKs (about 40 ms a call)
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        with self.server.busy:
            self.server.active += 1
        try:
            self._answer()
        finally:
            with self.server.busy:
                self.server.active -= 1
                self.server.busy.notify_all()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        started = time.monotonic()
        try:
            reply = self.server.app(request)
        except Exception as error:  # a stand-in bug must not hang the client
            reply = Reply(500, f"sandbox error: {type(error).__name__}: {error}".encode())
        envoy = self.server.envoy
        headers = [("Content-Type", reply.content_type)] if reply.content_type else []
        headers += [*reply.headers, ("Content-Length", str(len(reply.body)))]
        try:
            if envoy:  # Envoy's HTTP/1 codec writes every name in lower case, and names itself the server
                self.log_request(reply.status)
                self.send_response_only(reply.status)
                headers = [(name.lower(), value) for name, value in headers if name.lower() not in ("server", "date")]
                headers += [("date", self.date_time_string()), ("server", "istio-envoy")]
            else:
                self.send_response(reply.status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        finally:  # logged even when the client left before the answer (as an access log does)
            self.server.log(
                f"{self.server.name} {self.command} {request.path} {reply.status} {1000 * (time.monotonic() - started):.1f}ms"
            )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        return  # our own access log is written by _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str, app: App, port: int, log: Callable[[str], None], envoy: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.name = name
        self.envoy = envoy
        self.app = app
        self.log = log
        self.h2: H2App | None = None
        self.active = 0  # HTTP/1.1 requests being answered (their log line not yet written)
        self.busy = threading.Condition()

    def finish_request(self, request, client_address) -> None:
        """HTTP/1.1 to the app; a connection opening with HTTP/2's preface (gRPC) to the h2 app, when there is one."""
        if self.h2 is not None and self.h2.wants(request):
            self.h2(request)
        else:
            super().finish_request(request, client_address)


class Listener:
    """A running server: ``port`` is where it listens; ``stop()`` closes it.

    ``envoy=True``: answer with Envoy's lower-case header names (the ingress gateway).
    ``h2``: serves the connections that open with HTTP/2's preface (gRPC), as Envoy does on one port.
    """

    def __init__(
        self,
        name: str,
        app: App,
        log_file: IO[str] | None = None,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        envoy: bool = False,
        h2: H2App | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._log_file = log_file
        self.server = _Server(name, app, port, self._log, envoy)
        self.server.h2 = h2
        if tls is not None:  # HTTPS, as an ingress with a certificate serves it
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"serve-{name}", daemon=True)
        self.thread.start()

    def _log(self, line: str) -> None:
        if self._log_file is None:
            return
        with self._lock:
            self._log_file.write(line + "\n")
            self._log_file.flush()

    def wait_idle(self, timeout: float, still_answering: int = 0) -> bool:
        """Wait until no request is being answered (each has written its log line); False if ``timeout`` passed first.

        ``still_answering``: requests allowed to remain (1 when the one that waits is answered here).
        """
        with self.server.busy:
            return self.server.busy.wait_for(lambda: self.server.active <= still_answering, timeout)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
