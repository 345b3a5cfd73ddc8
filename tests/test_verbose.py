"""``--verbose`` / ``KFDEX_VERBOSE=1``: every HTTP hop and kubectl command on stderr, secrets masked."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest

from sandbox.control import Sandbox
from scripts import infer
from scripts.core.environment import Environment
from scripts.core.step import run_step
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


def _ready_after(cluster: Sandbox, retries: int) -> Callable[[float], None]:
    """A sleeper that waits for nothing and makes the model ready at the ``retries``-th wait: a cold start without sleeping."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == retries:
            cluster.configure(model_not_ready_seconds=0)

    return sleep


def _cold_model(env: Env, cluster: Sandbox) -> None:
    """A session, a NodePort, and a model that answers "not ready yet" until told otherwise."""
    assert env.invoke("login").returncode == 0
    assert env.invoke("expose-nodeport").returncode == 0
    cluster.configure(model_not_ready_seconds=600)
    env.set(RETRY_ATTEMPTS="30")


def test_every_retried_attempt_is_a_hop(sandbox_env: Env, cluster: Sandbox) -> None:
    _cold_model(sandbox_env, cluster)
    sandbox_env.sleep = _ready_after(cluster, 3)
    ran = sandbox_env.invoke("infer", "-v")
    assert ran.returncode == 0, ran.stderr
    posts = [line for line in _hops(ran.stderr) if line.startswith("> POST")]
    assert len(posts) == 4 and all("→ 400 Bad Request" in line for line in posts[:3]) and "→ 200 OK" in posts[-1]
    assert all("sent cookies: oauth2_proxy_kubeflow (" in line for line in posts)


def test_a_cold_start_is_one_live_line_on_a_terminal(sandbox_env: Env, cluster: Sandbox) -> None:
    _cold_model(sandbox_env, cluster)
    terminal, out = Terminal(), io.StringIO()
    environment = Environment(out, terminal, sleep=_ready_after(cluster, 4), variables={"ENV_FILE": str(sandbox_env.path)})
    run_step(infer.STEP, sandbox_env.file, environment, payload="iris")
    lines = terminal.getvalue().split("\n")
    live, done = lines[0], lines[1]
    assert live.count("\r\x1b[K") == 4  # one line, rewritten at each of the four retries
    last = live.rsplit("\r\x1b[K", 1)[1]
    assert re.fullmatch(
        r"waiting for POST /v2/models/sklearn-irisv2/infer: \d+\.\ds, 4 of 30 attempts, last answer 400 model not ready yet", last
    )
    assert done.startswith("✓ infer ") and "with 4 retries" in done
    assert "retry:" not in terminal.getvalue()
    assert out.getvalue() == "predict = [1, 1]\n"


def test_a_cold_start_is_plain_lines_when_not_a_terminal(sandbox_env: Env, cluster: Sandbox) -> None:
    _cold_model(sandbox_env, cluster)
    sandbox_env.sleep = _ready_after(cluster, 2)
    ran = sandbox_env.invoke("infer")
    assert ran.returncode == 0, ran.stderr
    assert "\r" not in ran.stderr
    assert ran.stderr.splitlines()[:2] == [
        "retry: POST /v2/models/sklearn-irisv2/infer → 400 model not ready yet; attempt 2 of 30 in 0.0s",
        "retry: POST /v2/models/sklearn-irisv2/infer → 400 model not ready yet; attempt 3 of 30 in 0.0s",
    ]


def test_a_line_printed_during_a_wait_does_not_glue_onto_the_live_line() -> None:
    terminal = Terminal()
    environment = Environment(io.StringIO(), terminal)
    environment.progress("plain", on_terminal="waiting 1")
    environment.warn("something")
    environment.progress("plain", on_terminal="waiting 2")
    environment.progress_done()
    assert terminal.getvalue() == "\r\x1b[Kwaiting 1\r\x1b[Kwarning: something\n\r\x1b[Kwaiting 2\n"


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
