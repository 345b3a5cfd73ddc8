"""The login flows that ``invoke login`` and the demo run: steps chained through the .env file.

Steps never call each other; this module runs them in order with
``run_step``, so each reads what the previous one wrote.  When Dex or the
gateway says a login request was used up or expired, the Dex login starts
again from a fresh request, a bounded number of times, saying why on stderr.
Wrong credentials are never retried.  A saved session or token that is still
valid is reused unless ``force`` is given; ``logout`` forgets them.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import approve, authenticate, console, create_token, extract_cookie, fetch_req, resolve_ingress
from .errors import LoginRestartError
from .runner import run_step
from .session import format_expiry, now_utc, parse_expiry
from .state import EnvFile

FRESH_STARTS = 2  # after the first try: three tries in all
DEX_STEPS = (
    ("fetch-req", fetch_req.run),
    ("authenticate", authenticate.run),
    ("approve", approve.run),
    ("extract-cookie", extract_cookie.run),
)


def dex_login(env: EnvFile, overrides: Mapping[str, str] | None = None) -> None:
    """fetch-req → authenticate → approve → extract-cookie, started again when a request was used up."""
    for start in range(FRESH_STARTS + 1):
        try:
            for name, step in DEX_STEPS:
                run_step(name, step, env, overrides)
            return
        except LoginRestartError as error:
            if start == FRESH_STARTS:
                raise LoginRestartError(f"{error.message} (gave up after {start + 1} fresh requests)", error.reason) from None
            console.warn(f"login: {error.reason}; starting again from a fresh request ({start + 1} of {FRESH_STARTS})")


def token_login(env: EnvFile, overrides: Mapping[str, str] | None = None) -> None:
    """A ServiceAccount token from kubectl instead of the Dex login."""
    run_step("create-token", create_token.run, env, overrides)


def login(env: EnvFile, *, force: bool = False, token: bool = False, overrides: Mapping[str, str] | None = None) -> None:
    """Reuse a valid session (unless ``force``), resolve the ingress if unknown, then log in."""
    state = env.read().with_overrides(overrides)
    value_key, expiry_key = ("AUTH_BEARER", "AUTH_BEARER_EXPIRES") if token else ("AUTH_COOKIE", "AUTH_EXPIRES")
    expires = parse_expiry(state.value(expiry_key))
    if not force and state.value(value_key) and expires and expires > now_utc():
        console.step_skipped("login", f"{'token' if token else 'session'} {format_expiry(expires)}; --force logs in again")
        return
    if not token:
        # ask (or fail) before anything is sent or written; typed credentials live in memory only
        login_name, password = authenticate.credentials(state)
        overrides = {**(overrides or {}), "DEX_LOGIN": login_name, "DEX_PASSWORD": password}
    if not (state.value("INGRESS_HOST") and state.value("INGRESS_PORT")):
        run_step("resolve-ingress", resolve_ingress.run, env, overrides)
    (token_login if token else dex_login)(env, overrides)


# what a login leaves behind: the credentials it produced and the state of a login in progress
LOGIN_KEYS = (
    "DEX_REQ",
    "DEX_LOGIN_URL",
    "LOGIN_COOKIES",
    "DEX_NEXT_URL",
    "DEX_CALLBACK_URL",
    "AUTH_COOKIE",
    "AUTH_EXPIRES",
    "AUTH_BEARER",
    "AUTH_BEARER_EXPIRES",
)


def logout(env: EnvFile) -> list[str]:
    """Remove the session, the token and login state from the .env; returns the keys removed.

    Only the local copy is forgotten: the gateway's session ends at its expiry.
    """
    state = env.read()
    present = [key for key in LOGIN_KEYS if key in state]
    env.update({key: None for key in present})
    return present
