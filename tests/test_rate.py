"""Fixed-rate load (``kfdex load --rate``): the schedule, coordinated omission corrected, and what it reports."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sandbox.control import Sandbox
from sandbox.httpserve import Reply, Request
from scripts.errors import ExitCode, UsageError
from scripts.load import report as loadreport
from scripts.load.engine import LoadTarget, run_load
from scripts.load.rate import run_rate
from tests.helpers import Env, Stub
from tests.test_load import seen_by_gateway, seen_since
from tests.test_load_tasks import ready  # noqa: F401  (the fixture: logged in, NodePort exposed, MODEL_HOST set)

STALL_S = 1.0


class Stalling:
    """A stand-in model server that answers at once, except that it stalls every request for ``STALL_S`` once, mid-run."""

    def __init__(self, after: int) -> None:
        self.after = after  # the stall starts with this request
        self.seen = 0
        self.until = 0.0
        self.lock = threading.Lock()

    def __call__(self, _request: Request) -> Reply:
        with self.lock:
            self.seen += 1
            if self.seen == self.after:
                self.until = time.monotonic() + STALL_S
            wait = self.until - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the server itself is paused: every request that arrives now waits for its end
        return Reply.json_text(200, '{"outputs": []}')


def target(stub: Stub) -> LoadTarget:
    return LoadTarget(f"http://127.0.0.1:{stub.port}/v2/models/m/infer", "POST", {"Content-Type": "application/json"}, b"{}")


def test_a_stall_shows_in_p99_at_a_fixed_rate(stub: Stub) -> None:
    stub.answer(Stalling(after=100))
    report = run_rate(target(stub), rate=100, duration=3.0, connections=2)
    figures = loadreport.summary(report)
    assert figures["errors"] == {} and report.requests == report.scheduled == 300
    # the ~100 requests due while the server stalled waited in the client: counted from their due time, they show
    # the stall; counted from when they left, only the 2 in flight would (under 1 %, so p99 would not)
    assert figures["latency_ms"]["p99"] >= 0.7 * STALL_S * 1000
    assert figures["rate"]["late"] > 0
    assert list(figures) == ["requests", "errors", "throughput_rps", "latency_ms", "duration_s", "rate"]
    assert list(figures["rate"]) == ["offered", "achieved", "late", "skipped"]


def test_the_closed_loop_hides_the_same_stall(stub: Stub) -> None:
    """What the correction is for: two workers waiting for their answers see the stall twice, not for every request due."""
    stub.answer(Stalling(after=40))
    report = run_load(target(stub), concurrency=2, duration=3.0)
    stalled = sum(1 for latency in report.latencies_us if latency >= 0.7 * STALL_S * 1_000_000)
    assert stalled <= 2


def test_sends_that_cannot_leave_in_time_are_skipped_and_said(stub: Stub) -> None:
    stub.answer(Stalling(after=1))  # stalls from the first request: one connection cannot keep 50 req/s
    report = run_rate(target(stub), rate=50, duration=0.5, connections=1)
    assert report.skipped > 0 and report.achieved_rps < 50
    assert "schedule was not kept" in loadreport.table(report)
    figures = json.loads(loadreport.to_json(report))
    assert figures["rate"]["skipped"] == report.skipped and figures["rate"]["offered"] == 50


def test_an_unstalled_run_keeps_the_rate(stub: Stub) -> None:
    stub.answer(lambda _request: Reply.json_text(200, "{}"))
    report = run_rate(target(stub), rate=100, duration=1.0, connections=4, warmup=5)
    assert report.requests == report.scheduled == 100 and report.skipped == 0
    assert loadreport.summary(report)["rate"]["achieved"] == 100.0


@pytest.mark.parametrize(
    ("arguments", "word"),
    [
        ({"rate": 0, "duration": 1.0}, "--rate"),
        ({"rate": float("nan"), "duration": 1.0}, "--rate"),
        ({"rate": 10, "duration": None}, "--duration"),
        ({"rate": 10, "duration": float("inf")}, "--duration"),
        ({"rate": 1, "duration": 0.5}, "sends nothing"),
        ({"rate": 10, "duration": 1.0, "connections": 0}, "--concurrency"),
    ],
)
def test_bad_rates_are_usage_errors(arguments: dict[str, float], word: str) -> None:
    arguments.setdefault("connections", 1)
    with pytest.raises(UsageError, match=word):
        run_rate(LoadTarget("http://127.0.0.1:9/"), **arguments)  # type: ignore[arg-type]


def test_load_rate_sends_infers_request_at_the_rate(ready: Env, cluster: Sandbox) -> None:  # noqa: F811
    before = seen_by_gateway(cluster, 200)
    ran = ready.invoke("load", "--rate", "100", "--duration", "1", "--via", "ingress", "--json")
    assert ran.returncode == 0, ran.stderr
    figures = json.loads(ran.stdout)
    assert figures["requests"] == 100 and figures["errors"] == {}
    assert figures["rate"]["offered"] == 100 and figures["rate"]["skipped"] == 0
    assert seen_since(cluster, before, 100, 200) == 100  # through the gateway with the session, each once


@pytest.mark.parametrize(
    ("arguments", "word"),
    [(("--rate", "0", "--duration", "1"), "--rate"), (("--rate", "10",), "--duration"), (("--rate", "10", "--requests", "5"), "--requests")],
)
def test_load_rate_bad_input_sends_nothing(ready: Env, cluster: Sandbox, arguments: tuple[str, ...], word: str) -> None:  # noqa: F811
    before = seen_by_gateway(cluster)
    ran = ready.invoke("load", *arguments, "--via", "ingress")
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert word in ran.stderr
    assert seen_since(cluster, before, 0) == 0
