"""Starting and stopping the sandbox: its processes, tracked by pid and start time in the sandbox folder.

``start`` creates a private folder under the temporary directory with a marker
file holding a random id, starts the model server (``sandbox.model``) and the
stand-in cluster (``sandbox.cluster``), each in its own session, and waits
until both answer.  Given a ``ModelServer`` (a V2 server already running on
this machine), it starts no model server of its own: the login goes in front
of that one, which the sandbox neither owns nor stops.  Each process is written to ``pids.json`` (pid and kernel
start time) as soon as it is spawned, and the folder and each spawn are made
whole even when a signal's exception arrives meanwhile, so an interrupt at any
moment leaves nothing unrecorded.  ``stop`` signals only processes whose start
time still matches, and removes the folder only when ``proof`` finds it is the
sandbox of that id.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from . import realbuild, realrun
from .cluster import free_ports
from .flavors import FLAVORS, NEWEST
from .gateway import DEMO_LOGIN, DEMO_PASSWORD, MODEL_NAME, MODEL_NAMESPACE

# the folder that holds the top package: the checkout, or site-packages when installed as kfdex.sandbox
IMPORT_ROOT = Path(__file__).resolve().parents[len(__package__.split("."))]
READY_TIMEOUT = 90.0
PREFIX = "kfdex-sandbox-"  # the folder's name starts so
MARKER = "kfdex-sandbox.id"  # in the folder: the sandbox's random id, also recorded in the .env
PIDS = "pids.json"  # in the folder: [{"name", "pid", "start"}] of every process started
RELEASED = "released"  # written once the sandbox no longer ends with the process that started it
_T = TypeVar("_T")
_STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}  # what ``whole`` holds back until its work is done
# the .env keys sandbox-up writes (and sandbox-down puts back)
SETTING_KEYS = ("KUBECONFIG", "DEX_LOGIN", "DEX_PASSWORD", "MODEL_NAME", "MODEL_NAMESPACE", "TOKEN_AUDIENCE", "SANDBOX_DIR")


class SandboxFailure(Exception):
    """The sandbox could not start, stop or take a setting; the message says why."""


@dataclass(frozen=True)
class ModelServer:
    """A V2 (Open Inference Protocol) server already listening on 127.0.0.1: its REST port and the model to serve.

    The sandbox plays that model as its InferenceService (same name), and forwards gRPC to ``grpc_port`` (0: none).
    """

    port: int
    name: str = MODEL_NAME
    grpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self) -> None:
        """A SandboxFailure unless the server answers that the model is ready (``GET /v2/models/NAME/ready``)."""
        ready = f"{self.url}/v2/models/{self.name}/ready"
        try:
            status = requests.get(ready, timeout=5).status_code
        except requests.Timeout:
            raise SandboxFailure(
                f"the server at {self.url} did not answer GET {ready} within 5 s: give the port of a V2 model server"
            ) from None
        except requests.RequestException as error:
            reason = "connection refused" if isinstance(error, requests.ConnectionError) else type(error).__name__
            raise SandboxFailure(f"no model server answers at {self.url} ({reason}): start it first") from None
        if status != 200:
            raise SandboxFailure(
                f"the model server at {self.url} has no ready model {self.name!r} (GET {ready} answered HTTP {status}): "
                "name the model it serves"
            )


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox."""

    folder: Path
    gateway_port: int
    api_port: int
    model_port: int
    flavor: str
    id: str = ""
    real: str = ""  # with --components real: which real programs run where
    model_name: str = MODEL_NAME
    own_model: bool = True  # False: in front of a ModelServer that was already running
    model_grpc_port: int = 0  # the model server's gRPC port (0: none)

    @property
    def model(self) -> ModelServer:
        """This sandbox's model server, for another sandbox to be put in front of."""
        return ModelServer(self.model_port, self.model_name, self.model_grpc_port)

    @property
    def real_summary(self) -> str:
        """``; real dex-v2.41.1 on :port, ...`` for sandbox-up's line (empty for the stand-in)."""
        return f"; real {self.real}" if self.real else ""

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/sandbox"

    def settings(self) -> dict[str, str]:
        """The .env keys a user would set to point the tool at this sandbox."""
        audience = realrun.token_audience(FLAVORS[self.flavor]) if self.real else ""  # what the real 1.9.0 gateway wants
        values = (str(self.kubeconfig), DEMO_LOGIN, DEMO_PASSWORD, self.model_name, MODEL_NAMESPACE, audience, str(self.folder))
        return dict(zip(SETTING_KEYS, values, strict=True))

    def configure(self, **changes: object) -> dict[str, object]:
        """Change the running gateway (flavor, connectors, session_seconds, faults, ...: see gateway.Settings)."""
        return self._control("config", changes)

    def reset(self, flavor: str = NEWEST) -> None:
        """Every setting back to its default, faults cleared, the gateway listening."""
        self._control("reset", {"flavor": flavor})

    def expire_sessions(self) -> None:
        """End every session now, as if its 24 hours had passed."""
        self._control("expire-sessions", {})

    def mint_token(self, audience: str = "", seconds: int = 3600) -> str:
        """A ServiceAccount token (a JWT) for ``audience`` (default the gateway's): any other the gateway refuses."""
        return str(self._control("token", {"audience": audience, "seconds": seconds})["token"])

    def gateway_up(self, up: bool) -> None:
        """Stop the gateway listening (connections refused), or start it again on the same port."""
        self._control("gateway", {"up": up})

    def drain(self) -> None:
        """Wait until every request answered so far has its line in cluster.log.

        A listener writes a request's line just after its answer, so a client can see the answer first.
        """
        self._control("drain", {})

    def requests_logged(self) -> int:
        """How many requests the sandbox has answered, its control calls left out (after ``drain``)."""
        self.drain()
        lines = (self.folder / "cluster.log").read_text(encoding="utf-8").splitlines()
        return sum(1 for line in lines if " /sandbox/" not in line)

    def _control(self, name: str, body: dict[str, object]) -> dict[str, object]:
        answer = requests.post(f"{self.control_url}/{name}", json=body, timeout=10)
        if answer.status_code != 200:
            raise SandboxFailure(f"the sandbox refused {name}: {answer.text.strip()}")
        return dict(answer.json())


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first, start time at index 19)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_time(pid: int) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/PID/stat), to tell pid reuse."""
    fields = _stat(pid)
    return fields[19] if fields else None


def whole(work: Callable[[], _T]) -> _T:
    """``work()`` run to its end even if Ctrl-C, SIGTERM or SIGHUP comes meanwhile; the signal's exception follows.

    The work runs in a thread of its own while this one waits with those
    signals blocked, so what the work makes (a folder, a process) is recorded
    before the interrupt goes on to the cleanup that needs the record.  The
    work's thread unblocks them first: what it starts must not inherit them
    blocked, and a signal it takes is still handled (by Python, in the main
    thread) once this one goes on.  A value the work returns is lost when an
    interrupt follows, so work records what it made where the cleanup finds it.
    """
    outcome: dict[str, object] = {}
    began, finished = threading.Event(), threading.Event()

    def run() -> None:
        began.set()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller
            outcome["error"] = error
        finally:
            finished.set()

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        threading.Thread(target=run, name="sandbox-whole", daemon=True).start()
        finished.wait()
    finally:
        while began.is_set() and not finished.is_set():  # interrupted all the same: let the work finish first
            finished.wait()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _new_folder(sandbox_id: str) -> Path:
    """A private folder under the temporary directory, with the marker holding ``sandbox_id``."""
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    descriptor = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(sandbox_id)
    return folder


def temporary_of_ours(folder: Path, prefix: str) -> str:
    """Why ``folder`` is not a ``prefix*`` folder of this user directly in the temporary directory ("" when it is)."""
    if folder.is_symlink() or not folder.is_dir():
        return "it is not a folder"
    if not folder.name.startswith(prefix) or folder.resolve().parent != Path(tempfile.gettempdir()).resolve():
        return f"it is not a {prefix}* folder in the temporary directory {tempfile.gettempdir()}"
    if folder.stat().st_uid != os.getuid():
        return "another user owns it"
    return ""


def proof(folder: Path, sandbox_id: str) -> str:
    """Why ``folder`` cannot be shown to be the sandbox ``sandbox_id`` made ("" when it can)."""
    if not sandbox_id:
        return "no sandbox id is recorded for it"
    why = temporary_of_ours(folder, PREFIX)
    if why:
        return why
    try:
        found = (folder / MARKER).read_text().strip()
    except OSError:
        return f"it has no {MARKER} marker"
    return "" if found == sandbox_id else f"its {MARKER} marker holds another sandbox's id"


def _spawn(folder: Path, name: str, arguments: list[str]) -> int:
    """Start ``python -m ARGUMENTS`` in its own session, logging to ``NAME.log``; recorded in pids.json at once."""
    return launch(folder, name, [sys.executable, "-m", *arguments])


def launch(
    folder: Path, name: str, command: list[str], environment: dict[str, str] | None = None, cwd: Path = IMPORT_ROOT
) -> int:
    """Start ``command`` for the sandbox in ``folder`` (its own session, output in ``NAME.log``, ``environment`` added to
    this process's); its pid, recorded."""

    def started() -> int:
        with open(folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if environment is None else {**os.environ, **environment},
                start_new_session=True,
            )
        entries = [*_read_pids(folder), {"name": name, "pid": process.pid, "start": start_time(process.pid)}]
        temporary = folder / f".{PIDS}.tmp"
        temporary.write_text(json.dumps(entries))
        os.replace(temporary, folder / PIDS)
        return process.pid

    return whole(started)


def _read_pids(folder: Path) -> list[dict[str, object]]:
    """Every process recorded for ``folder`` (an older dict-by-name file too)."""
    try:
        found = json.loads((folder / PIDS).read_text())
    except (OSError, ValueError):
        return []
    if isinstance(found, dict):
        found = [{"name": name, **entry} for name, entry in found.items() if isinstance(entry, dict)]
    return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []


def alive(pid: int, start: object) -> bool:
    """True while the process runs (not a zombie) and, given ``start``, is the one we started."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and (start is None or fields[19] == start)


def _wait_ready(folder: Path, model_port: int) -> dict[str, int]:
    deadline = time.monotonic() + READY_TIMEOUT
    session = requests.Session()
    cluster: dict[str, int] | None = None
    model_ready = False
    while time.monotonic() < deadline:
        _checkalive(folder)
        if cluster is None and (folder / "cluster.json").exists():
            cluster = json.loads((folder / "cluster.json").read_text())
        if not model_ready:
            with contextlib.suppress(requests.RequestException):
                model_ready = session.get(f"http://127.0.0.1:{model_port}/v2/health/ready", timeout=1).status_code == 200
        if cluster is not None and model_ready:
            return cluster
        time.sleep(0.2)
    raise SandboxFailure(f"the sandbox did not become ready in {READY_TIMEOUT:.0f}s; logs are in {folder}")


def _checkalive(folder: Path) -> None:
    """A SandboxFailure with the last lines of its log when a process started for ``folder`` has exited."""
    for entry in _read_pids(folder):
        if not alive(int(entry["pid"]), entry.get("start")):  # type: ignore[call-overload]
            name = entry.get("name")
            tail = (folder / f"{name}.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise SandboxFailure(f"the sandbox's {name} process exited while starting: {' | '.join(tail)}")


def _wait_answering(folder: Path, url: str) -> None:
    """Wait until ``url`` answers 200, every process still alive."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        _checkalive(folder)
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SandboxFailure(f"{url} did not answer in {READY_TIMEOUT:.0f}s; logs are in {folder}")


def check_built(flavor: str) -> None:
    """A SandboxFailure naming sandbox-build when a real component of ``flavor`` is not built."""
    missing = realbuild.missing(FLAVORS[flavor].real)
    if not FLAVORS[flavor].real or missing:
        raise SandboxFailure(
            f"the real components of {flavor} are not built ({', '.join(missing) or 'none declared'}): "
            f"run `invoke sandbox-build --flavor {flavor}` (needs Go), or use --components stand-in"
        )


def _start_real(folder: Path, plan: realrun.Plan) -> str:
    """Start Dex, then (once the Kubernetes stand-in answers, for its issuer) oauth2-proxy; what runs where."""
    for program in plan.programs:
        if program.name != "dex":
            _wait_answering(folder, f"{plan.api_url}/version")
        launch(folder, program.name, program.argv, program.environment, cwd=folder)
        _wait_answering(folder, program.ready)
    builds = FLAVORS[plan.flavor].real
    ports = (plan.dex_port, plan.proxy_port)
    return ", ".join(f"{build} on :{port}" for build, port in zip(builds, ports, strict=False))


def start(
    flavor: str = NEWEST,
    sandbox_id: str = "",
    ready: Callable[[Sandbox], None] | None = None,
    components: str = "stand-in",
    ends_with: tuple[int, Path | None] | None = None,
    model: ModelServer | None = None,
) -> Sandbox:
    """Start a sandbox of this flavor; ``ready(sandbox)`` runs once it answers (to record it somewhere).

    ``model``: put the login in front of that running server instead of starting MLServer (checked first).

    Whatever stops the start (a failure, ``ready`` raising, an interrupt at any
    moment) stops every process started and removes the folder.  ``ends_with``
    (a pid, and a folder of that run's to remove with it) makes the sandbox stop
    itself once that process is gone, however it ended (``sandbox.watchdog``).
    """
    if flavor not in FLAVORS:
        raise SandboxFailure(f"unknown flavor {flavor!r}: use one of {', '.join(FLAVORS)}")
    if components == "real":
        check_built(flavor)  # before anything starts
    if model is not None:
        model.check()
    sandbox_id = sandbox_id or new_id()
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return _start(flavor, sandbox_id, ready, components, ends_with, model)
        except SandboxFailure as failure:
            # a free port is found by binding it and letting it go: another process may take it before ours binds it
            if "address already in use" not in str(failure).lower():
                raise
    return _start(flavor, sandbox_id, ready, components, ends_with, model)


PORT_ATTEMPTS = 3  # starts on new ports when a port found free was taken before a process of ours could bind it


def _start(
    flavor: str,
    sandbox_id: str,
    ready: Callable[[Sandbox], None] | None,
    components: str,
    ends_with: tuple[int, Path | None] | None,
    model: ModelServer | None,
) -> Sandbox:
    """One try of ``start``: every process started is stopped and the folder removed, whatever stops it."""
    made: list[Path] = []
    try:
        whole(lambda: made.append(_new_folder(sandbox_id)))
        folder = made[0]
        model_port, grpc_port, *real_ports = free_ports(5)
        plan = realrun.plan(FLAVORS[flavor], folder, tuple(real_ports)) if components == "real" else None
        if plan:
            plan.save(folder)
        if ends_with:
            watched, extra = ends_with
            _spawn(folder, "watchdog", [f"{__package__}.watchdog", str(folder), sandbox_id, str(watched), str(start_time(watched)), str(extra or "")])
        if model is None:
            _spawn(folder, "model", [f"{__package__}.model", str(folder / "models"), str(model_port), str(grpc_port)])
        else:
            model_port, grpc_port = model.port, model.grpc_port
        name = model.name if model else MODEL_NAME
        _spawn(folder, "cluster", [f"{__package__}.cluster", str(folder), str(model_port), flavor, str(grpc_port), name])
        real = _start_real(folder, plan) if plan else ""
        cluster = _wait_ready(folder, model_port)
        gateway_port, api_port = int(cluster["gateway_port"]), int(cluster["api_port"])
        sandbox = Sandbox(folder, gateway_port, api_port, model_port, flavor, sandbox_id, real, name, model is None, grpc_port)
        if ready is not None:
            ready(sandbox)
    except BaseException:
        for folder in made:
            stop(folder, sandbox_id)
        raise
    return sandbox


def release(sandbox: Sandbox) -> None:
    """The sandbox no longer ends with the process that started it (its watchdog, if any, leaves)."""
    (sandbox.folder / RELEASED).touch()


def naming(folder: Path) -> list[int]:
    """Pids of this user's processes whose command line names ``folder`` (a sandbox's model and cluster do)."""
    wanted, found = str(folder).encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid == os.getuid() and any(
                part == wanted or part.startswith(wanted + b"/") for part in (entry / "cmdline").read_bytes().split(b"\0")
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


def new_id() -> str:
    """A random sandbox id."""
    import secrets

    return secrets.token_hex(16)


@dataclass
class Stopped:
    """What ``stop`` did: the pids it ended, and what it refused to touch and why."""

    pids: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def stop(folder: Path, sandbox_id: str, grace: float = 5.0) -> Stopped:
    """Stop the processes recorded for the sandbox ``sandbox_id`` in ``folder`` and remove the folder.

    Nothing is touched unless ``proof`` shows the folder is that sandbox's; a
    process is signalled only when its recorded start time matches the running
    one (a pid reused since, or recorded without its start time, is left alone).
    An interrupt meanwhile does not cut it short: it follows once all is stopped.
    """
    return whole(lambda: _stop(folder, sandbox_id, grace))


def _stop(folder: Path, sandbox_id: str, grace: float) -> Stopped:
    done = Stopped()
    why = proof(folder, sandbox_id)
    if why:
        done.refused.append(f"did not stop or remove {folder}: {why}")
        return done
    for entry in _read_pids(folder):
        pid, started = int(entry["pid"]), entry.get("start")  # type: ignore[call-overload]
        if not started and alive(pid, None):
            done.refused.append(f"did not signal pid {pid} ({entry.get('name')}): its start time was not recorded")
        elif alive(pid, started) and pid != os.getpid():  # the watchdog stops the others, then ends by itself
            done.pids.append(pid)
    terminate(done.pids, grace)
    shutil.rmtree(folder, ignore_errors=True)
    return done


def terminate(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM to each process's group (each was started in a session of its own); SIGKILL after ``grace`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    _ended(pids, grace)


def _ended(pids: list[int], grace: float) -> None:
    """Wait for each process to end (SIGKILL to its group after ``grace`` seconds), collecting our children."""
    deadline = time.monotonic() + grace
    for pid in pids:
        while alive(pid, None) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if alive(pid, None):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _reap(pid, block=True)


def _reap(pid: int, block: bool = False) -> None:
    """Collect a child's exit status so it does not linger as a zombie (no-op for non-children)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if block else os.WNOHANG)
