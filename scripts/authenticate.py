"""Step 3: post the Dex login and password to the login form.

The credentials (``DEX_LOGIN``, ``DEX_PASSWORD``; from .env, or the environment)
go in the form body, never in a URL or argv, and only to the ingress origin.
Dex answers with a redirect (to its approval step or straight to the
gateway's callback), which becomes ``DEX_NEXT_URL``.  A wrong password is a
200 or 401 page with a ``login-error`` box: that is never retried.
"""

from __future__ import annotations

import getpass

from .auth.dexflow import exchange, expect_redirect, page_of, path_of
from .core.environment import Environment
from .core.errors import ConfigError, CredentialsError
from .core.standalone import main
from .core.state import State
from .core.step import CURL, VERBOSE, Step, StepResult
from .render import curlscript
from .transport.cookies import CookieHeader
from .transport.gateway import Gateway
from .transport.redirects import is_redirect
from .transport.settings import gateway_settings


def credentials(state: State, environment: Environment) -> tuple[str, str]:
    """DEX_LOGIN and DEX_PASSWORD; asked for (password hidden) when missing on a terminal."""
    login, password = state.value("DEX_LOGIN"), state.value("DEX_PASSWORD")
    if login and password:
        return login, password
    if not environment.interactive:
        missing = [key for key, value in (("DEX_LOGIN", login), ("DEX_PASSWORD", password)) if not value]
        raise ConfigError(f"{' and '.join(missing)} not set: {state.where_to_set(missing)}")
    try:
        login = login or input("Dex login: ").strip()
    except EOFError:
        raise ConfigError("no credentials given: set DEX_LOGIN and DEX_PASSWORD") from None
    if not login:
        raise ConfigError("no credentials given: set DEX_LOGIN and DEX_PASSWORD")
    return login, password or ask_password(login)


def ask_password(login: str) -> str:
    """The password typed at the terminal, hidden; a ConfigError when none is given."""
    try:
        password = getpass.getpass(f"Dex password for {login}: ")
    except EOFError:
        password = ""
    if not (login and password):
        raise ConfigError("no credentials given: set DEX_LOGIN and DEX_PASSWORD")
    return password


def run(state: State, environment: Environment) -> StepResult:
    """Send the credentials."""
    login_url = state.require("DEX_LOGIN_URL")
    login, password = credentials(state, environment)
    gateway = Gateway(gateway_settings(state), environment)
    cookies = CookieHeader(state.value("LOGIN_COOKIES"))
    response, _set = exchange(
        gateway,
        cookies,
        environment.now(),
        "POST",
        login_url,
        data={"login": login, "password": password},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if not is_redirect(response) and response.status_code in (200, 401):
        page = page_of(response)
        if page.password_form() is not None or page.login_error:
            said = page.login_error or "the login page came back"
            raise CredentialsError(f"Dex rejected the login for {login}: {said} Check DEX_LOGIN and DEX_PASSWORD (not retried)")
    target = expect_redirect(STEP.name, gateway, response, login_url)
    return StepResult({"DEX_NEXT_URL": target, "LOGIN_COOKIES": cookies.header()}, f"{login} accepted → {path_of(target)}")


def credentials_to_print(state: State, environment: Environment) -> tuple[str, str]:
    """The credentials for printed commands: asked for only when they will be shown; masked ones need no typing."""
    if environment.show_secrets:
        return credentials(state, environment)
    return state.value("DEX_LOGIN", "DEX_LOGIN"), state.value("DEX_PASSWORD", "masked")


def curl(state: State, environment: Environment) -> str:
    """The POST of the credentials as a curl command."""
    login, password = credentials_to_print(state, environment)
    return curlscript.authenticate(state, environment, login, password)


STEP = Step(
    "authenticate",
    run,
    "Post DEX_LOGIN / DEX_PASSWORD to Dex's login form.",
    reads=("DEX_LOGIN_URL", "DEX_LOGIN", "DEX_PASSWORD", "LOGIN_COOKIES"),
    writes=("DEX_NEXT_URL", "LOGIN_COOKIES"),
    options=(VERBOSE, CURL),
    curl=curl,
)

if __name__ == "__main__":
    main(STEP)
