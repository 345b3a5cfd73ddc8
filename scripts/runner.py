"""Running one step against the .env file, and the single error boundary.

A step is a function ``run(state, **options) -> StepResult``: it reads what it
needs from the state and returns the keys it produced.  ``run_step`` reads the
.env file, calls the step, writes the keys back and prints the step's line.
``main`` is the boundary for ``python -m scripts.<step>``; ``tasks.py`` uses
``guarded`` for the same mapping of errors to one line and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import console
from .errors import ExitCode, KfDexError
from .state import EnvFile, State


@dataclass
class StepResult:
    """What a step produced: keys to write (None removes one) and a line for the person."""

    updates: Mapping[str, str | None] = field(default_factory=dict)
    summary: str = ""
    skipped: bool = False
    output: str | None = None  # data for stdout (infer's answer)


Step = Callable[..., StepResult]


def run_step(
    name: str, step: Step, env_file: EnvFile | None = None, overrides: Mapping[str, str] | None = None, **options: Any
) -> StepResult:
    """Read the state (with ``overrides`` from the command line), run one step, write what it produced, print its line."""
    env = env_file or EnvFile()
    state = env.read().with_overrides(overrides)
    try:
        result = step(state, **options)
    except KfDexError:
        console.step_failed(name, "failed")
        raise
    env.update(result.updates)
    if result.skipped:
        console.step_skipped(name, result.summary)
    else:
        console.step_ok(name, result.summary)
    if result.output is not None:
        console.data(result.output)
    return result


def debug_requested() -> bool:
    """True when tracebacks were asked for (``invoke --debug``, ``--debug`` or ``KFDEX_DEBUG=1``)."""
    return os.environ.get("KFDEX_DEBUG", "") not in ("", "0") or logging.getLogger().isEnabledFor(logging.DEBUG)


@contextmanager
def guarded(debug: bool = False) -> Iterator[None]:
    """Turn project errors into one line and their exit code (raised as SystemExit)."""
    try:
        yield
    except KfDexError as error:
        if debug or debug_requested():
            traceback.print_exc()
        console.error(error.message)
        raise SystemExit(int(error.exit_code)) from None
    except KeyboardInterrupt:
        console.error("interrupted")
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None


def main(name: str, step: Step, describe: str, add_options: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """Command line for ``python -m scripts.<step>``: runs the step against $ENV_FILE or ./.env."""
    parser = argparse.ArgumentParser(prog=f"python -m scripts.{name.replace('-', '_')}", description=describe)
    parser.add_argument("--env-file", type=Path, help="the .env file (default: $ENV_FILE, else .env beside tasks.py)")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.add_argument("--show-secrets", action="store_true", help="print cookies and tokens unmasked")
    if add_options:
        add_options(parser)
    arguments = vars(parser.parse_args())
    env_path = arguments.pop("env_file")
    debug = arguments.pop("debug")
    console.reveal_secrets(arguments.pop("show_secrets"))
    with guarded(debug):
        run_step(name, step, EnvFile(env_path), **arguments)
    sys.exit(0)


def read_state(env_file: EnvFile | None = None) -> State:
    """The current state (for tasks that only look)."""
    return (env_file or EnvFile()).read()
