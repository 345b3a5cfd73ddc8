"""Every way out cleans up: SIGINT, SIGTERM and SIGHUP at several moments of ``demo``, ``load`` and ``locust``.

Each run is a real process, marked with an environment variable that every
process it starts inherits, with a temporary directory of its own.  After the
signal: the exit code is 128 + the signal (or the run had already finished),
no marked process is left, the temporary directory is empty again, and the
.env is byte-identical.  The moments are found by watching the run (its
output, its files, the gateway's log), never by timing.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from sandbox import control
from sandbox.control import PIDS, Sandbox
from scripts.commands import sandbox_record
from tests.helpers import ROOT, Env, locust_processes
from tests.test_load import seen_by_gateway

RUN_MARKER = "KFDEX_TEST_SIGNALS"
PATIENCE = 120.0  # the most any wait below may take: a bound against a hang, not a timing


def _marked(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (every process a marked run started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


class Run:
    """``invoke ARGS`` as a process of its own, its output collected as it comes."""

    def __init__(self, env: Env, tmp: Path, *arguments: str) -> None:
        self.marker = f"{RUN_MARKER}={uuid.uuid4().hex}"
        variables = dict(os.environ, ENV_FILE=str(env.path), TMPDIR=str(tmp))
        variables[RUN_MARKER] = self.marker.split("=", 1)[1]
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("invoke")), *arguments],
            cwd=ROOT,
            env=variables,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, into), daemon=True)
            for stream, into in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    def wait_for(self, happened: Callable[[], bool]) -> bool:
        """Wait until ``happened()`` (True) or the run ended first (False)."""
        deadline = time.monotonic() + PATIENCE
        while not happened():
            if self.process.poll() is not None:
                return False
            assert time.monotonic() < deadline, f"the run never got there: {''.join(self.stderr)}"
            time.sleep(0.02)
        return True

    def said(self, text: str) -> Callable[[], bool]:
        return lambda: any(text in line for line in self.stderr)

    def finish(self) -> int:
        code = self.process.wait(PATIENCE)
        for reader in self._readers:
            reader.join(PATIENCE)
        return code


def _sandbox_recorded(tmp: Path) -> Callable[[], bool]:
    """True once a sandbox folder records at least one started process."""
    return lambda: any((folder / PIDS).exists() for folder in tmp.glob("kfdex-sandbox-*"))


def _left_behind(run: Run, tmp: Path) -> tuple[list[int], list[str]]:
    """Processes of the run still alive and files left in its temporary directory (given a moment to go)."""
    deadline = time.monotonic() + 10
    while (_marked(run.marker) or list(tmp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [_named(pid) for pid in _marked(run.marker)], sorted(path.name for path in tmp.iterdir())


def _named(pid: int) -> str:
    """``pid: its command line``, for a message about a process left behind."""
    try:
        return f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ').decode(errors='replace').strip()}"
    except OSError:
        return f"{pid}: ended"


@pytest.fixture
def run_tmp(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


MOMENTS: dict[str, Callable[[Run, Path], Callable[[], bool]]] = {
    "at once": lambda _run, _tmp: lambda: True,
    "while the sandbox starts": lambda _run, tmp: _sandbox_recorded(tmp),
    "while logging in": lambda run, _tmp: run.said("✓ sandbox-up"),
    "while stopping": lambda run, _tmp: run.said("✓ infer"),
}
# the moments after the sandbox is up: there, a run in front of the session's MLServer (--model-server) ends the same
# way, and the model process a sandbox starts is stopped by the tests of the earlier moments
MODEL_READY = ("while logging in", "while stopping")


@pytest.mark.usefixtures("sandbox")  # a warm machine: the session's sandbox is up already
@pytest.mark.parametrize(
    ("sent", "moment"),
    [
        (signal.SIGTERM, "at once"),
        (signal.SIGTERM, "while the sandbox starts"),
        (signal.SIGHUP, "while the sandbox starts"),
        (signal.SIGINT, "while the sandbox starts"),
        (signal.SIGTERM, "while logging in"),
        (signal.SIGHUP, "while stopping"),
    ],
)
def test_a_signal_ends_the_demo_and_leaves_nothing_behind(
    env: Env, run_tmp: Path, sent: signal.Signals, moment: str, shared_model: list[str]
) -> None:
    before = env.path.read_bytes()
    run = Run(env, run_tmp, "demo", *(shared_model if moment in MODEL_READY else []))
    reached = run.wait_for(MOMENTS[moment](run, run_tmp))
    if reached:
        run.process.send_signal(sent)
    code = run.finish()
    if moment == "at once":  # perhaps before any handler was set: then the signal's own default ended it
        assert code in (128 + sent, -sent), run.stderr
    elif moment == "while stopping":  # the run may have finished first
        assert code in (128 + sent, 0), run.stderr
    else:
        assert reached and code == 128 + sent, run.stderr
        assert run.stderr[-1].startswith("error: interrupted"), run.stderr
    assert not [line for line in run.stderr if "nothing to stop" in line], run.stderr  # what it started, it stopped
    assert _left_behind(run, run_tmp) == ([], [])
    assert env.path.read_bytes() == before


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize(
    ("task", "moment"), [("demo", "while the sandbox starts"), ("demo", "while logging in"), ("sandbox-up", "while the sandbox starts")]
)
def test_a_killed_run_leaves_nothing_running_and_sandbox_down_restores_the_env(
    env: Env, run_tmp: Path, task: str, moment: str, shared_model: list[str]
) -> None:
    """SIGKILL reaches no cleanup: the sandbox's watchdog stops it (never the model server it was put in front of);
    the .env's record lets sandbox-down restore the file."""
    before = env.path.read_bytes()
    shared = shared_model if moment in MODEL_READY else []
    run = Run(env, run_tmp, task, *shared)
    assert run.wait_for(MOMENTS[moment](run, run_tmp)), run.stderr
    run.process.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    assert _left_behind(run, run_tmp) == ([], [])
    if env.path.read_bytes() != before:  # the demo had recorded its sandbox in the .env
        assert env.invoke("sandbox-down").returncode == 0
    assert env.path.read_bytes() == before
    if shared:
        assert requests.get(f"{shared[1]}/v2/health/ready", timeout=10).status_code == 200


