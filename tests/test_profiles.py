"""Profiles: one .env per cluster under the config folder, chosen by name; a credential never crosses to another."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.control import Sandbox
from sandbox.httpserve import Reply, Request
from scripts.core.errors import ExitCode
from scripts.core.state import EnvFile
from tests.helpers import Env, Stub


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG config folder for the test's profiles."""
    folder = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    (folder / "kfdex" / "profiles").mkdir(parents=True)  # as `kfdex --profile NAME init` makes it
    return folder / "kfdex" / "profiles"


def _run(profile: str, *arguments: str, env_file: Path | None = None, **extra: str) -> tuple[int, str, str]:
    """``invoke ARGS`` with ``KFDEX_PROFILE=profile`` (and ``ENV_FILE`` only when given), in this process."""
    env = Env(EnvFile(env_file or Path("unnamed.env")), names_its_file=env_file is not None, variables={"KFDEX_PROFILE": profile, **extra})
    ran = env.invoke(*arguments)
    return ran.returncode, ran.stdout, ran.stderr


def test_two_profiles_keep_their_credentials_apart(config: Path, cluster: Sandbox, stub: Stub) -> None:
    seen: list[Request] = []

    def recording(request: Request) -> Reply:
        seen.append(request)
        return Reply(403, b"RBAC: access denied")

    stub.answer(recording)
    settings = cluster.settings()
    settings.pop("SANDBOX_DIR")
    EnvFile(config / "a.env").update({**settings, "INGRESS_HOST": "127.0.0.1", "INGRESS_PORT": str(cluster.gateway_port)})
    EnvFile(config / "b.env").update({**settings, "INGRESS_HOST": "127.0.0.1", "INGRESS_PORT": str(stub.port), "NODE_PORT": ""})
    assert _run("a", "login")[0] == 0
    assert _run("a", "expose-nodeport")[0] == 0
    code, out, err = _run("a", "infer", "--payload", "iris")
    assert code == 0 and "predict = [1, 1]" in out, err
    code, _, err = _run("b", "infer", "--payload", "iris")
    assert code == ExitCode.SESSION, err
    assert all("cookie" not in request.headers and "authorization" not in request.headers for request in seen)
    code, out, _ = _run("b", "profiles")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("  a ") and "session cookie valid until" in lines[0]
    assert lines[1].startswith("* b ") and f"ingress 127.0.0.1:{stub.port}" in lines[1]


def test_a_profile_name_that_is_not_a_name_is_refused(config: Path) -> None:
    code, _, err = _run("../escape", "status")
    assert code == ExitCode.USAGE and "a profile's name is up to 64 letters" in err
    assert list(config.iterdir()) == [] and not (config.parent / "escape.env").exists()


def test_env_file_wins_over_the_profile(config: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.env"
    chosen.write_text("DEX_LOGIN=from-env-file\n")
    EnvFile(config / "a.env").update({"DEX_LOGIN": "from-profile"})
    code, out, _ = _run("a", "status", env_file=chosen)
    assert code == 0 and "DEX_LOGIN=from-env-file" in out
    code, out, _ = _run("a", "status")
    assert code == 0 and "DEX_LOGIN=from-profile" in out


def test_init_writes_a_new_profile(config: Path) -> None:
    code, _, err = _run("fresh", "init", KUBECONFIG=str(config / "no-kubeconfig"))
    assert code == 0, err
    assert (config / "fresh.env").is_file() and EnvFile(config / "fresh.env").read()["DEX_LOGIN"] == "user@example.com"


def test_profiles_lists_every_profile_even_beside_one_it_cannot_read(config: Path) -> None:
    EnvFile(config / "good.env").update({"DEX_LOGIN": "alice@example.com"})
    (config / "dir.env").mkdir()
    code, out, err = _run("good", "profiles")
    assert code == 0, err
    assert any(line.startswith("  dir ") and "unreadable" in line for line in out.splitlines())
    assert any(line.startswith("* good ") and "user alice@example.com" in line for line in out.splitlines())


def test_a_profile_that_does_not_exist_yet_is_named_in_a_warning(config: Path, tmp_path: Path) -> None:
    env = Env(EnvFile(tmp_path / "unused.env"))
    ran = env.invoke("--profile", "nope", "status")
    assert ran.returncode == 0 and "no profile named nope yet" in ran.stderr, ran.stderr
    assert not (config / "nope.env").exists()


def test_the_next_step_a_message_names_keeps_the_profile(config: Path, tmp_path: Path) -> None:
    """Run as printed, a hint acts on the same profile: `kfdex --profile staging login`, never ./.env."""
    (config / "staging.env").write_text("MODEL_NAME=m\nINGRESS_HOST=127.0.0.1\nINGRESS_PORT=1\n")
    ran = Env(EnvFile(tmp_path / "unused.env")).invoke("--profile", "staging", "infer")
    assert ran.returncode == ExitCode.SESSION, ran.stderr
    assert "--profile staging login`" in ran.stderr, ran.stderr  # `kfdex --profile staging login` when installed


@pytest.mark.usefixtures("config")  # a private profiles folder
def test_profiles_needs_no_state_file(tmp_path: Path) -> None:
    """A folder where ./.env would be stops the tasks that read it, not the listing of profiles."""
    folder = tmp_path / ".env"
    folder.mkdir()
    env = Env(EnvFile(folder))
    assert env.invoke("profiles").returncode == 0
    ran = env.invoke("status")
    assert ran.returncode == ExitCode.CONFIG and "is a folder, not a .env file" in ran.stderr
