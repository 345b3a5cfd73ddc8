"""``kfdex locust``: run the load on Locust (headless master and workers as child processes) and read its figures back.

One machine: ``run_local`` starts a master and K workers on 127.0.0.1, each
with ``python -m locust -f scripts/load/locustfile.py``, waits for the master to
finish, stops every process it started by pid, and turns the figures the
master wrote into the same ``LoadReport`` as ``kfdex load``.  Many machines:
``start_master`` on one (``--expect-workers K``), ``start_worker`` on the
others.  The target, credential included, reaches the master in an
environment variable (never argv) and the workers over Locust's message
channel, so a worker's environment holds no credential at all.  Locust's own
``--html`` / ``--csv`` reports are passed through.  Locust is the optional
``load`` extra; without it, ``require_locust`` says which extra to install.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..core.boundary import SIGNALS, Interrupted
from ..core.errors import GatewayError, UsageError
from .engine import LoadReport, LoadTarget
from .renewal import Renewal, keep_ahead

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
TARGET_ENV = "KFDEX_LOAD_TARGET"
REPORT_ENV = "KFDEX_LOCUST_REPORT"
UPDATES_ENV = "KFDEX_TARGET_UPDATES"  # --renew: the pipe (a file descriptor) the master reads renewed targets from
DEFAULT_MASTER_PORT = 5557
_SECRET_ENV = ("DEX_PASSWORD", "AUTH_COOKIE", "AUTH_BEARER", TARGET_ENV)


def require_locust() -> None:
    """Raise UsageError (exit 2) naming the extra when Locust is not installed."""
    from ..core.extras import require

    require("load", "kfdex locust", modules=("locust",))


@dataclass
class LocustProcess:
    """A Locust process we started, stopped only by its pid (and its own process group)."""

    role: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT (Locust stops and reports), then SIGTERM, then SIGKILL; always reaped."""
        for sent in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sent)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        self.process.wait()


