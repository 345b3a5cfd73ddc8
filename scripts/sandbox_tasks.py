"""The sandbox's tasks: ``sandbox-up``, ``sandbox-down`` and ``demo``, and what they do to the .env file.

``sandbox-up`` starts a local stand-in cluster (the ``sandbox`` package) and
writes the settings that point the tool at it, first saving any values it
replaces; ``sandbox-down`` stops its processes by pid and puts those values
back, removing what it wrote (and the file itself when sandbox-up created it
and nothing else was added).  ``demo`` does both around the seven steps, with
its state in a temporary file, so it leaves nothing behind.

The sandbox package sits beside this one (``sandbox`` in a checkout,
``kfdex.sandbox`` when installed) and is imported only when one of these tasks
runs, so listing tasks stays cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from .environment import Environment
from .errors import SandboxError, UsageError
from .keys import KEYS, produced
from .state import ENV_FILE_VARIABLE, EnvFile
from .step import VERBOSE, Command, Option, run_step

SAVED = "previous.json"  # in the sandbox folder: the values sandbox-up replaced


def sandbox_module(name: str) -> ModuleType:
    """``sandbox.<name>`` in a checkout, ``kfdex.sandbox.<name>`` when installed."""
    parent = (__package__ or "").rpartition(".")[0]
    try:
        return importlib.import_module(f"{parent + '.' if parent else ''}sandbox.{name}")
    except ImportError as error:
        raise SandboxError(
            f"the sandbox needs its extra ({error.name} is missing): pip install 'kfdex[sandbox]'"
        ) from None


_flavors = sandbox_module("flavors")  # a small table, cheap to import: the sandbox's generations
FLAVOR = Option("flavor", f"the Kubeflow auth generation to play: {', '.join(_flavors.FLAVORS)} (default {_flavors.NEWEST})")
COMPONENTS = ("stand-in", "real")
COMPONENT = Option(
    "components", "stand-in (Python imitations, the default) or real (Dex and oauth2-proxy built by sandbox-build)", default="stand-in"
)


@contextmanager
def _reported() -> Iterator[None]:
    """The sandbox's own failures as the tool's SandboxError (exit 10)."""
    failure = sandbox_module("control").SandboxFailure
    try:
        yield
    except failure as error:
        raise SandboxError(str(error)) from None


def _checked_flavor(flavor: str | None) -> str:
    """The flavor to play; a UsageError before anything starts when there is no such one."""
    if flavor is None:
        return str(_flavors.NEWEST)
    if flavor not in _flavors.FLAVORS:
        raise UsageError(f"--flavor {flavor}: no such sandbox flavor; use one of {', '.join(_flavors.FLAVORS)}")
    return flavor


def _read_settings(path: str) -> dict[str, object]:
    """Gateway settings and faults from a JSON file (see the README's "Sandbox faults")."""
    try:
        settings = json.loads(Path(path).read_text())
    except OSError as error:
        raise UsageError(f"cannot read sandbox settings {path}: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"sandbox settings {path} are not JSON: {error}") from None
    if not isinstance(settings, dict):
        raise UsageError(f"sandbox settings {path} must be a JSON object of gateway settings")
    return settings


def _checked_components(components: str | None) -> str:
    """``stand-in`` or ``real``; a UsageError otherwise."""
    if components not in (None, *COMPONENTS):
        raise UsageError(f"--components {components}: use stand-in or real")
    return components or "stand-in"


def up(
    env_file: EnvFile,
    environment: Environment,
    flavor: str | None,
    settings_file: str | None = None,
    components: str | None = None,
) -> None:
    """Start a sandbox and point ``env_file`` at it; ``settings_file`` sets gateway settings and faults."""
    chosen = _checked_flavor(flavor)
    kind = _checked_components(components)
    settings_wanted = _read_settings(settings_file) if settings_file else {}
    state = env_file.read()
    running = state.value("SANDBOX_DIR")
    if running and Path(running, "pids.json").exists():
        raise SandboxError(f"a sandbox is already running for {env_file.path} ({running}): run `invoke sandbox-down` first")
    control = sandbox_module("control")
    with _reported():
        sandbox = control.start(chosen, components=kind)
        try:
            if settings_wanted:
                sandbox.configure(**settings_wanted)
            written = (*control.SETTING_KEYS, *produced())
            saved = {"replaced": {key: state[key] for key in written if key in state}, "file_existed": state.exists}
            descriptor = os.open(sandbox.folder / SAVED, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(saved, handle)
            env_file.update({**sandbox.settings(), **{key: None for key in produced()}})
        except BaseException:
            control.stop(sandbox.folder)
            raise
    environment.step_ok(
        "sandbox-up",
        f"{sandbox.flavor} gateway on 127.0.0.1:{sandbox.gateway_port}, Kubernetes API on :{sandbox.api_port}, "
        f"MLServer on :{sandbox.model_port}{sandbox.real_summary}",
    )


def down(env_file: EnvFile, environment: Environment) -> None:
    """Stop the sandbox ``env_file`` points at and restore what ``up`` replaced."""
    state = env_file.read()
    folder_name = state.value("SANDBOX_DIR")
    if not folder_name:
        environment.step_skipped("sandbox-down", f"no sandbox recorded in {env_file.path}: nothing to stop")
        return
    folder = Path(folder_name)
    try:
        saved = json.loads((folder / SAVED).read_text())
    except (OSError, ValueError):
        saved = {}
    control = sandbox_module("control")
    with _reported():
        stopped = control.stop(folder)
    replaced = saved.get("replaced", {})
    env_file.update({key: replaced.get(key) for key in (*control.SETTING_KEYS, *produced())})
    restored = ".env restored"
    if saved.get("file_existed") is False and not env_file.read():
        env_file.path.unlink(missing_ok=True)  # sandbox-up created it and nothing else lives there
        restored = f"{env_file.path.name} removed (sandbox-up had created it)"
    pids = ", ".join(str(pid) for pid in stopped) or "none were running"
    environment.step_ok("sandbox-down", f"stopped pids {pids}; {restored}")


def sandbox_up(
    env_file: EnvFile,
    environment: Environment,
    _overrides: Mapping[str, str],
    flavor: str | None = None,
    settings: str | None = None,
    components: str | None = None,
) -> None:
    """Start a sandbox and point the .env at it."""
    up(env_file, environment, flavor, settings, components)


def sandbox_down(env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str]) -> None:
    """Stop the sandbox the .env points at and restore the .env."""
    down(env_file, environment)


def demo(
    _env_file: EnvFile,
    environment: Environment,
    _overrides: Mapping[str, str],
    flavor: str | None = None,
    token: bool = False,
    components: str | None = None,
) -> None:
    """Start a sandbox, run the seven steps (create-token instead of the Dex four with ``token``), always stop it.

    The state lives in a temporary file (or the one ``ENV_FILE`` names), and the
    tool's keys in the process environment are ignored: the demo plays its own cluster.
    """
    from . import expose_nodeport, infer, login, resolve_ingress

    chosen = _checked_flavor(flavor)
    kind = _checked_components(components)
    named = environment.variables.get(ENV_FILE_VARIABLE)
    folder = Path(tempfile.mkdtemp(prefix="kfdex-demo-"))
    env_file = EnvFile(Path(named) if named else folder / ".env")
    own = dataclasses.replace(environment, variables={k: v for k, v in environment.variables.items() if k not in KEYS})
    own.info(f"demo: state in {env_file.path}")
    try:
        with _kubectl_cache_in(folder):  # kubectl's discovery cache for the sandbox goes with it
            up(env_file, own, chosen, components=kind)
            try:
                run_step(resolve_ingress.STEP, env_file, own)
                (login.token_login if token else login.dex_login)(env_file, own)
                run_step(expose_nodeport.STEP, env_file, own)
                run_step(infer.STEP, env_file, own, payload="iris", auth="token" if token else "cookie")
            finally:
                down(env_file, own)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _kubectl_cache_in(folder: Path) -> Iterator[None]:
    """kubectl (a child process, reading this process's environment) caches discovery under ``folder`` meanwhile."""
    previous = os.environ.get("KUBECACHEDIR")
    os.environ["KUBECACHEDIR"] = str(folder / "kubecache")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KUBECACHEDIR", None)
        else:
            os.environ["KUBECACHEDIR"] = previous


SANDBOX_UP = Command(
    "sandbox-up",
    sandbox_up,
    "Start the local stand-in cluster and point the .env at it.",
    options=(
        FLAVOR,
        Option("settings", "a JSON file of gateway settings and faults to start with (see README: Sandbox faults)"),
        COMPONENT,
    ),
)
SANDBOX_DOWN = Command("sandbox-down", sandbox_down, "Stop every sandbox process (by pid) and remove what sandbox-up wrote.")
DEMO = Command(
    "demo",
    demo,
    "Start the sandbox, run the seven steps, print the iris prediction, stop the sandbox.",
    options=(
        FLAVOR,
        Option("token", "log in with a ServiceAccount token instead of the Dex login", kind=bool, default=False, short="t"),
        VERBOSE,
        COMPONENT,
    ),
)


def sandbox_build(_env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str], flavor: str | None = None) -> None:
    """Build (or reuse) the real components of the flavors named (comma-separated; default all) into the user's cache."""
    names = [name.strip() for name in (flavor or ",".join(_flavors.FLAVORS)).split(",") if name.strip()]
    for name in names:
        _checked_flavor(name)
    builds = list(dict.fromkeys(build for name in names for build in _flavors.FLAVORS[name].real))
    realbuild = sandbox_module("realbuild")
    go = realbuild.go_command()
    if go is None:
        raise SandboxError("sandbox-build needs Go 1.26 (`go` is not on PATH): install it, or use --components stand-in")
    failed = realbuild.build_all(builds, go, environment.info)  # one failure does not stop the others
    if failed:
        raise SandboxError(f"sandbox-build could not build {', '.join(failed)}: see its line above")
    environment.step_ok("sandbox-build", f"{len(builds)} binaries for {', '.join(names)} in {realbuild.cache_root()}")


SANDBOX_BUILD = Command(
    "sandbox-build",
    sandbox_build,
    "Build the real Dex and oauth2-proxy (Go) that --components real runs, into ~/.cache/kfdex/real.",
    options=(Option("flavor", f"the flavors to build for, comma-separated: {', '.join(_flavors.FLAVORS)} (default all)"),),
)
COMMANDS = (SANDBOX_UP, SANDBOX_DOWN, DEMO, SANDBOX_BUILD)
