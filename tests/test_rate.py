"""Fixed-rate load (``kfdex load --rate``): the schedule, coordinated omission corrected, and what it reports."""

from __future__ import annotations

import json
import threading
import time
from array import array
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from sandbox.httpserve import Reply, Request
from scripts.core.errors import ExitCode, UsageError
from scripts.load import report as loadreport
from scripts.load import sweep
from scripts.load.engine import LoadTarget, run_load
from scripts.load.rate import RateReport, run_rate
from tests.helpers import Env, Stub
from tests.test_curl_engine import CLIENTS
from tests.test_load import seen_by_gateway, seen_since

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


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stall_shows_in_p99_at_a_fixed_rate(stub: Stub, client: str) -> None:
    stub.answer(Stalling(after=200))
    report = run_rate(target(stub), rate=200, duration=3.0, connections=4, client=client)
    figures = loadreport.summary(report)
    # every due send is either counted or skipped (a busy machine may not catch up with the backlog before the end)
    assert figures["errors"] == {} and report.scheduled == 600 and report.requests + report.skipped == 600
    # the ~200 requests due while the server stalled waited in the client: counted from their due time, they show
    # the stall; counted from when they left, only the 4 in flight would (under 1 %, so p99 would not)
    assert figures["latency_ms"]["p99"] >= 0.7 * STALL_S * 1000
    assert figures["rate"]["late"] > 0
    assert list(figures) == ["requests", "errors", "throughput_rps", "latency_ms", "duration_s", "rate"]
    assert list(figures["rate"]) == ["offered", "achieved", "late", "skipped", "send_lag_ms"]
    # and the report says how much of that was the wait for a free connection: the sends' lag behind their due time
    assert figures["rate"]["send_lag_ms"]["p99"] >= 0.5 * STALL_S * 1000


def test_the_closed_loop_hides_the_same_stall(stub: Stub) -> None:
    """What the correction is for: two workers waiting for their answers see the stall twice, not for every request due."""
    stub.answer(Stalling(after=40))
    report = run_load(target(stub), concurrency=2, duration=1.5)  # the stall is over after about 1 s
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
    # achieved counts until the last send actually left: at most the 0.1 s grace after the 1 s window
    assert 100 / 1.11 <= loadreport.summary(report)["rate"]["achieved"] <= 100.0


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


def test_load_rate_sends_infers_request_at_the_rate(load_ready: Env, cluster: Sandbox) -> None:
    before = seen_by_gateway(cluster, 200)
    ran = load_ready.invoke("load", "--rate", "100", "--duration", "1", "--via", "ingress", "--json")
    assert ran.returncode == 0, ran.stderr
    figures = json.loads(ran.stdout)
    assert figures["requests"] == 100 and figures["errors"] == {}
    assert figures["rate"]["offered"] == 100 and figures["rate"]["skipped"] == 0
    assert seen_since(cluster, before, 200) == 100  # through the gateway with the session, each once


@pytest.mark.parametrize(
    ("arguments", "word"),
    [
        (("--rate", "0", "--duration", "1"), "--rate"),
        (("--rate", "10"), "--duration"),
        (("--rate", "10", "--requests", "5"), "--requests"),
        (("--slo-p99", "50", "--duration", "1"), "--sweep"),
        (("--sweep", "10,20", "--rate", "10", "--duration", "1"), "--rate"),
        (("--sweep", "10,20,5", "--duration", "1"), "rising"),
        (("--sweep", "10,20", "--duration", "1", "--slo-p99", "-1"), "--slo-p99"),
        (("--rate", "10", "--duration", "1", "--client", "wget"), "--client"),
    ],
)
def test_load_rate_bad_input_sends_nothing(load_ready: Env, cluster: Sandbox, arguments: tuple[str, ...], word: str) -> None:
    before = seen_by_gateway(cluster)
    ran = load_ready.invoke("load", *arguments, "--via", "ingress")
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert word in ran.stderr
    assert seen_since(cluster, before) == 0


