"""The tool as a person uses it: invoke tasks as separate processes, through real kubectl and MLServer.

Every task is started here at least once as its own process (``Env.process``);
the listing, help and error-message tests run in-process (``Env.invoke``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.control import Sandbox
from scripts.app.catalog import STEPS
from scripts.core.errors import ExitCode
from tests.helpers import ROOT, TASK_NAMES, Env

TASKS = TASK_NAMES


def test_every_task_is_listed_with_a_summary(env: Env) -> None:
    listed = env.invoke("--list")
    assert listed.returncode == 0
    for name in TASKS:
        line = next((line for line in listed.stdout.splitlines() if line.strip().startswith(name + " ")), "")
        assert len(line.split()) > 1, f"{name} has no summary in invoke --list"


def test_every_option_has_help(env: Env) -> None:
    for name in TASKS:
        shown = env.invoke("--help", name)
        assert shown.returncode == 0, shown.stderr
        options = [line for line in shown.stdout.splitlines() if line.strip().startswith("-")]
        for option in options:
            assert len(option.split("  ")) > 1 and option.split("  ")[-1].strip(), f"{name}: {option!r} has no help"


def test_login_then_infer(sandbox_env: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf15")
    login = sandbox_env.process("login")
    assert login.returncode == 0, login.stderr
    steps = [line.split()[1] for line in login.stderr.splitlines() if line[:1] in "✓·"]
    assert steps == ["resolve-ingress", "fetch-req", "authenticate", "approve", "extract-cookie"]
    assert "authservice_session=" in login.stderr
    cookie = sandbox_env.read()["AUTH_COOKIE"]
    assert cookie.split("=", 1)[1] not in login.stderr + login.stdout

    expose = sandbox_env.process("expose-nodeport")
    assert expose.returncode == 0, expose.stderr
    infer = sandbox_env.process("infer", "--payload", "iris")
    assert infer.returncode == 0, infer.stderr
    assert infer.stdout.strip() == "predict = [1, 1]"
    assert "sklearn-irisv2 (v2, nodePort, cookie) 200 in" in infer.stderr

    again = sandbox_env.process("login")
    assert again.returncode == 0 and "session cookie valid until" in again.stderr and "--force" in again.stderr


@pytest.mark.usefixtures("cluster")
def test_wrong_password_is_one_line_and_a_documented_exit_code(sandbox_env: Env) -> None:
    sandbox_env.set(DEX_PASSWORD="not-the-password")
    login = sandbox_env.process("login")
    assert login.returncode == ExitCode.CREDENTIALS
    assert "Traceback" not in login.stderr
    errors = [line for line in login.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: Dex rejected the login for user@example.com: Invalid Email Address and password. "
        "Check DEX_LOGIN and DEX_PASSWORD (not retried)"
    ]
    assert "not-the-password" not in login.stderr + login.stdout


def test_debug_shows_the_traceback(sandbox_env: Env) -> None:
    sandbox_env.set(DEX_PASSWORD="nope")
    shown = sandbox_env.process("--debug", "login")
    assert shown.returncode == ExitCode.CREDENTIALS
    assert "Traceback" in shown.stderr and "CredentialsError" in shown.stderr


def test_missing_credentials_name_the_keys(sandbox_env: Env) -> None:
    sandbox_env.set(DEX_PASSWORD=None)
    login = sandbox_env.invoke("login")
    assert login.returncode == ExitCode.CONFIG
    assert "error: DEX_PASSWORD not set: put it in" in login.stderr


def test_a_step_runs_alone_as_a_script(sandbox_env: Env, cluster: Sandbox) -> None:
    sandbox_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port))
    ran = subprocess.run(
        [sys.executable, "-m", "scripts.fetch_req", "--env-file", str(sandbox_env.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.startswith("✓ fetch-req")
    assert sandbox_env.read()["DEX_LOGIN_URL"].startswith(f"http://127.0.0.1:{cluster.gateway_port}/dex/auth/local")


def test_every_step_task_runs_as_its_own_process(sandbox_env: Env, cluster: Sandbox) -> None:
    """Each single-step task, and status, as a person runs them while debugging: one process each."""
    cluster.configure(flavor="kf17")
    for name in (*(step.name for step in STEPS), "status"):
        ran = sandbox_env.process(name)
        assert ran.returncode == 0, f"{name}: {ran.stderr}"
        assert name == "status" or ran.stderr.startswith((f"✓ {name}", f"· {name}")), ran.stderr
    assert "AUTH_COOKIE=" in ran.stdout and "AUTH_BEARER=" in ran.stdout  # status, after both logins


def test_a_step_without_its_input_names_the_step_to_run(env: Env) -> None:
    ran = env.invoke("authenticate")
    assert ran.returncode == ExitCode.CONFIG
    assert ran.stderr.strip().splitlines()[-1] == f"error: DEX_LOGIN_URL is not set in {env.path}: run `invoke fetch-req` first"


def _sandbox_processes(env: Env) -> set[int]:
    """Sandbox processes started for this test's .env (they inherit its ENV_FILE), alive or not yet reaped."""
    marker = f"ENV_FILE={env.path}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        started_here = marker in environment
        if started_here and ("sandbox.cluster" in command or "mlserver" in command or "sandbox.model" in command):
            found.add(int(entry.name))
    return found


