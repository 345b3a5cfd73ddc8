"""Step 3: post the Dex login and password to the login form.

The credentials (``DEX_LOGIN``, ``DEX_PASSWORD``; from .env, or the environment)
go in the form body, never in a URL or argv, and only to the ingress origin.
Dex answers with a redirect (to its approval step or straight to the
gateway's callback), which becomes ``DEX_NEXT_URL``.  A wrong password is a
200 or 401 page with a ``login-error`` box: that is never retried.
"""

from __future__ import annotations

from .cookies import CookieHeader
from .dexflow import expect_redirect, page_of, path_of
from .errors import CredentialsError
from .gateway import Gateway, is_redirect
from .runner import StepResult, main
from .state import State


def run(state: State) -> StepResult:
    """Send the credentials; writes DEX_NEXT_URL and LOGIN_COOKIES."""
    login_url = state.require("DEX_LOGIN_URL")
    login = state.require("DEX_LOGIN")
    password = state.require("DEX_PASSWORD")
    gateway = Gateway(state)
    cookies = CookieHeader(state.value("LOGIN_COOKIES"))
    response = gateway.send(
        "POST",
        login_url,
        cookies=cookies,
        data={"login": login, "password": password},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if not is_redirect(response) and response.status_code in (200, 401):
        page = page_of(response)
        if page.password_form() is not None or page.login_error:
            said = page.login_error or "the login page came back"
            raise CredentialsError(f"Dex rejected the login for {login}: {said} Check DEX_LOGIN and DEX_PASSWORD (not retried)")
    target = expect_redirect("authenticate", gateway, response, login_url)
    return StepResult({"DEX_NEXT_URL": target, "LOGIN_COOKIES": cookies.header()}, f"{login} accepted → {path_of(target)}")


if __name__ == "__main__":
    main("authenticate", run, __doc__.splitlines()[0])
