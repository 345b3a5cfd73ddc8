"""What the login steps share: reading the gateway's answers and naming its failures.

The login is driven by what the gateway answers, never by a Kubeflow version:
each step looks at the status, the ``Location``, and the page (see
``dexpages``), and this module says what an answer means.  The failure signals
are those of the table in ``docs/auth-flows.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

from ..core.errors import GatewayError, KfDexError, LoginRestartError
from ..core.keys import KEYS
from ..core.values import clipped
from ..transport.cookies import CookieHeader, SetCookie
from ..transport.gateway import Gateway, origin_of
from ..transport.redirects import is_redirect, location_of
from .dexpages import Page, parse_page
from .signals import login_signal_of

if TYPE_CHECKING:  # only for annotations: requests loads when a request is sent
    import requests

# Where the login starts: any protected path works; the root is what the manual recipe uses.
START_PATH = "/"
# How many answers the walk to Dex's password page may see before it gives up.
MAX_HOPS = 12

# Phrases that mean "this login request was used up or has expired: start again".
_RESTART_SIGNALS = (
    "requested resource does not exist",
    "login session expired",
    "user session has expired",
    "database error",
    "csrf",
    "failed to exchange authorization code",
    "unauthorized request",
    "invalid state",
)


def page_of(response: requests.Response) -> Page:
    """The parsed HTML of an answer (empty for non-HTML bodies)."""
    content_type = response.headers.get("Content-Type", "")
    if "html" not in content_type and not response.text.lstrip().startswith("<"):
        return Page()
    return parse_page(response.text)


def exchange(
    gateway: Gateway, cookies: CookieHeader, now: datetime, method: str, url: str, **kwargs: Any
) -> tuple[requests.Response, list[SetCookie]]:
    """Send with the login's cookies, then take in what the answer set: the answer and the cookies it set."""
    headers = dict(kwargs.pop("headers", None) or {})
    if cookies:
        headers["Cookie"] = cookies.header()
    response = gateway.send(method, url, headers=headers, **kwargs)
    return response, cookies.apply(response, now)


def next_url(gateway: Gateway, response: requests.Response) -> str:
    """The absolute target of a redirect, refused if it leaves the ingress origin."""
    return gateway.url(location_of(response))


def path_of(url: str) -> str:
    """The path part of a URL, for messages (never the query: it carries codes)."""
    return urlsplit(url).path or "/"


def request_id(login_url: str) -> str:
    """The Dex auth request id in a login URL: ``req=`` (v2.22) or ``state=`` (v2.29+)."""
    query = parse_qs(urlsplit(login_url).query)
    return (query.get("req") or query.get("state") or [""])[0]


