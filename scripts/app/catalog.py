"""Every task the client declares: the steps found at the top of ``scripts/``, the commands listed here.

A module at the top of ``scripts/`` is one documented step and declares it with a
module-level ``STEP``; adding a step is writing its module.  Steps are listed in
the order their keys flow (a step comes after the steps that write what it
reads), so they need no hand-kept list.  The other tasks are named below, module
by module: a file dropped into a folder never becomes a task, and a module at the
top of ``scripts/`` that declares no step is refused.  This imports the step and
command modules, never Invoke's program or the sandbox.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

from ..commands import credential, doctor, init, load_tasks, login, logout, profiles, sandbox_tasks, status
from ..core.errors import DeclarationError
from ..core.step import Declaration, Step

COMMAND_MODULES: tuple[ModuleType, ...] = (login, logout, status, credential, profiles, init, doctor, load_tasks, sandbox_tasks)


def discover_steps(folder: Path, package: str) -> list[Step]:
    """The ``STEP`` of every module directly in ``folder`` (the package ``package``); subpackages are the layers."""
    steps = []
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda info: info.name):
        if info.ispkg or info.name == "__main__":
            continue
        step = getattr(importlib.import_module(f"{package}.{info.name}"), "STEP", None)
        if not isinstance(step, Step):
            raise DeclarationError(
                f"{folder / info.name}.py declares no STEP: the top of {package}/ holds the steps only; "
                "put a library module in its layer (docs/architecture.md)"
            )
        steps.append(step)
    return steps


def _flow_order(steps: list[Step]) -> tuple[Step, ...]:
    """Steps sorted so that each comes after those that produce the keys it reads (ties by name).

    A step that reads a key and writes it back (LOGIN_COOKIES) carries it on: it is not its producer.
    """
    writers = {
        key: {step.name for step in steps if key in step.writes and key not in step.reads} for step in steps for key in step.reads
    }
    placed: list[Step] = []
    waiting = sorted(steps, key=lambda step: step.name)
    while waiting:
        done = {step.name for step in placed}
        ready = next(
            (step for step in waiting if all(writers[key] <= done for key in step.reads)),
            waiting[0],  # a cycle: keep going in name order rather than stop
        )
        placed.append(ready)
        waiting.remove(ready)
    return tuple(placed)


STEPS: tuple[Step, ...] = _flow_order(discover_steps(Path(__file__).resolve().parent.parent, __package__.rpartition(".")[0]))
COMMANDS: tuple[Declaration, ...] = (*STEPS, *(command for module in COMMAND_MODULES for command in module.COMMANDS))
