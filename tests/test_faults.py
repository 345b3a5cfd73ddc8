"""Gateway faults injected through the sandbox: retried where the network is at fault, explained where not."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from sandbox.control import Sandbox
from sandbox.gateway import Settings, World
from sandbox.httpserve import Request
from scripts.core.errors import ExitCode
from tests.helpers import SPACED, Env
from tests.test_load import seen_by_gateway

INFER_PATH = "/v2/models/sklearn-irisv2/infer"
MODEL_HOST = "sklearn-irisv2.kubeflow-user-example-com.example.com"


def _retry_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("retry: ")]


def test_login_and_infer_survive_504s_and_a_reused_approval(resolved_env: Env, cluster: Sandbox) -> None:
    """The issue's acceptance run: 3 injected 504s on infer, the approval-reuse fault on login."""
    cluster.configure(
        flavor="kf15",
        approval_reuse_status=504,
        faults=[
            {"path": "/dex/approval", "status": 504, "count": 1, "after": True},  # Dex used it, the answer was lost
            {"path": INFER_PATH, "status": 504, "count": 3},
        ],
    )
    login = resolved_env.invoke("login")
    assert login.returncode == 0, login.stderr
    retried = [line.split(" in ")[0] for line in _retry_lines(login.stderr)]
    assert retried == ["retry: GET /dex/approval → 504 Gateway Timeout; attempt 2 of 2"]
    assert (
        "warning: login: approve got 504 Gateway Timeout twice (the approval was already used); starting again from a fresh request (1 of 2)"
        in login.stderr
    )
    assert login.stderr.count("✓ extract-cookie") == 1

    assert resolved_env.invoke("expose-nodeport").returncode == 0
    infer = resolved_env.invoke("infer", "--payload", "iris")
    assert infer.returncode == 0, infer.stderr
    assert infer.stdout.strip() == "predict = [1, 1]"
    retries = _retry_lines(infer.stderr)
    assert len(retries) == 3
    for number, line in enumerate(retries, start=2):
        assert re.fullmatch(rf"retry: POST {INFER_PATH} → 504 Gateway Timeout; attempt {number} of 5 in \d+\.\d+s", line)
    assert re.search(r"✓ infer +sklearn-irisv2 \(v2, nodePort, cookie\) 200 in \d+ ms, \d+\.\d s with 3 retries$", infer.stderr)


