"""Each login and infer step, run alone against the sandbox gateway with the state the previous one left."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sandbox.control import Sandbox
from sandbox.httpserve import Reply
from scripts import approve, authenticate, expose_nodeport, extract_cookie, fetch_req, infer
from scripts.auth.credentials import parse_expiry
from scripts.core.errors import ConfigError, CredentialsError, GatewayError, ModelError, SessionError
from scripts.core.state import EnvFile
from scripts.core.step import run_step
from scripts.transport.gateway import Gateway
from scripts.transport.settings import gateway_settings
from tests.helpers import Env, Stub, here, login_steps


def _ingress(env: Env, cluster: Sandbox) -> None:
    env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port))


def test_kf15_steps_one_by_one(sandbox_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf15")
    _ingress(sandbox_env, cluster)

    run_step(fetch_req.STEP, sandbox_env.file, here())
    state = sandbox_env.read()
    assert state["DEX_LOGIN_URL"] == f"http://127.0.0.1:{cluster.gateway_port}/dex/auth/local?req={state['DEX_REQ']}"
    assert len(state["DEX_REQ"]) >= 20
    assert state["LOGIN_COOKIES"] == ""  # kf15 keeps its state server-side

    run_step(authenticate.STEP, sandbox_env.file, here())
    state = sandbox_env.read()
    assert state["DEX_NEXT_URL"].endswith(f"/dex/approval?req={state['DEX_REQ']}")

    result = run_step(approve.STEP, sandbox_env.file, here())
    state = sandbox_env.read()
    assert "/login/oidc?code=" in state["DEX_CALLBACK_URL"]
    assert result.summary.startswith("approval skipped by Dex")

    run_step(extract_cookie.STEP, sandbox_env.file, here())
    state = sandbox_env.read()
    assert state["AUTH_COOKIE"].startswith("authservice_session=")
    assert "LOGIN_COOKIES" not in state
    expires = parse_expiry(state["AUTH_EXPIRES"])
    assert expires is not None
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(hours=24))) < timedelta(minutes=1)


def test_fetch_req_carries_the_state_cookie_and_unescapes_the_form_action(sandbox_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf17")
    _ingress(sandbox_env, cluster)
    run_step(fetch_req.STEP, sandbox_env.file, here())
    state = sandbox_env.read()
    assert state["LOGIN_COOKIES"].startswith("oidc_state_csrf=")
    assert "/dex/auth/local/login?back=&state=" in state["DEX_LOGIN_URL"]
    assert "&amp;" not in state["DEX_LOGIN_URL"]


def test_wrong_password_is_a_credentials_error_and_changes_nothing(sandbox_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf15")
    _ingress(sandbox_env, cluster)
    run_step(fetch_req.STEP, sandbox_env.file, here())
    sandbox_env.set(DEX_PASSWORD="wrong")
    before = sandbox_env.path.read_bytes()
    with pytest.raises(
        CredentialsError, match=r"Dex rejected the login for user@example.com: Invalid Email Address and password"
    ):
        run_step(authenticate.STEP, sandbox_env.file, here())
    assert sandbox_env.path.read_bytes() == before


def test_approve_says_when_there_is_nothing_to_do(sandbox_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf18")
    _ingress(sandbox_env, cluster)
    run_step(fetch_req.STEP, sandbox_env.file, here())
    run_step(authenticate.STEP, sandbox_env.file, here())
    result = run_step(approve.STEP, sandbox_env.file, here())
    assert result.skipped
    state = sandbox_env.read()
    assert state["DEX_CALLBACK_URL"] == state["DEX_NEXT_URL"]


def test_infer_prints_the_prediction(sandbox_env: Env, cluster: Sandbox) -> None:
    _ingress(sandbox_env, cluster)
    login_steps(sandbox_env)
    run_step(expose_nodeport.STEP, sandbox_env.file, here())
    result = run_step(infer.STEP, sandbox_env.file, here(), payload="iris")
    assert result.output == "predict = [1, 1]"


def test_infer_through_the_ingress_with_a_host_header(sandbox_env: Env, cluster: Sandbox) -> None:
    _ingress(sandbox_env, cluster)
    login_steps(sandbox_env)
    sandbox_env.set(MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com")
    result = run_step(infer.STEP, sandbox_env.file, here(), payload="iris", json=True)
    assert '"model_name": "sklearn-irisv2"' in (result.output or "")
    assert "ingress" in result.summary


def test_v1_payload_on_a_v2_only_server_is_explained(sandbox_env: Env, cluster: Sandbox) -> None:
    _ingress(sandbox_env, cluster)
    login_steps(sandbox_env)
    run_step(expose_nodeport.STEP, sandbox_env.file, here())
    with pytest.raises(ModelError, match=r"not found .*V2-only server"):
        run_step(infer.STEP, sandbox_env.file, here(), payload="iris-v1")


def test_infer_without_a_session_says_to_log_in(sandbox_env: Env, cluster: Sandbox) -> None:
    _ingress(sandbox_env, cluster)
    sandbox_env.set(NODE_PORT=str(cluster.gateway_port))
    with pytest.raises(SessionError, match=r"no session in .*: run `invoke login` \(or `invoke login --token`\) first"):
        run_step(infer.STEP, sandbox_env.file, here())


def test_expired_session_is_caught_before_sending(sandbox_env: Env, cluster: Sandbox) -> None:
    _ingress(sandbox_env, cluster)
    sandbox_env.set(NODE_PORT="1", AUTH_COOKIE="authservice_session=x", AUTH_EXPIRES="2020-01-01T00:00:00Z")
    with pytest.raises(SessionError, match=r"expired at 2020-01-01 00:00 UTC .*run `invoke login`"):
        run_step(infer.STEP, sandbox_env.file, here())


@pytest.mark.parametrize("flavor", ["kf15", "kf191"])
def test_a_session_the_gateway_does_not_know_sends_us_back_to_login(sandbox_env: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    _ingress(sandbox_env, cluster)
    sandbox_env.set(
        MODEL_HOST="x",
        AUTH_COOKIE="authservice_session=forged; oauth2_proxy_kubeflow=forged",
        AUTH_ORIGIN=f"http://127.0.0.1:{cluster.gateway_port}",
    )
    with pytest.raises(SessionError, match=r"session is expired or not valid here; run `invoke login`"):
        run_step(infer.STEP, sandbox_env.file, here())


def test_a_redirect_to_another_host_is_refused(env: Env, stub: Stub) -> None:
    stub.answer(lambda request: Reply.redirect(request.method, 302, "http://login.example.org/dex/auth"), env)
    with pytest.raises(
        GatewayError,
        match=r"http://login\.example\.org/dex/auth is not on the ingress http://127\.0\.0\.1:\d+: refusing to send credentials",
    ):
        run_step(fetch_req.STEP, env.file, here())


def test_an_unprotected_gateway_is_named(env: Env, stub: Stub) -> None:
    stub.answer(lambda _request: Reply.html(200, "<html>hello</html>"), env)
    with pytest.raises(GatewayError, match=r"answered 200 without asking for a login"):
        run_step(fetch_req.STEP, env.file, here())


def test_gateway_timeouts_are_retried_without_sleeping(env: Env, stub: Stub, capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter([Reply(504, b"upstream request timeout"), Reply(503, b"no healthy upstream"), Reply(200, b"ok")])
    stub.answer(lambda _request: next(answers), env)
    waits: list[float] = []
    env.set(RETRY_WAIT_INITIAL="2", RETRY_WAIT_MAX="8")
    gateway = Gateway(gateway_settings(EnvFile(env.path).read()), here(sleep=waits.append))
    sent = gateway.call("GET", "/v2/models/x/ready?secret=1")
    assert sent.response.status_code == 200
    assert sent.retries == 2 and sent.seconds >= sent.response.elapsed.total_seconds()
    assert len(waits) == 2 and all(wait > 0 for wait in waits)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("retry: GET /v2/models/x/ready → 504 Gateway Timeout; attempt 2 of 5 in ")
    assert lines[1].startswith("retry: GET /v2/models/x/ready → 503 Service Unavailable; attempt 3 of 5 in ")
    assert "secret" not in "".join(lines)


def test_retries_stop_at_the_attempt_cap(env: Env, stub: Stub) -> None:
    stub.answer(lambda _request: Reply(502, b"bad gateway"), env)
    env.set(RETRY_ATTEMPTS="3")
    gateway = Gateway(gateway_settings(EnvFile(env.path).read()), here(sleep=lambda _seconds: None))
    with pytest.raises(GatewayError, match=r"GET / still failing after 3 attempt\(s\) in \d+s: 502 Bad Gateway"):
        gateway.send("GET", "/")


def test_login_checks_the_ingress_before_asking_for_a_password(env: Env, stub: Stub) -> None:
    from unittest import mock

    from scripts.commands import login

    asked: list[str] = []
    env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT="1")
    with mock.patch("builtins.input", lambda prompt: asked.append(prompt) or ""), pytest.raises(GatewayError, match="after 1 attempt"):
        login.login(env.file, here(interactive=True))
    assert asked == []  # nothing typed was thrown away
    stub.answer(lambda _request: Reply(302, b"", headers=[("Location", "/dex/auth")]), env)
    with mock.patch("builtins.input", lambda prompt: asked.append(prompt) or ""), mock.patch(
        "getpass.getpass", lambda _prompt: ""
    ), pytest.raises(ConfigError, match="no credentials"):
        login.login(env.file, here(interactive=True))
    assert asked == ["Dex login: "]
