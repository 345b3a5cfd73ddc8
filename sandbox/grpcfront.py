"""The gateway's gRPC side: HTTP/2 (h2c) in front of MLServer's gRPC port, behind the same session check.

Istio serves gRPC on the same http2 port as HTTP, and the auth filter
(oidc-authservice or oauth2-proxy) runs before any route: a call without a
session gets the flavor's HTTP answer (302 to Dex, or 401/403 for the sign-in
generation) as a plain HTTP/2 response with no ``grpc-status``, which a gRPC
client sees as a failed call.  With a session, the ingress routes by
``:authority``: only the model's host reaches the model, any other gets
Envoy's 404.  A NodePort reaches the model server directly (no routing), behind
the same check, as ``sandbox.cluster.Sidecar`` does for HTTP.

A grpcio server cannot answer at the HTTP/2 layer, so this is written with h2
(hyper-h2, the HTTP/2 state machine): each unary call's message is passed to
MLServer with grpcio's generic (bytes in, bytes out) client and the answer is
relayed with its status in the trailers.  Streaming calls are not relayed.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from .gateway import StandInGateway, World
from .httpserve import Reply, Request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
UNAVAILABLE, UNIMPLEMENTED = 14, 12


def speaks_h2(connection: socket.socket) -> bool:
    """True when the client opened with HTTP/2's prior-knowledge preface (h2c), as gRPC clients do."""
    try:
        connection.settimeout(10)
        while True:
            seen = connection.recv(len(PREFACE), socket.MSG_PEEK)  # what has arrived so far, left in place
            if not seen or not PREFACE.startswith(seen):
                return False
            if len(seen) == len(PREFACE):
                return True
            time.sleep(0.005)
    except OSError:
        return False
    finally:
        connection.settimeout(None)


class GrpcFront:
    """Serve one HTTP/2 connection: ``route=True`` is the ingress (by ``:authority``), False a NodePort."""

    def __init__(
        self,
        world: World,
        grpc_port: int,
        route: bool,
        log: Callable[[str], None] = lambda _line: None,
        denial: Callable[[Request], Reply | None] | None = None,
    ) -> None:
        self.world = world
        self.denial = denial  # --components real: the Envoy stand-in's filter chain decides
        self.grpc_port = grpc_port
        self.route = route
        self.log = log
        self._channel = None
        self._lock = threading.Lock()

    def wants(self, connection: socket.socket) -> bool:
        return speaks_h2(connection)

    def __call__(self, connection: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        connection.sendall(conn.data_to_send())
        streams: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        while True:
            data = connection.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = (list(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id in streams:
                    headers, body = streams.pop(event.stream_id)
                    self._answer(conn, event.stream_id, headers, bytes(body))
                elif isinstance(event, h2.events.ConnectionTerminated):
                    connection.sendall(conn.data_to_send())
                    return
            connection.sendall(conn.data_to_send())

    # what the gateway decides --------------------------------------------------------

    def _answer(self, conn, stream_id: int, headers: list[tuple[str, str]], body: bytes) -> None:
        started = time.monotonic()
        request = _request(headers)
        authority = dict(headers).get(":authority", "")
        denied = self._denied(request)
        if denied is not None:
            outcome = self._http(conn, stream_id, denied)
        elif self.route and authority.rsplit(":", 1)[0].lower() != self.world.model_host:
            outcome = self._http(conn, stream_id, Reply(404, b"", [], None))  # Envoy: no route for this host
        elif self.world.settings.rbac_deny:
            outcome = self._http(conn, stream_id, Reply(403, b"RBAC: access denied"))
        elif request.path.endswith("/ModelInfer") and (refusal := self.world.before_inference()) is not None:
            outcome = self._status(conn, stream_id, UNAVAILABLE, refusal)
        else:
            outcome = self._forward(conn, stream_id, request.path, body)
        self.log(f"grpc {'ingress' if self.route else 'nodeport'} {request.path} {outcome} {1000 * (time.monotonic() - started):.1f}ms")

    def _denied(self, request: Request) -> Reply | None:
        """What the auth filter answers instead of the model, or None."""
        if self.denial is not None:
            return self.denial(request)
        return None if self.world.authenticated(request) else StandInGateway(self.world).unauthenticated(request)

    def _http(self, conn, stream_id: int, reply: Reply) -> str:
        """An HTTP answer with no gRPC status: what Envoy and the auth filter send a gRPC client."""
        headers = [(":status", str(reply.status)), ("server", "istio-envoy")]
        headers += [("content-type", reply.content_type)] if reply.content_type else []
        headers += [(name.lower(), value) for name, value in reply.headers if name.lower() != "server"]
        headers.append(("content-length", str(len(reply.body))))
        conn.send_headers(stream_id, headers, end_stream=not reply.body)
        if reply.body:
            conn.send_data(stream_id, reply.body[: conn.max_outbound_frame_size], end_stream=True)
        return str(reply.status)

    def _status(self, conn, stream_id: int, code: int, message: str) -> str:
        """A trailers-only gRPC answer: HTTP 200 with the status in the headers."""
        headers = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", str(code))]
        conn.send_headers(stream_id, [*headers, ("grpc-message", quote(message, safe=" "))], end_stream=True)
        return f"grpc-status {code}"

    def _forward(self, conn, stream_id: int, path: str, body: bytes) -> str:
        import grpc

        if len(body) < 5 or body[0] != 0 or struct.unpack(">I", body[1:5])[0] != len(body) - 5:
            return self._status(conn, stream_id, UNIMPLEMENTED, "the sandbox relays one uncompressed message per call")
        try:
            answer = self._upstream().unary_unary(path)(body[5:], timeout=60)
        except grpc.RpcError as error:
            return self._status(conn, stream_id, error.code().value[0], error.details() or "")
        conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        framed = b"\x00" + struct.pack(">I", len(answer)) + answer
        step = conn.max_outbound_frame_size
        for start in range(0, len(framed), step):
            conn.send_data(stream_id, framed[start : start + step])
        conn.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        return "grpc-status 0"

    def _upstream(self):
        import grpc

        with self._lock:
            if self._channel is None:
                self._channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
            return self._channel


def _request(headers: list[tuple[str, str]]) -> Request:
    """The HTTP/2 headers as the HTTP side's Request (lower-case names; split cookie headers joined)."""
    plain: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(":"):
            continue
        if name == "cookie" and "cookie" in plain:
            plain["cookie"] += "; " + value
        else:
            plain[name] = value
    pseudo = dict(headers)
    plain.setdefault("host", pseudo.get(":authority", ""))
    return Request(pseudo.get(":method", "POST"), pseudo.get(":path", "/"), plain, b"")
