"""``--curl``: the bash commands of a login and a model call, printed from the .env state; nothing sent, nothing written."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from scripts.core.state import EnvFile
from scripts.load.locust_run import free_port
from tests.helpers import Env

MODEL_HOST = "sklearn-irisv2.kubeflow-user-example-com.example.com"


@pytest.fixture
def no_session(sandbox_env: Env, cluster: Sandbox) -> Env:
    """A .env that points at the sandbox's ingress, with no session or token in it."""
    sandbox_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port), MODEL_HOST=MODEL_HOST)
    return sandbox_env


def _bash(*scripts: str, **extra: str) -> subprocess.CompletedProcess[str]:
    variables = {**extra, **{f"SCRIPT{index}": script for index, script in enumerate(scripts)}}
    evals = "; ".join(f'eval "$SCRIPT{index}"' for index in range(len(scripts)))
    # kubectl keeps its cache under KUBECACHEDIR (the session's private one): never in the checkout
    kept = {name: os.environ[name] for name in ("PATH", "HOME", "KUBECACHEDIR") if name in os.environ}
    return subprocess.run(["bash", "-c", evals], env={**kept, **variables}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_the_printed_login_and_infer_get_the_prediction_from_an_empty_session(
    no_session: Env, cluster: Sandbox, flavor: str
) -> None:
    cluster.configure(flavor=flavor)
    before, seen = no_session.path.read_bytes(), cluster.requests_logged()
    login = no_session.process("login", "--curl", "--show-secrets")
    infer = no_session.invoke("infer", "--payload", "iris", "--curl", "--show-secrets")
    assert login.returncode == infer.returncode == 0, login.stderr + infer.stderr
    assert no_session.path.read_bytes() == before  # nothing written
    assert cluster.requests_logged() == seen  # nothing sent while printing
    ran = _bash(login.stdout, infer.stdout)
    assert '"data":[1,1]' in ran.stdout.replace(" ", ""), ran.stderr
    assert no_session.path.read_bytes() == before


@pytest.mark.usefixtures("cluster")
def test_infer_falls_back_to_the_session_in_the_env_file(no_session: Env) -> None:
    assert no_session.invoke("login").returncode == 0
    infer = no_session.invoke("infer", "--curl", "--show-secrets")
    ran = _bash(infer.stdout)
    assert '"data":[1,1]' in ran.stdout.replace(" ", ""), ran.stderr


@pytest.mark.usefixtures("cluster")
def test_a_shell_session_from_another_ingress_is_refused_before_sending(no_session: Env, tmp_path: Path) -> None:
    # cd A; eval "$(login --curl)"; cd B; eval "$(infer --curl)": B is the same gateway under another name
    other = Env(EnvFile(tmp_path / "b" / ".env"))
    other.file.path.parent.mkdir()
    other.set(**{**no_session.read(), "INGRESS_HOST": "localhost"})
    login = no_session.process("login", "--curl", "--show-secrets")
    infer = other.invoke("infer", "--payload", "iris", "--curl", "--show-secrets")
    assert login.returncode == infer.returncode == 0, login.stderr + infer.stderr
    ran = _bash(login.stdout, infer.stdout)
    assert '"data"' not in ran.stdout, "the cookie of one ingress went to another"
    assert ran.returncode == 5
    port = no_session.read()["INGRESS_PORT"]
    assert f"$AUTH_COOKIE belongs to http://127.0.0.1:{port}, not http://localhost:{port}" in ran.stderr


@pytest.mark.usefixtures("cluster")
def test_the_password_does_not_outlive_the_printed_login(no_session: Env) -> None:
    password = no_session.read()["DEX_PASSWORD"]
    assert no_session.invoke("fetch-req").returncode == 0
    scripts = [no_session.invoke(*task, "--curl", "--show-secrets").stdout for task in (["login"], ["authenticate"])]
    for script in scripts:
        probe = '( unset SCRIPT0 KFDEX_TEST_PASSWORD; set ) | grep -c -F -- "$KFDEX_TEST_PASSWORD" || true'
        ran = _bash(script, probe, KFDEX_TEST_PASSWORD=password)
        assert ran.stdout.strip().splitlines()[-1] == "0", ran.stdout + ran.stderr
    assert all(password in script for script in scripts)  # the check above can fail: the scripts do carry it


def test_a_masked_password_shows_no_character(no_session: Env, cluster: Sandbox) -> None:
    password = "Qz9-a-long-password-x7!"
    cluster.configure(users={"user@example.com": password})
    no_session.set(DEX_PASSWORD=password)
    assert no_session.invoke("fetch-req").returncode == 0
    shown = [no_session.invoke(*task).stdout for task in (["status"], ["login", "--curl"], ["authenticate", "--curl"])]
    for text in shown:
        assert "Qz9" not in text and "x7!" not in text and "…" in text


@pytest.mark.usefixtures("cluster")
def test_the_token_login_prints_kubectl_create_token(no_session: Env) -> None:
    login = no_session.invoke("login", "--token", "--curl")
    assert login.returncode == 0, login.stderr
    assert re.search(r"^AUTH_BEARER=\$\(KUBECONFIG=\S+ kubectl --request-timeout=30s -n kubeflow-user-example-com create token "
                     r"default-editor --audience=istio-ingressgateway\.istio-system\.svc\.cluster\.local --duration=24h\)"
                     r" && AUTH_BEARER_ORIGIN=http://127\.0\.0\.1:\d+$",
                     login.stdout, flags=re.MULTILINE)
    infer = no_session.invoke("infer", "--auth", "token", "--curl", "--show-secrets")
    ran = _bash(login.stdout, infer.stdout)
    assert '"data":[1,1]' in ran.stdout.replace(" ", ""), ran.stderr


def test_masked_commands_hold_no_secret_and_say_they_cannot_run(no_session: Env, cluster: Sandbox) -> None:
    password = "Pw-secret-password-0123456789"
    cluster.configure(users={"user@example.com": password})
    no_session.set(DEX_PASSWORD=password)
    assert no_session.invoke("login").returncode == 0
    assert no_session.invoke("fetch-req").returncode == 0
    state = no_session.read()
    runs = [no_session.invoke(*task, "--curl") for task in (["login"], ["infer"], ["fetch-req"], ["authenticate"])]
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    printed = "".join(run.stdout for run in runs)
    secrets = [password, state["AUTH_COOKIE"].split("=", 1)[1], state["DEX_LOGIN_URL"].rsplit("=", 1)[1]]
    for secret in secrets:
        assert secret[:10] not in printed
    assert printed.count("# secrets are masked: these commands cannot log in or call the model as printed") == 4
    assert password in no_session.invoke("login", "--curl", "--show-secrets").stdout


MASKED_LINE = "kfdex: these commands are masked: print them again with --show-secrets to run them"


def test_masked_commands_send_nothing_when_evald(no_session: Env, cluster: Sandbox) -> None:
    assert no_session.invoke("login").returncode == 0  # a saved session, which the masked infer would send as 'authservice_session=…'
    assert no_session.invoke("fetch-req").returncode == 0
    gateway = f"http://127.0.0.1:{cluster.gateway_port}"  # where approve and extract-cookie would send, were they not masked
    no_session.set(DEX_NEXT_URL=f"{gateway}/dex/approval?req=r", DEX_CALLBACK_URL=f"{gateway}/authservice/oidc/callback?code=c")
    for task in (["login"], ["infer"], ["fetch-req"], ["authenticate"], ["approve"], ["extract-cookie"]):
        masked = no_session.invoke(*task, "--curl").stdout
        seen = cluster.requests_logged()
        ran = _bash(masked, CLEANED_UP)
        assert cluster.requests_logged() == seen, f"the masked {task[0]} sent a request"
        assert ran.returncode != 0 and ran.stderr.splitlines()[0] == MASKED_LINE and ran.stderr.count("kfdex:") == 1, (task, ran.stderr)
        if task == ["login"]:
            assert "kfdex-cleaned-up" in ran.stdout


def test_a_previous_eval_does_not_decide_whether_a_script_is_masked(no_session: Env, cluster: Sandbox) -> None:
    masked, shown = (no_session.invoke("login", "--curl", *secrets).stdout for secrets in ([], ["--show-secrets"]))
    ran = _bash(masked, shown)
    assert ran.returncode == 0 and "logged in" in ran.stderr, ran.stderr
    infer_shown, infer_masked = (no_session.invoke("infer", "--curl", *secrets).stdout for secrets in (["--show-secrets"], []))
    seen = cluster.requests_logged()
    ran = _bash(shown, infer_shown, infer_masked)
    assert '"data":[1,1]' in ran.stdout.replace(" ", "") and ran.returncode != 0 and MASKED_LINE in ran.stderr, ran.stderr
    assert cluster.requests_logged() > seen


@pytest.mark.usefixtures("cluster")
def test_single_steps_print_their_hop_from_the_current_state(no_session: Env) -> None:
    assert no_session.invoke("fetch-req").returncode == 0
    before = no_session.path.read_bytes()
    shown = no_session.invoke("authenticate", "--curl", "--show-secrets")
    login_url = no_session.read()["DEX_LOGIN_URL"]
    assert "curl -sS -i " in shown.stdout
    assert f"'{login_url}'" in shown.stdout and "-X POST" in shown.stdout
    ran = _bash(shown.stdout)
    assert re.search(r"^HTTP/1\.[01] 303", ran.stdout, flags=re.MULTILINE), ran.stdout + ran.stderr
    assert no_session.path.read_bytes() == before


def test_infer_curl_leaves_out_a_session_of_another_ingress(sandbox_env: Env, cluster: Sandbox) -> None:
    sandbox_env.set(
        INGRESS_HOST="127.0.0.1",
        INGRESS_PORT=str(cluster.gateway_port),
        NODE_PORT="1",
        AUTH_COOKIE="authservice_session=belongs-elsewhere-0123456789",
        AUTH_ORIGIN="https://other.example.com:443",
    )
    printed = sandbox_env.invoke("infer", "--curl", "--show-secrets")
    assert printed.returncode == 0, printed.stderr
    assert "belongs-elsewhere" not in printed.stdout
    # said, on one line, as `kfdex infer` says it (exit 5): the shell may still hold a valid $AUTH_COOKIE
    assert printed.stderr.startswith("warning: the session cookie in the state belongs to https://other.example.com:443, not ")
    assert len(printed.stderr.splitlines()) == 1 and "$AUTH_COOKIE" in printed.stderr, printed.stderr
    assert sandbox_env.invoke("infer", "--auth", "token", "--curl").stderr == ""  # not the credential asked for
    sandbox_env.set(AUTH_ORIGIN=f"http://127.0.0.1:{cluster.gateway_port}", AUTH_EXPIRES="2020-01-01T00:00:00Z")
    expired = sandbox_env.invoke("infer", "--curl", "--show-secrets")
    assert expired.returncode == 0 and "belongs-elsewhere" not in expired.stdout
    assert expired.stderr.startswith("warning: the session cookie in the state expired at 2020-01-01 00:00 UTC"), expired.stderr
    sandbox_env.set(AUTH_EXPIRES="")
    kept = sandbox_env.invoke("infer", "--curl", "--show-secrets")
    assert "belongs-elsewhere" in kept.stdout and kept.stderr == ""


@pytest.mark.parametrize(("settings", "expected"), [({"INGRESS_INSECURE": "1"}, "kfdex_tls=(--max-time 30 -k)"), ({}, "--cacert")])
def test_printed_commands_carry_the_tls_settings(env: Env, tmp_path: Path, settings: dict[str, str], expected: str) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    env.set(INGRESS_HOST="kf.example.com", INGRESS_PORT="443", INGRESS_CA_BUNDLE=str(bundle), DEX_LOGIN="a", HTTP_TIMEOUT="30")
    env.set(**settings)
    printed = env.invoke("login", "--curl")
    assert printed.returncode == 0, printed.stderr
    assert expected in printed.stdout


def test_a_connector_id_the_script_cannot_match_is_refused(env: Env) -> None:
    env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT="1", DEX_LOGIN="a", DEX_CONNECTOR="it's")
    printed = env.invoke("login", "--curl")
    assert printed.returncode == 2 and "DEX_CONNECTOR" in printed.stderr


