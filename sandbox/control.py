"""Starting and stopping the sandbox: two processes, tracked by pid in the sandbox folder.

``start`` creates a private folder, starts the model server (``sandbox.model``)
and the stand-in cluster (``sandbox.cluster``), each in its own session, and
waits until both answer.  ``stop`` ends exactly those processes (checking that
a pid still belongs to the process we started) and removes the folder.
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
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from . import realbuild, realrun
from .cluster import free_port
from .flavors import FLAVORS, NEWEST
from .gateway import DEMO_LOGIN, DEMO_PASSWORD
from .kubeapi import MODEL_NAME, MODEL_NAMESPACE

# the folder that holds the top package: the checkout, or site-packages when installed as kfdex.sandbox
IMPORT_ROOT = Path(__file__).resolve().parents[len(__package__.split("."))]
READY_TIMEOUT = 90.0
# the .env keys sandbox-up writes (and sandbox-down puts back)
SETTING_KEYS = ("KUBECONFIG", "DEX_LOGIN", "DEX_PASSWORD", "MODEL_NAME", "MODEL_NAMESPACE", "SANDBOX_DIR")


class SandboxFailure(Exception):
    """The sandbox could not start, stop or take a setting; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox."""

    folder: Path
    gateway_port: int
    api_port: int
    model_port: int
    flavor: str
    real: str = ""  # with --components real: which real programs run where

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
        values = (str(self.kubeconfig), DEMO_LOGIN, DEMO_PASSWORD, MODEL_NAME, MODEL_NAMESPACE, str(self.folder))
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


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/PID/stat), to tell pid reuse."""
    fields = _stat(pid)
    return fields[19] if fields else None


def _spawn(folder: Path, name: str, arguments: list[str]) -> int:
    return _launch(folder, name, [sys.executable, "-m", *arguments], IMPORT_ROOT)


def _launch(folder: Path, name: str, argv: list[str], cwd: Path, environment: dict[str, str] | None = None) -> int:
    """Start ``argv`` in its own session, logging to ``folder/name.log``; its pid goes into pids.json."""
    log = open(folder / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=None if environment is None else {**os.environ, **environment},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    pids = _read_pids(folder)
    pids[name] = {"pid": process.pid, "start": _start_time(process.pid)}
    (folder / "pids.json").write_text(json.dumps(pids))
    return process.pid


def _read_pids(folder: Path) -> dict[str, dict[str, object]]:
    try:
        return dict(json.loads((folder / "pids.json").read_text()))
    except (OSError, ValueError):
        return {}


def _alive(pid: int, start: object) -> bool:
    """True while the process runs (not a zombie) and, given ``start``, is the one we started."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and (start is None or fields[19] == start)


def _wait_ready(folder: Path, model_port: int) -> dict[str, int]:
    deadline = time.monotonic() + READY_TIMEOUT
    session = requests.Session()
    cluster: dict[str, int] | None = None
    model_ready = False
    while time.monotonic() < deadline:
        _check_alive(folder)
        if cluster is None and (folder / "cluster.json").exists():
            cluster = json.loads((folder / "cluster.json").read_text())
        if not model_ready:
            with contextlib.suppress(requests.RequestException):
                model_ready = session.get(f"http://127.0.0.1:{model_port}/v2/health/ready", timeout=1).status_code == 200
        if cluster is not None and model_ready:
            return cluster
        time.sleep(0.2)
    raise SandboxFailure(f"the sandbox did not become ready in {READY_TIMEOUT:.0f}s; logs are in {folder}")


def _check_alive(folder: Path) -> None:
    """A SandboxFailure with the last lines of its log when a process started for ``folder`` has exited."""
    for name, entry in _read_pids(folder).items():
        if not _alive(int(entry["pid"]), entry.get("start")):  # type: ignore[arg-type]
            tail = (folder / f"{name}.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise SandboxFailure(f"the sandbox's {name} process exited while starting: {' | '.join(tail)}")


def _wait_answering(folder: Path, url: str) -> None:
    """Wait until ``url`` answers 200, every process still alive."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        _check_alive(folder)
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


def start(flavor: str = NEWEST, components: str = "stand-in") -> Sandbox:
    """Start a sandbox of this flavor; stops what it started if it cannot become ready.

    With ``components="real"`` the flavor's real Dex (and oauth2-proxy) run behind the Envoy stand-in;
    nothing starts when their binaries are not built.
    """
    if flavor not in FLAVORS:
        raise SandboxFailure(f"unknown flavor {flavor!r}: use one of {', '.join(FLAVORS)}")
    if components == "real":
        check_built(flavor)  # before anything starts
    folder = Path(tempfile.mkdtemp(prefix="kfdex-sandbox-"))
    model_port, grpc_port = free_port(), free_port()
    try:
        plan = realrun.plan(FLAVORS[flavor], folder, (free_port(), free_port(), free_port())) if components == "real" else None
        if plan:
            plan.save(folder)
        _spawn(folder, "model", [f"{__package__}.model", str(folder / "models"), str(model_port), str(grpc_port)])
        _spawn(folder, "cluster", [f"{__package__}.cluster", str(folder), str(model_port), flavor, str(grpc_port)])
        real = _start_real(folder, plan) if plan else ""
        cluster = _wait_ready(folder, model_port)
    except BaseException:
        stop(folder)
        raise
    return Sandbox(folder, int(cluster["gateway_port"]), int(cluster["api_port"]), model_port, flavor, real)


def _start_real(folder: Path, plan: realrun.Plan) -> str:
    """Start Dex, then (once the Kubernetes stand-in answers, for its issuer) oauth2-proxy; what runs where."""
    for program in plan.programs:
        if program.name != "dex":
            _wait_answering(folder, f"{plan.api_url}/version")
        _launch(folder, program.name, program.argv, folder, program.environment)
        _wait_answering(folder, program.ready)
    builds = FLAVORS[plan.flavor].real
    ports = (plan.dex_port, plan.proxy_port)
    return ", ".join(f"{build} on :{port}" for build, port in zip(builds, ports, strict=False))


def stop(folder: Path, grace: float = 5.0) -> list[int]:
    """Stop every process started for ``folder`` (SIGTERM, then SIGKILL) and remove it; returns the pids stopped."""
    stopped: list[int] = []
    entries = _read_pids(folder)
    for entry in entries.values():
        pid, start_time = int(entry["pid"]), entry.get("start")  # type: ignore[arg-type]
        if _alive(pid, start_time):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            stopped.append(pid)
    deadline = time.monotonic() + grace
    for pid in stopped:
        while _alive(pid, None) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _alive(pid, None):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _reap(pid, block=True)
    shutil.rmtree(folder, ignore_errors=True)
    return stopped


def _reap(pid: int, block: bool = False) -> None:
    """Collect a child's exit status so it does not linger as a zombie (no-op for non-children)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if block else os.WNOHANG)
