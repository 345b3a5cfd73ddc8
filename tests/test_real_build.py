"""``sandbox-build`` and ``--components real`` without the real binaries: one line, exit 10, nothing started.

A fake ``go`` (a shell script on PATH) stands for the toolchain here, so the
cache's build-or-reuse rule is tested without compiling anything.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sandbox import control, realbuild
from scripts.core.errors import ExitCode
from tests.helpers import Env

FAKE_GO = """#!/bin/sh
case "$1" in
  env) echo go1.26.8 ;;
  list) exit 0 ;;
  build) [ -n "$FAKE_GO_FAIL" ] && { echo "go: downloading example.com/x v1"; echo "$FAKE_GO_FAIL" >&2; exit 1; }
         while [ "$1" != "-o" ]; do shift; done; echo built > "$2"; echo "$2" >> "$FAKE_GO_LOG" ;;
esac
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``go`` that writes a one-line 'binary' and logs each build; the cache in a private folder."""
    go = tmp_path / "bin" / "go"
    go.parent.mkdir()
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_GO_LOG", str(tmp_path / "builds.log"))
    monkeypatch.delenv("FAKE_GO_FAIL", raising=False)
    return go


def test_a_build_lands_in_the_user_cache_and_is_reused(fake_go: Path, tmp_path: Path) -> None:
    first = realbuild.build("dex-v2.41.1", str(fake_go))
    assert first.binary == tmp_path / "cache" / "kfdex" / "real" / "dex-v2.41.1" / "dex"
    assert not first.reused and first.binary.read_text() == "built\n"
    again = realbuild.build("dex-v2.41.1", str(fake_go))
    assert again.reused and "reused" in again.line
    assert len((tmp_path / "builds.log").read_text().splitlines()) == 1
    assert realbuild.missing(("dex-v2.41.1", "oauth2-proxy-v7.7.1")) == ["oauth2-proxy-v7.7.1"]


def test_a_failed_build_says_go_s_last_words_and_leaves_nothing(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "go: example.com/x@v1: reading https://proxy/x/@v/v1.zip: 403 Forbidden")
    with pytest.raises(realbuild.BuildFailure, match=r"^go build of oauth2-proxy-v7.7.1 failed: go: example.com/x@v1: .*403 Forbidden"):
        realbuild.build("oauth2-proxy-v7.7.1", str(fake_go))
    assert not realbuild.binary("oauth2-proxy-v7.7.1").exists()


def test_sandbox_build_without_go_is_one_line_and_exit_10(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realbuild, "FALLBACK_GO", tmp_path / "no-go")
    env.only_path = str(tmp_path)  # no go on PATH
    ran = env.invoke("sandbox-build", "--flavor", "kf191")
    assert ran.returncode == ExitCode.SANDBOX
    assert ran.stderr.strip() == (
        "error: sandbox-build needs Go 1.26 (`go` is not on PATH): install it, or use --components stand-in"
    )


def test_sandbox_build_of_an_unknown_flavor_is_bad_input(env: Env) -> None:
    ran = env.invoke("sandbox-build", "--flavor", "kf191,kf99")
    assert ran.returncode == ExitCode.USAGE and "--flavor 'kf99': no such sandbox flavor" in ran.stderr


@pytest.mark.parametrize("task", ["sandbox-up", "demo"])
def test_real_components_not_built_start_nothing(env: Env, task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(control, "launch", lambda *_args, **_kw: pytest.fail("a process was started"))
    before = env.path.read_bytes()
    ran = env.invoke(task, "--flavor", "kf18", "--components", "real")
    assert ran.returncode == ExitCode.SANDBOX, ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == (
        "error: the real components of kf18 are not built (dex-v2.36.0): "
        "run `invoke sandbox-build --flavor kf18` (needs Go), or use --components stand-in"
    )
    assert env.path.read_bytes() == before


def test_an_unknown_components_kind_is_bad_input(env: Env) -> None:
    ran = env.invoke("sandbox-up", "--components", "both")
    assert ran.returncode == ExitCode.USAGE and ran.stderr.strip() == "error: --components 'both': use stand-in or real"



def test_a_real_program_that_dies_at_start_shows_its_last_lines_and_nothing_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox import realrun

    def failing_plan(_flavor: object, _folder: Path, ports: tuple[int, int, int]) -> realrun.Plan:
        argv = ["sh", "-c", "echo loading config; echo 'failed to initialize storage' >&2; exit 2"]
        return realrun.Plan("kf191", *ports[:3], [realrun.Program("dex", argv, {}, "http://127.0.0.1:1/")])

    stopped: list[tuple[Path, list[int]]] = []
    real_stop = control.stop

    def recording_stop(folder: Path, sandbox_id: str, grace: float = 5.0) -> control.Stopped:
        done = real_stop(folder, sandbox_id, grace)
        stopped.append((folder, done.pids))
        return done

    monkeypatch.setattr(control, "check_built", lambda _flavor: None)
    monkeypatch.setattr(realrun, "plan", failing_plan)
    monkeypatch.setattr(control, "stop", recording_stop)
    with pytest.raises(control.SandboxFailure, match=r"dex process exited while starting: loading config \| failed to initialize storage"):
        control.start("kf191", components="real")
    (folder, pids), = stopped
    assert not folder.exists()
    assert len(pids) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in pids)  # the model and the cluster


def test_the_build_script_takes_its_flavors_and_refuses_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox.realbuild import main

    assert main(["--flavor", "kf99"]) == 2
    assert capsys.readouterr().err.startswith("error: --flavor kf99: use some of kf15")
    with pytest.raises(SystemExit) as shown:
        main(["--help"])
    assert shown.value.code == 0 and "--flavor" in capsys.readouterr().out
