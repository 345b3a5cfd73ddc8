"""``python -m scripts.<step>``: one step as a script, its options taken from its declaration."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from invoke import Exit

from .boundary import guarded
from .environment import Environment
from .state import EnvFile, checkout_folder
from .step import SHOW_SECRETS, Step


def _file_name(text: str) -> Path:
    """``--env-file``'s value: a file name (an empty one would name the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a file name, such as .env")
    return Path(text)


def _parser(step: Step) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__.rpartition('.')[0]}.{step.name.replace('-', '_')}", description=step.summary)
    parser.add_argument(
        "--env-file", type=_file_name, help="the .env file (default: $ENV_FILE, else .env beside tasks.py in a checkout, else ./.env)"
    )
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    for option in (*step.options, SHOW_SECRETS):
        if option.kind is bool:
            parser.add_argument(option.flag, dest=option.name, action="store_true", help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.name, type=option.kind, default=option.default, help=option.help)
    return parser


def main(step: Step, argv: list[str] | None = None) -> None:
    """Run ``step`` against ``--env-file``, $ENV_FILE or ./.env; exits with the step's code."""
    given = vars(_parser(step).parse_args(argv))
    environment = Environment.from_process(show_secrets=given.pop("show_secrets"), verbose=bool(given.pop("verbose", False)))
    if checkout_folder() is None:  # installed: the hints name the kfdex command, not a checkout's invoke
        environment = dataclasses.replace(environment, program="kfdex")
    path = given.pop("env_file")
    debug = given.pop("debug")
    try:
        with guarded(environment, debug):
            env_file = EnvFile(path, environment.variables) if path else EnvFile.for_variables(environment.variables, checkout_folder())
            step.execute(env_file, environment, given)  # the options checked and split, --curl honoured
    except Exit as leaving:
        sys.exit(leaving.code)
    sys.exit(0)
