"""``init`` writes a commented .env from what kubectl finds and the answers given, and never overwrites a file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from scripts.core.errors import ExitCode
from scripts.core.state import EnvFile
from tests.helpers import ROOT


def _run(env_file: Path, *arguments: str, answers: str = "", kubeconfig: str = "", password: str = "") -> subprocess.CompletedProcess[str]:
    """``invoke ARGS`` as a process with ``answers`` on its standard input (a pipe, as a script would give them)."""
    variables = {name: value for name, value in os.environ.items() if not name.startswith(("DEX_", "MODEL_", "AUTH_"))}
    variables.update(ENV_FILE=str(env_file), KUBECONFIG=kubeconfig or str(env_file.parent / "no-kubeconfig"))
    if password:
        variables["DEX_PASSWORD"] = password
    invoke = Path(sys.executable).with_name("invoke")
    return subprocess.run(
        [str(invoke), *arguments], cwd=ROOT, env=variables, input=answers, capture_output=True, text=True, timeout=120
    )


def test_init_finds_the_ingress_namespace_and_model_then_login_and_infer_work(tmp_path: Path, cluster: Sandbox) -> None:
    env_file = tmp_path / ".env"
    made = _run(env_file, "init", answers="\n\n\n", kubeconfig=str(cluster.kubeconfig))
    assert made.returncode == 0, made.stderr
    values = EnvFile(env_file).read()
    assert values["DEX_LOGIN"] == "user@example.com"
    assert values["MODEL_NAMESPACE"] == "kubeflow-user-example-com"  # from the user's Profile
    assert values["MODEL_NAME"] == "sklearn-irisv2"  # the namespace's only InferenceService
    assert values["INGRESS_PORT"] == str(cluster.gateway_port)
    assert not values.get("DEX_PASSWORD")
    text = env_file.read_text()
    assert text.startswith("# kfdex state for the kubectl context ") and "# Dex user and password." in text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "no password saved" in made.stderr
    kubeconfig = str(cluster.kubeconfig)
    assert _run(env_file, "login", kubeconfig=kubeconfig, password="12341234").returncode == 0
    assert _run(env_file, "resolve-model", kubeconfig=kubeconfig).returncode == 0
    inferred = _run(env_file, "infer", "--payload", "iris", kubeconfig=kubeconfig)
    assert inferred.returncode == 0 and "predict = [1, 1]" in inferred.stdout, inferred.stderr


def test_init_takes_the_answers_given_and_saves_the_password_only_when_asked(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    made = _run(env_file, "init", answers="alice@example.com\nteam-a\nmy-model\n")
    assert made.returncode == 0, made.stderr
    assert "kubectl has no current context" in made.stderr
    values = EnvFile(env_file).read()
    assert (values["DEX_LOGIN"], values["MODEL_NAMESPACE"], values["MODEL_NAME"]) == ("alice@example.com", "team-a", "my-model")
    assert not values.get("DEX_PASSWORD") and not values.get("INGRESS_HOST")
    saved = tmp_path / "saved.env"
    made = _run(saved, "init", "--save-password", answers="\n\n\nsecret pass\n")
    assert made.returncode == 0, made.stderr
    assert EnvFile(saved).read()["DEX_PASSWORD"] == "secret pass"
    assert "secret" not in made.stderr + made.stdout


@pytest.mark.parametrize("existing", ["DEX_LOGIN=mine\n", ""])
def test_init_never_overwrites_a_file(tmp_path: Path, existing: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(existing)
    made = _run(env_file, "init", answers="\n\n\n")
    assert made.returncode == ExitCode.USAGE and "exists already" in made.stderr
    assert env_file.read_text() == existing


def test_init_in_a_folder_that_does_not_exist_asks_nothing(tmp_path: Path) -> None:
    made = _run(tmp_path / "missing" / ".env", "init", answers="alice@example.com\nteam-a\nmy-model\n")
    assert made.returncode == ExitCode.CONFIG and made.stderr.count("\n") == 1, made.stderr  # the error alone: no question
    assert f"the folder {tmp_path / 'missing'} does not exist" in made.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        (b"u@x\nns\xff\nm\n", "namespace of the model: the answer is not one line of UTF-8 text"),
        (b"u@x\nteam-a\nm x\n", "InferenceService name 'm x' is not a Kubernetes name"),
    ],
)
def test_init_refuses_a_bad_answer_and_writes_nothing(tmp_path: Path, answers: bytes, said: str) -> None:
    env_file = tmp_path / ".env"
    variables = {name: value for name, value in os.environ.items() if not name.startswith(("DEX_", "MODEL_"))}
    variables.update(ENV_FILE=str(env_file), KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    made = subprocess.run(
        [str(Path(sys.executable).with_name("invoke")), "init"], cwd=ROOT, env=variables, input=answers, capture_output=True, timeout=60
    )
    assert made.returncode == ExitCode.USAGE and said in made.stderr.decode(), made.stderr
    assert not env_file.exists()