def test_every_retried_gateway_status(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(faults=[{"path": "/", "method": "GET", "status": status, "count": 1} for status in (502, 503, 504)])
    login = resolved_env.invoke("login")
    assert login.returncode == 0, login.stderr
    reasons = [line.split("→ ")[1].split(";")[0] for line in _retry_lines(login.stderr)]
    assert reasons == ["502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"]


def test_a_read_timeout_is_retried(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(faults=[{"path": "/", "method": "GET", "delay": 1.0, "count": 1}])
    resolved_env.set(HTTP_TIMEOUT="0.3")
    login = resolved_env.invoke("login")
    assert login.returncode == 0, login.stderr
    assert re.search(r"retry: GET / → no answer from http://127\.0\.0\.1:\d+ in 0\.3s; attempt 2 of 5", login.stderr)


def test_model_not_ready_is_retried_until_it_loads(resolved_env: Env, cluster: Sandbox) -> None:
    resolved_env.set(MODEL_HOST=MODEL_HOST, RETRY_ATTEMPTS="100000", RETRY_DEADLINE="30", **SPACED)
    assert resolved_env.invoke("login").returncode == 0
    cluster.configure(model_not_ready_seconds=0.5)
    infer = resolved_env.invoke("infer")
    assert infer.returncode == 0, infer.stderr
    assert infer.stdout.strip() == "predict = [1, 1]"
    assert "→ 400 model not ready yet; attempt 2 of 100000" in infer.stderr


def test_a_loading_model_is_refused_in_its_own_name() -> None:
    """A sandbox in front of model 'mnist' says mnist, not iris, is loading (the rule REST and gRPC both ask)."""
    world = World(model_port=1, settings=Settings(model_not_ready_until=time.time() + 60), model_name="mnist")
    assert world.before_inference() == "Model mnist is not ready yet."
    reply = world.forward(Request("POST", "/v2/models/mnist/infer", {}, b"{}"))
    assert (reply.status, json.loads(reply.body)) == (400, {"error": "Model mnist is not ready yet."})
    world.settings.model_not_ready_until = 0.0
    assert world.before_inference() is None


def test_giving_up_at_the_deadline_says_so(resolved_env: Env, cluster: Sandbox) -> None:
    resolved_env.set(MODEL_HOST=MODEL_HOST, **SPACED)
    assert resolved_env.invoke("login").returncode == 0
    cluster.configure(faults=[{"path": INFER_PATH, "status": 503, "count": 1_000_000}])
    infer = resolved_env.invoke("infer", "--attempts", "1000000", "--deadline", "0.8")
    assert infer.returncode == ExitCode.GATEWAY
    last = infer.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"error: POST {INFER_PATH} still failing after \d+ attempt\(s\) in 1s: 503 Service Unavailable; "
        r"try again later, or raise RETRY_ATTEMPTS / RETRY_DEADLINE",
        last,
    )


def test_the_attempt_cap_from_the_command_line(resolved_env: Env, cluster: Sandbox) -> None:
    resolved_env.set(MODEL_HOST=MODEL_HOST)
    assert resolved_env.invoke("login").returncode == 0
    cluster.configure(faults=[{"path": INFER_PATH, "status": 502, "count": 100}])
    infer = resolved_env.invoke("infer", "--attempts", "2")
    assert infer.returncode == ExitCode.GATEWAY
    assert len(_retry_lines(infer.stderr)) == 1
    assert "still failing after 2 attempt(s)" in infer.stderr


def test_a_gateway_that_is_down_is_named_quickly(resolved_env: Env, cluster: Sandbox) -> None:
    resolved_env.set(RETRY_ATTEMPTS="30")
    cluster.gateway_up(False)
    login = resolved_env.invoke("login")
    cluster.gateway_up(True)
    assert login.returncode == ExitCode.GATEWAY
    retries = _retry_lines(login.stderr)
    assert [line.split("; ")[1].split(" in ")[0] for line in retries] == ["attempt 2 of 4", "attempt 3 of 4", "attempt 4 of 4"]
    assert re.search(
        r"error: cannot connect to http://127\.0\.0\.1:\d+: connection refused after 4 attempt\(s\) in \d+s; "
        r"check INGRESS_HOST/INGRESS_PORT \(`invoke resolve-ingress`\) and that the gateway is up",
        login.stderr,
    )
    assert "Traceback" not in login.stderr


def test_login_gives_up_after_bounded_fresh_starts(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(
        flavor="kf15", approval_reuse_status=504, faults=[{"path": "/dex/approval", "status": 504, "count": 100, "after": True}]
    )
    login = resolved_env.invoke("login")
    assert login.returncode == ExitCode.LOGIN_RESTART
    assert login.stderr.count("starting again from a fresh request") == 2
    assert login.stderr.strip().splitlines()[-1].endswith("(gave up after 3 fresh requests)")


def test_a_single_step_reports_a_used_request_and_names_the_step(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf17")
    assert resolved_env.invoke("login").returncode == 0
    again = resolved_env.invoke("extract-cookie")
    assert again.returncode == ExitCode.LOGIN_RESTART
    assert again.stderr.strip().splitlines()[-1].startswith("error: extract-cookie: the gateway answered 400")
    assert "start again with `invoke login` (or `invoke fetch-req`)" in again.stderr


@pytest.mark.usefixtures("cluster")
def test_wrong_credentials_are_never_retried(resolved_env: Env) -> None:
    resolved_env.set(DEX_PASSWORD="wrong")
    login = resolved_env.invoke("login")
    assert login.returncode == ExitCode.CREDENTIALS
    assert not _retry_lines(login.stderr)
    assert "starting again" not in login.stderr


def test_a_session_that_ends_early_says_to_log_in(resolved_env: Env, cluster: Sandbox) -> None:
    resolved_env.set(MODEL_HOST=MODEL_HOST)
    assert resolved_env.invoke("login").returncode == 0
    cluster.expire_sessions()
    infer = resolved_env.invoke("infer")
    assert infer.returncode == ExitCode.SESSION
    assert infer.stderr.strip().splitlines()[-1].endswith("the session is expired or not valid here; run `invoke login`")


def test_sandbox_up_takes_a_settings_file(env: Env, tmp_path, shared_model: list[str]) -> None:
    settings = tmp_path / "faults.json"
    settings.write_text('{"flavor": "kf18", "faults": [{"path": "/v2/models/", "status": 503, "count": 2}]}')
    up = env.process("sandbox-up", "--flavor", "kf15", "--settings", str(settings), *shared_model)
    try:
        assert up.returncode == 0, up.stderr
        login = env.invoke("login")
        assert login.returncode == 0, login.stderr
        assert "· approve" in login.stderr  # kf18 from the file: no approval step
        assert env.invoke("expose-nodeport").returncode == 0
        infer = env.invoke("infer")
        assert infer.returncode == 0 and len(_retry_lines(infer.stderr)) == 2
    finally:
        assert env.process("sandbox-down").returncode == 0


def test_a_refused_node_port_names_node_port_and_the_step_that_sets_it(resolved_env: Env, cluster: Sandbox) -> None:
    from scripts import expose_nodeport

    ingress = {"INGRESS_HOST": "127.0.0.1", "INGRESS_PORT": str(cluster.gateway_port)}
    resolved_env.set(**ingress, AUTH_COOKIE="session=x", AUTH_EXPIRES="2999-01-01T00:00:00Z", NODE_PORT="1")
    resolved_env.set(AUTH_ORIGIN=f"http://127.0.0.1:{cluster.gateway_port}")
    infer = resolved_env.invoke("infer")
    assert infer.returncode == ExitCode.GATEWAY, infer.stderr
    error = infer.stderr.strip().splitlines()[-1]
    assert f"check INGRESS_HOST/NODE_PORT (`{expose_nodeport.STEP.how_to_run}`)" in error
    assert "INGRESS_PORT" not in error and "resolve-ingress" not in error


def test_model_seconds_makes_every_inference_that_slow(load_ready: Env, cluster: Sandbox) -> None:
    """The sandbox's slow-model setting: each call through the gateway waits at least that long (load tests pace on it)."""
    cluster.configure(model_seconds=0.05)
    ran = load_ready.invoke("load", "--requests", "4", "--concurrency", "1", "--via", "ingress", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["latency_ms"]["min"] >= 50


def test_a_reset_returns_once_the_calls_still_being_answered_are_logged(load_ready: Env, cluster: Sandbox) -> None:
    """A test's last calls (a slow model's, a client's that left) are in the log before the next test looks at it."""
    cluster.configure(model_seconds=0.5)
    state = load_ready.read()
    headers = {"Host": MODEL_HOST, "Cookie": state["AUTH_COOKIE"], "Content-Type": "application/json"}
    before = seen_by_gateway(cluster)
    with pytest.raises(requests.Timeout):  # the client leaves while the model is still answering
        requests.post(f"http://127.0.0.1:{cluster.gateway_port}{INFER_PATH}", data=b"{}", headers=headers, timeout=0.1)
    cluster.reset()
    assert seen_by_gateway(cluster) == before + 1
