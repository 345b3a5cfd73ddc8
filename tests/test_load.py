"""The load engine, its report and the Locust runner, against the real sandbox (MLServer and the gateway)."""

from __future__ import annotations

import io
import json
import re
import signal
import threading
from pathlib import Path

import pytest
import requests

from sandbox.control import Sandbox
from sandbox.gateway import MODEL_NAME, MODEL_NAMESPACE
from scripts.core.errors import UsageError
from scripts.load import report as loadreport
from scripts.load.engine import LoadTarget, Progress, run_load
from scripts.load.page import write_load
from scripts.load.progress import live_progress
from tests.helpers import ROOT, Env, locust_processes

PATH = f"/v2/models/{MODEL_NAME}/infer"
BODY = (ROOT / "payloads" / "iris.json").read_bytes()
JSON = {"Content-Type": "application/json"}
GATEWAY_AUDIENCE = "istio-ingressgateway.istio-system.svc.cluster.local"


def token_for(sandbox: Sandbox) -> str:
    """A ServiceAccount token the gateway accepts, minted as `kubectl create token` would."""
    answer = requests.post(
        f"http://127.0.0.1:{sandbox.api_port}/api/v1/namespaces/{MODEL_NAMESPACE}/serviceaccounts/default-editor/token",
        json={"spec": {"audiences": [GATEWAY_AUDIENCE], "expirationSeconds": 600}},
        timeout=10,
    )
    return str(answer.json()["status"]["token"])


def seen_by_gateway(sandbox: Sandbox, status: int | None = None) -> int:
    """How many infer calls the gateway's access log holds (optionally with this status), each answered one's line written."""
    sandbox.drain()
    lines = (sandbox.folder / "cluster.log").read_text().splitlines()
    return sum(
        1
        for line in lines
        if line.startswith(f"gateway POST {PATH} ") and (status is None or line.split()[3] == str(status))
    )


def seen_since(sandbox: Sandbox, before: int, status: int | None = None) -> int:
    """Infer calls logged since ``before`` (``seen_by_gateway``'s count): a retry shows as more calls than requests."""
    return seen_by_gateway(sandbox, status) - before


def model_target(sandbox: Sandbox) -> LoadTarget:
    return LoadTarget(f"http://127.0.0.1:{sandbox.model_port}{PATH}", "POST", JSON, BODY)


def gateway_target(sandbox: Sandbox, credential: dict[str, str]) -> LoadTarget:
    # Istio routes the model by Host: the isvc URL's host, as resolve-model writes it
    host = {"Host": f"sklearn-irisv2.{MODEL_NAMESPACE}.example.com"}
    return LoadTarget(f"http://127.0.0.1:{sandbox.gateway_port}{PATH}", "POST", {**JSON, **host, **credential}, BODY)


