"""Step 2: follow the gateway's redirects from a protected path to Dex's password page.

The walk is driven by each answer: a redirect is followed (within the ingress
origin), oauth2-proxy's sign-in page (403 HTML, or 401 ``{}``) leads to
``/oauth2/start``, Dex's connector choice leads to ``DEX_CONNECTOR`` (default
``local``), and the walk ends at the page with the ``login``/``password`` form.
It keeps the cookies set on the way and clears what later steps of an older
login left; the keys are listed in its declaration (``STEP``).
"""

from __future__ import annotations

from urllib.parse import quote

from . import curlscript
from .cookies import CookieHeader
from .dexflow import START_PATH, exchange, failure, next_url, page_of, path_of, request_id
from .environment import Environment
from .errors import GatewayError
from .gateway import Gateway
from .redirects import is_redirect
from .settings import gateway_settings
from .standalone import main
from .state import State
from .step import CURL, VERBOSE, Step, StepResult

MAX_HOPS = 12
# what a previous login left in .env that no longer applies once a new request starts
STALE_KEYS = ("DEX_NEXT_URL", "DEX_CALLBACK_URL")


def _sign_in_target(status: int, body: str, rd: str | None, current: str) -> str | None:
    """Where oauth2-proxy's sign-in answer sends a browser: ``/oauth2/start?rd=...``."""
    if status == 403 and rd is not None:
        return f"/oauth2/start?rd={quote(rd, safe='')}"
    if status == 401 and body.strip() == "{}":
        return f"/oauth2/start?rd={quote(path_of(current), safe='')}"
    return None


def run(state: State, environment: Environment, start_path: str = START_PATH) -> StepResult:
    """Walk to Dex's login page."""
    gateway = Gateway(gateway_settings(state), environment)
    connector = state.value("DEX_CONNECTOR", "local")
    cookies = CookieHeader()
    url = gateway.url(start_path)
    for _hop in range(MAX_HOPS):
        response, _set = exchange(gateway, cookies, environment.now(), "GET", url)
        if is_redirect(response):
            url = next_url(gateway, response)
            continue
        page = page_of(response)
        form = page.password_form()
        if response.status_code == 200 and form is not None:
            login_url = gateway.url(form.target(url))
            req = request_id(login_url) or request_id(url)
            updates: dict[str, str | None] = {"DEX_REQ": req, "DEX_LOGIN_URL": login_url, "LOGIN_COOKIES": cookies.header()}
            updates.update({key: None for key in STALE_KEYS})
            return StepResult(updates, f"Dex login page found (req={req[:6]}…)")
        sign_in = page.sign_in_form()
        target = _sign_in_target(response.status_code, response.text, sign_in.inputs.get("rd") if sign_in else None, url)
        if target is not None:
            url = gateway.url(target)
            continue
        links = page.connector_links()
        if response.status_code == 200 and links:
            if connector not in links:
                raise GatewayError(
                    f"{STEP.name}: Dex offers the connectors {', '.join(sorted(links))}, not {connector!r}: set DEX_CONNECTOR"
                )
            url = gateway.url(links[connector])
            continue
        if response.status_code == 200 and url == gateway.url(start_path):
            raise GatewayError(
                f"{STEP.name}: {path_of(url)} answered 200 without asking for a login: "
                "this gateway is not behind Dex (nothing to log in to), or INGRESS_HOST/INGRESS_PORT point elsewhere"
            )
        raise failure(STEP.name, response, url)
    raise GatewayError(f"{STEP.name}: more than {MAX_HOPS} redirects without reaching Dex's login page; rerun with --debug")


STEP = Step(
    "fetch-req",
    run,
    "Follow the gateway's redirects to Dex's login page.",
    reads=("INGRESS_HOST", "INGRESS_PORT", "DEX_CONNECTOR"),
    writes=("DEX_REQ", "DEX_LOGIN_URL", "LOGIN_COOKIES"),
    clears=STALE_KEYS,
    options=(VERBOSE, CURL),
    curl=curlscript.fetch_req,
)

if __name__ == "__main__":
    main(STEP)
