"""``logout`` ends the session on the gateway where the real gateway can, says so where it cannot, and sends nothing astray."""

from __future__ import annotations

import pytest
import requests

from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from scripts.core.errors import ExitCode
from tests.helpers import Env

# the gateways that keep sessions in a store they can delete from: oidc-authservice (old and new)
ENDS_ON_THE_SERVER = {name for name, flavor in FLAVORS.items() if flavor.proxy.startswith("authservice")}


def _accepted(cluster: Sandbox, cookie: str) -> bool:
    """Whether the gateway lets the old cookie through to the dashboard (no redirect, no sign-in page)."""
    answer = requests.get(f"http://127.0.0.1:{cluster.gateway_port}/", headers={"Cookie": cookie}, allow_redirects=False, timeout=10)
    return answer.status_code == 200


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_logout_ends_the_session_where_the_gateway_can(resolved_env: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    assert resolved_env.invoke("login").returncode == 0
    cookie = resolved_env.read()["AUTH_COOKIE"]
    assert _accepted(cluster, cookie)
    out = resolved_env.invoke("logout")
    assert out.returncode == 0, out.stderr
    assert "AUTH_COOKIE" not in resolved_env.read()
    if flavor in ENDS_ON_THE_SERVER:
        assert "session ended on the gateway" in out.stderr
        assert not _accepted(cluster, cookie)
    else:  # oauth2-proxy keeps the session in the cookie: honest about it, and the value still works
        assert "the gateway keeps the session (GET /oauth2/sign_out → 302" in out.stderr
        assert _accepted(cluster, cookie)
    assert cookie.split("=", 1)[1] not in out.stderr


def test_logout_local_sends_nothing(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf18")
    assert resolved_env.invoke("login").returncode == 0
    cookie, seen = resolved_env.read()["AUTH_COOKIE"], cluster.requests_logged()
    out = resolved_env.invoke("logout", "--local")
    assert out.returncode == 0 and "the gateway was not asked (--local)" in out.stderr and "AUTH_COOKIE" in out.stderr
    assert cluster.requests_logged() == seen
    assert _accepted(cluster, cookie)


def test_a_session_of_another_ingress_is_forgotten_not_sent(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf18")
    assert resolved_env.invoke("login").returncode == 0
    cookie = resolved_env.read()["AUTH_COOKIE"]
    resolved_env.set(AUTH_ORIGIN="https://other.example.com:443")
    seen = cluster.requests_logged()
    out = resolved_env.invoke("logout")
    assert out.returncode == 0 and "not sent to http://127.0.0.1" in out.stderr
    assert cluster.requests_logged() == seen and _accepted(cluster, cookie)
    assert "AUTH_COOKIE" not in resolved_env.read()


def test_an_unreachable_gateway_is_a_failure_that_keeps_the_cookie_for_a_second_try(resolved_env: Env, cluster: Sandbox) -> None:
    """A script must not read a logout the gateway never heard as done; --local forgets without asking."""
    assert resolved_env.invoke("login").returncode == 0
    before = resolved_env.path.read_bytes()
    cluster.gateway_up(False)
    try:
        out = resolved_env.invoke("logout")
    finally:
        cluster.gateway_up(True)
    assert out.returncode == ExitCode.GATEWAY, out.stderr
    assert "could not be asked to end the session" in out.stderr and "nothing was removed" in out.stderr
    assert "logout --local" in out.stderr
    assert resolved_env.path.read_bytes() == before
    assert resolved_env.invoke("logout").returncode == 0 and "AUTH_COOKIE" not in resolved_env.read()


def test_logout_on_a_fresh_env_changes_nothing(env: Env) -> None:
    env.path.write_text("# the example's lines\nAUTH_COOKIE=\nDEX_REQ=\nMODEL_NAME=m\n")
    before = env.path.read_bytes()
    out = env.invoke("logout")
    assert out.returncode == 0 and "nothing to forget" in out.stderr
    assert env.path.read_bytes() == before
