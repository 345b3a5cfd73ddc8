"""Steps are declared once: tasks, script entries, hints and help come from the declarations, and are held to them."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from invoke import Program

from scripts.app.catalog import COMMANDS, STEPS
from scripts.app.cli import build_collection
from scripts.core.environment import Environment
from scripts.core.errors import DeclarationError, ExitCode
from scripts.core.keys import KEYS
from scripts.core.step import Step, StepResult, run_step
from tests.helpers import ROOT, Env, here


def _writes_too_much(_state: object, _environment: Environment) -> StepResult:
    return StepResult({"DEX_REQ": "x", "AUTH_COOKIE": "stolen=1"}, "done")


ROGUE = Step("rogue", _writes_too_much, "A step that writes a key it did not declare.", writes=("DEX_REQ",))


def test_a_step_that_writes_an_undeclared_key_is_refused(env: Env) -> None:
    before = env.path.read_bytes()
    with pytest.raises(DeclarationError, match=r"step rogue wrote AUTH_COOKIE, which its declaration does not list"):
        run_step(ROGUE, env.file, here())
    assert env.path.read_bytes() == before


def test_the_refusal_is_a_bug_with_exit_code_1(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    collection = build_collection([ROGUE])
    collection.configure({"kfdex": {"environment": here(variables={"ENV_FILE": str(env.path)})}})
    with pytest.raises(SystemExit) as leaving:
        Program(namespace=collection, binary="invoke").run(["invoke", "rogue"])
    assert leaving.value.code == ExitCode.BUG == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: step rogue wrote AUTH_COOKIE, which its declaration does not list"
    ]


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_every_key_a_step_reads_or_writes_is_known(step: Step) -> None:
    assert set(step.reads) | set(step.writes) | set(step.clears) <= set(KEYS)


def test_the_hint_for_a_missing_key_names_the_declaration_that_writes_it() -> None:
    """The key table names each produced key's writer (it sits below the steps); the declarations must agree."""
    writers = {key: step for step in STEPS for key in step.writes}  # a step that reads a key first only carries it on:
    first_writers = writers | {key: step for step in STEPS for key in step.writes if key not in step.reads}
    assert {key for key, spec in KEYS.items() if spec.source == "step"} == set(first_writers)
    for key, step in first_writers.items():
        assert KEYS[key].how_to_produce == step.how_to_run, key
    assert KEYS["LOGIN_COOKIES"].how_to_produce == "invoke fetch-req"  # authenticate and approve carry it on
    assert KEYS["DEX_CALLBACK_URL"].how_to_produce == "invoke approve"
    assert KEYS["AUTH_BEARER"].how_to_produce == "invoke login --token"


def test_steps_are_listed_in_the_order_their_keys_flow() -> None:
    names = [step.name for step in STEPS]
    chain = ["resolve-ingress", "fetch-req", "authenticate", "approve", "extract-cookie", "infer"]
    assert [name for name in names if name in chain] == chain
    assert names.index("expose-nodeport") < names.index("infer") and names.index("create-token") < names.index("infer")


def test_task_names_are_unique_and_each_step_module_declares_itself() -> None:
    names = [command.name for command in COMMANDS]
    assert len(names) == len(set(names))
    for step in STEPS:
        module = importlib.import_module(f"scripts.{step.name.replace('-', '_')}")
        assert module.STEP is step


def test_valued_options_show_a_placeholder_in_help(env: Env) -> None:
    shown = env.invoke("--help", "infer")
    assert "--payload=STRING" in shown.stdout and "--attempts=INT" in shown.stdout
    assert "--json" in shown.stdout and "--json=" not in shown.stdout


def test_a_step_script_takes_its_declared_options() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "scripts.expose_nodeport", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0
    assert "--delete" in shown.stdout and "delete the NodePort Service instead of creating it" in shown.stdout


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_every_step_runs_as_a_script_under_its_own_name(step: Step) -> None:
    """``python -m scripts.<step>`` works for every step, and its usage line names that command."""
    module = f"scripts.{step.name.replace('-', '_')}"
    shown = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"usage: python -m {module} ")