DEMO_STEPS = [
    "sandbox-up",
    "resolve-ingress",
    "fetch-req",
    "authenticate",
    "approve",
    "extract-cookie",
    "expose-nodeport",
    "infer",
    "sandbox-down",
]
TOKEN_DEMO_STEPS = ["sandbox-up", "resolve-ingress", "create-token", "expose-nodeport", "infer", "sandbox-down"]


@pytest.mark.parametrize(("flavor", "token", "own_model"), [("kf15", False, True), ("kf191", True, False)])
def test_demo_prints_the_prediction_and_leaves_nothing_running(
    env: Env, flavor: str, token: bool, own_model: bool, shared_model: list[str]
) -> None:
    """With its own MLServer, as the README's demo; and in front of the session's (--model-server), which it leaves running."""
    ran = env.process("demo", "--flavor", flavor, *(["--token"] if token else []), *([] if own_model else shared_model))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().endswith("predict = [1, 1]")
    steps = [line.split()[1] for line in ran.stderr.splitlines() if line[:1] in "✓·"]
    assert steps == (TOKEN_DEMO_STEPS if token else DEMO_STEPS)
    assert _sandbox_processes(env) == set()
    if not own_model:
        assert requests.get(f"{shared_model[1]}/v2/health/ready", timeout=10).status_code == 200  # left running
    # the demo restored the .env it was given: only the test's own settings are left
    assert set(env.read()) == {"RETRY_WAIT_INITIAL", "RETRY_WAIT_MAX", "RETRY_ATTEMPTS", "RETRY_DEADLINE"}


def test_a_sandbox_in_front_of_a_running_model_server_logs_in_infers_and_leaves_it_running(env: Env, sandbox: Sandbox) -> None:
    """``--model-server``: no MLServer of its own; the login of kf18 in front of the one given, which sandbox-down leaves alone."""
    model = f"http://127.0.0.1:{sandbox.model_port}"
    up = env.process("sandbox-up", "--flavor", "kf18", "--model-server", model, "--model-name", "sklearn-irisv2")
    assert up.returncode == 0, up.stderr
    assert f"in front of model sklearn-irisv2 at :{sandbox.model_port}" in up.stderr
    try:
        started = _sandbox_processes(env)
        assert started and not any(b"mlserver" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in started)
        assert env.read()["MODEL_NAME"] == "sklearn-irisv2"
        for step in (["login"], ["expose-nodeport"], ["infer", "--payload", "iris"]):
            ran = env.process(*step)
            assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "predict = [1, 1]"
    finally:
        down = env.process("sandbox-down")
    assert down.returncode == 0, down.stderr
    assert _sandbox_processes(env) == set()
    assert requests.get(f"{model}/v2/models/sklearn-irisv2/ready", timeout=10).status_code == 200  # still running


