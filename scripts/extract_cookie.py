"""Step 5: call the gateway's OIDC callback and keep the session cookie it sets.

The callback (``/login/oidc``, ``/authservice/oidc/callback`` or
``/oauth2/callback``, whichever Dex redirected to) exchanges the code and
answers with ``Set-Cookie``.  Every cookie still held afterwards (the session,
or its ``_0``, ``_1``... parts) becomes ``AUTH_COOKIE``; the earliest expiry of
those set here becomes ``AUTH_EXPIRES``.  ``LOGIN_COOKIES`` is removed.
"""

from __future__ import annotations

from .cookies import CookieHeader
from .dexflow import failure
from .errors import GatewayError
from .gateway import Gateway
from .redirects import is_redirect
from .runner import StepResult, main
from .session import describe_cookie, iso
from .state import State


def run(state: State) -> StepResult:
    """Exchange the code for a session; writes AUTH_COOKIE and AUTH_EXPIRES."""
    callback = state.require("DEX_CALLBACK_URL")
    gateway = Gateway(state)
    cookies = CookieHeader(state.value("LOGIN_COOKIES"))
    response = gateway.send("GET", callback, cookies=cookies)
    if not is_redirect(response):
        raise failure("extract-cookie", response, callback)
    fresh = cookies.last_set
    if not fresh:
        raise GatewayError("extract-cookie: the callback set no session cookie; start again with `invoke login`")
    header = cookies.header()
    expiries = [cookie.expires for cookie in fresh if cookie.expires is not None]
    expires = min(expiries) if expiries else None
    updates = {
        "AUTH_COOKIE": header,
        "AUTH_EXPIRES": iso(expires) if expires else "",
        "LOGIN_COOKIES": None,
    }
    return StepResult(updates, describe_cookie(header, expires))


if __name__ == "__main__":
    main("extract-cookie", run, __doc__.splitlines()[0])
