"""The Invoke ``Collection`` made from the declarations, and the ``kfdex`` program that runs it.

Each task's signature, ``--help`` text and option kinds come from the
declaration; options not given are ``None``.  The task body builds the
``Environment`` (from the Invoke config key ``kfdex.environment`` when a test
or program put one there, else from the process), finds the .env file, and
runs the command inside the one error boundary.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke import Argument, Collection, Context, Exit, ParseError, Program, Task
from invoke.exceptions import UnknownFileType
from invoke.parser import Parser, ParserContext

from ..core.boundary import guarded
from ..core.environment import Environment, verbose_requested
from ..core.errors import ExitCode
from ..core.state import EnvFile, profile_path
from ..core.step import SHOW_SECRETS, VERBOSE, Declaration, Option
from ..core.values import shown


def _options(declaration: Declaration) -> tuple[Option, ...]:
    return declaration.options if SHOW_SECRETS in declaration.options else (*declaration.options, SHOW_SECRETS)


class NumberArgument(Argument):
    """A numeric option whose text is not a number ends the run as bad input (exit 2), not in a traceback."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            wanted = "a whole number" if self.kind is int else "a number"
            flag = f"--{self.name.replace('_', '-')}"
            raise Exit(f"error: {flag} {value!r}: give {wanted}", code=int(ExitCode.USAGE)) from None


class DeclaredTask(Task):  # type: ignore[type-arg]
    """An Invoke task whose option kinds and help come from a declaration, not from its defaults."""

    def __init__(self, body: Callable[..., None], declaration: Declaration) -> None:
        self.declared = {option.name: option for option in _options(declaration)}
        super().__init__(body, name=declaration.name, auto_shortflags=False)  # only declared letters

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        arguments = super().get_arguments(ignore_unknown_help)
        for argument in arguments:
            if argument.kind in (int, float):
                argument.__class__ = NumberArgument  # the same argument, with its value checked
        return arguments

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        option = self.declared[name]
        opts["help"] = option.help
        if option.short:
            opts["names"] = [*opts["names"], option.short]
        if option.kind is not bool:
            opts["kind"] = option.kind
        return opts


def environment_of(c: Context, show_secrets: bool, verbose: bool = False) -> Environment:
    """The environment a test or program configured, else the process's; ``--show-secrets`` and ``--verbose`` applied."""
    settings = c.config.get("kfdex", {})
    configured = settings.get("environment")
    environment = configured if isinstance(configured, Environment) else Environment.from_process()
    return dataclasses.replace(
        environment,
        show_secrets=show_secrets or environment.show_secrets or bool(settings.get("show_secrets")),
        verbose=verbose or environment.verbose or bool(settings.get("verbose")) or verbose_requested(environment.variables),
        program=_program(settings.get("program", environment.program), settings.get("profile")),
    )


def _program(program: str, profile: str | None) -> str:
    """How the person runs the next task: ``kfdex --profile staging`` when they chose a profile, so hints act on it."""
    return f"{program} --profile {profile}" if profile else program


def env_file_of(c: Context, environment: Environment, task: str = "") -> EnvFile:
    """The state file: ``kfdex --profile NAME`` first, then as ``EnvFile.for_variables`` says (ENV_FILE, KFDEX_PROFILE,
    ``.env`` beside tasks.py for ``invoke`` in a checkout, else in the current folder)."""
    settings = c.config.get("kfdex", {})
    profile = settings.get("profile")
    if profile is not None:  # `--profile ''` is a bad name, refused as any other: not the same as no --profile
        path = profile_path(profile, environment.variables)
        if not path.exists() and task != "init":
            environment.warn(f"no profile named {profile} yet ({path}): `kfdex profiles` lists them, `kfdex --profile {profile} init` writes it")
        return EnvFile(path, environment.variables)
    folder = settings.get("env_folder")
    return EnvFile.for_variables(environment.variables, Path(folder) if folder else None)