def test_a_failed_step_prints_one_line(env: Env) -> None:
    ran = env.invoke("authenticate")
    assert ran.returncode == ExitCode.CONFIG
    assert ran.stderr.strip().splitlines() == [
        f"error: DEX_LOGIN_URL is not set in {env.path}: run `invoke fetch-req` first"
    ]


def test_reading_an_unknown_key_is_a_bug_not_an_empty_value(env: Env) -> None:
    state = env.file.read()
    assert state.value("RETRY_ATTEMPTS") == "5"
    with pytest.raises(DeclarationError, match=r"TYPO is not a \.env key this tool knows"):
        state.value("TYPO")


def test_the_start_again_hint_names_the_declared_tasks() -> None:
    from scripts import fetch_req
    from scripts.auth.dexflow import start_again
    from scripts.commands import login

    assert start_again() == f"start again with `invoke {login.LOGIN.name}` (or `{fetch_req.STEP.how_to_run}`)"


def test_a_short_flag_means_one_thing_in_every_task() -> None:
    meanings: dict[str, set[str]] = {}
    for task in build_collection(COMMANDS).tasks.values():
        for argument in task.get_arguments():
            long = max(argument.names, key=len)
            for short in (name for name in argument.names if len(name) == 1):
                meanings.setdefault(short, set()).add(long)
    assert "h" not in meanings  # Invoke's own --help
    assert {short: names for short, names in meanings.items() if len(names) > 1} == {}
    assert meanings["a"] == {"attempts"} and meanings["s"] == {"show-secrets"} and meanings["v"] == {"verbose"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("infer", "--attempts", "abc"), "error: --attempts 'abc': give a whole number"),
        (("infer", "--deadline", "soon"), "error: --deadline 'soon': give a number"),
        (("load", "--concurrency", "x"), "error: --concurrency 'x': give a whole number"),
    ],
)
def test_a_number_option_that_is_no_number_is_bad_input(env: Env, arguments: tuple[str, ...], message: str) -> None:
    before = env.path.read_bytes()
    ran = env.invoke(*arguments)
    assert ran.returncode == ExitCode.USAGE and ran.stderr.strip() == message
    assert env.path.read_bytes() == before


def test_only_step_modules_sit_at_the_top_and_a_stray_one_is_refused(tmp_path, monkeypatch) -> None:
    """The catalog takes the steps from the top of a package, ignores its folders, and refuses a module with no STEP."""
    from scripts.app.catalog import discover_steps
    from scripts.fetch_req import STEP as FETCH_REQ

    package = tmp_path / "strays"
    (package / "layer").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "one_step.py").write_text("from scripts.fetch_req import STEP\n")
    (package / "layer" / "__init__.py").write_text("")
    (package / "layer" / "tasks.py").write_text("from scripts.commands.status import COMMANDS\n")  # a folder is never searched
    monkeypatch.syspath_prepend(str(tmp_path))
    assert discover_steps(package, "strays") == [FETCH_REQ]
    (package / "helper.py").write_text("from scripts.commands.status import COMMANDS\n")
    with pytest.raises(DeclarationError, match=r"helper\.py declares no STEP"):
        discover_steps(package, "strays")


def test_every_command_module_is_listed_in_the_catalog() -> None:
    """A command module left out of COMMAND_MODULES would silently lose its tasks."""
    from pathlib import Path

    from scripts.app.catalog import COMMAND_MODULES

    folder = Path(__file__).resolve().parents[1] / "scripts" / "commands"
    declaring = {path.stem for path in folder.glob("*.py") if "\nCOMMANDS = " in path.read_text(encoding="utf-8")}
    assert declaring == {module.__name__.rpartition(".")[2] for module in COMMAND_MODULES}


def test_the_start_again_hint_names_declared_tasks() -> None:
    """dexflow sits below the declarations and writes the names itself: renaming a task must fail here."""
    import re

    from scripts.auth.dexflow import start_again

    named = re.findall(r"`invoke ([a-z-]+)", start_again())
    assert named == ["login", "fetch-req"]
    assert set(named) <= {command.name for command in COMMANDS}
