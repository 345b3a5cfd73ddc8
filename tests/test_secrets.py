"""Secrets stay secret: TLS is verified, and no output carries a password, token or full cookie."""

from __future__ import annotations

import secrets
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from sandbox.httpserve import Listener, Reply, Request
from scripts import fetch_req
from scripts.core.errors import GatewayError
from scripts.core.step import run_step
from tests.helpers import Env, here

LOGIN_PAGE = '<form method="post" action="/dex/auth/local?req=abc"><input name="login"><input name="password"></form>'


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def https_gateway(certificate: tuple[Path, Path]) -> Iterator[Listener]:
    """One HTTPS listener for the module (stopping one costs half a second)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)

    def app(_request: Request) -> Reply:
        return Reply.html(200, LOGIN_PAGE)

    listener = Listener("https", app, tls=context)
    yield listener
    listener.stop()


def _https(env: Env, listener: Listener, **values: str) -> None:
    env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(listener.port), INGRESS_SCHEME="https", **values)


def test_tls_is_verified_by_default_and_not_retried(
    env: Env, https_gateway: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    _https(env, https_gateway)
    with pytest.raises(
        GatewayError, match=r"TLS failed for https://127\.0\.0\.1:\d+ \(certificate verify failed\): set INGRESS_CA_BUNDLE"
    ):
        run_step(fetch_req.STEP, env.file, here())
    assert "retry:" not in capsys.readouterr().err


def test_a_private_ca_bundle_is_trusted(env: Env, https_gateway: Listener, certificate: tuple[Path, Path]) -> None:
    _https(env, https_gateway, INGRESS_CA_BUNDLE=str(certificate[0]))
    run_step(fetch_req.STEP, env.file, here())
    assert env.read()["DEX_LOGIN_URL"] == f"https://127.0.0.1:{https_gateway.port}/dex/auth/local?req=abc"


def test_the_insecure_switch_warns_every_time(env: Env, https_gateway: Listener, capsys: pytest.CaptureFixture[str]) -> None:
    _https(env, https_gateway, INGRESS_INSECURE="1")
    for _ in range(2):
        run_step(fetch_req.STEP, env.file, here())
    err = capsys.readouterr().err
    assert err.count("warning: TLS verification is OFF for https://127.0.0.1:") == 2
    assert "InsecureRequestWarning" not in err


def test_no_output_of_a_full_run_holds_a_secret(sandbox_env: Env, cluster: Sandbox, model_log: Path) -> None:
    password = "Pw-" + secrets.token_urlsafe(16)
    cluster.configure(flavor="kf17", users={"user@example.com": password})
    sandbox_env.set(DEX_PASSWORD=password)
    runs = [
        sandbox_env.invoke("login"),
        sandbox_env.invoke("login", "--token"),
        sandbox_env.invoke("status"),
        sandbox_env.invoke("expose-nodeport"),
        sandbox_env.invoke("infer", "--auth", "cookie"),
        sandbox_env.invoke("infer", "--auth", "token", "--json"),
        sandbox_env.invoke("--debug", "login", "--force"),
        sandbox_env.invoke("--debug", "extract-cookie"),  # fails (the callback was used): an error path too
    ]
    state = sandbox_env.read()
    cookie_value = state["AUTH_COOKIE"].split("=", 1)[1]
    token = state["AUTH_BEARER"]
    assert all(run.returncode == 0 for run in runs[:-1]), [run.stderr for run in runs]
    output = "".join(run.stdout + run.stderr for run in runs)
    output += (cluster.folder / "cluster.log").read_text() + model_log.read_text(errors="replace")
    for secret in (password, cookie_value, token):
        assert secret not in output
        assert secret[:20] not in output
    assert "authservice_session=" in output  # the cookie is shown, masked
    revealed = sandbox_env.invoke("status", "--show-secrets")
    assert cookie_value in revealed.stdout  # only when asked


@pytest.mark.usefixtures("cluster")
def test_the_env_file_holding_secrets_is_private(sandbox_env: Env) -> None:
    assert sandbox_env.invoke("login").returncode == 0
    assert sandbox_env.path.stat().st_mode & 0o777 == 0o600


def _codes(state: dict[str, str]) -> list[str]:
    """The one-time values a login left in its URLs: Dex's req/state, the callback's code and state, the hmac."""
    from urllib.parse import parse_qsl, urlsplit

    values = [state.get("DEX_REQ", "")]
    for key in ("DEX_LOGIN_URL", "DEX_NEXT_URL", "DEX_CALLBACK_URL"):
        values += [value for _name, value in parse_qsl(urlsplit(state.get(key, "")).query)]
    return [value for value in values if len(value) > 8]


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_verbose_output_of_a_full_login_holds_no_secret(sandbox_env: Env, cluster: Sandbox, flavor: str) -> None:
    password = "Pw-" + secrets.token_urlsafe(16)
    cluster.configure(flavor=flavor, users={"user@example.com": password})
    sandbox_env.set(DEX_PASSWORD=password)
    runs = [
        sandbox_env.invoke("login", "--verbose"),
        sandbox_env.invoke("login", "--token", "-v"),
        sandbox_env.invoke("expose-nodeport", "-v"),
        sandbox_env.invoke("infer", "-v", "--auth", "cookie"),
    ]
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    state = sandbox_env.read()
    output = "".join(run.stdout + run.stderr for run in runs)
    assert output.count("\n> ") >= 6  # the hops are there
    codes = _codes(state)
    assert len(codes) >= 3, state
    cookie_values = [part.split("=", 1)[1] for part in state["AUTH_COOKIE"].split("; ")]
    for secret in (password, state["AUTH_BEARER"], *cookie_values, *codes):
        assert secret not in output
        assert secret[:12] not in output


def test_status_shows_keys_it_does_not_know_masking_secret_looking_ones(env: Env) -> None:
    env.set(MY_NOTE="hello", MY_API_TOKEN="tok-0123456789-abcdef")
    shown = env.invoke("status")
    assert shown.returncode == 0
    assert "MY_NOTE=hello" in shown.stdout and "MY_API_TOKEN=…" in shown.stdout
    assert "tok" not in shown.stdout and "def" not in shown.stdout


def test_a_readable_env_file_holding_a_secret_is_warned_about_not_refused(env: Env) -> None:
    env.set(DEX_PASSWORD="hunter2-hunter2")
    env.path.chmod(0o644)
    shown = env.invoke("status")
    assert shown.returncode == 0
    assert f"holds DEX_PASSWORD and others may read it (mode 0644): chmod 600 {env.path}" in shown.stderr
    env.path.chmod(0o600)
    assert "others may read it" not in env.invoke("status").stderr
