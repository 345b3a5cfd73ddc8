"""`load` and `locust` as a person runs them: same request as infer, the summary on stdout, exit codes."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from scripts.core.errors import ExitCode, UsageError
from tests.helpers import ROOT, Env, locust_processes
from tests.test_load import PATH, seen_by_gateway, seen_since

SUMMARY_KEYS = {"requests", "errors", "throughput_rps", "latency_ms", "duration_s"}


def test_load_prints_the_json_summary(load_ready: Env) -> None:
    ran = load_ready.invoke("load", "--requests", "200", "--concurrency", "4", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["requests"] == 200 and summary["errors"] == {}
    latency = summary["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert summary["throughput_rps"] > 0


def test_load_counts_failures_and_never_retries(load_ready: Env, cluster: Sandbox) -> None:
    cluster.configure(faults=[{"path": PATH, "status": 503, "count": 15}])
    before = seen_by_gateway(cluster)
    ran = load_ready.invoke("load", "--requests", "100", "--concurrency", "4", "--via", "ingress", "--json")
    assert ran.returncode == ExitCode.MODEL, ran.stderr  # failed requests fail the run: CI sees it
    summary = json.loads(ran.stdout)  # and the report is printed all the same
    assert summary["requests"] == 100 and summary["errors"] == {"503": 15}
    assert seen_since(cluster, before) == 100  # one call per request: nothing retried
    assert ran.stderr.strip().splitlines()[-1] == (
        "error: 15 of 100 requests failed (503 ×15), more than --max-errors 0 allows: see the figures above"
    )


@pytest.mark.parametrize(("tolerance", "code"), [("15", 0), ("14", ExitCode.MODEL), ("15%", 0), ("14.5%", ExitCode.MODEL)])
def test_max_errors_sets_how_many_failures_pass(load_ready: Env, cluster: Sandbox, tolerance: str, code: int) -> None:
    cluster.configure(faults=[{"path": PATH, "status": 503, "count": 15}])
    ran = load_ready.invoke("load", "--requests", "100", "--via", "ingress", "--json", "--max-errors", tolerance)
    assert ran.returncode == code, ran.stderr
    assert json.loads(ran.stdout)["errors"] == {"503": 15}


def test_a_run_where_every_request_failed_is_never_a_success(load_ready: Env) -> None:
    load_ready.set(MODEL_NAME="no-such-model")
    ran = load_ready.invoke("load", "--requests", "20", "--max-errors", "100%")
    assert ran.returncode == ExitCode.MODEL, ran.stderr
    assert ran.stderr.strip().splitlines()[-1].startswith("error: all 20 requests failed (404 ×20): nothing was measured")


def test_load_where_every_request_fails_exits_9(load_ready: Env) -> None:
    load_ready.set(MODEL_NAME="no-such-model")
    ran = load_ready.invoke("load", "--requests", "20")
    assert ran.returncode == ExitCode.MODEL, ran.stderr
    assert "404: 20" in ran.stdout  # the table
    assert ran.stderr.strip().splitlines()[-1].startswith("error: 20 of 20 requests failed (404 ×20)")


def test_locust_with_no_request_exits_non_zero(load_ready: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.load import locust_run
    from scripts.load.engine import LoadReport

    monkeypatch.setattr(locust_run, "run_local", lambda *_, **__: LoadReport(0, {}, 30.0))  # Locust measured nothing
    ran = load_ready.invoke("locust", "--run-time", "30s", "--json")
    assert ran.returncode == ExitCode.MODEL, ran.stderr
    assert json.loads(ran.stdout)["requests"] == 0
    assert ran.stderr.strip().splitlines()[-1] == "error: the run completed no request: nothing was measured (see the figures above)"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def test_ctrl_c_while_the_master_waits_for_workers_exits_130(load_ready: Env, own_locust: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.load import locust_run

    def interrupted_while_waiting(process: locust_run.LocustProcess, _deadline: float) -> None:
        """Ctrl-C once the master listens for its worker (none will come); Locust itself says so only after 5 s."""
        while not _listening(port):
            assert process.process.poll() is None, process.log.read_text()
            time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(locust_run, "_wait", interrupted_while_waiting)
    port = locust_run.free_port()
    ran = load_ready.invoke("locust", "--master", "--expect-workers", "1", "--master-port", str(port), "--run-time", "30s")
    assert ran.returncode == ExitCode.INTERRUPTED, ran.stderr
    assert "Traceback" not in ran.stderr and "gevent" not in ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == "error: interrupted"
    assert locust_processes(own_locust) == []


def test_load_prints_a_table_by_default(load_ready: Env) -> None:
    ran = load_ready.invoke("load", "--requests", "50")
    assert ran.returncode == 0, ran.stderr
    for label in ("requests", "throughput", "p50", "p99"):
        assert label in ran.stdout


def test_load_without_a_session_sends_nothing(sandbox_env: Env, cluster: Sandbox) -> None:
    sandbox_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port), MODEL_HOST="m")
    before = seen_by_gateway(cluster)
    ran = sandbox_env.invoke("load", "--requests", "10")
    assert ran.returncode == ExitCode.SESSION and "run `invoke login`" in ran.stderr
    assert seen_by_gateway(cluster) == before


def test_a_session_refused_from_the_start_is_not_called_expired_mid_run(load_ready: Env, cluster: Sandbox) -> None:
    cluster.expire_sessions()  # the saved cookie looks valid, the gateway no longer takes it
    ran = load_ready.invoke("load", "--requests", "20", "--json")
    assert ran.returncode == ExitCode.SESSION, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the gateway refused the session from the first request (the gateway answered "), last
    assert last.endswith("asking for a login): run `invoke login`"), last


def test_load_refuses_both_bounds(load_ready: Env) -> None:
    ran = load_ready.invoke("load", "--requests", "10", "--duration", "1")
    assert ran.returncode == ExitCode.USAGE and "give --requests or --duration, not both" in ran.stderr


def test_locust_task_prints_the_same_summary_and_leaves_no_process(load_ready: Env, cluster: Sandbox, own_locust: str) -> None:
    cluster.configure(model_seconds=0.02)  # eight users pace themselves on the model, not on the machine's two cores
    ran = load_ready.process("locust", "--workers", "2", "--users", "8", "--spawn-rate", "8", "--run-time", "2s", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["requests"] > 0 and summary["errors"] == {}
    assert locust_processes(own_locust) == []


def test_load_where_every_connection_is_refused_exits_9(load_ready: Env) -> None:
    from sandbox.cluster import free_port

    load_ready.set(NODE_PORT=str(free_port()))  # the model's NodePort, closed: every request is refused
    ran = load_ready.invoke("load", "--requests", "10", "--via", "nodeport", "--json")
    assert ran.returncode == ExitCode.MODEL, ran.stderr
    assert json.loads(ran.stdout)["errors"] == {"connection-error": 10}


def test_ctrl_c_to_the_real_process_while_the_master_waits(load_ready: Env, own_locust: str) -> None:
    """The process a person runs: SIGINT while Locust's master waits for a worker ends it with 130, one line, nothing left."""
    from scripts.load.locust_run import free_port

    invoke = Path(sys.executable).with_name("invoke")
    arguments = ["locust", "--master", "--expect-workers", "1", "--master-port", str(free_port()), "--run-time", "30s"]
    with subprocess.Popen(
        [str(invoke), *arguments], cwd=ROOT, env=load_ready._variables(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as running:
        assert running.stderr is not None
        first = running.stderr.readline()  # the master is started and waits for its worker
        assert "waiting for 1 worker(s)" in first, first
        running.send_signal(signal.SIGINT)
        rest = running.stderr.read()
        assert running.wait(60) == ExitCode.INTERRUPTED, first + rest
    assert rest.strip().splitlines() == ["error: interrupted"], rest
    assert locust_processes(own_locust) == []  # (a Ctrl-C just as the master started once left it running)


@pytest.mark.parametrize("tolerance", [None, "100%"])
def test_a_sweep_whose_lowest_rate_already_fails_exits_9(load_ready: Env, cluster: Sandbox, tolerance: str | None) -> None:
    """Higher rates may fail (that is what a sweep looks for); its lowest failing says the model fails whatever the load."""
    cluster.configure(faults=[{"path": PATH, "status": 503, "count": 100000}])
    more = ["--max-errors", tolerance] if tolerance else []
    ran = load_ready.invoke("load", "--sweep", "20,40", "--duration", "0.5", "--via", "ingress", "--json", *more)
    assert ran.returncode == ExitCode.MODEL, ran.stderr  # every request failed: no tolerance makes that a success
    assert json.loads(ran.stdout)["stopped_early"].startswith("stopped after 20 req/s")  # the figures are printed all the same
    last = ran.stderr.strip().splitlines()[-1]
    if not tolerance:
        assert re.match(r"error: (\d+) of \1 requests failed at the sweep's lowest rate, 20 req/s \(503 ×\1\)", last), last
    else:
        assert re.match(r"error: all (\d+) requests failed at the sweep's lowest rate, 20 req/s \(503 ×\1\)", last), last


@pytest.mark.parametrize(("task", "flag", "name"), [("load", "--html", "mine.html"), ("locust", "--html", "mine.html"), ("locust", "--csv", "res")])
def test_a_report_is_never_written_over_a_file_kfdex_did_not_write(env: Env, task: str, flag: str, name: str) -> None:
    """Nothing starts and nothing is sent: the file of yours, the .env and the payload stay as they are."""
    folder = env.path.parent
    yours = folder / (name + ("_stats.csv" if flag == "--csv" else ""))
    yours.write_text("my precious\n")
    before = env.path.read_bytes()
    for target in (str(folder / name), *([str(env.path)] if flag == "--html" else [])):  # --csv names a prefix, not a file
        ran = env.invoke(task, flag, target)
        assert ran.returncode == ExitCode.USAGE, ran.stderr
        assert "exists and is not a report kfdex wrote: name another file, or move that one away" in ran.stderr
    assert yours.read_text() == "my precious\n" and env.path.read_bytes() == before


def test_a_report_of_an_earlier_run_may_be_written_over(tmp_path: Path) -> None:
    from scripts.commands.load_tasks import _check_folders
    from scripts.load.page import GENERATOR

    page = tmp_path / "report.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}<title>kfdex load</title>")
    (tmp_path / "run_stats.csv").write_text("Type,Name,Request Count,Failure Count\n")
    _check_folders(("--html", str(page)), ("--csv", str(tmp_path / "run")))  # refuses nothing
    (tmp_path / "link.html").symlink_to(page)
    with pytest.raises(UsageError, match=r"link\.html exists and is not a report"):
        _check_folders(("--html", str(tmp_path / "link.html")))  # written through, a link could land anywhere
