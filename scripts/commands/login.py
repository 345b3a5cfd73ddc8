"""The login flows that ``invoke login`` and the demo run: declared steps chained through the .env file.

Steps never call each other; this module runs them in order with
``run_step``, so each reads what the previous one wrote.  When Dex or the
gateway says a login request was used up or expired, the Dex login starts
again from a fresh request, a bounded number of times, saying why on stderr.
Wrong credentials are never retried.  A saved session or token that is still
valid is reused unless ``force`` is given; ``logout`` (``scripts.commands.logout``) ends and forgets them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .. import approve, authenticate, create_token, extract_cookie, fetch_req, resolve_ingress
from ..auth.credentials import COOKIE_KEYS, TOKEN_KEYS, Credential, CredentialKeys, format_expiry, is_valid, saved
from ..auth.dexflow import START_PATH
from ..core.environment import Environment
from ..core.errors import CredentialsError, LoginRestartError
from ..core.state import EnvFile, State
from ..core.step import ATTEMPTS, CURL, DEADLINE, SHOW_SECRETS, VERBOSE, Command, Option, run_step
from ..render import curlscript
from ..transport.gateway import Gateway
from ..transport.kube import kubectl
from ..transport.settings import gateway_settings, ingress_origin

FRESH_STARTS = 2  # after the first try: three tries in all
PASSWORD_TRIES = 3  # a password typed at the terminal
DEX_STEPS = (fetch_req.STEP, authenticate.STEP, approve.STEP, extract_cookie.STEP)
# what a login leaves behind: the credentials it produced and the state of a login in progress
LOGIN_KEYS = tuple(dict.fromkeys(key for step in (*DEX_STEPS, create_token.STEP) for key in (*step.writes, *step.clears)))


def dex_login(env_file: EnvFile, environment: Environment, overrides: Mapping[str, str] | None = None) -> None:
    """fetch-req → authenticate → approve → extract-cookie, started again when a request was used up."""
    for start in range(FRESH_STARTS + 1):
        try:
            for step in DEX_STEPS:
                run_step(step, env_file, environment, overrides)
            return
        except LoginRestartError as error:
            if start == FRESH_STARTS:
                raise LoginRestartError(f"{error.message} (gave up after {start + 1} fresh requests)", error.reason) from None
            environment.warn(f"login: {error.reason}; starting again from a fresh request ({start + 1} of {FRESH_STARTS})")


def token_login(env_file: EnvFile, environment: Environment, overrides: Mapping[str, str] | None = None) -> None:
    """A ServiceAccount token from kubectl instead of the Dex login."""
    run_step(create_token.STEP, env_file, environment, overrides)


def _reusable(state: State, keys: CredentialKeys, now: datetime) -> Credential | None:
    """The saved credential when it can serve this login as it is: known expiry ahead, same ingress, same user."""
    found = saved(state, keys)
    if found is None or found.expiry() is None or not is_valid(found, now):
        return None
    if not (state.value("INGRESS_HOST") and state.value("INGRESS_PORT")) or found.origin != ingress_origin(state):
        return None
    wanted_owner = state.value("DEX_LOGIN") if keys is COOKIE_KEYS else ""
    return found if not wanted_owner or found.owner == wanted_owner else None


def before_asking(state: State, environment: Environment) -> None:
    """Before a person types a password, what can fail without it: the ingress answers one GET, or kubectl has a cluster."""
    if state.value("INGRESS_HOST") and state.value("INGRESS_PORT"):
        Gateway(gateway_settings(state), environment).send("GET", START_PATH, attempts=1)
    else:
        kubectl(state, "config", "current-context", environment=environment)  # resolve-ingress will need it


def login(
    env_file: EnvFile,
    environment: Environment,
    overrides: Mapping[str, str] | None = None,
    *,
    force: bool = False,
    token: bool = False,
    curl: bool = False,
) -> None:
    """Reuse a valid session (unless ``force``), resolve the ingress if unknown, then log in (``curl``: print how)."""
    state = env_file.read().with_overrides(overrides)
    if curl:
        environment.data(login_commands(state, environment, token))
        return
    reusable = None if force else _reusable(state, TOKEN_KEYS if token else COOKIE_KEYS, environment.now())
    if reusable is not None:
        said = format_expiry(reusable.expiry(), environment.now())
        environment.step_skipped(LOGIN.name, f"{reusable.noun} {said}, for {reusable.origin}; --force (force=True from Python) logs in again")
        return
    typed = False
    if not token:
        # ask (or fail) before anything is sent or written; typed credentials live in memory only
        typed = environment.interactive and not state.value("DEX_PASSWORD")
        if environment.interactive and not (state.value("DEX_LOGIN") and state.value("DEX_PASSWORD")):
            before_asking(state, environment)
        login_name, password = authenticate.credentials(state, environment)
        overrides = {**(overrides or {}), "DEX_LOGIN": login_name, "DEX_PASSWORD": password}
    if not (state.value("INGRESS_HOST") and state.value("INGRESS_PORT")):
        run_step(resolve_ingress.STEP, env_file, environment, overrides)
    if token:
        token_login(env_file, environment, overrides)
    elif typed:
        _typed_login(env_file, environment, overrides or {})
    else:
        dex_login(env_file, environment, overrides)


def _typed_login(env_file: EnvFile, environment: Environment, overrides: Mapping[str, str]) -> None:
    """The Dex login with a password typed at the terminal: a wrong one is asked for again, as sudo and ssh do."""
    for typing in range(1, PASSWORD_TRIES + 1):
        try:
            dex_login(env_file, environment, overrides)
            return
        except CredentialsError:
            if typing == PASSWORD_TRIES:
                raise
            environment.warn(f"Dex rejected that password: try again ({typing + 1} of {PASSWORD_TRIES})")
            overrides = {**overrides, "DEX_PASSWORD": authenticate.ask_password(overrides["DEX_LOGIN"])}


def login_commands(state: State, environment: Environment, token: bool) -> str:
    """The bash commands of the whole login (``--curl``): they end with ``AUTH_COOKIE`` or ``AUTH_BEARER`` set."""
    if token:
        return curlscript.token_login(state, environment, create_token.command(state))
    login_name, password = authenticate.credentials_to_print(state, environment)
    return curlscript.dex_login(state, environment, login_name, password)


LOGIN = Command(
    "login",
    login,
    f"Log in through Dex: {resolve_ingress.STEP.name} (if needed), {', '.join(step.name for step in DEX_STEPS)}.",
    options=(
        Option("force", "log in again even when the saved session is still valid", kind=bool, default=False, short="f"),
        Option("token", "get a ServiceAccount token with kubectl instead of the Dex login (no password)", kind=bool, default=False, short="t"),
        ATTEMPTS,
        DEADLINE,
        SHOW_SECRETS,
        VERBOSE,
        CURL,
    ),
)
COMMANDS = (LOGIN,)