def test_kubectl_does_not_inherit_the_tools_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from scripts.core.state import EnvFile
    from scripts.transport import kube

    monkeypatch.setenv("DEX_PASSWORD", "hunter2")
    monkeypatch.setenv("AUTH_BEARER", "token")
    monkeypatch.setenv("PATH_FOR_KUBECTL", "kept")
    passed = kube._environment(EnvFile(tmp_path / ".env").read())
    assert "DEX_PASSWORD" not in passed and "AUTH_BEARER" not in passed and passed["PATH_FOR_KUBECTL"] == "kept"



# run after a printed login: says whether it left a temp file or the password behind, and ends with its status
CLEANED_UP = (
    'kfdex_last=$?; [ -z "${kfdex_password+set}" ] && [ ! -e "$kfdex_jar" ] && [ ! -e "$kfdex_body" ] && echo kfdex-cleaned-up; '
    '(exit "$kfdex_last")'
)


def test_the_printed_login_ends_with_its_outcome_and_cleans_up_either_way(no_session: Env) -> None:
    worked = _bash(no_session.invoke("login", "--curl", "--show-secrets").stdout, CLEANED_UP)
    assert worked.returncode == 0 and "kfdex-cleaned-up" in worked.stdout, worked.stderr
    no_session.set(DEX_PASSWORD="not-the-password")
    failed = _bash(no_session.invoke("login", "--curl", "--show-secrets").stdout, CLEANED_UP)
    assert failed.returncode != 0 and "wrong DEX_LOGIN / DEX_PASSWORD" in failed.stderr, failed.stdout + failed.stderr
    assert "kfdex-cleaned-up" in failed.stdout


