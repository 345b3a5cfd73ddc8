"""``invoke status``: where the flow stands, every key of the .env with secrets masked, on stdout.

The tool's own keys come first, in the order of ``scripts.core.keys``; keys it does
not know follow as written, masked when their name looks like a secret's.
Values set in the process environment (which win over .env) are marked so.
One-time codes in the login URLs are masked like secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..auth.credentials import COOKIE_KEYS, TOKEN_KEYS, format_expiry, saved
from ..core.environment import Environment
from ..core.keys import KEYS, is_chosen_secret, is_secret
from ..core.state import EnvFile
from ..core.step import SHOW_SECRETS, Command

# a key the tool does not know is shown masked when its name says it may hold a secret
_LOOKS_SECRET = re.compile(r"PASS|SECRET|TOKEN|COOKIE|KEY|CREDENTIAL|AUTH|SESSION|PRIVATE", re.IGNORECASE)
# URLs whose query carries one-time codes (Dex's req/state, the gateway's code and state)
_URLS_WITH_CODES = ("DEX_LOGIN_URL", "DEX_NEXT_URL", "DEX_CALLBACK_URL")


def _shown(environment: Environment, name: str, value: str) -> str:
    if name == "AUTH_COOKIE":
        return environment.mask_cookie_header(value)
    if name in _URLS_WITH_CODES:
        return environment.mask_url(value)
    if is_chosen_secret(name):
        return environment.mask_password(value)
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
    others = [name for name in state if name not in KEYS]
    if others:
        environment.data("# not kfdex's keys, kept as written (values whose name looks secret are masked)")
    for name in others:
        value = state[name]
        environment.data(f"{name}={environment.mask_password(value) if _LOOKS_SECRET.search(name) else value}")
    for keys in (COOKIE_KEYS, TOKEN_KEYS):
        found = saved(state, keys)
        if found is not None:
            bound = f", for {found.origin}" if found.origin else ", for no recorded ingress"
            environment.data(f"# {'session' if keys is COOKIE_KEYS else 'token'} {format_expiry(found.expiry(), environment.now())}{bound}")


STATUS = Command("status", status, "Show where the flow stands: every key in .env (secrets masked).", options=(SHOW_SECRETS,))
COMMANDS = (STATUS,)