def test_the_watchdog_ends_a_process_the_kill_left_unrecorded_before_it_removes_the_folder(run_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill in the middle of a start can leave a process that was not recorded yet and still writes into the
    sandbox's folder (the model copying its files): the watchdog ends it first, so the folder it removes stays removed."""
    from sandbox import watchdog

    monkeypatch.setattr(tempfile, "tempdir", str(run_tmp))
    sandbox_id = control.new_id()
    folder = control.whole(lambda: control._new_folder(sandbox_id))
    writes = "import os, signal, sys\nwrite = lambda *_: os.makedirs(os.path.join(sys.argv[1], 'models'), exist_ok=True)\n"
    # it writes until it ends, and once more as it ends (as a process's shutdown may): whenever it is signalled
    writes += "signal.signal(signal.SIGTERM, lambda *_: (write(), sys.exit(0)))\nwhile True: write()"
    writer = subprocess.Popen([sys.executable, "-c", writes, str(folder)], start_new_session=True)
    starter = subprocess.Popen(["sleep", "60"])
    started = control.start_time(starter.pid)
    starter.kill()
    starter.wait()
    try:
        deadline = time.monotonic() + PATIENCE
        while not (folder / "models").exists():
            assert time.monotonic() < deadline and writer.poll() is None, "the writer never wrote"
            time.sleep(0.01)
        watchdog.watch(folder, sandbox_id, starter.pid, str(started), None)
        assert writer.poll() is not None
        assert list(run_tmp.iterdir()) == []
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_sandbox_up_starts_leaves_the_env_as_it_was(env: Env, run_tmp: Path, sent: signal.Signals) -> None:
    env.path.write_bytes(env.path.read_bytes() + b"KUBECONFIG=/home/me/.kube/config\n")
    before = env.path.read_bytes()
    run = Run(env, run_tmp, "sandbox-up")
    assert run.wait_for(_sandbox_recorded(run_tmp)), run.stderr
    run.process.send_signal(sent)
    assert run.finish() == 128 + sent, run.stderr
    assert _left_behind(run, run_tmp) == ([], [])
    assert env.path.read_bytes() == before


def _sending(cluster: Sandbox) -> Callable[[], bool]:
    """True once the gateway has seen some of the run's requests."""
    before = seen_by_gateway(cluster)
    return lambda: seen_by_gateway(cluster) >= before + 20


@pytest.mark.parametrize(
    ("sent", "pace"),
    [(signal.SIGTERM, []), (signal.SIGHUP, []), (signal.SIGINT, []), (signal.SIGINT, ["--rate", "200"]), (signal.SIGHUP, ["--rate", "200"])],
)
def test_a_signal_ends_load_with_the_partial_report(
    load_ready: Env, cluster: Sandbox, run_tmp: Path, sent: signal.Signals, pace: list[str]
) -> None:
    before = load_ready.path.read_bytes()
    run = Run(load_ready, run_tmp, "load", "--duration", "600", *pace, "--via", "ingress", "--json")
    assert run.wait_for(_sending(cluster)), run.stderr
    run.process.send_signal(sent)
    assert run.finish() == 128 + sent, run.stderr
    assert json.loads("".join(run.stdout))["requests"] > 0  # the partial report
    # the workers are stopped before their connections close: no thread dies on a closed handle
    assert not any("Traceback" in line or "Exception in thread" in line for line in run.stderr), "".join(run.stderr)
    assert _left_behind(run, run_tmp) == ([], [])
    assert load_ready.path.read_bytes() == before


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_locust_and_stops_every_process(
    load_ready: Env, cluster: Sandbox, run_tmp: Path, own_locust: str, sent: signal.Signals
) -> None:
    before = load_ready.path.read_bytes()
    run = Run(load_ready, run_tmp, "locust", "--workers", "1", "--users", "2", "--spawn-rate", "2", "--run-time", "10m", "--via", "ingress", "--json")
    assert run.wait_for(_sending(cluster)), run.stderr
    run.process.send_signal(sent)
    assert run.finish() == 128 + sent, run.stderr
    assert json.loads("".join(run.stdout))["requests"] > 0
    assert locust_processes(own_locust) == []
    assert _left_behind(run, run_tmp) == ([], [])
    assert load_ready.path.read_bytes() == before


def test_a_signal_ends_a_locust_worker_as_an_interrupt(env: Env, run_tmp: Path, own_locust: str) -> None:
    from scripts.load.locust_run import free_port

    run = Run(env, run_tmp, "locust", "--worker", "--master-host", "127.0.0.1", "--master-port", str(free_port()))
    assert run.wait_for(lambda: bool(locust_processes(own_locust))), run.stderr
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM, run.stderr
    assert locust_processes(own_locust) == []
    assert _left_behind(run, run_tmp) == ([], [])


def test_a_sandbox_up_that_finished_keeps_its_sandbox_and_no_watchdog(env: Env, run_tmp: Path, shared_model: list[str]) -> None:
    """Once the .env records the sandbox it outlives sandbox-up: the watchdog leaves instead of stopping it."""
    run = Run(env, run_tmp, "sandbox-up", *shared_model)
    assert run.finish() == 0, run.stderr
    folder = Path(env.read()["SANDBOX_DIR"])
    try:
        deadline = time.monotonic() + 10
        while any("watchdog" in _named(pid) for pid in _marked(run.marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        names = [_named(pid) for pid in _marked(run.marker)]
        assert not any("watchdog" in name for name in names), names
        assert any("sandbox.cluster" in name for name in names) and folder.is_dir()
    finally:
        down = Run(env, run_tmp, "sandbox-down")  # with the same temporary directory
        if down.finish() != 0:  # never leave the sandbox running when the test fails
            control.stop(folder, sandbox_record.find(env.path.read_text()).id)  # type: ignore[union-attr]
        assert down.process.returncode == 0, down.stderr
    assert _left_behind(run, run_tmp) == ([], [])


class _SignalsWhileCollected:
    """An object whose finalizer is where a SIGTERM's handler runs (Python prints and ignores what it raises there)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between these bytecodes, inside the finalizer
            pass


def _guarded_run(body: Callable[[], None]) -> tuple[int, str]:
    """``body`` run as a command is (inside ``guarded``): its exit code and stderr."""
    import io

    from invoke import Exit

    from scripts.core.boundary import guarded
    from scripts.core.environment import Environment

    stderr = io.StringIO()
    with pytest.raises(Exit) as ended, guarded(Environment(io.StringIO(), stderr)):
        body()
    return int(ended.value.code), stderr.getvalue()


def test_an_interrupt_a_finalizer_swallowed_stops_the_command_before_its_next_step(tmp_path: Path) -> None:
    """A signal whose handler ran in a finalizer (seen once: a demo SIGTERMed while logging in went on and exited 0)
    is raised again before the next step: the step does not run, and the command exits 128 + the signal."""
    from scripts import resolve_ingress
    from scripts.core.environment import Environment
    from scripts.core.state import EnvFile
    from scripts.core.step import run_step

    env_file = EnvFile(tmp_path / ".env")  # no settings: resolve-ingress, were it to run, would fail on them
    shown = io.StringIO()

    def demo_like() -> None:
        _SignalsWhileCollected()  # collected at once: its finalizer takes the SIGTERM
        run_step(resolve_ingress.STEP, env_file, Environment(shown, shown))

    code, stderr = _guarded_run(demo_like)
    assert (code, stderr) == (128 + signal.SIGTERM, "error: interrupted by SIGTERM\n")
    assert shown.getvalue() == "" and not env_file.path.exists()


def test_an_interrupt_that_code_dropped_still_ends_the_command_as_interrupted() -> None:
    def drops_it() -> None:
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)  # the handler raises here
        except KeyboardInterrupt:
            pass  # as a careless library might

    assert _guarded_run(drops_it) == (128 + signal.SIGHUP, "error: interrupted by SIGHUP\n")


def test_a_signal_just_before_the_demo_stops_its_sandbox_still_lets_it_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signal lands before ``down`` defers signals (at the top of the demo's finally): it is run again, then the signal goes on."""
    from scripts.commands import sandbox_tasks
    from scripts.core.boundary import Interrupted

    runs: list[bool] = []

    def down(*_: object, quiet: bool = False) -> None:
        runs.append(quiet)
        if len(runs) == 1:
            raise Interrupted(signal.SIGTERM)  # before it did anything

    monkeypatch.setattr(sandbox_tasks, "down", down)
    with pytest.raises(Interrupted):
        sandbox_tasks._down_however_interrupted(None, None, "id")  # type: ignore[arg-type]
    assert runs == [True, True]
