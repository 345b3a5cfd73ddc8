"""The kfdex program's own command line: its help, its core options, one meaning per short flag, usage errors."""

from __future__ import annotations

import re

from scripts.app.catalog import COMMANDS
from scripts.app.cli import KfDexProgram, build_collection
from scripts.core.errors import ExitCode
from tests.helpers import Env

# what `kfdex --help` may offer before the task name, and nothing of Invoke's beyond it
CORE_OPTIONS = {"--complete", "--debug", "--help", "--list", "--print-completion-script", "--profile", "--show-secrets",
                "--verbose", "--version"}


def _flags(lines: list[str]) -> tuple[set[str], set[str]]:
    """The long and the short flags named at the start of help lines."""
    longs, shorts = set(), set()
    for line in lines:
        named = re.match(r"\s+((?:-{1,2}[\w-]+(?:\[?=\w+\]?)?(?: \[\w+\])?,? ?)+)", line)
        if named:
            for flag in re.findall(r"(?<![\w-])(-{1,2}[\w-]+)", named.group(1)):
                (longs if flag.startswith("--") else shorts).add(flag)
    return longs, shorts


def _core_lines(help_text: str) -> list[str]:
    return help_text.split("Core options:")[1].split("Subcommands:")[0].splitlines()


def test_the_help_offers_kfdex_options_only_and_no_short_flag_means_two_things(env: Env) -> None:
    shown = env.invoke("--help")
    assert shown.returncode == 0
    longs, core_shorts = _flags(_core_lines(shown.stdout))
    assert longs == CORE_OPTIONS
    collection = build_collection(COMMANDS)
    for name in collection.task_names:
        task_help = env.invoke(name, "--help")
        assert task_help.returncode == 0, name
        _, task_shorts = _flags(task_help.stdout.split("Options:")[-1].splitlines())
        shared = (core_shorts & task_shorts) - {"-v", "-s", "-h"}  # the same meaning before and after the task name
        assert not shared, f"{name}: {shared} mean one thing before the task name and another after it"


def test_verbose_and_show_secrets_work_before_and_after_the_task_name(env: Env) -> None:
    env.set(AUTH_COOKIE="authservice_session=0123456789abcdefghij", DEX_LOGIN="a")
    for arguments in (("-s", "status"), ("status", "-s"), ("--show-secrets", "status")):
        assert "0123456789abcdefghij" in env.invoke(*arguments).stdout, arguments
    assert "0123456789abcdefghij" not in env.invoke("status").stdout
    before, after = env.invoke("-v", "status"), env.invoke("status", "-v")
    assert before.returncode == after.returncode == 0


def test_usage_errors_exit_2_with_one_line(env: Env) -> None:
    for arguments in (("--bogus",), ("-d", "status"), ("-f", "x.yaml", "status"), ("-p", "status"), ("infer", "--nope"),
                      ("no-such-task",), ("infer", "--payload")):
        ran = env.invoke(*arguments)
        assert ran.returncode == ExitCode.USAGE, (arguments, ran.stderr)
        assert ran.stderr.count("\n") == 1 and ran.stderr.startswith("error: "), (arguments, ran.stderr)


def test_the_completion_script_is_printed_for_each_shell(env: Env) -> None:
    for shell in ("bash", "zsh", "fish"):
        printed = env.invoke("--print-completion-script", shell)
        assert printed.returncode == 0 and "--complete" in printed.stdout, shell


def test_the_program_is_kfdex_s_own() -> None:
    assert {argument.name for argument in KfDexProgram().core_args()} == {flag[2:] for flag in CORE_OPTIONS}


def test_a_runtime_configuration_invoke_cannot_load_is_bad_input(env: Env, monkeypatch) -> None:
    monkeypatch.setenv("INVOKE_RUNTIME_CONFIG", "/etc/passwd")
    ran = env.invoke("status")
    assert ran.returncode == ExitCode.USAGE and "INVOKE_RUNTIME_CONFIG: Invoke cannot load it" in ran.stderr


def test_every_option_that_takes_a_number_shows_its_placeholder(env: Env) -> None:
    """Invoke shows INT and STRING but nothing for a float: such an option must not look like a flag."""
    for declaration in COMMANDS:
        numbers = [option for option in declaration.options if option.kind is float]
        if numbers:
            shown = env.invoke(declaration.name, "--help").stdout
            for option in numbers:
                assert f"{option.flag}=NUMBER" in shown, (declaration.name, option.flag)
