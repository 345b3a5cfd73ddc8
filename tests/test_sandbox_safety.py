"""The sandbox never holds the only copy of anything, and touches only what it can prove it made.

A reboot between ``sandbox-up`` and ``sandbox-down`` (processes and the
temporary folder gone) leaves the user's .env byte-identical; ``sandbox-down``
refuses a folder or a process it cannot prove is its own; the state file is a
regular file or nothing; sandbox settings are checked before anything starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import control
from scripts.commands import sandbox_record
from scripts.core.errors import ExitCode
from scripts.core.state import EnvFile
from tests.helpers import ROOT, Env

OWNED = (*control.SETTING_KEYS, "INGRESS_HOST", "AUTH_COOKIE")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of this test's own, for the processes it starts (their TMPDIR)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _reboot(folder: Path) -> None:
    """What a reboot does to a sandbox: every process gone, the temporary folder gone."""
    for entry in json.loads((folder / control.PIDS).read_text()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(entry["pid"]), signal.SIGKILL)
    shutil.rmtree(folder)


# the .env a user had, in the shapes a rewrite could spoil: quotes, comments, CRLF, no final line ending
USER_ENV = (
    b"# my cluster\r\nKUBECONFIG=/home/me/.kube/config  # the real one\r\n\r\nMODEL_NAME=\"my-model\"\r\n"
    b"export DEX_LOGIN='me@corp.example'\r\nINGRESS_HOST=10.0.0.1\r\nHTTP_TIMEOUT=5"
)


def test_a_reboot_between_up_and_down_leaves_the_env_byte_identical(env: Env, private_tmp: Path, shared_model: list[str]) -> None:
    env.path.write_bytes(USER_ENV)
    up = env.process("sandbox-up", *shared_model)
    assert up.returncode == 0, up.stderr
    kept = env.path.read_bytes().decode()
    assert '#kfdex-saved "KUBECONFIG=/home/me/.kube/config  # the real one\\r\\n"\r\n' in kept  # the user's line, kept in place
    assert "\r\nSANDBOX_DIR=" in kept and kept.count("\n") == kept.count("\r\n")  # in the file's own line ending
    assert stat.S_IMODE(env.path.stat().st_mode) == 0o600
    folder = Path(env.read()["SANDBOX_DIR"])
    assert folder.parent == private_tmp
    env.set(MODEL_NAME="mnist", DEX_PASSWORD="typed-by-hand")  # the sandbox's settings, changed by hand meanwhile
    _reboot(folder)

    down = env.process("sandbox-down")
    assert down.returncode == 0, down.stderr
    assert "is gone: nothing to stop" in down.stderr
    assert "; DEX_PASSWORD, MODEL_NAME were changed after sandbox-up: those changes went with the sandbox's settings" in down.stderr
    assert "typed-by-hand" not in down.stderr
    assert env.path.read_bytes() == USER_ENV
    assert list(private_tmp.iterdir()) == []


@pytest.mark.usefixtures("private_tmp")
def test_sandbox_down_removes_the_env_sandbox_up_created_even_after_a_reboot(tmp_path: Path, shared_model: list[str]) -> None:
    (tmp_path / "fresh").mkdir()
    env = Env(EnvFile(tmp_path / "fresh" / ".env"))
    up = env.process("sandbox-up", *shared_model)
    assert up.returncode == 0, up.stderr
    assert env.invoke("resolve-ingress").returncode == 0  # a step writes its keys meanwhile: they are the sandbox's too
    _reboot(Path(env.read()["SANDBOX_DIR"]))
    down = env.process("sandbox-down")
    assert down.returncode == 0, down.stderr
    assert not env.path.exists() and ".env removed (sandbox-up had created it)" in down.stderr


@pytest.mark.parametrize(
    "text",
    [None, "", "A=1", "A=1\n", "KUBECONFIG=x", "\n\nKUBECONFIG='a b' # c\r\nB=2\r\nMODEL_NAME=\"q\"", "export MODEL_NAME=m\n\nMODEL_NAME=dup"],
)
def test_the_record_round_trips_every_shape_of_env(text: str | None) -> None:
    kept = sandbox_record.keep(text, OWNED, {"KUBECONFIG": "/tmp/k", "SANDBOX_DIR": "/tmp/s"}, "ab12")
    record = sandbox_record.find(kept)
    assert record is not None and (record.id, record.created) == ("ab12", text is None)
    assert sandbox_record.restore(kept + "INGRESS_HOST=127.0.0.1\n", OWNED) == text  # what a step wrote meanwhile goes too
    glue = "\n" if text and not text.endswith("\n") else ""
    assert sandbox_record.restore(kept + "MINE=1\n", OWNED) == f"{text or ''}{glue}MINE=1\n"  # a line of the user's own stays


def test_the_record_tells_which_of_the_sandbox_settings_were_changed_by_hand() -> None:
    kept = sandbox_record.keep("MODEL_NAME=mine\n", OWNED, {"MODEL_NAME": "sklearn-irisv2", "SANDBOX_DIR": "/tmp/s"}, "ab12")
    assert "sklearn-irisv2" not in kept.splitlines()[1]  # the marker holds fingerprints, not values
    assert sandbox_record.edited(kept + "INGRESS_HOST=127.0.0.1\n") == []  # a step's key is not a setting sandbox-up wrote
    changed = kept.replace("MODEL_NAME=sklearn-irisv2", "MODEL_NAME=mnist")
    assert sandbox_record.edited(changed) == ["MODEL_NAME"]
    assert sandbox_record.restore(changed, OWNED) == "MODEL_NAME=mine\n"
    older = re.sub(r" wrote=\S+:", ":", changed)  # a marker written before fingerprints: still found, nothing named
    assert sandbox_record.find(older) is not None and sandbox_record.edited(older) == []


def test_sandbox_down_does_not_delete_a_folder_the_env_merely_names(env: Env, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    env.path.write_text(f"SANDBOX_DIR={project}\n")
    ran = env.invoke("sandbox-down")
    assert ran.returncode == ExitCode.SANDBOX
    assert "refused to stop or remove anything" in ran.stderr and str(project) in ran.stderr
    assert (project / "src" / "main.py").read_text() == "print('mine')\n"
    assert env.path.read_text() == f"SANDBOX_DIR={project}\n"


def test_sandbox_down_refuses_a_folder_whose_marker_is_not_the_recorded_one(env: Env) -> None:
    folder = control.whole(lambda: control._new_folder("someone-else"))
    try:
        (folder / "work.txt").write_text("not ours\n")
        env.path.write_text(sandbox_record.keep("", OWNED, {"SANDBOX_DIR": str(folder)}, "0123abcd"))
        ran = env.invoke("sandbox-down")
        assert ran.returncode == ExitCode.SANDBOX
        assert f"did not stop or remove {folder}: its {control.MARKER} marker holds another sandbox's id" in ran.stderr
        assert (folder / "work.txt").exists()
        assert "the .env keeps the sandbox's record" in ran.stderr
        assert sandbox_record.find(env.path.read_text()) is not None  # a sandbox may still run: its record stays
    finally:
        shutil.rmtree(folder)


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the sandbox's, in a session of its own."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("start", [None, "1"])
def test_stop_signals_no_process_without_its_recorded_start_time(bystander: subprocess.Popen[bytes], start: str | None) -> None:
    sandbox_id = control.new_id()
    folder = control.whole(lambda: control._new_folder(sandbox_id))
    (folder / control.PIDS).write_text(json.dumps([{"name": "model", "pid": bystander.pid, "start": start}]))
    stopped = control.stop(folder, sandbox_id)
    assert bystander.poll() is None  # still running
    assert stopped.pids == []
    assert stopped.refused == ([] if start else [f"did not signal pid {bystander.pid} (model): its start time was not recorded"])
    assert not folder.exists()  # the folder itself is provably ours


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()


def _device(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own


@pytest.mark.parametrize(("make", "kind"), [(_fifo, "a FIFO"), (_socket, "a socket"), (_device, "a device"), (Path.mkdir, "a folder")])
@pytest.mark.parametrize("task", ["status", "logout"])
def test_the_state_file_is_a_regular_file_or_nothing(tmp_path: Path, make: object, kind: str, task: str) -> None:
    path = tmp_path / "state"
    make(path)  # type: ignore[operator]
    before = os.stat(path)
    variables = dict(os.environ, ENV_FILE=str(path))
    invoke = Path(sys.executable).with_name("invoke")
    done = subprocess.run(  # a process of its own, bounded: a FIFO must not block it
        [str(invoke), task], cwd=ROOT, env=variables, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert done.stderr.strip() == f"error: {path} is {kind}, not a .env file: point ENV_FILE at a regular file (or at none yet)"
    after = os.stat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # not replaced by a regular file


def test_a_crlf_env_keeps_its_line_ending(env: Env) -> None:
    env.path.write_bytes(b"A=1\r\nB=2\r\n")
    env.set(B="3", C="4")
    assert env.path.read_bytes() == b"A=1\r\nB=3\r\nC=4\r\n"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"faults": "notalist"}, "faults 'notalist': give a list of faults"),
        ({"faults": [{"path": "/", "status": "abc"}]}, "faults[0].status 'abc': give an HTTP status"),
        ({"faults": [{"path": "/", "stauts": 503}]}, "faults[0].stauts: no such fault field"),
        ({"session_seconds": "long"}, "session_seconds 'long': give a whole number of seconds"),
        ({"flavor": "kf99"}, "flavor 'kf99': give one of kf15"),
        ({"colour": "blue"}, "colour: no such sandbox setting"),
        (["not", "an", "object"], "the settings must be a JSON object"),
    ],
)
def test_sandbox_settings_are_checked_before_anything_starts(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: object, named: str
) -> None:
    def must_not_start(*_: object, **__: object) -> None:
        raise AssertionError("a sandbox was started with bad settings")

    monkeypatch.setattr(control, "start", must_not_start)
    file = tmp_path / "settings.json"
    file.write_text(json.dumps(settings))
    before = env.path.read_bytes()
    ran = env.invoke("sandbox-up", "--settings", str(file))
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: sandbox settings {file}: {named}"), ran.stderr
    assert env.path.read_bytes() == before


def test_a_running_sandbox_refuses_bad_settings_too(cluster: control.Sandbox) -> None:
    with pytest.raises(control.SandboxFailure, match=r"faults\[0\]\.status 'abc'"):
        cluster.configure(faults=[{"path": "/", "status": "abc"}])


def test_tempdir_is_where_the_sandbox_proves_its_folders() -> None:
    assert control.proof(Path(tempfile.gettempdir()) / "kfdex-sandbox-nothing", "ab") == "it is not a folder"


@pytest.mark.parametrize("task", ["sandbox-up", "demo"])
def test_a_second_sandbox_is_refused_over_a_recorded_one(env: Env, monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    """The saved lines of the first sandbox must not be lost, even when its folder is gone (after a reboot)."""

    def must_not_start(*_: object, **__: object) -> None:
        raise AssertionError("a second sandbox was started")

    monkeypatch.setattr(control, "start", must_not_start)
    env.path.write_text(sandbox_record.keep("MODEL_NAME=mine\n", OWNED, {"SANDBOX_DIR": "/nowhere/kfdex-sandbox-x"}, "0123abcd"))
    before = env.path.read_bytes()
    ran = env.invoke(task)
    assert ran.returncode == ExitCode.SANDBOX, ran.stderr
    assert "already records a sandbox (SANDBOX_DIR): run `invoke sandbox-down` first" in ran.stderr
    assert env.path.read_bytes() == before
    if task == "demo":
        assert "is not the one started here: left alone" in ran.stderr


@pytest.mark.usefixtures("private_tmp")
def test_an_env_written_by_init_takes_a_sandbox_and_gets_back_byte_identical_with_the_kubectl_cache(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_model: list[str]
) -> None:
    """One whole round trip: the .env as init wrote it, and kubectl's discovery cache, are as they were after sandbox-down."""
    env.path.unlink()
    env.variables["KUBECONFIG"] = str(env.path.parent / "no-kubeconfig")
    made = env.process("init")  # the example's empty SANDBOX_DIR= records no sandbox
    assert made.returncode == 0, made.stderr
    del env.variables["KUBECONFIG"]
    before = env.path.read_bytes()
    cache = tmp_path / "kubecache"
    other = cache / "discovery" / "cluster.example.com_6443"  # another cluster's discovery: never the sandbox's to remove
    other.mkdir(parents=True)
    monkeypatch.setenv("KUBECACHEDIR", str(cache))
    up = env.process("sandbox-up", *shared_model)
    try:
        assert up.returncode == 0, up.stderr
        assert env.invoke("resolve-ingress").returncode == 0  # kubectl caches discovery for the sandbox's API port
        made_by_it = [folder for folder in (cache / "discovery").iterdir() if folder != other]
        assert len(made_by_it) == 1 and made_by_it[0].name.startswith("127.0.0.1_")
    finally:
        down = env.process("sandbox-down")
    assert down.returncode == 0, down.stderr
    assert env.path.read_bytes() == before
    assert list((cache / "discovery").iterdir()) == [other]


