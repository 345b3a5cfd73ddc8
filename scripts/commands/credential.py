"""``kfdex credential``: the saved session or token printed in a form another tool takes (masked unless asked)."""

from __future__ import annotations

from collections.abc import Mapping

from ..auth.credentials import choose, ensure_sendable
from ..core.environment import Environment
from ..core.errors import UsageError
from ..core.state import EnvFile
from ..core.step import AUTH, SHOW_SECRETS, Command, Option
from ..core.values import shown as quoted
from ..render.credential_formats import FORMATS, render


def credential(
    env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str], format: str = "header", auth: str = "auto"
) -> None:
    """Print the credential ``auth`` chooses in ``format``; an expired or missing one is refused (exit 5)."""
    if format not in FORMATS:
        raise UsageError(f"--format {quoted(format)}: use one of {', '.join(FORMATS)}")
    chosen = choose(env_file.read(), environment.now(), auth)
    ensure_sendable(chosen)  # printed for another tool to send: a value no header can hold is refused, as infer refuses it
    shown = environment.mask_cookie_header if chosen.kind == "cookie" else environment.mask
    text = render(chosen, format, shown, str(env_file.path))
    if not environment.show_secrets and format == "env":  # lines a shell would take: commented out, so an eval sets nothing masked
        text = "\n".join(f"# {line}" for line in text.splitlines())
    environment.data(text)
    if not environment.show_secrets:
        environment.warn("the values above are masked, to read, not to use: add --show-secrets to print them whole")


CREDENTIAL = Command(
    "credential",
    credential,
    "Print the saved session or token for another tool: header, curl, json, env or python (masked unless --show-secrets).",
    options=(
        Option("format", f"how to write it: {', '.join(FORMATS)} (default header)", default="header"),
        AUTH,
        SHOW_SECRETS,
    ),
)
COMMANDS = (CREDENTIAL,)
