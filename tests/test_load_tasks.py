"""`load` and `locust` as a person runs them: same request as infer, the summary on stdout, exit codes."""

from __future__ import annotations

import json

import pytest

from sandbox.control import Sandbox
from scripts.errors import ExitCode
from tests.helpers import Env, locust_processes
from tests.test_load import PATH, seen_by_gateway, seen_since

SUMMARY_KEYS = {"requests", "errors", "throughput_rps", "latency_ms", "duration_s"}


@pytest.fixture
def ready(sandbox_env: Env) -> Env:
    """Logged in, with the NodePort exposed and MODEL_HOST set for the ingress route."""
    sandbox_env.set(MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com")
    assert sandbox_env.invoke("login").returncode == 0
    assert sandbox_env.invoke("expose-nodeport").returncode == 0
    return sandbox_env


def test_load_prints_the_json_summary(ready: Env) -> None:
    ran = ready.invoke("load", "--requests", "2000", "--concurrency", "4", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["requests"] == 2000 and summary["errors"] == {}
    latency = summary["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert summary["throughput_rps"] > 0


def test_load_counts_failures_and_never_retries(ready: Env, cluster: Sandbox) -> None:
    cluster.configure(faults=[{"path": PATH, "status": 503, "count": 30}])
    before = seen_by_gateway(cluster)
    ran = ready.invoke("load", "--requests", "200", "--concurrency", "4", "--via", "ingress", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["requests"] == 200 and summary["errors"] == {"503": 30}
    assert seen_since(cluster, before, 200) == 200  # one call per request: nothing retried


def test_load_prints_a_table_by_default(ready: Env) -> None:
    ran = ready.invoke("load", "--requests", "50")
    assert ran.returncode == 0, ran.stderr
    for label in ("requests", "throughput", "p50", "p99"):
        assert label in ran.stdout


def test_load_without_a_session_sends_nothing(sandbox_env: Env, cluster: Sandbox) -> None:
    sandbox_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port), MODEL_HOST="m")
    before = seen_by_gateway(cluster)
    ran = sandbox_env.invoke("load", "--requests", "10")
    assert ran.returncode == ExitCode.SESSION and "run `invoke login`" in ran.stderr
    assert seen_by_gateway(cluster) == before


def test_load_refuses_both_bounds(ready: Env) -> None:
    ran = ready.invoke("load", "--requests", "10", "--duration", "1")
    assert ran.returncode == ExitCode.USAGE and "give --requests or --duration, not both" in ran.stderr


def test_locust_task_prints_the_same_summary_and_leaves_no_process(ready: Env, own_locust: str) -> None:
    ran = ready.process("locust", "--workers", "2", "--users", "8", "--spawn-rate", "8", "--run-time", "5s", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["requests"] > 0 and summary["errors"] == {}
    assert locust_processes(own_locust) == []