def test_a_folder_deleted_under_a_running_sandbox_names_its_processes_and_keeps_the_record(env: Env) -> None:
    up = env.process("sandbox-up")
    assert up.returncode == 0, up.stderr
    folder = Path(env.read()["SANDBOX_DIR"])
    # the model and the cluster (sandbox-up's watchdog leaves once the .env records the sandbox)
    pids = [int(entry["pid"]) for entry in json.loads((folder / control.PIDS).read_text()) if entry["name"] != "watchdog"]
    try:
        shutil.rmtree(folder)
        refused = env.process("sandbox-down")
        assert refused.returncode == ExitCode.SANDBOX and "processes still name it" in refused.stderr, refused.stderr
        assert all(str(pid) in refused.stderr for pid in pids)
        assert sandbox_record.find(env.path.read_text()) is not None
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        # not children of this process (sandbox-up started them): wait until the kill has ended them, or a
        # process still tearing down its memory names the folder for the sandbox-down below
        deadline = time.monotonic() + 10
        while any(control.alive(pid, None) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
    down = env.process("sandbox-down")
    assert down.returncode == 0 and "nothing to stop" in down.stderr, down.stderr
    assert sandbox_record.find(env.path.read_text() if env.path.exists() else "") is None


def test_a_token_demo_on_a_gateway_without_tokens_starts_nothing(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "start", lambda *_a, **_k: pytest.fail("a sandbox was started"))
    ran = env.invoke("demo", "--flavor", "kf15", "--token")
    assert ran.returncode == ExitCode.USAGE and "takes no ServiceAccount tokens" in ran.stderr


@pytest.mark.parametrize("task", ["sandbox-up", "demo"])
def test_an_env_file_in_a_folder_that_does_not_exist_is_refused_before_anything_starts(tmp_path: Path, task: str) -> None:
    """No folder is made for it (it would be left behind), and no sandbox starts."""
    env = Env(EnvFile(tmp_path / "missing" / "deeper" / "x.env"))
    ran = env.invoke(task)
    assert ran.returncode == ExitCode.CONFIG, ran.stderr
    assert "the folder" in ran.stderr and "does not exist" in ran.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("failures", "tries"), [(["listen tcp 127.0.0.1:4242: bind: address already in use"], 2), (["gone"], 1)])
