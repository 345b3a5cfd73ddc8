"""Invoke tasks: one per documented step, plus login, status, the sandbox and the demo.

Each step task runs one script of ``scripts/`` against the .env file (the one
beside this file, or ``$ENV_FILE``); ``login`` chains the login steps, each
reading what the previous one wrote.  Errors end in one line and a documented
exit code; ``invoke --debug TASK`` (or ``KFDEX_DEBUG=1``) shows the traceback.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from invoke import Context, task

from scripts import approve as approve_step
from scripts import authenticate as authenticate_step
from scripts import console
from scripts import create_token as create_token_step
from scripts import expose_nodeport as expose_nodeport_step
from scripts import extract_cookie as extract_cookie_step
from scripts import fetch_req as fetch_req_step
from scripts import infer as infer_step
from scripts import login as login_flow
from scripts import resolve_ingress as resolve_ingress_step
from scripts.errors import UsageError
from scripts.keys import KEYS, is_secret
from scripts.runner import guarded, run_step
from scripts.session import format_expiry, parse_expiry
from scripts.state import ENV_FILE_VARIABLE, EnvFile

# urllib3 logs whole URLs (with one-time codes) at debug level: keep it quiet even under --debug
logging.getLogger("urllib3").setLevel(logging.WARNING)

SECRETS_HELP = "print cookies and tokens unmasked"
ATTEMPTS_HELP = "most attempts per call while the gateway times out (default RETRY_ATTEMPTS, else 30)"
DEADLINE_HELP = "most seconds spent retrying one call (default RETRY_DEADLINE, else 300)"


def _env() -> EnvFile:
    return EnvFile()


NOT_GIVEN = -1


def _retry_overrides(attempts: int, deadline: float) -> dict[str, str]:
    """RETRY_* values given as options, for this run only."""
    overrides: dict[str, str] = {}
    if attempts != NOT_GIVEN:
        if attempts < 1:
            raise UsageError(f"--attempts {attempts}: give 1 or more")
        overrides["RETRY_ATTEMPTS"] = str(attempts)
    if deadline != NOT_GIVEN:
        if deadline < 0:
            raise UsageError(f"--deadline {deadline:g}: give 0 seconds or more")
        overrides["RETRY_DEADLINE"] = str(deadline)
    return overrides


@task
def resolve_ingress(c: Context) -> None:
    """Find the Istio ingress address and port with kubectl (INGRESS_HOST, INGRESS_PORT)."""
    with guarded():
        run_step("resolve-ingress", resolve_ingress_step.run, _env())


@task
def fetch_req(c: Context) -> None:
    """Follow the gateway's redirects to Dex's login page (DEX_REQ, DEX_LOGIN_URL)."""
    with guarded():
        run_step("fetch-req", fetch_req_step.run, _env())


@task
def authenticate(c: Context) -> None:
    """Post DEX_LOGIN / DEX_PASSWORD to Dex's login form (DEX_NEXT_URL)."""
    with guarded():
        run_step("authenticate", authenticate_step.run, _env())


@task
def approve(c: Context) -> None:
    """Pass Dex's approval step, or say it was skipped (DEX_CALLBACK_URL)."""
    with guarded():
        run_step("approve", approve_step.run, _env())


@task(help={"show_secrets": SECRETS_HELP})
def extract_cookie(c: Context, show_secrets: bool = False) -> None:
    """Call the gateway's callback and keep the session cookie (AUTH_COOKIE, AUTH_EXPIRES)."""
    console.reveal_secrets(show_secrets)
    with guarded():
        run_step("extract-cookie", extract_cookie_step.run, _env())


@task(help={"delete": "delete the NodePort Service instead of creating it"})
def expose_nodeport(c: Context, delete: bool = False) -> None:
    """Expose the model's predictor pod as a NodePort Service (NODE_PORT)."""
    with guarded():
        run_step("expose-nodeport", expose_nodeport_step.run, _env(), delete=delete)


@task(
    help={
        "service_account": "ServiceAccount to get a token for (default TOKEN_SERVICE_ACCOUNT, else default-editor)",
        "duration": "token lifetime such as 24h or 90m (default TOKEN_DURATION, else 24h)",
    }
)
def create_token(c: Context, service_account: str = "", duration: str = "") -> None:
    """Get a ServiceAccount token for the gateway with kubectl (AUTH_BEARER)."""
    with guarded():
        run_step("create-token", create_token_step.run, _env(), service_account=service_account, duration=duration)


