"""The sandbox's tasks, declared like the client's: ``sandbox-up``, ``sandbox-down`` and ``demo``.

Their bodies import the sandbox's modules only when run, so that listing tasks
stays cheap.  ``demo`` is the task side of the sandbox: it starts one, runs
the client's declared steps against it, and always stops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from scripts.environment import Environment
from scripts.state import ENV_FILE_VARIABLE, PROJECT_ROOT, EnvFile
from scripts.step import Command, Option

DEMO_ENV = PROJECT_ROOT / ".demo.env"
FLAVOR = Option("flavor", "the Kubeflow auth generation to play: kf15, kf17, kf18, kf190, kf191 (default kf191)")


def sandbox_up(
    env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str], flavor: str | None = None, settings: str | None = None
) -> None:
    """Start a sandbox and point the .env at it."""
    from . import lifecycle

    lifecycle.up(env_file, environment, flavor, settings)


def sandbox_down(env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str]) -> None:
    """Stop the sandbox the .env points at and restore the .env."""
    from . import lifecycle

    lifecycle.down(env_file, environment)


def demo(
    _env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str], flavor: str | None = None, token: bool = False
) -> None:
    """Start a sandbox, run the seven steps (create-token instead of the Dex four with ``token``), always stop it."""
    from scripts import expose_nodeport, infer, login, resolve_ingress
    from scripts.step import run_step

    from . import lifecycle

    named = environment.variables.get(ENV_FILE_VARIABLE)
    env_file = EnvFile(Path(named)) if named else EnvFile(DEMO_ENV)
    if not named:
        DEMO_ENV.unlink(missing_ok=True)
    environment.info(f"demo: state in {env_file.path}")
    lifecycle.up(env_file, environment, flavor)
    try:
        run_step(resolve_ingress.STEP, env_file, environment)
        (login.token_login if token else login.dex_login)(env_file, environment)
        run_step(expose_nodeport.STEP, env_file, environment)
        run_step(infer.STEP, env_file, environment, payload="iris", auth="token" if token else "cookie")
    finally:
        lifecycle.down(env_file, environment)
        if not named:
            DEMO_ENV.unlink(missing_ok=True)


SANDBOX_UP = Command(
    "sandbox-up",
    sandbox_up,
    "Start the local stand-in cluster and point the .env at it.",
    options=(FLAVOR, Option("settings", "a JSON file of gateway settings and faults to start with (see README: Sandbox faults)")),
)
SANDBOX_DOWN = Command("sandbox-down", sandbox_down, "Stop every sandbox process (by pid) and remove what sandbox-up wrote.")
DEMO = Command(
    "demo",
    demo,
    "Start the sandbox, run the seven steps, print the iris prediction, stop the sandbox.",
    options=(FLAVOR, Option("token", "log in with a ServiceAccount token instead of the Dex login", kind=bool, default=False)),
)
COMMANDS = (SANDBOX_UP, SANDBOX_DOWN, DEMO)