def _json_error(body: str) -> str | None:
    """The message of a model server's JSON error: ``{"error": ...}`` or FastAPI's ``{"detail": ...}``."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict):
        found = parsed.get("error") or parsed.get("detail")
        if found:
            return found if isinstance(found, str) else clipped(json.dumps(found))
    return None


def _plain_error(body: str) -> str:
    """The line of a plain-text error body that says what went wrong.

    A Python traceback (MLServer answers 500 with one) says it on its last
    line (``ValueError: X has 3 features, ...``); other bodies on their first.
    """
    if not body or body.startswith("<"):
        return ""
    lines = body.splitlines()
    if lines[0].startswith("Traceback (most recent call last)"):
        said = [line for line in lines if line.strip() and not line[0].isspace()]
        return clipped(said[-1], 200)
    return clipped(lines[0])


def login_signal(response: requests.Response, navigation: bool = False) -> str | None:
    """Where an answer sends a caller that is not logged in (``to Dex``, ``to a login``), or None when it does not.

    The rule is ``signals.login_signal_of`` (one table for every client); ``navigation`` is the
    library's ``requests.Session``, for which only a redirect to Dex, oauth2-proxy or another
    origin (an identity provider elsewhere) is a login.
    """
    location = location_of(response) if is_redirect(response) else ""
    elsewhere = bool(urlsplit(location).netloc) and origin_of(urljoin(response.url, location)) != origin_of(response.url)
    return login_signal_of(response.status_code, location, response.content or b"", navigation, elsewhere)


def describe(response: requests.Response) -> str:
    """A short, secret-free description of what the gateway said."""
    text = page_of(response).error_text()
    if not text:
        body = response.text.strip()
        text = _json_error(body) or _plain_error(body)
    status = f"{response.status_code} {response.reason or ''}".strip()
    return f'{status} "{text}"' if text else status


def is_restart_signal(response: requests.Response) -> bool:
    """True when the answer says the login request was consumed or expired."""
    if response.status_code < 400:
        return False
    lowered = (page_of(response).error_text() or response.text[:2000]).lower()
    return any(signal in lowered for signal in _RESTART_SIGNALS)


def start_again() -> str:
    """``start again with `invoke login` (or `invoke fetch-req`)``: what to do when a login request is used up."""
    return f"start again with `invoke login` (or `{KEYS['DEX_REQ'].how_to_produce}`)"


def refused_by_the_authorizer(response: requests.Response) -> bool:
    """An empty 403: Envoy's ext_authz answer when the check itself failed (its ``status_on_error``).

    At the OIDC callback this is oidc-authservice failing to exchange a used or
    expired code (its 500 never reaches the client), so the login starts again.
    """
    return response.status_code == 403 and not response.content.strip()


def failure(step: str, response: requests.Response, url: str, restart: bool = False) -> KfDexError:
    """The error for an answer a step cannot use (``restart``: the step knows the answer means start again)."""
    said = describe(response)
    if restart or is_restart_signal(response):
        return LoginRestartError(
            f"{step}: the gateway answered {said} at {path_of(url)}: this login request was used up or expired; {start_again()}",
            reason=f"{step} got {said}",
        )
    return GatewayError(f"{step}: unexpected answer {said} from {path_of(url)}; rerun with --debug or check the gateway")


def expect_redirect(step: str, gateway: Gateway, response: requests.Response, url: str) -> str:
    """The redirect target of an answer that must be a redirect, else the step's failure."""
    if is_redirect(response):
        return next_url(gateway, response)
    raise failure(step, response, url)


def sign_in_target(response: requests.Response, url: str) -> str | None:
    """Where oauth2-proxy's sign-in answer (403 page, 401 ``{}``) sends a browser: ``/oauth2/start?rd=...``; else None."""
    if is_redirect(response) or not login_signal(response):
        return None
    sign_in = page_of(response).sign_in_form()
    rd = sign_in.inputs.get("rd") if sign_in else None
    return f"/oauth2/start?rd={quote(rd if rd is not None else path_of(url), safe='')}"


def _hop(step: str, gateway: Gateway, response: requests.Response, url: str, connector: str, start: str) -> str | None:
    """The next URL on the way to Dex's password page, or None when this answer is that page."""
    if is_redirect(response):
        return next_url(gateway, response)
    page = page_of(response)
    if response.status_code == 200 and page.password_form() is not None:
        return None
    target = sign_in_target(response, url)
    if target is not None:
        return gateway.url(target)
    links = page.connector_links()
    if response.status_code == 200 and links:
        if connector not in links:
            raise GatewayError(f"{step}: Dex offers the connectors {', '.join(sorted(links))}, not {connector!r}: set DEX_CONNECTOR")
        return gateway.url(links[connector])
    if response.status_code == 200 and url == start:
        raise GatewayError(
            f"{step}: {path_of(url)} answered 200 without asking for a login: "
            "this gateway is not behind Dex (nothing to log in to), or INGRESS_HOST/INGRESS_PORT point elsewhere"
        )
    raise failure(step, response, url)


def walk_to_dex(
    step: str, gateway: Gateway, cookies: CookieHeader, now: Callable[[], datetime], connector: str, start_path: str = START_PATH, **send: Any
) -> tuple[str, requests.Response, list[str]]:
    """The login walk (``fetch-req`` and ``doctor``): Dex's password page, its answer, and every URL asked on the way.

    Each answer decides the next hop: a redirect is followed (within the ingress origin),
    oauth2-proxy's sign-in answer leads to ``/oauth2/start``, Dex's connector choice to
    ``connector``; cookies set on the way are kept in ``cookies``.
    """
    start = url = gateway.url(start_path)
    seen: list[str] = []
    for _number in range(MAX_HOPS):
        response, _set = exchange(gateway, cookies, now(), "GET", url, **send)
        following = _hop(step, gateway, response, url, connector, start)
        if following is None:
            return url, response, seen
        url = following
        seen.append(url)
    raise GatewayError(f"{step}: more than {MAX_HOPS} redirects without reaching Dex's login page; rerun with --debug")
