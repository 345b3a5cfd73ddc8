"""The libcurl client of the load engine (pycurl, the ``load`` extra): the same promises as the thread engine."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sandbox.httpserve import Reply, Request
from scripts.core.errors import UsageError
from scripts.load.curlmulti import available, chosen
from scripts.load.engine import LoadTarget, run_load
from tests.helpers import Stub

CLIENTS = ["http.client", pytest.param("curl", marks=pytest.mark.skipif(not available(), reason="pycurl not installed"))]


class DropsTheSecond:
    """A raw HTTP/1.1 server that answers every request on a kept connection, but closes it on reading the second one.

    A client that resends a request whose reused connection died (libcurl does, on a fresh connection) shows up
    here as one more request seen.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.seen = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                self.answer(connection)

    def answer(self, connection: socket.socket) -> None:
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, _, pending = pending.partition(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
            )
            while len(pending) < length:
                pending += connection.recv(65536)
            pending = pending[length:]
            self.seen += 1
            if self.seen == 2:
                return  # read, never answered: the connection closes under the client
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def drops() -> Iterator[DropsTheSecond]:
    server = DropsTheSecond()
    yield server
    server.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_request_whose_connection_died_is_counted_not_resent(drops: DropsTheSecond, client: str) -> None:
    target = LoadTarget(f"http://127.0.0.1:{drops.port}/v2/models/m/infer", "POST", {"Content-Type": "application/json"}, b"{}")
    report = run_load(target, concurrency=1, requests=3, client=client)
    assert report.statuses == {"200": 2, "connection-error": 1}
    assert drops.seen == 3  # the dropped request was sent once: the third request is the third one seen


def test_curl_is_chosen_for_http_only() -> None:
    target = LoadTarget("http://127.0.0.1:9/")
    assert not chosen("http.client", target, None)
    assert not chosen("auto", None, object())  # gRPC senders keep their threads
    with pytest.raises(UsageError, match="--client"):
        chosen("wget", target, None)
    with pytest.raises(UsageError, match="HTTP only"):
        chosen("curl", None, object())


@pytest.mark.parametrize("client", CLIENTS)
def test_the_request_is_the_targets_and_no_proxy_sees_it(stub: Stub, client: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Request] = []

    def record(request: Request) -> Reply:
        seen.append(request)
        return Reply.json_text(200, "{}")

    stub.answer(record)
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # a proxy that would refuse: the request must not go there
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    body = b'{"inputs": [' + b"1," * 800 + b"1]}"  # over 1 KiB: libcurl would add Expect: 100-continue
    headers = {"Content-Type": "application/json", "Cookie": "authservice_session=s3cret", "Host": "m.ns.example.com"}
    report = run_load(
        LoadTarget(f"http://127.0.0.1:{stub.port}/v2/models/m/infer", "POST", headers, body),
        concurrency=1,
        requests=2,
        client=client,
    )
    assert report.statuses == {"200": 2}
    assert [(request.method, request.target, request.body) for request in seen] == [("POST", "/v2/models/m/infer", body)] * 2
    sent = seen[0].headers
    assert sent["cookie"] == "authservice_session=s3cret" and sent["host"] == "m.ns.example.com"
    assert sent["content-type"] == "application/json" and "expect" not in sent
