"""Step 2: follow the gateway's redirects from a protected path to Dex's password page.

The walk is driven by each answer: a redirect is followed (within the ingress
origin), oauth2-proxy's sign-in page (403 HTML, or 401 ``{}``) leads to
``/oauth2/start``, Dex's connector choice leads to ``DEX_CONNECTOR`` (default
``local``), and the walk ends at the page with the ``login``/``password`` form.
It keeps the cookies set on the way and clears what later steps of an older
login left; the keys are listed in its declaration (``STEP``).
"""

from __future__ import annotations

from .auth.dexflow import START_PATH, page_of, request_id, walk_to_dex
from .core.environment import Environment
from .core.standalone import main
from .core.state import State
from .core.step import CURL, VERBOSE, Step, StepResult
from .render import curlscript
from .transport.cookies import CookieHeader
from .transport.gateway import Gateway
from .transport.settings import gateway_settings

# what a previous login left in .env that no longer applies once a new request starts
STALE_KEYS = ("DEX_NEXT_URL", "DEX_CALLBACK_URL")


def run(state: State, environment: Environment, start_path: str = START_PATH) -> StepResult:
    """Walk to Dex's login page."""
    gateway = Gateway(gateway_settings(state), environment)
    cookies = CookieHeader()
    url, response, _seen = walk_to_dex(STEP.name, gateway, cookies, environment.now, state.value("DEX_CONNECTOR", "local"), start_path)
    form = page_of(response).password_form()
    assert form is not None  # the walk ends only at the password page
    login_url = gateway.url(form.target(url))
    req = request_id(login_url) or request_id(url)
    updates: dict[str, str | None] = {"DEX_REQ": req, "DEX_LOGIN_URL": login_url, "LOGIN_COOKIES": cookies.header()}
    updates.update({key: None for key in STALE_KEYS})
    return StepResult(updates, f"Dex login page found (req={req[:6]}…)")


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