@pytest.mark.parametrize("task", ["sandbox-up", "demo"])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("unused port", "no model server answers at http://127.0.0.1:{port} (connection refused): start it first"),
        ("other name", "the model server at http://127.0.0.1:{port} has no ready model 'iris' (GET "),
    ],
)
def test_a_model_server_that_is_not_there_is_one_line_and_starts_nothing(
    env: Env, sandbox: Sandbox, where: str, message: str, task: str
) -> None:
    """The demo checks the server before it makes its state folder or says where that is."""
    from sandbox.cluster import free_port

    port = free_port() if where == "unused port" else sandbox.model_port
    before = env.path.read_bytes()
    ran = env.process(task, "--model-server", f"http://127.0.0.1:{port}", *(["--model-name", "iris"] if where == "other name" else []))
    assert ran.returncode == ExitCode.SANDBOX, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message.format(port=port)}"), ran.stderr
    assert env.path.read_bytes() == before and _sandbox_processes(env) == set()


def test_a_model_server_that_never_answers_is_told_apart_from_one_that_is_not_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox import control

    def silent(*_: object, **__: object) -> None:
        raise requests.ReadTimeout("read timed out")

    monkeypatch.setattr(control.requests, "get", silent)
    with pytest.raises(control.SandboxFailure) as failed:
        control.ModelServer(8080).check()
    assert str(failed.value) == (
        "the server at http://127.0.0.1:8080 did not answer GET http://127.0.0.1:8080/v2/models/sklearn-irisv2/ready "
        "within 5 s: give the port of a V2 model server"
    )


