"""The single error boundary: a project error becomes one line on stderr and its documented exit code.

Every command (Invoke task or ``python -m scripts.<step>``) runs inside
``guarded``.  A ``KfDexError`` prints ``error: <message>`` through the
environment and leaves through ``invoke.Exit`` with its code; anything else is
a bug and keeps its traceback.  ``--debug`` (Invoke's or the script's) or
``KFDEX_DEBUG=1`` adds the traceback to project errors too.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from invoke import Exit

from .environment import Environment
from .errors import ExitCode, KfDexError


def debug_requested(environment: Environment) -> bool:
    """True when tracebacks were asked for (``invoke --debug``, ``--debug`` or ``KFDEX_DEBUG=1``)."""
    flag = environment.variables.get("KFDEX_DEBUG", "")
    return flag not in ("", "0") or logging.getLogger().isEnabledFor(logging.DEBUG)


@contextmanager
def guarded(environment: Environment, debug: bool = False) -> Iterator[None]:
    """Turn project errors into one line and their exit code (raised as ``invoke.Exit``)."""
    try:
        yield
    except KfDexError as error:
        if debug or debug_requested(environment):
            traceback.print_exc(file=environment.stderr)
        environment.error(error.message)
        raise Exit(code=int(error.exit_code)) from None
    except KeyboardInterrupt:
        environment.error("interrupted")
        raise Exit(code=int(ExitCode.INTERRUPTED)) from None
