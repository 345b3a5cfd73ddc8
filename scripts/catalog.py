"""Every command the client declares, found in the modules of this package: adding a step is writing its module.

A module declares a step with a module-level ``STEP`` and other tasks with a
``COMMANDS`` tuple.  Steps are listed in the order their keys flow (a step
comes after the steps that write what it reads), so the catalog needs no hand
kept list.  This imports the step modules, never Invoke's program or the sandbox.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from .step import Command, Declaration, Step


def _modules() -> list[object]:
    # declarations live in this package's own modules; subpackages (scripts/load) hold libraries only
    names = sorted(info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]) if not info.ispkg)
    return [importlib.import_module(f".{name}", __package__) for name in names if name != "__main__"]


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


_MODULES = _modules()
STEPS: tuple[Step, ...] = _flow_order([module.STEP for module in _MODULES if isinstance(getattr(module, "STEP", None), Step)])
COMMANDS: tuple[Declaration, ...] = (
    *STEPS,
    *(command for module in _MODULES for command in getattr(module, "COMMANDS", ()) if isinstance(command, Command)),
)