@pytest.mark.usefixtures("cluster")
def test_token_login_then_infer(sandbox_env: Env) -> None:
    login = sandbox_env.process("login", "--token")
    assert login.returncode == 0, login.stderr
    token = sandbox_env.read()["AUTH_BEARER"]
    assert token not in login.stderr + login.stdout
    assert "create-token" in login.stderr and "valid until" in login.stderr
    sandbox_env.set(MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com")  # through the ingress this time
    infer = sandbox_env.process("infer", "--auth", "token")
    assert infer.returncode == 0, infer.stderr
    assert infer.stdout.strip() == "predict = [1, 1]"
    assert "(v2, ingress, token) 200 in" in infer.stderr


def test_demo_stops_the_sandbox_when_a_step_fails(env: Env, shared_model: list[str]) -> None:
    env.set(HTTP_TIMEOUT="soon")  # a setting sandbox-up leaves alone, and fetch-req cannot use
    ran = env.invoke("demo", "--flavor", "kf18", *shared_model)
    assert ran.returncode == ExitCode.USAGE
    assert "error: HTTP_TIMEOUT='soon' in" in ran.stderr and "is not a number" in ran.stderr
    assert "✓ sandbox-down" in ran.stderr
    assert _sandbox_processes(env) == set()
    assert env.read()["HTTP_TIMEOUT"] == "soon"


@pytest.mark.parametrize("name", ["sandbox-down"])
def test_sandbox_down_without_a_sandbox_is_harmless(env: Env, name: str) -> None:
    ran = env.invoke(name)
    assert ran.returncode == 0
    assert "nothing to stop" in ran.stderr


def _login_on_a_terminal(env: Env, answers: list[bytes]) -> tuple[int, str, int]:
    """``invoke login`` on a pseudo-terminal, typing one answer at each password prompt: exit code, screen, prompts answered."""
    import pty
    import select

    environment = dict(os.environ, ENV_FILE=str(env.path))
    environment.pop("DEX_PASSWORD", None)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: invoke login on the pseudo-terminal
        os.chdir(ROOT)
        os.execve(str(Path(sys.executable).with_name("invoke")), ["invoke", "login"], environment)
    seen = b""
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(terminal, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if seen.count(b"Dex password for user@example.com: ") > answered and answered < len(answers):
            os.write(terminal, answers[answered])
            answered += 1
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace"), answered


@pytest.mark.usefixtures("cluster")
def test_a_missing_password_is_asked_for_without_echo(sandbox_env: Env) -> None:
    """On a terminal, login asks for the password with echo off, and never writes it to the .env."""
    sandbox_env.set(DEX_PASSWORD=None)
    code, text, answered = _login_on_a_terminal(sandbox_env, [b"12341234\n"])
    assert code == 0, text
    assert answered == 1 and "✓ extract-cookie" in text
    assert "12341234" not in text  # not echoed
    assert "DEX_PASSWORD" not in sandbox_env.read()  # typed, used, not stored


@pytest.mark.usefixtures("cluster")
def test_a_wrong_typed_password_is_asked_for_again_three_times_at_most(sandbox_env: Env) -> None:
    sandbox_env.set(DEX_PASSWORD=None)
    code, text, answered = _login_on_a_terminal(sandbox_env, [b"wrong-1\n", b"12341234\n"])
    assert code == 0 and answered == 2 and "try again (2 of 3)" in text, text
    assert sandbox_env.invoke("logout", "--local").returncode == 0
    code, text, answered = _login_on_a_terminal(sandbox_env, [b"wrong-1\n", b"wrong-2\n", b"wrong-3\n", b"12341234\n"])
    assert code == ExitCode.CREDENTIALS and answered == 3, text
    assert "wrong-" not in text


@pytest.mark.usefixtures("cluster")
def test_logout_forgets_the_session_and_keeps_the_settings(sandbox_env: Env) -> None:
    assert sandbox_env.process("login").returncode == 0
    settings_before = {
        k: v for k, v in sandbox_env.read().items() if k in ("DEX_LOGIN", "DEX_PASSWORD", "MODEL_NAME", "INGRESS_HOST")
    }
    out = sandbox_env.process("logout")
    assert out.returncode == 0 and "removed" in out.stderr and "AUTH_COOKIE" in out.stderr
    state = sandbox_env.read()
    assert not {"AUTH_COOKIE", "AUTH_EXPIRES", "DEX_REQ", "DEX_LOGIN_URL"} & set(state)
    assert {k: v for k, v in state.items() if k in settings_before} == settings_before
    infer = sandbox_env.process("infer")
    assert infer.returncode == ExitCode.SESSION
    again = sandbox_env.process("logout")
    assert again.returncode == 0 and "nothing to forget" in again.stderr


def test_a_utf8_password_is_posted_and_compared_as_dex_does(sandbox_env: Env, cluster: Sandbox) -> None:
    """Dex takes any UTF-8 password: the right one logs in, a wrong one is "wrong password" (not the gateway's 500)."""
    cluster.configure(users={"user@example.com": "pässwörd-日本"})
    sandbox_env.set(DEX_PASSWORD="pässwörd-日本")
    assert sandbox_env.invoke("login").returncode == 0
    sandbox_env.set(DEX_PASSWORD="pässwort-日本")
    wrong = sandbox_env.invoke("login", "--force")
    assert wrong.returncode == ExitCode.CREDENTIALS, wrong.stderr
    assert "Dex rejected the login for user@example.com" in wrong.stderr


def test_demo_without_kubectl_starts_nothing(env: Env, tmp_path: Path) -> None:
    """Its steps need kubectl: missing, the demo says so (exit 8) before a sandbox starts."""
    nothing = tmp_path / "no-bin"
    nothing.mkdir()
    env.only_path = str(nothing)
    env.variables["TMPDIR"] = str(nothing)  # a sandbox would make its folder here
    ran = env.process("demo")
    assert ran.returncode == ExitCode.KUBECTL, ran.stderr
    assert ran.stderr.strip().splitlines() == ["error: kubectl is not on PATH: install it and configure it for your cluster"]
    assert list(nothing.iterdir()) == []
