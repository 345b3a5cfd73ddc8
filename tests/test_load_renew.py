"""``kfdex load --renew`` and ``kfdex locust --renew``: a run that outlives the session, over a two-second session."""

from __future__ import annotations

import json

import pytest

from sandbox.control import Sandbox
from scripts.core.errors import ExitCode
from tests.helpers import Env, locust_processes
from tests.test_load import seen_by_gateway


@pytest.fixture
def short(resolved_env: Env, cluster: Sandbox) -> Env:
    """Logged in with a session of two seconds (a cookie's Expires is to the second: one second may be gone at once), the NodePort exposed;
    each inference takes 30 ms, so that the runs over three sessions send hundreds of requests, not thousands."""
    cluster.configure(session_seconds=2, model_seconds=0.03)
    assert resolved_env.invoke("login").returncode == 0
    assert resolved_env.invoke("expose-nodeport").returncode == 0
    return resolved_env


def test_load_renew_survives_three_session_lifetimes(short: Env) -> None:
    ran = short.invoke("load", "--renew", "--duration", "6.5", "--concurrency", "2", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["errors"] == {} and summary["requests"] > 0
    assert summary["renewals"] >= 2
    assert "renewing it" in ran.stderr


@pytest.mark.parametrize("task", [["load", "--duration", "3"], ["locust", "--run-time", "3s"]])
def test_renew_without_a_password_is_refused_before_the_run(short: Env, cluster: Sandbox, task: list[str]) -> None:
    """Found at the start, not when the session ends in the middle of the run."""
    short.set(DEX_PASSWORD=None)
    before = seen_by_gateway(cluster)
    ran = short.invoke(*task, "--renew")
    assert ran.returncode == ExitCode.CONFIG, ran.stderr
    assert ran.stderr.strip().splitlines() == [
        "error: --renew needs DEX_LOGIN and DEX_PASSWORD (in the .env or the environment) or a token login "
        "(`invoke login --token`): set them, or leave out --renew"
    ]
    assert seen_by_gateway(cluster) == before


def test_renew_is_refused_for_grpc_load(short: Env) -> None:
    ran = short.invoke("load", "--renew", "--protocol", "grpc", "--requests", "1")
    assert ran.returncode == ExitCode.USAGE and "--renew works with REST load" in ran.stderr


def test_locust_renew_hands_each_new_session_to_the_workers(short: Env, own_locust: str) -> None:
    ran = short.process("locust", "--renew", "--workers", "2", "--users", "4", "--spawn-rate", "20", "--run-time", "7s", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["errors"] == {} and summary["requests"] > 0
    assert summary["renewals"] >= 2
    assert locust_processes(own_locust) == []


def test_locust_renew_is_for_the_master(short: Env) -> None:
    ran = short.invoke("locust", "--renew", "--worker", "--master-host", "127.0.0.1")
    assert ran.returncode == ExitCode.USAGE and "--renew is for the master" in ran.stderr


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--rate", "10", "--duration", "1"], "--renew works with the closed loop"),
        (["--client", "curl", "--requests", "1"], "--renew resends on the thread engine"),
    ],
)
def test_renew_is_refused_where_it_cannot_resend(short: Env, arguments: list[str], said: str) -> None:
    ran = short.invoke("load", "--renew", *arguments)
    assert ran.returncode == ExitCode.USAGE and said in ran.stderr
