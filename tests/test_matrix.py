"""The compatibility matrix: every auth generation the sandbox plays, and every failure signal of the spec.

Each row of ``docs/auth-flows.md``'s generations table is a flavor; the
client never names one, so the same steps must succeed (or fail with the
documented outcome) on all of them.
"""

from __future__ import annotations

import ast
import re
from urllib.parse import urlsplit, urlunsplit

import pytest

from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from scripts import approve, authenticate, create_token, extract_cookie, fetch_req, infer
from scripts.core.errors import CredentialsError, GatewayError, LoginRestartError, SessionError
from scripts.core.step import Step, run_step
from tests.helpers import ROOT, Env, here, login_steps

ALL = sorted(FLAVORS)
WITH_APPROVAL = [name for name in ALL if FLAVORS[name].approval != "none"]
WITH_HMAC = [name for name in ALL if FLAVORS[name].approval in ("auto-hmac", "page")]
OAUTH2 = [name for name in ALL if FLAVORS[name].proxy == "oauth2-proxy"]

@pytest.fixture
def ready(sandbox_env: Env, cluster: Sandbox) -> Env:
    """A .env with the ingress resolved and a call through the ingress (Host header) set up."""
    sandbox_env.set(
        INGRESS_HOST="127.0.0.1",
        INGRESS_PORT=str(cluster.gateway_port),
        MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com",
    )
    return sandbox_env


def _predict(env: Env, auth: str = "auto") -> str | None:
    return run_step(infer.STEP, env.file, here(), payload="iris", auth=auth).output


def _restarts(env: Env, step: Step, match: str) -> None:
    """``step`` fails with a LoginRestartError whose message matches ``match``."""
    with pytest.raises(LoginRestartError, match=match):
        run_step(step, env.file, here())


