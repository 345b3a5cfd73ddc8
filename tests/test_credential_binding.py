"""A credential goes only back where it came from; settings from the environment win; `credential` hands it on.

The session and the token record the ingress origin they belong to. These
tests log in on the sandbox's gateway and then point the state at a second
server (the stub listener), and check that nothing secret ever reaches it.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest

from sandbox.control import Sandbox
from sandbox.httpserve import Reply, Request
from scripts.core.errors import ExitCode
from tests.helpers import Env, Stub


def _recording(stub: Stub) -> list[Request]:
    seen: list[Request] = []

    def app(request: Request) -> Reply:
        seen.append(request)
        return Reply(200, b'{"outputs": []}', [], "application/json")

    stub.answer(app)
    return seen


def _logged_in(env: Env, *arguments: str) -> None:
    ran = env.invoke("login", *arguments)
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize("kind", ["cookie", "token"])
def test_a_credential_is_never_sent_to_a_second_gateway(resolved_env: Env, cluster: Sandbox, stub: Stub, kind: str) -> None:
    _logged_in(resolved_env, *(["--token"] if kind == "token" else []))
    gateway = f"http://127.0.0.1:{cluster.gateway_port}"
    assert resolved_env.read()["AUTH_ORIGIN" if kind == "cookie" else "AUTH_BEARER_ORIGIN"] == gateway
    seen = _recording(stub)
    resolved_env.set(INGRESS_PORT=str(stub.port), MODEL_HOST="sklearn-irisv2.example.com", NODE_PORT=None)
    before = resolved_env.path.read_bytes()

    ran = resolved_env.invoke("infer", "--auth", kind)

    assert ran.returncode == ExitCode.SESSION, ran.stderr
    noun = "session cookie" if kind == "cookie" else "token"
    fix = "invoke login" if kind == "cookie" else "invoke login --token"
    assert f"error: the {noun} in the state belongs to {gateway}, not http://127.0.0.1:{stub.port}: run `{fix}`" in ran.stderr
    assert seen == []  # nothing at all went to the second server
    assert resolved_env.path.read_bytes() == before


def test_the_nodeport_on_the_ingress_host_counts_as_the_same_cluster(resolved_env: Env) -> None:
    _logged_in(resolved_env)
    assert resolved_env.invoke("expose-nodeport").returncode == 0
    ran = resolved_env.invoke("infer")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "predict = [1, 1]"


def test_a_session_without_a_recorded_origin_is_not_sent(resolved_env: Env, stub: Stub) -> None:
    seen = _recording(stub)
    resolved_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(stub.port), MODEL_HOST="m", AUTH_COOKIE="authservice_session=abc")
    ran = resolved_env.invoke("infer")
    assert ran.returncode == ExitCode.SESSION
    assert "does not say which ingress it belongs to (AUTH_ORIGIN is not set): run `invoke login`" in ran.stderr
    assert seen == []


def test_resolve_ingress_forgets_a_session_of_another_ingress(resolved_env: Env) -> None:
    resolved_env.set(
        AUTH_COOKIE="authservice_session=old", AUTH_EXPIRES="2099-01-01T00:00:00Z", AUTH_ORIGIN="https://other.example.com:443"
    )
    ran = resolved_env.invoke("resolve-ingress")
    assert ran.returncode == 0, ran.stderr
    assert "forgot the session cookie of another ingress" in ran.stderr
    assert not {"AUTH_COOKIE", "AUTH_EXPIRES", "AUTH_ORIGIN"} & set(resolved_env.read())


def test_login_does_not_reuse_a_session_of_another_ingress_or_user(resolved_env: Env) -> None:
    _logged_in(resolved_env)
    again = resolved_env.invoke("login")
    assert "logs in again" in again.stderr  # same ingress, same user: reused
    resolved_env.set(AUTH_LOGIN="someone-else@example.com")
    fresh = resolved_env.invoke("login")
    assert fresh.returncode == 0 and "extract-cookie" in fresh.stderr, fresh.stderr
    assert resolved_env.read()["AUTH_LOGIN"] == "user@example.com"


def test_the_environment_wins_for_one_run_and_is_not_written(resolved_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _logged_in(resolved_env)
    assert resolved_env.invoke("expose-nodeport").returncode == 0
    before = resolved_env.path.read_bytes()
    monkeypatch.setenv("MODEL_NAME", "nope")
    ran = resolved_env.invoke("infer")
    assert ran.returncode == ExitCode.MODEL, ran.stderr
    assert "model nope not found" in ran.stderr
    status = resolved_env.invoke("status")
    assert "MODEL_NAME=nope  # from the environment" in status.stdout
    assert resolved_env.path.read_bytes() == before


def test_credential_as_curl_arguments_gets_the_prediction(resolved_env: Env) -> None:
    _logged_in(resolved_env)
    assert resolved_env.invoke("expose-nodeport").returncode == 0
    state = resolved_env.read()
    printed = resolved_env.invoke("credential", "--format", "curl", "--show-secrets")
    assert printed.returncode == 0, printed.stderr
    url = f"http://{state['INGRESS_HOST']}:{state['NODE_PORT']}/v2/models/sklearn-irisv2/infer"
    body = '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]}'
    curl = f"curl -sS --fail -H 'Content-Type: application/json' {printed.stdout.strip()} -d {shlex.quote(body)} {url}"
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert answer.returncode == 0, answer.stderr
    assert '"data":[1]' in answer.stdout.replace(" ", "")


@pytest.mark.parametrize("form", ["header", "curl", "json", "env", "python"])
def test_credential_is_masked_unless_asked(resolved_env: Env, form: str) -> None:
    _logged_in(resolved_env)
    secret = resolved_env.read()["AUTH_COOKIE"].split("=", 1)[1]
    printed = resolved_env.invoke("credential", "--format", form)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() and secret not in printed.stdout + printed.stderr


def test_an_expired_credential_is_refused(resolved_env: Env) -> None:
    resolved_env.set(AUTH_COOKIE="a=b", AUTH_EXPIRES="2020-01-01T00:00:00Z")
    printed = resolved_env.invoke("credential")
    assert printed.returncode == ExitCode.SESSION
    assert "the session cookie expired at 2020-01-01 00:00 UTC" in printed.stderr and printed.stdout == ""


def test_a_bad_value_from_the_environment_is_named_so_and_comes_before_the_session(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.set(MODEL_NAME="m", INGRESS_PORT="31380", NODE_PORT="31400")
    monkeypatch.setenv("INGRESS_HOST", "http://127.0.0.1")
    ran = env.invoke("infer")
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert "INGRESS_HOST='http://127.0.0.1' in the environment has a scheme" in ran.stderr


@pytest.mark.parametrize(
    "cookie", [" authservice_session=SECRETVALUE123", "authservice_session=SECRETVALUE123\r\nX-Evil: 1", "SECRETVALUE123 no pair"]
)
@pytest.mark.parametrize(
    "task", [["infer", "--payload", "iris"], ["load", "--requests", "1"], ["credential", "--format", "curl", "--show-secrets"]]
)
def test_a_saved_cookie_that_cannot_be_a_header_is_refused_unseen_and_unsent(
    resolved_env: Env, cluster: Sandbox, cookie: str, task: list[str]
) -> None:
    assert resolved_env.invoke("login").returncode == 0
    resolved_env.set(AUTH_COOKIE=cookie, MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com")
    seen = cluster.requests_logged()
    ran = resolved_env.invoke(*task)
    assert ran.returncode == ExitCode.CONFIG, ran.stderr
    assert "AUTH_COOKIE in the state is not name=value pairs" in ran.stderr and "SECRETVALUE" not in ran.stderr + ran.stdout
    assert cluster.requests_logged() == seen