def _origin(target: LoadTarget) -> tuple[str, str]:
    parts = urlsplit(target.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"cannot send load to {target.url!r}: give an http:// or https:// URL")
    path = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
    return f"{parts.scheme}://{parts.netloc}", path


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Ctrl-C or a signal meanwhile is held until the block ends (a process started is recorded first, so it is stopped).

    Only the main thread receives signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {number: signal.signal(number, lambda signum, _frame: held.append(signum)) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
    if held:
        raise Interrupted(held[0])


def _target_message(target: LoadTarget) -> str:
    _, path = _origin(target)
    return json.dumps(
        {
            "path": path,
            "method": target.method,
            "headers": dict(target.headers),
            "body": base64.b64encode(target.body).decode(),
        }
    )


def _clean_environment() -> dict[str, str]:
    """Our environment without credentials: what a worker (and the master, before the target is added) gets."""
    environment = {key: value for key, value in os.environ.items() if key not in _SECRET_ENV}
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _spawn(role: str, arguments: list[str], environment: dict[str, str], folder: Path, pass_fds: tuple[int, ...] = ()) -> LocustProcess:
    log = folder / f"locust-{role}.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    return LocustProcess(role, process, log)


def start_master(
    target: LoadTarget,
    *,
    expect_workers: int,
    users: int,
    spawn_rate: float,
    run_time: str,
    folder: Path,
    bind_host: str = "127.0.0.1",
    port: int = DEFAULT_MASTER_PORT,
    html: Path | None = None,
    csv: str | None = None,
    updates: int | None = None,
) -> LocustProcess:
    """A headless master that waits for ``expect_workers`` workers, runs ``run_time`` and writes its figures to ``folder``.

    ``updates``: a pipe the master reads renewed targets from (one JSON line each), for its workers.
    """
    origin, _ = _origin(target)
    environment = _clean_environment()
    environment[TARGET_ENV] = _target_message(target)
    environment[REPORT_ENV] = str(folder / "report.json")
    if updates is not None:
        environment[UPDATES_ENV] = str(updates)
    arguments = [
        "--master",
        "--headless",
        "--expect-workers",
        str(expect_workers),
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        str(run_time),
        "--host",
        origin,
        "--master-bind-host",
        bind_host,
        "--master-bind-port",
        str(port),
        "--only-summary",
        "--stop-timeout",
        "5",
    ]
    if html:
        arguments += ["--html", str(html)]
    if csv:
        arguments += ["--csv", csv]
    return _spawn("master", arguments, environment, folder, () if updates is None else (updates,))


def start_worker(master_host: str, *, folder: Path, port: int = DEFAULT_MASTER_PORT, index: int = 0) -> LocustProcess:
    """A worker that takes everything, credential included, from the master's messages."""
    arguments = ["--worker", "--master-host", master_host, "--master-port", str(port)]
    return _spawn(f"worker-{index}", arguments, _clean_environment(), folder)


def free_port() -> int:
    """A port nobody listens on right now on 127.0.0.1 (for the master to bind)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_report(path: Path) -> LoadReport:
    """The master's figures as a LoadReport (latencies from Locust's per-millisecond counts)."""
    figures = json.loads(path.read_text())
    latencies = array("q")
    for milliseconds, count in figures["response_times_ms"].items():
        latencies.extend([max(1, round(float(milliseconds) * 1000))] * int(count))
    statuses = {str(status): int(count) for status, count in figures["statuses"].items()}
    duration = max(0.0, float(figures["ended"]) - float(figures["started"]))
    note = "the gateway asked for a login" if figures["session_expired"] else ""
    return LoadReport(
        requests=int(figures["requests"]),
        statuses=statuses,
        duration_s=duration,
        latencies_us=latencies,
        session_expired=bool(figures["session_expired"]),
        note=note,
    )


def _wait(process: LocustProcess, deadline: float) -> None:
    while process.process.poll() is None:
        if time.monotonic() > deadline:
            raise GatewayError(f"the Locust {process.role} did not finish in time; its log is {process.log}")
        time.sleep(0.1)


def _finish(master: LocustProcess, folder: Path, timeout: float) -> LoadReport:
    """Wait for the master to end (Ctrl-C stops it, and it still reports), then read its figures."""
    interrupted = False
    try:
        _wait(master, time.monotonic() + timeout)
    except KeyboardInterrupt:
        interrupted = True
        master.stop()
    report_file = folder / "report.json"
    if not report_file.exists() and interrupted:  # stopped before it measured anything (waiting for workers)
        raise KeyboardInterrupt
    if not report_file.exists():
        tail = " | ".join(master.log.read_text(errors="replace").strip().splitlines()[-3:])
        raise GatewayError(f"Locust's master ended without figures: {tail}")
    report = read_report(report_file)
    report.interrupted = interrupted
    return report


def run_master(
    target: LoadTarget,
    *,
    expect_workers: int,
    users: int,
    spawn_rate: float,
    run_time: str,
    local_workers: int = 0,
    bind_host: str = "127.0.0.1",
    port: int | None = None,
    html: Path | None = None,
    csv: str | None = None,
    timeout: float = 3600.0,
    renewal: Renewal | None = None,
    remaining: Callable[[], float | None] | None = None,
) -> LoadReport:
    """A headless master waiting for ``expect_workers`` workers (``local_workers`` of them started here).

    Every process started here is stopped by pid before returning.  For workers
    on other machines, bind the master to an address they reach (``bind_host``).
    With a ``renewal``, a thread here renews the session ahead of its end
    (``remaining`` seconds) and the master hands each new target to its workers.
    """
    require_locust()
    if expect_workers < 1 or users < 1 or spawn_rate <= 0 or local_workers > expect_workers:
        raise UsageError("--workers/--expect-workers, --users and --spawn-rate must be positive")
    renewing = _renewing(renewal, remaining) if renewal is not None and remaining is not None else contextlib.nullcontext()
    with renewing as updates, tempfile.TemporaryDirectory(prefix="kfdex-locust-") as temporary:
        folder = Path(temporary)
        port = port or (free_port() if local_workers == expect_workers else DEFAULT_MASTER_PORT)
        started: list[LocustProcess] = []
        try:
            with interrupt_deferred():  # every process started is recorded before Ctrl-C may end the run
                master = start_master(
                    target,
                    expect_workers=expect_workers,
                    users=users,
                    spawn_rate=spawn_rate,
                    run_time=run_time,
                    folder=folder,
                    bind_host=bind_host,
                    port=port,
                    html=html,
                    csv=csv,
                    updates=updates,
                )
                started.append(master)
                started += [start_worker("127.0.0.1", folder=folder, port=port, index=index) for index in range(local_workers)]
            return _finish(master, folder, timeout)
        finally:
            for process in reversed(started):
                process.stop()




@contextlib.contextmanager
def _renewing(renewal: Renewal, remaining: Callable[[], float | None]) -> Iterator[int]:
    """A pipe for the master (its reading end, yielded) and the thread that writes renewed targets into it."""
    reading, writing = os.pipe()
    stop = threading.Event()

    def publish(target: LoadTarget) -> None:
        with contextlib.suppress(OSError):  # the master has ended: nobody to tell
            os.write(writing, _target_message(target).encode() + b"\n")

    thread = threading.Thread(target=keep_ahead, args=(renewal, remaining, publish, stop), name="kfdex-renew", daemon=True)
    thread.start()
    try:
        yield reading
    finally:
        stop.set()
        thread.join()
        os.close(reading)
        os.close(writing)


def run_local(
    target: LoadTarget,
    *,
    workers: int,
    users: int,
    spawn_rate: float,
    run_time: str,
    html: Path | None = None,
    csv: str | None = None,
    port: int | None = None,
    timeout: float = 3600.0,
    renewal: Renewal | None = None,
    remaining: Callable[[], float | None] | None = None,
) -> LoadReport:
    """One machine: a master and ``workers`` local workers on 127.0.0.1 (``renewal``: as ``run_master``)."""
    return run_master(
        target,
        expect_workers=workers,
        users=users,
        spawn_rate=spawn_rate,
        run_time=run_time,
        local_workers=workers,
        port=port,
        html=html,
        csv=csv,
        timeout=timeout,
        renewal=renewal,
        remaining=remaining,
    )


def run_worker(master_host: str, *, port: int = DEFAULT_MASTER_PORT, timeout: float = 86400.0) -> int:
    """Many machines: one worker that serves the master at ``master_host`` until it ends; returns its exit code.

    Ctrl-C or a signal stops the worker and goes on as the interrupt it is (the command exits 128 + the signal).
    """
    require_locust()
    with tempfile.TemporaryDirectory(prefix="kfdex-locust-") as temporary:
        started: list[LocustProcess] = []
        try:
            with interrupt_deferred():
                started.append(start_worker(master_host, folder=Path(temporary), port=port))
            _wait(started[0], time.monotonic() + timeout)
        finally:
            for worker in started:
                worker.stop()
        return int(started[0].process.returncode or 0) if started else 0
