"""What ``invoke sandbox-up`` and ``sandbox-down`` do with the .env file.

``up`` starts a sandbox and writes the settings that point the tool at it,
first saving any values it replaces; ``down`` stops the sandbox's processes
and puts those values back, removing what it wrote.  The keys the steps
produced for another cluster are cleared on both sides.  Running the client's
steps (the demo) is the task side's business: see ``sandbox.commands``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from scripts.environment import Environment
from scripts.errors import SandboxError, UsageError
from scripts.keys import produced
from scripts.state import EnvFile

from . import control
from .flavors import NEWEST

# keys the steps produce: they describe one cluster, so a new sandbox starts without them
PRODUCED = produced()
SAVED = "previous.json"


def read_settings(path: str) -> dict[str, object]:
    """Gateway settings and faults from a JSON file (see sandbox/faults.py and gateway.Settings)."""
    try:
        settings = json.loads(Path(path).read_text())
    except OSError as error:
        raise UsageError(f"cannot read sandbox settings {path}: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"sandbox settings {path} are not JSON: {error}") from None
    if not isinstance(settings, dict):
        raise UsageError(f"sandbox settings {path} must be a JSON object of gateway settings")
    return settings


def up(env: EnvFile, environment: Environment, flavor: str | None, settings_file: str | None = None) -> control.Sandbox:
    """Start a sandbox and point ``env`` at it; ``settings_file`` sets gateway settings and faults."""
    state = env.read()
    running = state.value("SANDBOX_DIR")
    if running and Path(running, "pids.json").exists():
        raise SandboxError(f"a sandbox is already running for {env.path} ({running}): run `invoke sandbox-down` first")
    settings_wanted = read_settings(settings_file) if settings_file else {}
    sandbox = control.start(flavor or NEWEST)
    try:
        if settings_wanted:
            sandbox.configure(**settings_wanted)
        replaced = {key: state[key] for key in (*control.SETTING_KEYS, *PRODUCED) if key in state}
        descriptor = os.open(sandbox.folder / SAVED, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(replaced, handle)
        env.update({**sandbox.settings(), **{key: None for key in PRODUCED}})
    except BaseException:
        control.stop(sandbox.folder)
        raise
    environment.step_ok(
        "sandbox-up",
        f"{sandbox.flavor} gateway on 127.0.0.1:{sandbox.gateway_port}, Kubernetes API on :{sandbox.api_port}, "
        f"MLServer on :{sandbox.model_port}",
    )
    return sandbox


def down(env: EnvFile, environment: Environment) -> None:
    """Stop the sandbox ``env`` points at and restore what ``up`` replaced."""
    state = env.read()
    folder_name = state.value("SANDBOX_DIR")
    if not folder_name:
        environment.step_skipped("sandbox-down", f"no sandbox recorded in {env.path}: nothing to stop")
        return
    folder = Path(folder_name)
    try:
        replaced = json.loads((folder / SAVED).read_text())
    except (OSError, ValueError):
        replaced = {}
    stopped = control.stop(folder)
    written = (*control.SETTING_KEYS, *PRODUCED)
    env.update({key: replaced.get(key) for key in written})
    pids = ", ".join(str(pid) for pid in stopped) or "none were running"
    environment.step_ok("sandbox-down", f"stopped pids {pids}; .env restored")