def task_for(declaration: Declaration) -> DeclaredTask:
    """The Invoke task of one declaration."""
    options = _options(declaration)

    def body(c: Context, **given: Any) -> None:
        # urllib3 logs whole URLs (with one-time codes) at debug level: keep it quiet even under --debug
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        environment = environment_of(c, bool(given.pop(SHOW_SECRETS.name, False)), bool(given.pop(VERBOSE.name, False)))
        with guarded(environment):
            declaration.execute(env_file_of(c, environment, declaration.name), environment, given)

    parameters = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [
        inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default) for option in options
    ]
    body.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    body.__doc__ = declaration.help
    body.__name__ = declaration.name.replace("-", "_")
    return DeclaredTask(body, declaration)


def build_collection(declarations: Iterable[Declaration]) -> Collection:
    """A fresh Collection with one task per declaration."""
    collection = Collection()
    for declaration in declarations:
        collection.add_task(task_for(declaration))
    return collection


_NEEDS_VALUE = re.compile(r"Flag <\w+: (\w+)\b.*> needed value and was not given one")  # Invoke's words, for a person


@contextmanager
def _bad_command_line() -> Iterator[None]:
    """Invoke's parse errors as bad input (exit 2, one line), not its exit 1."""
    try:
        yield
    except (ParseError, ValueError) as error:  # ValueError: a core option's number (-T abc)
        needs = _NEEDS_VALUE.search(str(error))
        said = f"--{needs.group(1).replace('_', '-')} needs a value" if needs else str(error)
        raise Exit(f"error: {said} (`kfdex --list` shows the tasks, `kfdex TASK --help` their options)", code=int(ExitCode.USAGE)) from None
    except Exit as leaving:  # Invoke's own refusals (`--list no-such-namespace`) leave with 1, which we keep for bugs
        if leaving.code != int(ExitCode.BUG) or not leaving.message:
            raise
        raise Exit(f"error: {leaving.message} (`kfdex --list` shows the tasks)", code=int(ExitCode.USAGE)) from None


# Invoke's core options that mean something for kfdex, with the names kfdex gives them (no short flag that a task uses)
_INVOKE_OPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "complete": (("complete",), "print tab-completion candidates (the completion script calls it)"),
    "debug": (("debug",), "show the traceback of an error (also KFDEX_DEBUG=1)"),  # -d is a task's --deadline
    "help": (("help", "h"), "show this help, or a task's (kfdex TASK --help)"),
    "list": (("list",), "list the tasks"),  # -l is logout's --local
    "print-completion-script": (("print-completion-script",), "print the tab-completion script for bash, zsh or fish"),
    "version": (("version", "V"), "print kfdex's version"),
}
# kfdex's own, before the task name (after it, the task's -v and -s say the same)
_KFDEX_OPTIONS = (
    Argument(names=("verbose", "v"), kind=bool, default=False, help=VERBOSE.help),
    Argument(names=("show-secrets", "s"), kind=bool, default=False, help=SHOW_SECRETS.help),
    Argument(names=("profile",), help="use the profile NAME: ~/.config/kfdex/profiles/NAME.env (`kfdex profiles` lists them)"),
)