def test_a_port_taken_between_finding_it_and_binding_it_starts_again_on_new_ports(
    monkeypatch: pytest.MonkeyPatch, failures: list[str], tries: int
) -> None:
    """A free port is found by binding it and letting it go; another process may take it first. Only that is tried again."""
    started: list[str] = []

    def one_try(flavor: str, *_: object) -> str:
        started.append(flavor)
        if len(started) <= len(failures):
            raise control.SandboxFailure(f"the sandbox's oauth2-proxy process exited while starting: {failures[len(started) - 1]}")
        return "running"

    monkeypatch.setattr(control, "_start", one_try)
    if tries == 1:
        with pytest.raises(control.SandboxFailure, match="gone"):
            control.start("kf15")
    else:
        assert control.start("kf15") == "running"  # type: ignore[comparison-overlap]
    assert len(started) == tries


def test_a_model_process_of_a_removed_sandbox_makes_no_folder(tmp_path: Path) -> None:
    """The model copies its files into the sandbox's folder: once that folder is gone, it ends instead of making it again."""
    from sandbox import model

    gone = tmp_path / "kfdex-sandbox-gone"
    with pytest.raises(FileNotFoundError):
        model.train(gone / "models")
    assert list(tmp_path.iterdir()) == []
    assert (model.train(tmp_path / "models") / "model.joblib").is_file()  # a sandbox folder that exists is used
