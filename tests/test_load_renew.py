"""``kfdex load --renew`` and ``kfdex locust --renew``: a run that outlives the session, over a two-second session."""

from __future__ import annotations

import json

import pytest

from sandbox.control import Sandbox
from scripts.errors import ExitCode
from tests.helpers import Env


@pytest.fixture
def short(sandbox_env: Env, cluster: Sandbox) -> Env:
    """Logged in with a session of two seconds (a cookie's Expires is to the second: one second may be gone at once), the NodePort exposed."""
    cluster.configure(session_seconds=2)
    assert sandbox_env.invoke("login").returncode == 0
    assert sandbox_env.invoke("expose-nodeport").returncode == 0
    return sandbox_env


def test_load_renew_survives_three_session_lifetimes(short: Env) -> None:
    ran = short.invoke("load", "--renew", "--duration", "6.5", "--concurrency", "2", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["errors"] == {} and summary["requests"] > 0
    assert summary["renewals"] >= 2
    assert "renewing it" in ran.stderr


def test_load_renew_without_a_password_ends_as_the_session_does(short: Env) -> None:
    short.set(DEX_PASSWORD=None)
    ran = short.invoke("load", "--renew", "--duration", "3", "--json")
    assert ran.returncode == ExitCode.SESSION, ran.stderr
    assert "no password to renew it" in ran.stderr and ran.stderr.count("error:") == 1


def test_renew_is_refused_for_grpc_load(short: Env) -> None:
    ran = short.invoke("load", "--renew", "--protocol", "grpc", "--requests", "1")
    assert ran.returncode == ExitCode.USAGE and "--renew works with REST load" in ran.stderr
