"""The compatibility matrix on the real components: each flavor's real Dex (and oauth2-proxy) behind the Envoy stand-in.

Marked ``real``: the cases of ``tests/test_matrix.py`` that do not need the
stand-in's run-time switches, against ``--components real`` for every flavor
whose binaries ``invoke sandbox-build`` has put in the cache (the ``real``
fixture, ``tests/conftest.py``: one such sandbox per flavor for the whole run).
The tests of a flavor not built are left out, and the run's summary says so
in one line.
"""

from __future__ import annotations

import base64
from pathlib import Path

import jwt
import pytest
import requests

from sandbox import control
from sandbox.flavors import FLAVORS
from scripts import approve, authenticate, create_token, extract_cookie, fetch_req, infer
from scripts.core.errors import CredentialsError, LoginRestartError, SessionError
from scripts.core.state import EnvFile
from scripts.core.step import run_step
from tests.conftest import not_built
from tests.helpers import NO_BACKOFF, Env, here, login_steps

pytestmark = pytest.mark.real
MODEL_HOST = "sklearn-irisv2.kubeflow-user-example-com.example.com"
CALLBACK_REFUSED = {"oauth2-proxy": "403 .*Unable to find a valid CSRF token", "authservice": "400 .*CSRF check failed"}


@pytest.fixture
def ready(tmp_path: Path, real: control.Sandbox) -> Env:
    """A .env pointing at the real sandbox, calling the model through the ingress by its Host."""
    env = Env(EnvFile(tmp_path / ".env"))
    settings = real.settings()
    settings.pop("SANDBOX_DIR")  # a test must never be able to stop the shared sandbox
    env.set(**NO_BACKOFF, **settings, INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(real.gateway_port), MODEL_HOST=MODEL_HOST)
    return env


def _predict(env: Env, auth: str = "auto", protocol: str = "rest") -> str | None:
    return run_step(infer.STEP, env.file, here(), payload="iris", auth=auth, protocol=protocol).output


def test_login_gives_a_cookie_the_model_accepts(ready: Env, real: control.Sandbox) -> None:
    login_steps(ready)
    assert ready.read()["AUTH_COOKIE"].startswith(FLAVORS[real.flavor].session_cookie + "=")
    assert _predict(ready, auth="cookie") == "predict = [1, 1]"
    assert _predict(ready, auth="cookie", protocol="grpc") == "predict = [1, 1]"


# the real 1.9.0 (overlay m2m-self-signed) checks a bearer token in oauth2-proxy against its extra JWT
# issuer's audience, not the gateway's that create-token asks for by default: TOKEN_AUDIENCE says which
TOKEN_AUDIENCE_REFUSED = frozenset({"kf190"})
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


def test_token_login(ready: Env, real: control.Sandbox) -> None:
    run_step(create_token.STEP, ready.file, here())
    if real.flavor in TOKEN_AUDIENCE_REFUSED:
        assert ready.read()["TOKEN_AUDIENCE"] == API_AUDIENCE  # the sandbox's settings say what its real gateway wants
        assert _predict(ready, auth="token") == "predict = [1, 1]"
        ready.set(TOKEN_AUDIENCE="")  # create-token's default: the gateway's own audience, which 1.9.0 refuses
        run_step(create_token.STEP, ready.file, here())
        with pytest.raises(SessionError, match=r"did not accept the ServiceAccount token"):
            _predict(ready, auth="token")
    elif FLAVORS[real.flavor].accepts_bearer:
        assert _predict(ready, auth="token") == "predict = [1, 1]"
        assert _predict(ready, auth="token", protocol="grpc") == "predict = [1, 1]"
    else:
        with pytest.raises(SessionError, match=r"did not accept the ServiceAccount token"):
            _predict(ready, auth="token")


def test_wrong_password_fails_with_the_invalid_credentials_message(ready: Env) -> None:
    ready.set(DEX_PASSWORD="wrong-password")
    run_step(fetch_req.STEP, ready.file, here())
    with pytest.raises(CredentialsError, match=r"Invalid Email Address and password\."):
        run_step(authenticate.STEP, ready.file, here())


def test_posting_to_a_used_login_request_restarts(ready: Env) -> None:
    login_steps(ready)
    with pytest.raises(LoginRestartError, match=r"authenticate: the gateway answered 400 .*start again with `invoke login`"):
        run_step(authenticate.STEP, ready.file, here())


