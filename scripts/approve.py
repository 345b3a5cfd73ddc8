"""Step 4: pass Dex's approval step, or say that there was none.

Dex up to v2.35 redirects to ``/dex/approval?req=...`` after the password;
with ``skipApprovalScreen`` a GET there redirects on to the callback.  When
approval is forced (oauth2-proxy's ``approval_prompt=force``) Dex shows a
"Grant Access" page instead: its form is posted back (``approval=approve``) to
the page's own URL, which carries the ``hmac``.  Newer Dex goes straight to
the callback: nothing to do.  Produces ``DEX_CALLBACK_URL``.

An approval can be used once.  Through the gateway a second use has been seen
as ``504 Gateway Timeout`` rather than Dex's 500, so a 504 here is retried
once and then reported as a used request: the login starts again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from .cookies import CookieHeader
from .dexflow import expect_redirect, failure, page_of, path_of
from .errors import LoginRestartError
from .gateway import Gateway, GatewayExhausted
from .redirects import is_redirect
from .runner import StepResult, main
from .state import State

APPROVAL_ATTEMPTS = 2


def _is_approval(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/approval")


def _send_once(gateway: Gateway, method: str, url: str, cookies: CookieHeader, **kwargs: Any) -> requests.Response:
    """An approval call, retried only once: a used approval looks like a gateway timeout (504)."""
    try:
        return gateway.send(method, url, cookies=cookies, attempts=APPROVAL_ATTEMPTS, **kwargs)
    except GatewayExhausted as error:
        if error.response is not None and error.response.status_code == 504:
            raise LoginRestartError(
                f"approve: the gateway answered 504 Gateway Timeout at {path_of(url)}, as it does when the approval "
                "was already used; start again with `invoke login` (or `invoke fetch-req`)",
                reason="approve got 504 Gateway Timeout twice (the approval was already used)",
            ) from None
        raise


def run(state: State) -> StepResult:
    """Approve if Dex asks; writes DEX_CALLBACK_URL."""
    target = state.require("DEX_NEXT_URL")
    if not _is_approval(target):
        return StepResult({"DEX_CALLBACK_URL": target}, "no approval step: Dex went straight to the callback", skipped=True)
    gateway = Gateway(state)
    cookies = CookieHeader(state.value("LOGIN_COOKIES"))
    response = _send_once(gateway, "GET", target, cookies)
    if is_redirect(response):
        callback = expect_redirect("approve", gateway, response, target)
        summary = "approval skipped by Dex"
    else:
        form = page_of(response).approval_form() if response.status_code == 200 else None
        if form is None:
            raise failure("approve", response, target)
        post_to = gateway.url(form.target(target))
        response = _send_once(gateway, "POST", post_to, cookies, data=form.inputs)
        callback = expect_redirect("approve", gateway, response, post_to)
        summary = "access granted on Dex's approval page"
    updates = {"DEX_CALLBACK_URL": callback, "LOGIN_COOKIES": cookies.header()}
    return StepResult(updates, f"{summary} → {path_of(callback)}")


if __name__ == "__main__":
    main("approve", run, __doc__.splitlines()[0])
