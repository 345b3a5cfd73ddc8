"""``invoke profiles``: the named setups for several clusters, with their ingress, user and session state.

A profile is a .env file ``NAME.env`` in the profiles folder
(``$XDG_CONFIG_HOME/kfdex/profiles``, by default ``~/.config/kfdex/profiles``),
chosen with ``KFDEX_PROFILE=NAME`` (or ``kfdex --profile NAME``); ``ENV_FILE``
still names a file directly and wins over a profile.  ``kfdex init`` with a
profile chosen writes a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..auth.credentials import COOKIE_KEYS, TOKEN_KEYS, format_expiry, saved
from ..core.environment import Environment
from ..core.errors import KfDexError
from ..core.state import PROFILE_VARIABLE, EnvFile, profiles_folder
from ..core.step import Command


def _describe(path: Path, environment: Environment) -> str:
    """``ingress 10.0.0.9:31380, user alice@…, session valid until …`` for one profile's file."""
    try:
        state = EnvFile(path).read()
    except KfDexError as error:
        return f"unreadable: {error.message}"
    host, port = state.get("INGRESS_HOST", ""), state.get("INGRESS_PORT", "")
    parts = [f"ingress {host}:{port}" if host else "ingress not resolved", f"user {state.get('DEX_LOGIN') or '(not set)'}"]
    for keys in (COOKIE_KEYS, TOKEN_KEYS):
        found = saved(state, keys)
        if found is not None:
            parts.append(f"{found.noun} {format_expiry(found.expiry(), environment.now())}")
    return ", ".join(parts)


def profiles(env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str] | None = None) -> None:
    """List the profiles (the chosen one marked with ``*``) on stdout."""
    folder = profiles_folder(environment.variables)
    found = sorted(folder.glob("*.env")) if folder.is_dir() else []
    if not found:
        environment.info(f"no profiles in {folder}: `invoke init` with {PROFILE_VARIABLE}=NAME (or `kfdex --profile NAME init`) writes one")
        return
    for path in found:
        chosen = "*" if path == env_file.path else " "
        environment.data(f"{chosen} {path.stem:<16} {_describe(path, environment)}")


PROFILES = Command("profiles", profiles, "List the named profiles (one .env per cluster) with their ingress, user and session.")
COMMANDS = (PROFILES,)