@pytest.mark.parametrize("flavor", ALL)
def test_login_gives_a_cookie_the_model_accepts(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    login_steps(ready)
    cookie = ready.read()["AUTH_COOKIE"]
    assert cookie.startswith(FLAVORS[flavor].session_cookie + "=")
    assert "csrf" not in cookie
    assert _predict(ready, auth="cookie") == "predict = [1, 1]"


@pytest.mark.parametrize("flavor", ALL)
def test_token_login(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    run_step(create_token.STEP, ready.file, here())
    assert ready.read()["AUTH_BEARER"].startswith("eyJ")
    if FLAVORS[flavor].accepts_bearer:
        assert _predict(ready, auth="token") == "predict = [1, 1]"
    else:
        with pytest.raises(SessionError, match=r"did not accept the ServiceAccount token"):
            _predict(ready, auth="token")


@pytest.mark.parametrize("prompt", ["Email Address", "Username"])  # the local connector's, and an LDAP-style one
@pytest.mark.parametrize("flavor", ALL)
def test_wrong_password_fails_with_the_invalid_credentials_message(
    ready: Env, cluster: Sandbox, flavor: str, prompt: str
) -> None:
    cluster.configure(flavor=flavor, login_prompt=prompt)
    ready.set(DEX_PASSWORD="wrong-password")
    run_step(fetch_req.STEP, ready.file, here())
    with pytest.raises(CredentialsError, match=rf"Invalid {prompt} and password\."):
        run_step(authenticate.STEP, ready.file, here())


@pytest.mark.parametrize("flavor", ALL)
def test_connector_choice_page_follows_dex_connector(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor, connectors=["ldap", "local"])
    login_steps(ready)
    assert _predict(ready) == "predict = [1, 1]"
    ready.set(DEX_CONNECTOR="github")
    with pytest.raises(GatewayError, match=r"Dex offers the connectors ldap, local, not 'github': set DEX_CONNECTOR"):
        run_step(fetch_req.STEP, ready.file, here())


@pytest.mark.parametrize("flavor", OAUTH2)
def test_a_split_session_cookie_is_sent_whole(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor, big_cookie=True)
    login_steps(ready)
    names = [part.split("=")[0] for part in ready.read()["AUTH_COOKIE"].split("; ")]
    assert names == ["oauth2_proxy_kubeflow_0", "oauth2_proxy_kubeflow_1"]
    assert _predict(ready) == "predict = [1, 1]"


def test_oauth2_proxy_api_paths_answer_401_and_still_lead_to_dex(ready: Env, cluster: Sandbox) -> None:
    cluster.configure(flavor="kf191")
    run_step(fetch_req.STEP, ready.file, here(), start_path="/apis/v1beta1/pipelines")
    assert "/dex/auth/local/login?back=&state=" in ready.read()["DEX_LOGIN_URL"]


# ---- failure signals (spec table) ---------------------------------------------------------


@pytest.mark.parametrize("flavor", ALL)
def test_posting_to_a_used_login_request_restarts(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    login_steps(ready)
    words = "Login session expired" if not FLAVORS[flavor].login_by_state else "Requested resource does not exist"
    _restarts(ready, authenticate.STEP, rf"authenticate: the gateway answered 400 .*{words}.*start again with `invoke login`")


@pytest.mark.parametrize("flavor", ALL)
def test_an_expired_auth_request_restarts(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    run_step(fetch_req.STEP, ready.file, here())
    cluster.configure(auth_request_seconds=0)  # the request is now older than Dex keeps them
    _restarts(ready, authenticate.STEP, r"User session has expired")


@pytest.mark.parametrize("flavor", WITH_APPROVAL)
def test_a_used_approval_restarts(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    login_steps(ready, until="approve")
    _restarts(ready, approve.STEP, r"approve: the gateway answered 500 .*Database error")


@pytest.mark.parametrize("flavor", WITH_HMAC)
def test_an_approval_with_a_bad_hmac_restarts(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    login_steps(ready, until="authenticate")
    parts = urlsplit(ready.read()["DEX_NEXT_URL"])
    query = "&".join(p if not p.startswith("hmac=") else "hmac=forged" for p in parts.query.split("&"))
    ready.set(DEX_NEXT_URL=urlunsplit(parts._replace(query=query)))
    _restarts(ready, approve.STEP, r"401 .*Unauthorized request")


@pytest.mark.parametrize(
    ("flavor", "status", "words"),
    [
        ("kf15", 403, "this login request was used up"),  # authservice's 500 to Envoy's ext_authz: an empty 403
        ("kf17", 400, "CSRF check failed"),
        ("kf18", 400, "CSRF check failed"),
        ("kf190", 403, "Unable to find a valid CSRF token"),
        ("kf191", 403, "Unable to find a valid CSRF token"),
    ],
)
def test_a_used_callback_restarts(ready: Env, cluster: Sandbox, flavor: str, status: int, words: str) -> None:
    cluster.configure(flavor=flavor)
    login_steps(ready)
    _restarts(ready, extract_cookie.STEP, rf"extract-cookie: the gateway answered {status} .*{words}")


@pytest.mark.parametrize(
    ("start", "said"),
    [
        ("/dex/auth?client_id=nope", r'404 Not Found "Not Found: Invalid client_id \("nope"\)\."'),
        (
            "/dex/auth?client_id=kubeflow-oidc-authservice&redirect_uri=%2Fevil",
            r'400 Bad Request "Bad Request: Unregistered redirect_uri \("/evil"\)\."',
        ),
    ],
    ids=["client_id", "redirect_uri"],
)
@pytest.mark.parametrize("flavor", ALL)
def test_a_misconfigured_client_is_a_gateway_error_not_a_restart(
    ready: Env, cluster: Sandbox, flavor: str, start: str, said: str
) -> None:
    cluster.configure(flavor=flavor)
    with pytest.raises(GatewayError, match=said) as raised:
        run_step(fetch_req.STEP, ready.file, here(), start_path=start)
    assert not isinstance(raised.value, LoginRestartError)


@pytest.mark.parametrize("flavor", ALL)
def test_an_expired_session_sends_the_user_back_to_login(ready: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    login_steps(ready)
    cluster.expire_sessions()
    with pytest.raises(SessionError, match=r"session is expired or not valid here; run `invoke login`"):
        _predict(ready)


def _code_words(source: str) -> list[str]:
    """Every identifier and string literal of a module, docstrings left out (they may cite versions)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
    return words


def test_no_login_code_names_a_kubeflow_version() -> None:
    version = re.compile(r"\bkf1\d\d?\b|kubeflow 1\.\d|\bv?2\.\d\d\b|\b1\.(?:[3-9]|10)\b", flags=re.IGNORECASE)
    for path in sorted((ROOT / "scripts").glob("*.py")):
        named = [word for word in _code_words(path.read_text()) if version.search(word)]
        assert not named, f"{path.name} names a version: {named}"
