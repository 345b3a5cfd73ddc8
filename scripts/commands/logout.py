"""``invoke logout``: end the session on the gateway where it offers that, then forget it in .env.

Which logout a gateway offers follows from the session cookie it set
(``docs/auth-flows.md``): ``authservice_session`` is oidc-authservice's, which
keeps sessions in a store and deletes them on ``POST /authservice/logout``
(the session as ``Authorization: Bearer``, Kubeflow 1.7 and 1.8) or on
``GET /logout`` (1.3 – 1.6); any other is oauth2-proxy's ``/oauth2/sign_out``
(1.9 and later), which clears a browser's cookie but keeps the session inside
the cookie itself, so the value stays valid until it expires.  One ``GET /``
with the old cookie then shows whether the gateway still accepts it, and the
line says which happened.  A ServiceAccount token cannot be ended by a logout.
The cookie goes only to the ingress it came from; ``--local`` sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..auth.credentials import COOKIE_KEYS, TOKEN_KEYS, Credential, ensure_sendable, format_expiry, is_valid, same_cluster, saved
from ..auth.dexflow import login_signal
from ..core.environment import Environment
from ..core.errors import GatewayError, KfDexError
from ..core.state import EnvFile, State
from ..core.step import Command, Option
from ..transport.gateway import Gateway
from ..transport.settings import gateway_settings, ingress_origin
from .login import LOGIN_KEYS

if TYPE_CHECKING:
    from ..transport.gateway import Gateway

ATTEMPTS = 3  # a logout is not worth a cold start's deadline: the local copy is forgotten either way
AUTHSERVICE_COOKIE = "authservice_session"


def _ask_to_end(gateway: Gateway, cookie: Credential) -> str:
    """Send the gateway's own logout for this cookie; what was sent and answered (``POST /authservice/logout → 201``)."""
    headers = {"Cookie": cookie.value}
    name, _, value = cookie.value.partition("=")
    if name.strip() == AUTHSERVICE_COOKIE:
        answer = gateway.send("POST", "/authservice/logout", headers={"Authorization": f"Bearer {value}"}, attempts=ATTEMPTS)
        if answer.status_code == 201:
            return "POST /authservice/logout → 201"
        answer = gateway.send("GET", "/logout", headers=headers, attempts=ATTEMPTS)
        return f"GET /logout → {answer.status_code}"
    answer = gateway.send("GET", "/oauth2/sign_out", headers=headers, attempts=ATTEMPTS)
    return f"GET /oauth2/sign_out → {answer.status_code}"


def _end_session(state: State, environment: Environment, cookie: Credential) -> str:
    """Ask the cookie's own gateway to end it, then check with one ``GET /``; one sentence on what happened.

    A gateway that cannot be asked is a GatewayError (exit 7), raised before anything is forgotten."""
    try:
        settings = gateway_settings(state)
        origin = ingress_origin(state)
    except KfDexError as error:
        return f"the session was not ended on the gateway ({error.message})"
    if not same_cluster(cookie.origin, origin, origin):
        return f"the session was not sent to {origin}: it belongs to {cookie.origin or 'no recorded ingress'}"
    try:
        ensure_sendable(cookie)
    except KfDexError:
        return "the session was not sent: AUTH_COOKIE is not a Cookie header value"
    gateway = Gateway(settings, environment)
    try:
        said = _ask_to_end(gateway, cookie)
        check = gateway.send("GET", "/", headers={"Cookie": cookie.value}, attempts=ATTEMPTS)
    except GatewayError as error:  # nothing forgotten: the cookie is what a second try needs
        raise GatewayError(
            f"{LOGOUT.name}: the gateway could not be asked to end the session ({error.message}); nothing was removed: "
            f"try again, or `invoke {LOGOUT.name} --local` to forget it here only"
        ) from None
    if login_signal(check):
        return f"session ended on the gateway ({said}): the old cookie is refused"
    lasts = format_expiry(cookie.expiry(), environment.now())
    return f"the gateway keeps the session ({said}; oauth2-proxy keeps it inside the cookie): any copy stays {lasts}"


def logout(env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str] | None = None, *, local: bool = False) -> list[str]:
    """End the session on the gateway (unless ``local``), then remove the session, the token and login state from the .env.

    Returns the keys removed.
    """
    state = env_file.read()
    now = environment.now()
    said = []
    cookie = saved(state, COOKIE_KEYS)
    if cookie is not None and is_valid(cookie, now):
        lasts = format_expiry(cookie.expiry(), now)
        said.append(f"the gateway was not asked (--local): the session stays {lasts}" if local else _end_session(state, environment, cookie))
    token = saved(state, TOKEN_KEYS)
    if token is not None and is_valid(token, now):
        said.append(f"a ServiceAccount token cannot be ended by a logout: any copy stays {format_expiry(token.expiry(), now)}")
    present = [key for key in LOGIN_KEYS if state.get(key)]  # an empty line (the example's) holds nothing to forget
    env_file.update({key: None for key in present})
    said.append(f"removed {', '.join(present)}" if present else "nothing to forget")
    environment.step_ok(LOGOUT.name, "; ".join(said))
    return present


LOGOUT = Command(
    "logout",
    logout,
    "End the session on the gateway where it can be ended, and forget the session, the token and any half-done login in .env.",
    options=(Option("local", "only forget them in .env: send nothing to the gateway", kind=bool, default=False, short="l"),),
)
COMMANDS = (LOGOUT,)