@task(
    help={
        "payload": "a name from payloads/ (iris, iris-v1), a JSON file, - for standard input, or inline JSON",
        "json": "print the raw JSON answer",
        "auth": "send the Dex session cookie, the ServiceAccount token, or auto (cookie while valid, else token)",
        "attempts": ATTEMPTS_HELP,
        "deadline": DEADLINE_HELP,
    }
)
def infer(
    c: Context,
    payload: str = "iris",
    json: bool = False,
    auth: str = "auto",
    attempts: int = NOT_GIVEN,
    deadline: float = float(NOT_GIVEN),
) -> None:
    """Send a payload to the model with the session and print its outputs."""
    with guarded():
        overrides = _retry_overrides(attempts, deadline)
        run_step("infer", infer_step.run, _env(), overrides, payload=payload, json_output=json, auth=auth)


@task(
    help={
        "force": "log in again even when the saved session is still valid",
        "token": "get a ServiceAccount token with kubectl instead of the Dex login (no password)",
        "attempts": ATTEMPTS_HELP,
        "deadline": DEADLINE_HELP,
        "show_secrets": SECRETS_HELP,
    }
)
def login(
    c: Context,
    force: bool = False,
    token: bool = False,
    attempts: int = NOT_GIVEN,
    deadline: float = float(NOT_GIVEN),
    show_secrets: bool = False,
) -> None:
    """Log in through Dex: resolve-ingress (if needed), fetch-req, authenticate, approve, extract-cookie."""
    console.reveal_secrets(show_secrets)
    with guarded():
        login_flow.login(_env(), force=force, token=token, overrides=_retry_overrides(attempts, deadline))


@task
def logout(c: Context) -> None:
    """Forget the session cookie, the token and any half-done login in .env (settings stay)."""
    with guarded():
        forgotten = login_flow.logout(_env())
        console.step_ok("logout", f"removed {', '.join(forgotten)}" if forgotten else "nothing to forget")


@task(help={"show_secrets": SECRETS_HELP})
def status(c: Context, show_secrets: bool = False) -> None:
    """Show where the flow stands: every known key in .env (secrets masked)."""
    console.reveal_secrets(show_secrets)
    with guarded():
        state = _env().read()
        console.data(f"# {state.path}{'' if state.exists else ' (does not exist yet)'}")
        for name, _key in KEYS.items():
            value = state.value(name)
            if not value:
                continue
            shown = (
                console.mask_cookie_header(value) if name == "AUTH_COOKIE" else console.mask(value) if is_secret(name) else value
            )
            console.data(f"{name}={shown}")
        if state.value("AUTH_COOKIE"):
            console.data(f"# session {format_expiry(parse_expiry(state.value('AUTH_EXPIRES')))}")
        if state.value("AUTH_BEARER"):
            console.data(f"# token {format_expiry(parse_expiry(state.value('AUTH_BEARER_EXPIRES')))}")


@task(
    help={
        "flavor": "the Kubeflow auth generation to play: kf15, kf17, kf18, kf190, kf191 (default kf191)",
        "settings": "a JSON file of gateway settings and faults to start with (see README: Sandbox faults)",
    }
)
def sandbox_up(c: Context, flavor: str = "", settings: str = "") -> None:
    """Start the local stand-in cluster and point the .env at it."""
    from sandbox import lifecycle

    with guarded():
        lifecycle.up(_env(), flavor or None, settings)


@task
def sandbox_down(c: Context) -> None:
    """Stop every sandbox process (by pid) and remove what sandbox-up wrote."""
    from sandbox import lifecycle

    with guarded():
        lifecycle.down(_env())


@task(
    help={
        "flavor": "the Kubeflow auth generation to play: kf15, kf17, kf18, kf190, kf191 (default kf191)",
        "token": "log in with a ServiceAccount token instead of the Dex login",
    }
)
def demo(c: Context, flavor: str = "", token: bool = False) -> None:
    """Start the sandbox, run the seven steps, print the iris prediction, stop the sandbox."""
    from sandbox import lifecycle

    named = os.environ.get(ENV_FILE_VARIABLE)
    env = EnvFile(Path(named)) if named else None
    with guarded():
        lifecycle.demo(env, flavor or None, token=token)
