"""Every command the client declares, in the order a person meets them; looked up by name or by key.

This is the one list a new step is added to (after writing its module).  It
imports the step modules, never Invoke or the sandbox.
"""

from __future__ import annotations

from . import approve, authenticate, create_token, expose_nodeport, extract_cookie, fetch_req, infer, login, resolve_ingress
from . import status as status_command
from .step import Declaration, Step

STEPS: tuple[Step, ...] = (
    resolve_ingress.STEP,
    fetch_req.STEP,
    authenticate.STEP,
    approve.STEP,
    extract_cookie.STEP,
    create_token.STEP,
    expose_nodeport.STEP,
    infer.STEP,
)
COMMANDS: tuple[Declaration, ...] = (*STEPS, login.LOGIN, login.LOGOUT, status_command.STATUS)


def how_to_produce(key: str) -> str:
    """The command that writes ``key``: ``invoke fetch-req``."""
    for step in STEPS:
        if key in step.writes:
            return step.how_to_run
    return f"set {key} in the .env file"
