"""Step 5: call the gateway's OIDC callback and keep the session cookie it sets.

The callback (``/login/oidc``, ``/authservice/oidc/callback`` or
``/oauth2/callback``, whichever Dex redirected to) exchanges the code and
answers with ``Set-Cookie``.  Every cookie still held afterwards (the session,
or its ``_0``, ``_1``... parts) becomes ``AUTH_COOKIE``; the earliest expiry of
those set here becomes ``AUTH_EXPIRES``.  ``LOGIN_COOKIES`` is removed.
"""

from __future__ import annotations

from .auth.credentials import COOKIE_KEYS, describe_cookie, iso
from .auth.dexflow import exchange, failure, refused_by_the_authorizer, start_again
from .core.environment import Environment
from .core.errors import GatewayError
from .core.standalone import main
from .core.state import State
from .core.step import CURL, VERBOSE, Step, StepResult
from .render import curlscript
from .transport.cookies import CookieHeader
from .transport.gateway import Gateway
from .transport.redirects import is_redirect
from .transport.settings import gateway_settings


def run(state: State, environment: Environment) -> StepResult:
    """Exchange the code for a session."""
    callback = state.require("DEX_CALLBACK_URL")
    gateway = Gateway(gateway_settings(state), environment)
    cookies = CookieHeader(state.value("LOGIN_COOKIES"))
    response, fresh = exchange(gateway, cookies, environment.now(), "GET", callback)
    if not is_redirect(response):
        raise failure(STEP.name, response, callback, restart=refused_by_the_authorizer(response))
    if not fresh:
        raise GatewayError(f"{STEP.name}: the callback set no session cookie; {start_again()}")
    header = cookies.header()
    expiries = [cookie.expires for cookie in fresh if cookie.expires is not None]
    expires = min(expiries) if expiries else None
    updates = {
        COOKIE_KEYS.value: header,
        COOKIE_KEYS.expires: iso(expires) if expires else "",
        COOKIE_KEYS.origin: gateway.origin,  # the session is sent nowhere else
        COOKIE_KEYS.owner: state.value("DEX_LOGIN"),
        "LOGIN_COOKIES": None,
    }
    return StepResult(updates, describe_cookie(header, expires, environment))


STEP = Step(
    "extract-cookie",
    run,
    "Call the gateway's callback and keep the session cookie.",
    reads=("DEX_CALLBACK_URL", "LOGIN_COOKIES", "DEX_LOGIN"),
    writes=COOKIE_KEYS.all,
    clears=("LOGIN_COOKIES",),
    options=(VERBOSE, CURL),
    curl=curlscript.extract_cookie,
)

if __name__ == "__main__":
    main(STEP)