def test_a_used_callback_restarts(ready: Env, real: control.Sandbox) -> None:
    login_steps(ready)
    if FLAVORS[real.flavor].proxy == "authservice-old":
        # the old authservice answers 500 "Failed to exchange authorization code with token."; Envoy's
        # ext_authz turns a 5xx from the check into its status_on_error, an empty 403, which restarts too
        with pytest.raises(LoginRestartError, match=r"extract-cookie: the gateway answered 403 Forbidden at /login/oidc"):
            run_step(extract_cookie.STEP, ready.file, here())
        return
    proxy = "oauth2-proxy" if FLAVORS[real.flavor].proxy == "oauth2-proxy" else "authservice"
    with pytest.raises(LoginRestartError, match=rf"extract-cookie: the gateway answered {CALLBACK_REFUSED[proxy]}"):
        run_step(extract_cookie.STEP, ready.file, here())


def test_a_session_the_gateway_no_longer_accepts_sends_the_user_back_to_login(ready: Env) -> None:
    login_steps(ready)
    name, _, value = ready.read()["AUTH_COOKIE"].partition("=")
    ready.set(AUTH_COOKIE=f"{name}={value[:-8]}AAAAAAAA")  # a session its proxy cannot decode: as good as expired
    with pytest.raises(SessionError, match=r"session is expired or not valid here; run `invoke login`"):
        _predict(ready, auth="cookie")


def test_a_request_without_a_session_is_sent_to_dex(ready: Env) -> None:
    run_step(fetch_req.STEP, ready.file, here())
    assert "/dex/auth/local" in ready.read()["DEX_LOGIN_URL"]


def _model_answer(real: control.Sandbox, bearer: str) -> requests.Response:
    headers = {"Host": MODEL_HOST, "Authorization": f"Bearer {bearer}"}
    return requests.get(f"http://127.0.0.1:{real.gateway_port}/v2/models/sklearn-irisv2/ready", headers=headers, timeout=10)


def test_the_gateway_verifies_bearer_tokens_as_jwt_authn(real: control.Sandbox) -> None:
    if FLAVORS[real.flavor].unauthenticated != "sign-in":
        pytest.skip(f"{real.flavor}: bearer tokens go to the auth service, not to Istio's jwt_authn")
    good = real.mint_token()
    assert _model_answer(real, good).status_code == 200
    header, claims, _signature = good.split(".")
    forged = f"{header}.{claims}.{base64.urlsafe_b64encode(b'not the signature').decode().rstrip('=')}"
    stranger = jwt.encode({"iss": "https://elsewhere", "sub": "x", "exp": 2**40}, "a key of 32 bytes, not the issuer!", algorithm="HS256")
    expired = real.mint_token(seconds=-60)
    for token, words in ((forged, "Jwt verification fails"), (stranger, "Jwt issuer is not configured"), (expired, "Jwt is expired")):
        answer = _model_answer(real, token)
        assert (answer.status_code, answer.text) == (401, words)
        assert answer.headers["www-authenticate"].startswith('Bearer realm="http://sklearn-irisv2.')
    no_token = requests.get(f"http://127.0.0.1:{real.gateway_port}/v2/models/sklearn-irisv2/ready", headers={"Host": MODEL_HOST}, timeout=10)
    assert no_token.status_code == 403  # oauth2-proxy's sign-in page: the check runs when there is no Authorization


def test_a_used_approval_restarts(ready: Env, real: control.Sandbox) -> None:
    if FLAVORS[real.flavor].approval != "page":
        pytest.skip(f"{real.flavor}: Dex shows no approval page")
    login_steps(ready, until="approve")
    with pytest.raises(LoginRestartError, match=r"approve: the gateway answered"):
        run_step(approve.STEP, ready.file, here())


def test_the_token_demo_on_the_real_1_9_0(tmp_path: Path) -> None:
    if "kf190" in not_built():
        pytest.skip("kf190's real components are not built: `kfdex sandbox-build --flavor kf190`")
    env = Env(EnvFile(tmp_path / ".env"))
    ran = env.process("demo", "--flavor", "kf190", "--components", "real", "--token")
    assert ran.returncode == 0 and "predict = [1, 1]" in ran.stdout, ran.stderr
