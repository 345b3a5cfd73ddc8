"""What ``invoke sandbox-up``, ``sandbox-down`` and ``demo`` do with the .env file.

``up`` starts a sandbox and writes the settings that point the tool at it,
first saving any values it replaces; ``down`` stops the sandbox's processes
and puts those values back, removing what it wrote.  The keys the steps
produced for another cluster are cleared on both sides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from scripts import console, expose_nodeport, infer, login, resolve_ingress
from scripts.errors import SandboxError, UsageError
from scripts.keys import KEYS
from scripts.runner import run_step
from scripts.state import PROJECT_ROOT, EnvFile

from . import control
from .flavors import NEWEST

# keys the steps produce: they describe one cluster, so a new sandbox starts without them
PRODUCED = tuple(name for name, key in KEYS.items() if key.provider not in ("setting", "sandbox-up"))
DEMO_ENV = PROJECT_ROOT / ".demo.env"
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


def up(env: EnvFile, flavor: str | None, settings_file: str = "") -> control.Sandbox:
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
    console.step_ok(
        "sandbox-up",
        f"{sandbox.flavor} gateway on 127.0.0.1:{sandbox.gateway_port}, Kubernetes API on :{sandbox.api_port}, "
        f"MLServer on :{sandbox.model_port}",
    )
    return sandbox


def down(env: EnvFile) -> None:
    """Stop the sandbox ``env`` points at and restore what ``up`` replaced."""
    state = env.read()
    folder_name = state.value("SANDBOX_DIR")
    if not folder_name:
        console.step_skipped("sandbox-down", f"no sandbox recorded in {env.path}: nothing to stop")
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
    console.step_ok("sandbox-down", f"stopped pids {pids}; .env restored")


def demo(env: EnvFile | None, flavor: str | None, token: bool = False) -> None:
    """Start a sandbox, run the seven steps (create-token instead of the Dex four with ``token``), always stop it."""
    own_file = env is None
    if env is None:
        DEMO_ENV.unlink(missing_ok=True)
        env = EnvFile(DEMO_ENV)
    console.info(f"demo: state in {env.path}")
    up(env, flavor)
    try:
        run_step("resolve-ingress", resolve_ingress.run, env)
        (login.token_login if token else login.dex_login)(env)
        run_step("expose-nodeport", expose_nodeport.run, env)
        run_step("infer", infer.run, env, payload="iris", auth="token" if token else "cookie")
    finally:
        down(env)
        if own_file:
            DEMO_ENV.unlink(missing_ok=True)
