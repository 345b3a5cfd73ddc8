"""The sandbox's tasks: ``sandbox-up``, ``sandbox-down`` and ``demo``, and what they do to the .env file.

``sandbox-up`` starts a local stand-in cluster (the ``sandbox`` package) and
points the .env at it, keeping every line it takes over in the .env itself
(``scripts.commands.sandbox_record``); ``sandbox-down`` stops its processes by pid and
puts those lines back, so the .env is as it was (or gone again, when
sandbox-up created it) whatever happened to the temporary folder meanwhile.
It stops and removes only a sandbox whose folder holds the random id recorded
in the .env.  ``demo`` does both around the seven steps, with its state in a
temporary file, so it leaves nothing behind.

The sandbox package sits beside this one (``sandbox`` in a checkout,
``kfdex.sandbox`` when installed) and is imported only when one of these tasks
runs, so listing tasks stays cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from ..core.boundary import Interrupted
from ..core.environment import Environment
from ..core.errors import SandboxError, UsageError
from ..core.extras import require
from ..core.keys import KEYS, produced
from ..core.state import ENV_FILE_VARIABLE, EnvFile
from ..core.step import VERBOSE, Command, Option, run_step
from ..core.values import shown
from ..transport import kubecache
from ..transport.kube import kubectl_binary
from . import sandbox_record


def sandbox_module(name: str) -> ModuleType:
    """``sandbox.<name>`` in a checkout, ``kfdex.sandbox.<name>`` when installed."""
    top = __name__.partition("scripts.")[0]  # "" in a checkout, "kfdex." installed
    try:
        return importlib.import_module(f"{top}sandbox.{name}")
    except ImportError as error:
        raise SandboxError(
            f"the sandbox needs its extra ({error.name} is missing): pip install 'kfdex[sandbox]'"
        ) from None


_flavors = sandbox_module("flavors")  # a small table, cheap to import: the sandbox's generations
FLAVOR = Option("flavor", f"the Kubeflow auth generation to play: {', '.join(_flavors.FLAVORS)} (default {_flavors.NEWEST})")
MODEL_SERVER = Option(
    "model_server",
    "put the login in front of a V2 model server already running on this machine (http://127.0.0.1:PORT) instead of MLServer",
)
MODEL_NAME = Option("model_name", "with --model-server: the model it serves, played as the InferenceService (default sklearn-irisv2)")
# an InferenceService's name is a DNS-1035 label; the sandbox's URLs and pod names are made from it
_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
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
        raise UsageError(f"--flavor {shown(flavor)}: no such sandbox flavor; use one of {', '.join(_flavors.FLAVORS)}")
    return flavor


def _read_settings(path: str) -> dict[str, object]:
    """Gateway settings and faults from a JSON file (see the README's "Sandbox faults"), checked field by field."""
    try:
        settings = json.loads(Path(path).read_text())
    except OSError as error:
        raise UsageError(
            f"--settings {shown(path)}: cannot read it ({error.strerror}): give a JSON file of gateway settings "
            "(README: Sandbox faults)"
        ) from None
    except ValueError as error:
        raise UsageError(f"sandbox settings {path} are not JSON: {error}") from None
    gateway = sandbox_module("gateway")
    try:
        gateway.check_settings(settings)
    except gateway.BadSetting as error:
        raise UsageError(f"sandbox settings {path}: {error}") from None
    return dict(settings)


def _checked_components(components: str | None) -> str:
    """``stand-in`` or ``real``; a UsageError otherwise."""
    if components not in (None, *COMPONENTS):
        raise UsageError(f"--components {shown(components)}: use stand-in or real")
    return components or "stand-in"


def _checked_model(server: str | None, name: str | None) -> object | None:
    """The ``ModelServer`` that --model-server and --model-name name (None: the sandbox starts its own MLServer).

    A UsageError before anything starts for an address off this machine or a name no InferenceService could have.
    """
    if server is None:
        if name is not None:
            raise UsageError("--model-name: give it with --model-server (the sandbox's own MLServer serves sklearn-irisv2)")
        return None
    wanted = "give the V2 server's address on this machine, as http://127.0.0.1:PORT"
    try:
        parts = urlsplit(server)
        port = parts.port
    except ValueError:
        port = None
    if not port or parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.path.strip("/"):
        raise UsageError(f"--model-server {shown(server)}: {wanted}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"--model-server {shown(server)}: {wanted}")
    if name is not None and not _SERVICE_NAME.fullmatch(name):
        raise UsageError(
            f"--model-name {shown(name)}: give an InferenceService name (at most 63 lowercase letters, digits and -, "
            "a letter first and no - last)"
        )
    control = sandbox_module("control")
    return control.ModelServer(port) if name is None else control.ModelServer(port, name)


def _owned() -> tuple[str, ...]:
    """The .env keys a sandbox takes over: those sandbox-up writes and those the steps write for its cluster."""
    return (*sandbox_module("control").SETTING_KEYS, *produced())


def _refuse_a_second(env_file: EnvFile, text: str | None) -> None:
    """A SandboxError when the .env's ``text`` already records a sandbox (running or not): its saved lines must not be lost."""
    if sandbox_record.claimed(text):
        raise SandboxError(f"{env_file.path} already records a sandbox (SANDBOX_DIR): run `invoke sandbox-down` first")


def _forget(env_file: EnvFile, sandbox_id: str) -> list[str]:
    """Put back what the sandbox ``sandbox_id`` kept in the .env, if the .env records it.

    Returns the sandbox's settings that were changed by hand meanwhile: those changes went with it.
    """
    owned = _owned()
    edited: list[str] = []

    def restored(text: str | None) -> str | None:
        record = sandbox_record.find(text)
        if text is None or record is None or record.id != sandbox_id:
            return text
        edited[:] = sandbox_record.edited(text)
        return sandbox_record.restore(text, owned)

    env_file.rewrite(restored)
    return edited


def _stop_and_forget(env_file: EnvFile, sandbox_id: str, folder_name: str) -> tuple[object, str]:
    """Stop the sandbox in ``folder_name`` (if its folder is still there), then restore the .env; what was done, in words.

    The words end with the sandbox's settings changed by hand, whose changes were dropped with them.
    """
    control = sandbox_module("control")
    folder = Path(folder_name) if folder_name else None
    if folder is None or not (folder.exists() or folder.is_symlink()):
        stopped, what = control.Stopped(), f"its folder {folder_name or '(not recorded)'} is gone: nothing to stop"
        left = control.naming(folder) if folder is not None else []
        if left:  # the folder was deleted under running processes: say which, touch none (nothing proves them ours)
            stopped.refused.append(
                f"its folder {folder_name} is gone but processes still name it: pids {', '.join(map(str, left))} (stop them with kill)"
            )
    else:
        if not control.proof(folder, sandbox_id):
            kubecache.remove_made(folder)
        stopped = control.stop(folder, sandbox_id)
        what = f"stopped pids {', '.join(str(pid) for pid in stopped.pids) or 'none were running'}"
    if not stopped.refused:  # a sandbox left running keeps its record: the next sandbox-down can still find it
        edited = _forget(env_file, sandbox_id)
        restored = ".env restored" if env_file.path.exists() else f"{env_file.path.name} removed (sandbox-up had created it)"
        what += f"; {restored}"
        if edited:
            what += (
                f"; {', '.join(edited)} {'was' if len(edited) == 1 else 'were'} changed after sandbox-up: "
                f"{'that change' if len(edited) == 1 else 'those changes'} went with the sandbox's settings"
            )
    return stopped, what


def up(
    env_file: EnvFile,
    environment: Environment,
    flavor: str | None,
    settings_file: str | None = None,
    sandbox_id: str = "",
    components: str | None = None,
    ends_with: tuple[int, Path | None] | None = None,
    model: object | None = None,
) -> None:
    """Start a sandbox and point ``env_file`` at it; ``settings_file`` sets gateway settings and faults.

    ``ends_with``: the sandbox stops itself once that pid is gone, removing that folder too (the demo's).
    ``model``: a checked ``ModelServer`` to put the login in front of (``_checked_model``).
    """
    chosen = _checked_flavor(flavor)
    kind = _checked_components(components)
    require("sandbox", "the sandbox")  # before anything starts: a child's ImportError would show as a traceback
    settings_wanted = _read_settings(settings_file) if settings_file else {}
    env_file.read()  # a .env that cannot be read, or written, is refused before anything starts
    env_file.check_folder()
    _refuse_a_second(env_file, env_file.text())
    control = sandbox_module("control")
    sandbox_id = sandbox_id or control.new_id()
    owned = _owned()

    def recorded(sandbox: object) -> None:  # runs inside start: a failure or interrupt here stops the sandbox
        kubecache.note_if_absent(sandbox.folder, sandbox.api_port)  # type: ignore[attr-defined]
        if settings_wanted:
            sandbox.configure(**settings_wanted)  # type: ignore[attr-defined]

        def kept(text: str | None) -> str:
            _refuse_a_second(env_file, text)  # checked again under the lock
            return sandbox_record.keep(text, owned, sandbox.settings(), sandbox_id)  # type: ignore[attr-defined]

        env_file.rewrite(kept)

    try:
        with _reported():
            # until the .env records it, the sandbox ends with this process, however that ends (SIGKILL too)
            sandbox = control.start(
                chosen, sandbox_id, ready=recorded, components=kind, ends_with=ends_with or (os.getpid(), None), model=model
            )
            if ends_with is None:
                control.release(sandbox)
    except BaseException:
        _forget(env_file, sandbox_id)  # the .env as it was, if the record was already written
        raise
    environment.step_ok(
        "sandbox-up",
        f"{sandbox.flavor} gateway on 127.0.0.1:{sandbox.gateway_port}, Kubernetes API on :{sandbox.api_port}, "
        f"{'MLServer on' if sandbox.own_model else f'in front of model {sandbox.model_name} at'} :{sandbox.model_port}"
        f"{sandbox.real_summary}",
    )


def down(env_file: EnvFile, environment: Environment, sandbox_id: str | None = None, quiet: bool = False) -> None:
    """Stop the sandbox ``env_file`` records and put back what ``up`` kept (only sandbox ``sandbox_id`` when given).

    An interrupt meanwhile waits until all of it is done.  ``quiet``: no line when the .env records no sandbox.
    """
    sandbox_module("control").whole(lambda: _down(env_file, environment, sandbox_id, quiet))


def _down_however_interrupted(env_file: EnvFile, environment: Environment, sandbox_id: str) -> None:
    """``down``, also when a signal lands just before it could defer signals: then it runs again, and the signal follows.

    Only a command's first signal raises, so the second run is not cut short; after a whole first run it finds nothing.
    """
    try:
        down(env_file, environment, sandbox_id, quiet=True)
    except Interrupted:
        down(env_file, environment, sandbox_id, quiet=True)
        raise


def _down(env_file: EnvFile, environment: Environment, sandbox_id: str | None, quiet: bool = False) -> None:
    text = env_file.text()
    record = sandbox_record.find(text)
    folder_name = env_file.read().get("SANDBOX_DIR", "")
    if record is None and folder_name:
        raise SandboxError(
            f"{env_file.path} names SANDBOX_DIR={folder_name} but holds no #kfdex-sandbox record of starting it: "
            "refused to stop or remove anything there (delete the SANDBOX_DIR line if that sandbox is gone)"
        )
    if record is None:
        if not quiet:
            environment.step_skipped("sandbox-down", f"no sandbox recorded in {env_file.path}: nothing to stop")
        return
    if sandbox_id and record.id != sandbox_id:
        environment.step_skipped("sandbox-down", f"the sandbox recorded in {env_file.path} is not the one started here: left alone")
        return
    stopped, what = _stop_and_forget(env_file, record.id, folder_name)
    if stopped.refused:
        raise SandboxError(
            f"{'; '.join(stopped.refused)}; the .env keeps the sandbox's record: fix SANDBOX_DIR (or stop what is named) "
            "and run `invoke sandbox-down` again"
        )
    environment.step_ok("sandbox-down", what)


def sandbox_up(
    env_file: EnvFile,
    environment: Environment,
    _overrides: Mapping[str, str],
    flavor: str | None = None,
    settings: str | None = None,
    components: str | None = None,
    model_server: str | None = None,
    model_name: str | None = None,
) -> None:
    """Start a sandbox and point the .env at it."""
    up(env_file, environment, flavor, settings, components=components, model=_checked_model(model_server, model_name))


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
    model_server: str | None = None,
    model_name: str | None = None,
) -> None:
    """Start a sandbox, run the seven steps (create-token instead of the Dex four with ``token``), always stop it.

    The state lives in a temporary file (or the one ``ENV_FILE`` names), and the
    tool's keys in the process environment are ignored: the demo plays its own cluster.
    Whatever ends the run (a failure, Ctrl-C, SIGTERM, SIGHUP), the sandbox this
    demo started is stopped and its temporary folders are removed; after a
    SIGKILL, which no cleanup sees, the sandbox's watchdog does the same.
    """
    from .. import expose_nodeport, infer, resolve_ingress
    from . import login

    chosen = _checked_flavor(flavor)
    kind = _checked_components(components)
    model = _checked_model(model_server, model_name)
    if token and not _flavors.FLAVORS[chosen].accepts_bearer:  # nothing started for a demo that cannot work
        raise UsageError(f"--token: the {chosen} gateway takes no ServiceAccount tokens: leave out --token")
    require("sandbox", "the sandbox")
    kubectl_binary()  # the demo's steps run kubectl: missing, nothing is started
    if model is not None:
        with _reported():
            model.check()  # a model server that is not there: one line, nothing made or started
    control = sandbox_module("control")
    sandbox_id = control.new_id()
    named = environment.variables.get(ENV_FILE_VARIABLE)
    own = dataclasses.replace(environment, variables={k: v for k, v in environment.variables.items() if k not in KEYS})
    made: list[Path] = []
    try:
        control.whole(lambda: made.append(Path(tempfile.mkdtemp(prefix=sandbox_module("watchdog").DEMO_PREFIX))))
        env_file = EnvFile(Path(named) if named else made[0] / ".env")
        env_file.check_folder()  # before anything starts
        own.info(f"demo: state in {env_file.path}")
        with _kubectl_cache_in(made[0]):  # kubectl's discovery cache for the sandbox goes with it
            try:
                up(env_file, own, chosen, sandbox_id=sandbox_id, components=kind, ends_with=(os.getpid(), made[0]), model=model)
                run_step(resolve_ingress.STEP, env_file, own)
                (login.token_login if token else login.dex_login)(env_file, own)
                run_step(expose_nodeport.STEP, env_file, own)
                run_step(infer.STEP, env_file, own, payload="iris", auth="token" if token else "cookie")
            finally:  # quiet when up recorded no sandbox: it stopped what it had started itself
                _down_however_interrupted(env_file, own, sandbox_id)
    finally:
        for folder in made:
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
        Option("settings", "a JSON file of gateway settings and faults to start with (see README: Sandbox faults)", path=True),
        COMPONENT,
        MODEL_SERVER,
        MODEL_NAME,
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
        MODEL_SERVER,
        MODEL_NAME,
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
