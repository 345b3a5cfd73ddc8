"""The installed `kfdex` command, run from an empty folder as a new user would.

CI installs the project (`pip install '.[sandbox,load,test]'`), so `kfdex` sits
beside the Python running the tests; in a checkout that was never installed
the test says how to get it.  The state is `./.env` in the current folder;
sandbox-up and sandbox-down leave that folder as empty as they found it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.control import Sandbox

KFDEX = Path(sys.executable).with_name("kfdex")


def _kfdex(folder: Path, *arguments: str, **variables: str) -> subprocess.CompletedProcess[str]:
    if not KFDEX.exists():
        pytest.skip(f"kfdex is not installed beside {sys.executable}: pip install . to test the installed command")
    environment = {key: value for key, value in os.environ.items() if key not in ("ENV_FILE", "KFDEX_DEBUG")}
    environment.update(KUBECACHEDIR=str(folder.parent / "kubecache"), **variables)
    return subprocess.run(
        [str(KFDEX), *arguments], cwd=folder, env=environment, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_lists_and_versions_from_an_empty_folder(empty: Path) -> None:
    listed = _kfdex(empty, "--list")
    assert listed.returncode == 0 and "login" in listed.stdout and "load" in listed.stdout
    version = _kfdex(empty, "--version")
    assert version.returncode == 0 and version.stdout.startswith("kfdex ")
    assert list(empty.iterdir()) == []


def test_a_bad_setting_from_the_environment_is_one_line_and_names_kfdex(empty: Path) -> None:
    ran = _kfdex(
        empty, "infer", MODEL_NAME="m", AUTH_COOKIE="a=b", INGRESS_HOST="http://127.0.0.1", INGRESS_PORT="1", NODE_PORT="2"
    )
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.count("\n") == 1 and "INGRESS_HOST" in ran.stderr and "Traceback" not in ran.stderr
    missing = _kfdex(empty, "infer")
    assert missing.returncode == 3 and f"there is no {empty / '.env'}" in missing.stderr
    assert list(empty.iterdir()) == []


def test_sandbox_login_infer_and_nothing_left_behind(empty: Path) -> None:
    steps = (["sandbox-up", "--flavor", "kf18"], ["login"], ["expose-nodeport"], ["infer", "--payload", "iris"])
    try:
        for step in steps:
            ran = _kfdex(empty, *step)
            assert ran.returncode == 0, f"{step}: {ran.stderr}"
        assert ran.stdout.strip() == "predict = [1, 1]"
        assert (empty / ".env").stat().st_mode & 0o777 == 0o600
        assert "`kfdex " in _kfdex(empty, "infer", "--auth", "token").stderr  # messages name the installed command
    finally:
        down = _kfdex(empty, "sandbox-down")
    assert down.returncode == 0, down.stderr
    assert list(empty.iterdir()) == []  # sandbox-up created the .env; sandbox-down took it away again


def test_init_writes_the_shipped_example_from_an_empty_folder(empty: Path) -> None:
    missing = _kfdex(empty, "infer")
    assert "run `kfdex init` to write one" in missing.stderr
    made = _kfdex(empty, "init", KUBECONFIG=str(empty.parent / "no-kubeconfig"))
    assert made.returncode == 0, made.stderr
    text = (empty / ".env").read_text()
    assert "written by `kfdex init`" in text and "DEX_LOGIN=user@example.com" in text and "# --- settings" in text
    assert "`kfdex login` asks for it" in made.stderr


def test_init_login_infer_against_the_sandbox_from_an_empty_folder(empty: Path, cluster: Sandbox) -> None:
    kubeconfig = str(cluster.kubeconfig)
    made = _kfdex(empty, "init", KUBECONFIG=kubeconfig)  # no answers: every default, or what kubectl found
    assert made.returncode == 0, made.stderr
    for step in (["login"], ["resolve-model"], ["infer", "--payload", "iris"]):
        ran = _kfdex(empty, *step, KUBECONFIG=kubeconfig, DEX_PASSWORD="12341234")
        assert ran.returncode == 0, f"{step}: {ran.stderr}"
    assert ran.stdout.strip() == "predict = [1, 1]"
    assert sorted(path.name for path in empty.iterdir()) == [".env"]


@pytest.mark.parametrize("arguments", [["infer"], ["--list"]])
def test_a_reader_that_leaves_early_is_never_a_success(empty: Path, arguments: list[str]) -> None:
    """``kfdex ... | head``: once the output's reader is gone the outcome is unknown, so the exit is 141, as SIGPIPE's."""
    if not KFDEX.exists():
        pytest.skip(f"kfdex is not installed beside {sys.executable}")
    reader, writer = os.pipe()
    os.close(reader)  # the reader left before the first byte
    environment = {key: value for key, value in os.environ.items() if key not in ("ENV_FILE", "KFDEX_DEBUG")}
    try:
        ran = subprocess.run(
            [str(KFDEX), *arguments], cwd=empty, env=environment, stdout=writer, stderr=writer, stdin=subprocess.DEVNULL, timeout=60
        )
    finally:
        os.close(writer)
    assert ran.returncode == 141