class KfDexProgram(Program):
    """Invoke's program as kfdex: its own core options, and every way out documented (a bad command line is exit 2)."""

    def core_args(self) -> list[Argument]:
        """kfdex's core options: Invoke's that apply to it (renamed where a short flag would mean two things), and its own."""
        kept = [_copy(argument, *_INVOKE_OPTIONS[argument.name]) for argument in super().core_args() if argument.name in _INVOKE_OPTIONS]
        return [*kept, *(_copy(argument) for argument in _KFDEX_OPTIONS)]

    def print_task_help(self, name: str) -> None:
        """Invoke's task help, with ``--rate=NUMBER`` for the options that take a number that need not be whole."""
        context = self.parser.contexts[name]
        shown = context.help_for

        def help_for(flag: str) -> tuple[str, str]:
            names, text = shown(flag)
            if context.flags[flag].kind is float and "=" not in names:
                names = ", ".join(f"{part}=NUMBER" if part.startswith("--") else f"{part} NUMBER" for part in names.split(", "))
            return names, text

        context.help_for = help_for  # type: ignore[method-assign]
        try:
            super().print_task_help(name)
        finally:
            del context.help_for

    def parse_core_args(self) -> None:
        """Parse kfdex's core options; Invoke's others, which it reads later, keep their defaults (nobody can set them)."""
        super().parse_core_args()
        parsed = self.core[0].args
        for argument in super().core_args():
            if argument.name not in parsed:
                parsed[argument.name] = argument

    def _make_parser(self) -> Parser:
        """Invoke's parser over the tasks this command line names, not all of them: each parse deep-copies
        every task's options, which cost more than the rest of reading the command line."""
        named = set(self.core.unparsed)
        if isinstance(self.args.help.value, str):
            named.add(self.args.help.value)  # kfdex --help TASK
        everything = bool(self.args.complete.value)  # completion offers every task's options
        unknown_help = self.config.tasks.ignore_unknown_help
        return Parser(
            initial=self.initial_context,
            contexts=[
                ParserContext(name=name, aliases=aliases, args=self.collection[name].get_arguments(ignore_unknown_help=unknown_help))
                for name, aliases in self.collection.task_names.items()
                if everything or name in named or named.intersection(aliases)
            ],
        )

    def parse_core(self, argv: list[str] | None) -> None:
        with _bad_command_line():
            super().parse_core(argv)

    def parse_tasks(self) -> None:
        with _bad_command_line():
            super().parse_tasks()

    def parse_cleanup(self) -> None:
        with _bad_command_line():
            super().parse_cleanup()

    def update_config(self, merge: bool = True) -> None:
        """kfdex's core options into the tasks' configuration; Invoke's runtime configuration file
        (INVOKE_RUNTIME_CONFIG) that it cannot load is bad input."""
        try:
            super().update_config(merge=False)
            given = {"verbose": self.args.verbose.value, "show_secrets": self.args["show-secrets"].value, "profile": self.args.profile.value}
            self.config.load_overrides({"kfdex": {key: value for key, value in given.items() if value not in (None, False)}}, merge=False)
            if merge:
                self.config.merge()
        except Exception as error:  # the file is the person's input: yaml, json or Python, so any error
            named = f"-f {shown(self.args.config.value)}" if self.args.config.value else "INVOKE_RUNTIME_CONFIG"
            reason = "it reads only .yaml, .yml, .json and .py files" if isinstance(error, UnknownFileType) else _first_line(error)
            raise Exit(
                f"error: {named}: Invoke cannot load it as configuration ({reason}): fix the file, or leave it out",
                code=int(ExitCode.USAGE),
            ) from None


def _copy(argument: Argument, names: tuple[str, ...] | None = None, text: str | None = None) -> Argument:
    """A fresh Argument like ``argument`` (a parse stores its value in the object), under ``names`` and with help ``text`` when given."""
    return Argument(
        names=names or argument.names, kind=argument.kind, default=argument.default, help=text or argument.help, optional=argument.optional
    )


def _first_line(error: Exception) -> str:
    """``TypeName: the first line of its message``, whole."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def main() -> None:
    """The installed ``kfdex`` command: the same tasks as ``invoke`` in a checkout, with ./.env as the state."""
    import os
    import sys

    from .. import __version__
    from .catalog import COMMANDS

    collection = build_collection(COMMANDS)
    collection.configure({"kfdex": {"program": "kfdex"}})
    try:
        KfDexProgram(namespace=collection, name="kfdex", binary="kfdex", version=__version__).run()
    except BrokenPipeError:  # `kfdex doctor | head -1`: the reader left before the end, so the outcome is unknown
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        sys.exit(ExitCode.OUTPUT_CLOSED)  # what a Unix tool killed by SIGPIPE reports: never success
