"""``invoke status``: where the flow stands, every known key with secrets masked, on stdout.

Values set in the process environment (which win over .env) are marked so.
One-time codes in the login URLs are masked like secrets.
"""

from __future__ import annotations

from collections.abc import Mapping

from .credentials import format_expiry, parse_expiry
from .environment import Environment
from .keys import KEYS, is_secret
from .state import EnvFile
from .step import SHOW_SECRETS, Command

# URLs whose query carries one-time codes (Dex's req/state, the gateway's code and state)
_URLS_WITH_CODES = ("DEX_LOGIN_URL", "DEX_NEXT_URL", "DEX_CALLBACK_URL")


def _shown(environment: Environment, name: str, value: str) -> str:
    if name == "AUTH_COOKIE":
        return environment.mask_cookie_header(value)
    if name in _URLS_WITH_CODES:
        return environment.mask_url(value)
    return environment.mask(value) if is_secret(name) else value


def status(env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str] | None = None) -> None:
    """Print every known key that has a value, then how long the session and token last."""
    state = env_file.read()
    environment.data(f"# {state.path}{'' if state.exists else ' (does not exist yet)'}")
    for name in KEYS:
        value = state.value(name)
        if value:
            came_from = "  # from the environment" if state.source(name) == "environment" else ""
            environment.data(f"{name}={_shown(environment, name, value)}{came_from}")
    now = environment.now()
    for label, value_key, expiry_key in (("session", "AUTH_COOKIE", "AUTH_EXPIRES"), ("token", "AUTH_BEARER", "AUTH_BEARER_EXPIRES")):
        if state.value(value_key):
            environment.data(f"# {label} {format_expiry(parse_expiry(state.value(expiry_key)), now)}")


STATUS = Command("status", status, "Show where the flow stands: every known key in .env (secrets masked).", options=(SHOW_SECRETS,))
COMMANDS = (STATUS,)
