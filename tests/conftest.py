"""Shared fixtures: one sandbox for the whole run, a fresh .env per test.

The sandbox (real MLServer and the stand-in cluster) starts once per session;
each test that uses it gets a fresh .env pointing at it and may switch the
gateway's flavor, which is reset afterwards.  Retry waits are set to zero in
every .env the tests write, so no test sleeps for backoff.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox import control, realbuild
from sandbox.flavors import FLAVORS, NEWEST
from sandbox.model import MODEL_NAME
from scripts import resolve_ingress
from scripts.core.state import EnvFile
from scripts.core.step import run_step
from tests.helpers import LOCUST_MARKER, NO_BACKOFF, Env, Stub, here

# Some machines' images set PYTHONDONTWRITEBYTECODE=1 (ours do). The suite starts some three hundred Python
# processes on the project's own modules (invoke, kfdex, the sandbox's cluster and watchdog), and each would
# then compile every module from source again: 0.05 s of CPU per process. The tests write bytecode to
# __pycache__ (git-ignored), as Python does by default, and pytest keeps its rewritten test modules there too.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# The suite writes thousands of small files (a .env per test and per fuzz example, sandbox folders, logs), and
# the project fsyncs every .env it writes: on a disk each fsync waits for the journal. Unless TMPDIR says where,
# the tests' temporary files (pytest's tmp_path, the sandboxes, every process they start) go to a folder of
# this user's in /dev/shm, memory, when it has room; the tested code runs the same, its fsyncs just cost nothing.
RAM_FOLDER = Path("/dev/shm")
RAM_NEEDED = 1 << 30  # bytes free in /dev/shm (Docker's default of 64 MB is too small): else the usual place


def _temporary_files_in_memory() -> None:
    """Point TMPDIR at /dev/shm/kfdex-tests-UID (made 0700, or this user's already) when the rule above allows."""
    if "TMPDIR" in os.environ or not RAM_FOLDER.is_dir():
        return
    free = os.statvfs(RAM_FOLDER)
    if free.f_bavail * free.f_frsize < RAM_NEEDED:
        return
    folder = RAM_FOLDER / f"kfdex-tests-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        mine = folder.stat().st_uid == os.getuid() and not folder.is_symlink()
    except OSError:
        return
    if mine:
        os.environ["TMPDIR"] = str(folder)  # pytest-xdist's workers and every process started inherit it
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


_temporary_files_in_memory()


@pytest.fixture(scope="session", autouse=True)
def _private_kubectl_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """kubectl caches discovery under $HOME; keep the test runs' caches out of the user's."""
    previous = os.environ.get("KUBECACHEDIR")
    os.environ["KUBECACHEDIR"] = str(tmp_path_factory.mktemp("kubecache"))
    yield
    if previous is None:
        os.environ.pop("KUBECACHEDIR", None)
    else:
        os.environ["KUBECACHEDIR"] = previous


# a run SIGTERMed or killed reaches no fixture's teardown: the sandboxes it started stop when its process is gone
ENDS_WITH_THIS_RUN = (os.getpid(), None)


# With pytest-xdist's workers, one MLServer serves the whole run: the controller starts a sandbox of its own in the
# background (its MLServer imports for seconds while the workers start and collect), writes where its model server
# listens into the file this variable names, and stops it at the end; each worker's sandbox is put in front of it.
# Run alone (-p no:xdist, -n 0), the session's sandbox starts its own MLServer.
MODEL_HANDOFF = "KFDEX_TESTS_MODEL_SERVER"
_run_model: dict[str, object] = {}  # the controller's: its thread, the sandbox once started, the handoff folder


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not (config.getoption("numprocesses", None) or 0):
        return
    folder = Path(tempfile.mkdtemp(prefix="kfdex-tests-model-"))
    handoff = folder / "model.json"
    os.environ[MODEL_HANDOFF] = str(handoff)  # the workers, started after this, inherit it

    def start() -> None:
        try:
            _run_model["sandbox"] = started = control.start(NEWEST, ends_with=ENDS_WITH_THIS_RUN)
            told = {"port": started.model_port, "name": started.model_name, "grpc_port": started.model_grpc_port}
            told["log"] = str(started.folder / "model.log")
        except Exception as error:  # told to the workers, whose sandbox fixture fails with it
            told = {"error": f"the run's model server did not start: {error}"}
        (folder / "partial.json").write_text(json.dumps(told))
        os.replace(folder / "partial.json", handoff)

    _run_model.update(folder=folder, thread=threading.Thread(target=start, name="run-model-server", daemon=True))
    _run_model["thread"].start()  # type: ignore[attr-defined]


def pytest_unconfigure() -> None:
    if "thread" not in _run_model:
        return
    _run_model["thread"].join(control.READY_TIMEOUT)  # type: ignore[attr-defined]
    started = _run_model.get("sandbox")
    if isinstance(started, control.Sandbox):
        control.stop(started.folder, started.id)
    shutil.rmtree(_run_model["folder"], ignore_errors=True)  # type: ignore[arg-type]
    os.environ.pop(MODEL_HANDOFF, None)


def _the_runs_model_server() -> control.ModelServer | None:
    """The controller's model server (waiting until it is up), or None when this process runs the tests alone."""
    handoff = os.environ.get(MODEL_HANDOFF)
    if not handoff:
        return None
    deadline = time.monotonic() + control.READY_TIMEOUT
    while not Path(handoff).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the run's model server was not up in {control.READY_TIMEOUT:.0f}s ({handoff})")
        time.sleep(0.05)
    told = json.loads(Path(handoff).read_text())
    if "error" in told:
        pytest.fail(told["error"])
    return control.ModelServer(told["port"], told["name"], told["grpc_port"])


@pytest.fixture(scope="session")
def sandbox() -> Iterator[control.Sandbox]:
    """A running sandbox for the whole session, stopped at the end (by its watchdog when the run is killed)."""
    running = control.start(NEWEST, ends_with=ENDS_WITH_THIS_RUN, model=_the_runs_model_server())
    try:
        yield running
    finally:
        control.stop(running.folder, running.id)


REAL = sorted(name for name in FLAVORS if FLAVORS[name].real)  # the flavors --components real can run


def not_built() -> list[str]:
    """The flavors whose real binaries are not in the cache."""
    return [name for name in REAL if realbuild.missing(FLAVORS[name].real)]


@pytest.fixture(scope="session")
def real_sandboxes() -> Iterator[dict[str, control.Sandbox]]:
    """Sandboxes running real components, one per flavor, started on first use and stopped at the end."""
    running: dict[str, control.Sandbox] = {}
    try:
        yield running
    finally:
        for started in running.values():
            control.stop(started.folder, started.id)


@pytest.fixture(params=REAL)
def real(request: pytest.FixtureRequest, real_sandboxes: dict[str, control.Sandbox]) -> control.Sandbox:
    """The sandbox running the flavor's real components (tests marked ``real``)."""
    if request.param not in real_sandboxes:
        real_sandboxes[request.param] = control.start(request.param, components="real", ends_with=ENDS_WITH_THIS_RUN)
    return real_sandboxes[request.param]


@pytest.fixture
def model_log(sandbox: control.Sandbox) -> Path:
    """The log of the MLServer that the session's sandbox calls: its own, or the run's."""
    if sandbox.own_model:
        return sandbox.folder / "model.log"
    return Path(json.loads(Path(os.environ[MODEL_HANDOFF]).read_text())["log"])


@pytest.fixture
def shared_model(sandbox: control.Sandbox) -> list[str]:
    """Options that put a new sandbox in front of the run's MLServer (which stays running) instead of one of its own.

    For the tests of what a sandbox does around its login (the .env, signals, the watchdog); those about the
    sandbox's own model process, and the README's demo, start it as a user's sandbox-up does.
    """
    return ["--model-server", f"http://127.0.0.1:{sandbox.model_port}"]


@pytest.fixture
def cluster(sandbox: control.Sandbox) -> Iterator[control.Sandbox]:
    """The session's sandbox, with its gateway settings and faults reset after the test."""
    yield sandbox
    sandbox.reset()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    """An empty .env in a private folder, with retry waits of zero."""
    file = EnvFile(tmp_path / ".env")
    file.update(NO_BACKOFF)
    return Env(file)


@pytest.fixture
def sandbox_env(env: Env, cluster: control.Sandbox) -> Env:
    """A .env pointing at the sandbox, as sandbox-up would write it."""
    settings = cluster.settings()
    settings.pop("SANDBOX_DIR")  # a test must never be able to stop the shared sandbox
    env.set(**settings)
    return env


@pytest.fixture(scope="session")
def _resolved_ingress(sandbox: control.Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What resolve-ingress writes for the session's sandbox: found once per worker, by the step itself through kubectl."""
    file = EnvFile(tmp_path_factory.mktemp("resolved") / ".env")
    file.update({**NO_BACKOFF, "KUBECONFIG": str(sandbox.kubeconfig)})
    run_step(resolve_ingress.STEP, file, here())
    written = file.read()
    return {key: written.value(key) for key in resolve_ingress.STEP.writes if written.value(key)}


@pytest.fixture
def resolved_env(sandbox_env: Env, _resolved_ingress: dict[str, str]) -> Env:
    """The sandbox's .env after resolve-ingress: for tests about what comes after it (resolve-ingress has tests of its own)."""
    sandbox_env.set(**_resolved_ingress)
    return sandbox_env


@pytest.fixture(scope="session")
def stub() -> Iterator[Stub]:
    """A small HTTP server for tests that script the gateway's answers themselves."""
    server = Stub()
    yield server
    server.listener.stop()


@pytest.fixture
def own_locust(monkeypatch: pytest.MonkeyPatch) -> str:
    """A mark this test's Locust processes inherit, so that tests running beside it (another worker) are not counted."""
    marker = f"{LOCUST_MARKER}={uuid.uuid4().hex}"
    monkeypatch.setenv(LOCUST_MARKER, marker.split("=", 1)[1])
    return marker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The real-component tests of flavors whose binaries are not built are left out (said once, in the summary)."""
    missing = set(not_built())
    left_out = [item for item in items if "real" in item.keywords and _real_flavor(item) in missing]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


def _real_flavor(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("real") if callspec else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line naming the flavors whose real components are not built, and how to build them."""
    missing = not_built()
    if missing:
        why = "`go` is not on PATH" if realbuild.go_command() is None else "not built"
        terminalreporter.write_line(
            f"real components left out for {', '.join(missing)} ({why}): run `invoke sandbox-build` to test them"
        )


@pytest.fixture(scope="session")
def _load_session() -> dict[str, str]:
    """What the last real login and expose-nodeport wrote on this worker, for the next load test to reuse."""
    return {}


def _still_accepted(written: dict[str, str]) -> bool:
    """The session and the NodePort still reach the model: no test since has ended the session or the Service."""
    ready = f"http://127.0.0.1:{written['NODE_PORT']}/v2/models/{MODEL_NAME}/ready"
    try:
        answer = requests.get(ready, headers={"Cookie": written["AUTH_COOKIE"]}, allow_redirects=False, timeout=5)
    except requests.RequestException:
        return False
    return answer.status_code == 200


@pytest.fixture
def load_ready(sandbox_env: Env, _load_session: dict[str, str]) -> Env:
    """Logged in, with the NodePort exposed and MODEL_HOST set for the ingress route.

    Load tests are about load: the first one on a worker logs in and exposes the
    NodePort for real, and later ones start from what that wrote, as long as the
    gateway still accepts the session (else they log in again).
    """
    sandbox_env.set(MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com")
    if _load_session and _still_accepted(_load_session):
        sandbox_env.set(**_load_session)
        return sandbox_env
    before = sandbox_env.read()
    assert sandbox_env.invoke("login").returncode == 0
    assert sandbox_env.invoke("expose-nodeport").returncode == 0
    _load_session.clear()
    _load_session.update({key: value for key, value in sandbox_env.read().items() if before.get(key) != value})
    return sandbox_env
