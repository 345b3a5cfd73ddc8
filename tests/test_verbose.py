"""``--verbose`` / ``KFDEX_VERBOSE=1``: every HTTP hop and kubectl command on stderr, secrets masked."""

from __future__ import annotations

import io
import re

import pytest

from sandbox.control import Sandbox
from scripts.environment import Environment
from tests.helpers import Env


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _hops(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("> ")]


@pytest.mark.usefixtures("cluster")
def test_verbose_login_shows_every_hop_and_kubectl_command(sandbox_env: Env) -> None:
    ran = sandbox_env.invoke("login", "--verbose")
    assert ran.returncode == 0, ran.stderr
    hops = _hops(ran.stderr)
    assert re.match(r"> \$ KUBECONFIG=\S+ kubectl --request-timeout=30s get service istio-ingressgateway -n istio-system -o json → exit 0 \(\d+ ms\)$", hops[0])
    first_http = next(line for line in hops if line.startswith("> GET http"))
    assert re.match(r"> GET http://127\.0\.0\.1:\d+/ → 403 Forbidden \(\d+ ms\)$", first_http)  # kf191's sign-in page
    start = next(line for line in hops if "/oauth2/start" in line and line.startswith("> GET"))
    assert "→ 302 Found; Location: /dex/auth?client_id=" in start and "set cookies: oauth2_proxy_kubeflow_csrf" in start
    post = next(line for line in hops if line.startswith("> POST"))
    assert re.search(r"/dex/auth/local/login\?back=&state=\w{3}…\w{3} → 303 See Other; Location: /oauth2/callback\?code=", post)
    callback = next(line for line in hops if "/oauth2/callback" in line and line.startswith("> GET"))
    assert "sent cookies: oauth2_proxy_kubeflow_csrf; set cookies: oauth2_proxy_kubeflow" in callback


@pytest.mark.usefixtures("cluster")
def test_kfdex_verbose_turns_it_on_and_it_is_off_by_default(sandbox_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = sandbox_env.invoke("login")
    assert quiet.returncode == 0 and _hops(quiet.stderr) == []
    monkeypatch.setenv("KFDEX_VERBOSE", "1")
    loud = sandbox_env.invoke("login", "--force")
    assert loud.returncode == 0
    assert any(line.startswith("> GET http") for line in _hops(loud.stderr))


def test_the_short_flag_is_v(sandbox_env: Env) -> None:
    ran = sandbox_env.invoke("expose-nodeport", "-v")
    assert ran.returncode == 0, ran.stderr
    assert any(" get pods -n kubeflow-user-example-com " in line for line in _hops(ran.stderr))


def test_every_retried_attempt_is_a_hop(sandbox_env: Env, cluster: Sandbox) -> None:
    assert sandbox_env.invoke("login").returncode == 0
    assert sandbox_env.invoke("expose-nodeport").returncode == 0
    cluster.configure(flavor="kf191", model_not_ready_seconds=0.3)
    sandbox_env.set(RETRY_WAIT_INITIAL="0.1", RETRY_WAIT_MAX="0.1", RETRY_ATTEMPTS="30")
    ran = sandbox_env.invoke("infer", "-v")
    assert ran.returncode == 0, ran.stderr
    posts = [line for line in _hops(ran.stderr) if line.startswith("> POST")]
    assert len(posts) >= 2 and "→ 400 Bad Request" in posts[0] and "→ 200 OK" in posts[-1]
    assert all("sent cookies: oauth2_proxy_kubeflow (" in line for line in posts)


def test_hop_masks_query_values_unless_secrets_are_shown() -> None:
    stream = io.StringIO()
    environment = Environment(io.StringIO(), stream, verbose=True)
    environment.hop("GET", "http://h:1/cb?code=abcdefghijklmnop&state=s", "302 Found", location="/x?req=0123456789abcdef")
    environment.show_secrets = True
    environment.hop("GET", "http://h:1/cb?code=abcdefghijklmnop", "302 Found")
    first, second = stream.getvalue().splitlines()
    assert first == "> GET http://h:1/cb?code=abc…nop&state=… → 302 Found; Location: /x?req=012…def"
    assert second == "> GET http://h:1/cb?code=abcdefghijklmnop → 302 Found"


def test_no_hop_without_verbose() -> None:
    stream = io.StringIO()
    Environment(io.StringIO(), stream).hop("GET", "http://h:1/", "200 OK")
    assert stream.getvalue() == ""
