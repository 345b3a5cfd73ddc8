"""Step 4: pass Dex's approval step, or say that there was none.

Dex up to v2.35 redirects to ``/dex/approval?req=...`` after the password;
with ``skipApprovalScreen`` a GET there redirects on to the callback.  When
approval is forced (oauth2-proxy's ``approval_prompt=force``) Dex shows a
"Grant Access" page instead: its form is posted back (``approval=approve``) to
the page's own URL, which carries the ``hmac``.  Newer Dex goes straight to
the callback: nothing to do.

An approval can be used once.  Through the gateway a second use has been seen
as ``504 Gateway Timeout`` rather than Dex's 500, so a 504 here is retried
once and then reported as a used request: the login starts again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .auth.dexflow import exchange, expect_redirect, failure, page_of, path_of, start_again
from .core.environment import Environment
from .core.errors import LoginRestartError
from .core.standalone import main
from .core.state import State
from .core.step import CURL, VERBOSE, Step, StepResult
from .render import curlscript
from .transport.cookies import CookieHeader
from .transport.gateway import Gateway, GatewayExhausted
from .transport.redirects import is_redirect
from .transport.settings import gateway_settings

if TYPE_CHECKING:  # only for annotations: requests loads when a request is sent
    import requests

APPROVAL_ATTEMPTS = 2


def _is_approval(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/approval")


def _send_once(
    gateway: Gateway, cookies: CookieHeader, environment: Environment, method: str, url: str, **kwargs: Any
) -> requests.Response:
    """An approval call, retried only once: a used approval looks like a gateway timeout (504)."""
    try:
        response, _set = exchange(gateway, cookies, environment.now(), method, url, attempts=APPROVAL_ATTEMPTS, **kwargs)
        return response
    except GatewayExhausted as error:
        if error.response is not None and error.response.status_code == 504:
            raise LoginRestartError(
                f"{STEP.name}: the gateway answered 504 Gateway Timeout at {path_of(url)}, as it does when the approval "
                f"was already used; {start_again()}",
                reason=f"{STEP.name} got 504 Gateway Timeout twice (the approval was already used)",
            ) from None
        raise


def run(state: State, environment: Environment) -> StepResult:
    """Approve if Dex asks."""
    target = state.require("DEX_NEXT_URL")
    if not _is_approval(target):
        return StepResult({"DEX_CALLBACK_URL": target}, "no approval step: Dex went straight to the callback", skipped=True)
    gateway = Gateway(gateway_settings(state), environment)
    cookies = CookieHeader(state.value("LOGIN_COOKIES"))
    response = _send_once(gateway, cookies, environment, "GET", target)
    if is_redirect(response):
        callback = expect_redirect(STEP.name, gateway, response, target)
        summary = "approval skipped by Dex"
    else:
        form = page_of(response).approval_form() if response.status_code == 200 else None
        if form is None:
            raise failure(STEP.name, response, target)
        post_to = gateway.url(form.target(target))
        response = _send_once(gateway, cookies, environment, "POST", post_to, data=form.inputs)
        callback = expect_redirect(STEP.name, gateway, response, post_to)
        summary = "access granted on Dex's approval page"
    updates = {"DEX_CALLBACK_URL": callback, "LOGIN_COOKIES": cookies.header()}
    return StepResult(updates, f"{summary} → {path_of(callback)}")


STEP = Step(
    "approve",
    run,
    "Pass Dex's approval step, or say it was skipped.",
    reads=("DEX_NEXT_URL", "LOGIN_COOKIES"),
    writes=("DEX_CALLBACK_URL", "LOGIN_COOKIES"),
    options=(VERBOSE, CURL),
    curl=curlscript.approve,
)

if __name__ == "__main__":
    main(STEP)