def measured(rate: float, latency_ms: float, failed: int = 0, skipped: int = 0) -> RateReport:
    """A fixed-rate run's report as a sweep step would get it: 100 answers at one latency, some failed."""
    count = 100
    statuses = {"200": count - failed, **({"503": failed} if failed else {})}
    return RateReport(
        requests=count,
        statuses=statuses,
        duration_s=1.0,
        latencies_us=array("q", [round(latency_ms * 1000)] * count),
        codes=["200"] * count,
        offered_rps=rate,
        window_s=1.0,
        scheduled=count + skipped,
    )


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ("100:300:100", [100, 200, 300]),
        ("100:350:100", [100, 200, 300]),
        ("50,100,400", [50, 100, 400]),
        ("0.5:1.5:0.5", [0.5, 1, 1.5]),
    ],
)
def test_sweep_rates_are_read(spec: str, wanted: list[float]) -> None:
    assert sweep.rates(spec) == wanted


@pytest.mark.parametrize("spec", ["", "a:b:c", "300:100:100", "100:200:0", "100,50", "0,10", "1:1000:1", "100:200", "nan,1"])
def test_bad_sweeps_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError, match="--sweep"):
        sweep.rates(spec)


def test_the_knee_is_the_highest_rate_meeting_the_slo_with_no_errors() -> None:
    latencies = {100: 5.0, 200: 8.0, 300: 9.0, 400: 15.0, 500: 40.0}
    failed = {300: 1}  # p99 met, but an answer failed: not the knee
    ran: list[float] = []

    def run(rate: float) -> RateReport:
        ran.append(rate)
        return measured(rate, latencies[int(rate)], failed.get(int(rate), 0))

    result = sweep.run_sweep([100, 200, 300, 400, 500, 600, 700], 10.0, run)
    assert result.knee == 200
    assert ran == [100, 200, 300, 400, 500]  # 40 ms is over twice the 10 ms SLO: 600 and 700 are not tried
    assert "stopped after 500 req/s" in result.stopped_early
    figures = sweep.summary(result)
    assert figures["knee_rps"] == 200 and len(figures["steps"]) == 5 and figures["steps"][0]["rate"]["offered"] == 100
    text = sweep.table(result)
    assert "knee: 200 req/s" in text and "missed" in text


def test_a_sweep_stops_when_the_client_cannot_keep_the_rate() -> None:
    result = sweep.run_sweep([100, 200, 300], 10.0, lambda rate: measured(rate, 1.0, skipped=5 if rate == 200 else 0))
    assert [step.rate for step in result.steps] == [100, 200] and result.knee == 100
    assert "skipped" in result.stopped_early


def test_load_sweep_finds_a_knee_on_the_sandbox(load_ready: Env, tmp_path: Path) -> None:
    page = tmp_path / "sweep.html"
    # 16 connections: on a busy machine a stalled answer must not leave a send waiting at the window's end (skipped)
    arguments = ["--sweep", "50,100", "--duration", "0.5", "--concurrency", "16", "--slo-p99", "2000", "--json", "--html", str(page)]
    ran = load_ready.invoke("load", *arguments)
    assert ran.returncode == 0, ran.stderr
    figures = json.loads(ran.stdout)
    assert figures["knee_rps"] == 100 and figures["stopped_early"] == "", ran.stdout
    assert [step["rate"]["offered"] for step in figures["steps"]] == [50, 100]
    assert [step["requests"] for step in figures["steps"]] == [25, 50]
    text = page.read_text()
    assert "knee 100 req/s" in text and "sweep 50,100 req/s over 16 connections" in text and "session cookie" in text


def test_a_step_cut_short_is_never_the_knee() -> None:
    """Ctrl-C a second into a step: its few answers may look fine, but the step was not measured."""

    def run(rate: float) -> RateReport:
        report = measured(rate, 1.0)
        report.interrupted = rate == 200
        return report

    result = sweep.run_sweep([100, 200, 300], 10.0, run)
    assert [step.rate for step in result.steps] == [100, 200] and result.knee == 100
    assert "cut short" in sweep.table(result) and sweep.summary(result)["knee_rps"] == 100