def test_200_requests_at_concurrency_4(sandbox: Sandbox) -> None:
    report = run_load(model_target(sandbox), concurrency=4, requests=200)
    assert report.requests == 200
    assert report.statuses == {"200": 200}
    assert report.errors == {} and not report.session_expired and not report.interrupted
    figures = json.loads(loadreport.to_json(report))
    assert list(figures) == ["requests", "errors", "throughput_rps", "latency_ms", "duration_s"]
    assert list(figures["latency_ms"]) == ["min", "p50", "p90", "p99", "max"]
    latency = figures["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert figures["requests"] == 200 and figures["errors"] == {} and figures["throughput_rps"] > 0
    text = loadreport.table(report)
    for label in ("requests", "errors", "throughput", "latency (ms)", "wall time"):
        assert label in text


def test_gateway_errors_are_counted_and_never_retried(cluster: Sandbox) -> None:
    target = gateway_target(cluster, {"Authorization": f"Bearer {token_for(cluster)}"})
    cluster.configure(faults=[{"path": PATH, "status": 503, "count": 15}])
    before = seen_by_gateway(cluster)
    report = run_load(target, concurrency=4, requests=100)
    assert report.requests == 100
    assert report.errors == {"503": 15}
    assert report.statuses == {"200": 85, "503": 15}
    assert seen_since(cluster, before) == 100  # one call per request: nothing retried
    assert loadreport.summary(report)["errors"] == {"503": 15}
    assert "503: 15" in loadreport.table(report)


def test_warmup_is_sent_but_not_counted(cluster: Sandbox) -> None:
    target = gateway_target(cluster, {"Authorization": f"Bearer {token_for(cluster)}"})
    before = seen_by_gateway(cluster)
    report = run_load(target, concurrency=2, requests=20, warmup=7)
    assert report.requests == 20 and report.errors == {}
    assert seen_since(cluster, before) == 27


def paced_target(cluster: Sandbox) -> LoadTarget:
    """The model through the gateway, each call taking 10 ms: a run for a duration sends hundreds of requests, not thousands."""
    cluster.configure(model_seconds=0.01)
    return gateway_target(cluster, {"Authorization": f"Bearer {token_for(cluster)}"})


def test_duration_bounds_the_run(cluster: Sandbox) -> None:
    report = run_load(paced_target(cluster), concurrency=2, duration=0.5)
    assert report.requests > 0
    assert 0.5 <= report.duration_s < 1.5


def test_session_expiring_mid_run_stops_it(sandbox_env: Env, cluster: Sandbox) -> None:
    login = sandbox_env.invoke("login")
    assert login.returncode == 0, login.stderr
    target = gateway_target(cluster, {"Cookie": sandbox_env.read()["AUTH_COOKIE"]})
    expired = threading.Event()

    def expire_after_some(progress: Progress) -> None:
        if progress.done >= 20 and not expired.is_set():
            expired.set()
            cluster.expire_sessions()

    report = run_load(target, concurrency=4, duration=10, progress=expire_after_some)
    assert report.session_expired
    assert report.duration_s < 5
    assert report.statuses["200"] >= 20
    assert set(report.errors) <= {"401", "403", "302"}  # the partial report shows how the gateway refused
    assert report.note.startswith("the gateway answered ") and report.note.endswith(" asking for a login")


def test_stop_returns_the_partial_report(sandbox: Sandbox) -> None:
    stop = threading.Event()

    def stop_after_some(progress: Progress) -> None:
        if progress.done >= 10:
            stop.set()

    report = run_load(model_target(sandbox), concurrency=2, duration=10, progress=stop_after_some, stop=stop)
    assert report.interrupted and report.requests >= 10 and report.duration_s < 5


def test_ctrl_c_stops_and_still_reports(sandbox: Sandbox) -> None:
    def interrupt_after_some(progress: Progress) -> None:
        if progress.done >= 10:
            signal.raise_signal(signal.SIGINT)  # as the terminal's Ctrl-C does

    # Python's own Ctrl-C handler, as a foreground process has: a suite started in the background (`pytest &`,
    # nohup) inherits SIGINT ignored, and the signal above would be lost
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = run_load(model_target(sandbox), concurrency=2, duration=10, progress=interrupt_after_some)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert report.interrupted and report.requests >= 10 and report.duration_s < 5
    assert loadreport.summary(report)["requests"] == report.requests


def test_html_report_is_self_contained(cluster: Sandbox, tmp_path: Path) -> None:
    report = run_load(paced_target(cluster), concurrency=2, duration=1.2)
    written = write_load(report, tmp_path / "load.html", {})
    page = written.read_text()
    assert re.search(r"<script[^>]*\bsrc=", page, re.IGNORECASE) is None  # no external script: the JS is inlined
    assert "Plotly.newPlot" in page and "Latency distribution" in page
    assert len(loadreport.series(report)) >= 1


@pytest.mark.parametrize(
    ("arguments", "word"),
    [
        ({"requests": 10, "duration": 1.0}, "either"),
        ({}, "either"),
        ({"requests": 0}, "--requests"),
        ({"requests": 5, "warmup": -1}, "--warmup"),
    ],
)
def test_bad_bounds_are_usage_errors(arguments: dict[str, float], word: str) -> None:
    with pytest.raises(UsageError, match=word):
        run_load(LoadTarget("http://127.0.0.1:9/"), concurrency=1, **arguments)  # type: ignore[arg-type]


def test_locust_workers_get_the_credential_from_the_master(
    cluster: Sandbox, monkeypatch: pytest.MonkeyPatch, own_locust: str
) -> None:
    from scripts.load.locust_run import require_locust, run_local

    require_locust()  # locust itself is never imported here: it would monkey-patch this process with gevent

    token = token_for(cluster)
    cluster.configure(model_seconds=0.01)  # the users pace themselves on the model, not on the machine's cores
    monkeypatch.setenv("AUTH_BEARER", token)  # must not reach the worker through its environment
    target = gateway_target(cluster, {"Authorization": f"Bearer {token}"})
    before = seen_by_gateway(cluster, 200)
    report = run_local(target, workers=1, users=2, spawn_rate=20, run_time="2s", timeout=60)
    # the worker had no credential but the master's message: the gateway answers 200 only with a valid token
    assert report.requests > 0
    assert report.statuses == {"200": report.requests} and report.errors == {}
    assert seen_since(cluster, before, 200) == report.requests
    assert not report.session_expired
    assert locust_processes(own_locust) == []


def test_locust_missing_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from scripts.load import locust_run

    monkeypatch.setattr(importlib.util, "find_spec", lambda *_: None)
    with pytest.raises(UsageError, match=r"\[load\]") as raised:
        locust_run.require_locust()
    assert raised.value.exit_code == 2


def test_locust_run_ends_when_the_gateway_asks_for_a_login(cluster: Sandbox, own_locust: str) -> None:
    from scripts.load.locust_run import require_locust, run_local

    require_locust()
    target = gateway_target(cluster, {"Authorization": "Bearer not-a-valid-token"})
    report = run_local(target, workers=1, users=2, spawn_rate=20, run_time="30s", timeout=60)
    assert report.session_expired  # the worker reported the refusal; the master ended the run long before 30 s
    assert report.duration_s < 10
    assert report.requests <= 2  # each user stopped at its refusal: a dead credential is not sent again
    assert set(report.errors) <= {"401", "403"} and report.errors and report.statuses.get("200", 0) == 0
    assert locust_processes(own_locust) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_only() -> None:
    with live_progress(stream=io.StringIO()) as callback:
        assert callback is None  # not a terminal: nothing drawn
    with live_progress(enabled=False, stream=_Terminal()) as callback:
        assert callback is None
    screen = _Terminal()
    with live_progress(stream=screen) as callback:
        assert callback is not None
        for done in (0, 50, 100):
            callback(Progress(done, 3, done / 100, 100, None))
    assert "req/s" in screen.getvalue() and "errors 3" in screen.getvalue()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_while_a_locust_process_starts_waits_until_it_is_recorded(name: str) -> None:
    """A process started as Ctrl-C (or a signal) arrives is recorded first, then the interrupt ends the run and stops it."""
    import signal

    from scripts.load.locust_run import interrupt_deferred

    number = signal.Signals[name]
    recorded, before = [], signal.getsignal(number)
    with pytest.raises(KeyboardInterrupt) as raised, interrupt_deferred():
        signal.raise_signal(number)  # as if it came while Popen returned
        recorded.append("the process")
    assert recorded == ["the process"]
    assert getattr(raised.value, "signum", None) == number  # the command exits 128 + this signal
    assert signal.getsignal(number) == before