@pytest.mark.usefixtures("cluster")
def test_the_printed_infer_ends_with_its_outcome(no_session: Env) -> None:
    assert no_session.invoke("infer", "--curl", "--show-secrets").returncode == 0
    no_session_at_all = _bash(no_session.invoke("infer", "--curl", "--show-secrets").stdout)
    assert no_session_at_all.returncode == 5 and "no session or token" in no_session_at_all.stderr
    assert no_session.invoke("login").returncode == 0
    assert _bash(no_session.invoke("infer", "--curl", "--show-secrets").stdout).returncode == 0
    no_session.set(MODEL_NAME="no-such-model")  # an HTTP error: its body is still shown
    http_error = _bash(no_session.invoke("infer", "--curl", "--show-secrets").stdout)
    assert http_error.returncode == 22 and http_error.stdout.strip(), http_error.stdout + http_error.stderr
    no_session.set(NODE_PORT=str(free_port()))  # nothing listens there: connection refused
    refused = _bash(no_session.invoke("infer", "--curl", "--show-secrets").stdout)
    assert refused.returncode == 7, refused.stderr


@pytest.mark.usefixtures("cluster")
def test_single_steps_end_with_their_outcome(no_session: Env) -> None:
    assert _bash(no_session.invoke("fetch-req", "--curl", "--show-secrets").stdout).returncode == 0
    assert no_session.invoke("fetch-req").returncode == 0
    assert _bash(no_session.invoke("authenticate", "--curl", "--show-secrets").stdout).returncode == 0
    no_session.set(DEX_PASSWORD="not-the-password")
    wrong = _bash(no_session.invoke("authenticate", "--curl", "--show-secrets").stdout, CLEANED_UP)
    assert wrong.returncode == 22 and "kfdex-cleaned-up" in wrong.stdout, wrong.stdout + wrong.stderr
    closed = free_port()
    no_session.set(INGRESS_PORT=str(closed))
    assert _bash(no_session.invoke("fetch-req", "--curl", "--show-secrets").stdout).returncode != 0
    for step in ("approve", "extract-cookie"):  # one hop each, to a URL on the ingress where nothing listens
        no_session.set(DEX_NEXT_URL=f"http://127.0.0.1:{closed}/dex/approval", DEX_CALLBACK_URL=f"http://127.0.0.1:{closed}/cb")
        assert _bash(no_session.invoke(step, "--curl", "--show-secrets").stdout).returncode == 7


@pytest.mark.parametrize(("step", "key"), [("authenticate", "DEX_LOGIN_URL"), ("approve", "DEX_NEXT_URL"), ("extract-cookie", "DEX_CALLBACK_URL")])
def test_a_printed_step_never_sends_the_login_to_another_host(no_session: Env, step: str, key: str) -> None:
    """As the step itself refuses: the .env's URL must be on the ingress, or nothing is printed."""
    no_session.set(**{key: "http://127.0.0.2:18081/dex/auth/local/login?state=abc", "DEX_PASSWORD": "pw"})
    printed = no_session.invoke(step, "--curl", "--show-secrets")
    assert printed.returncode == 7 and printed.stdout == "", printed.stdout
    assert f"{key} in {no_session.path} names it: run `invoke fetch-req` again" in printed.stderr
    assert "is not on the ingress http://127.0.0.1:" in printed.stderr
