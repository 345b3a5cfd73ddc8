"""The single error boundary: a project error becomes one line on stderr and its documented exit code.

Every command (Invoke task or ``python -m scripts.<step>``) runs inside
``guarded``.  A ``KfDexError`` prints ``error: <message>`` through the
environment and leaves through ``invoke.Exit`` with its code; anything else is
a bug and keeps its traceback.  ``--debug`` (Invoke's or the script's) or
``KFDEX_DEBUG=1`` adds the traceback to project errors too.

Signals end a command the way Ctrl-C does: SIGINT, SIGTERM and SIGHUP raise
``Interrupted`` (a ``KeyboardInterrupt``) in the main thread, so every
``finally`` and context manager on the way out runs (partial reports, started
processes stopped by pid, temporary folders removed), and the command exits
128 + the signal's number (130 for Ctrl-C).  Only the first signal raises: one
arriving while that cleanup runs is remembered, not allowed to cut it short.
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from invoke import Exit

from .environment import Environment
from .errors import KfDexError


def debug_requested(environment: Environment) -> bool:
    """True when tracebacks were asked for (``invoke --debug``, ``--debug`` or ``KFDEX_DEBUG=1``)."""
    flag = environment.variables.get("KFDEX_DEBUG", "")
    return flag not in ("", "0") or logging.getLogger().isEnabledFor(logging.DEBUG)


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each ends a command as Ctrl-C does


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) received while a command ran; raised where the main thread was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_as_interrupts() -> Iterator[list[int]]:
    """Meanwhile, the first of ``SIGNALS`` raises ``Interrupted``; every one received is listed in what this yields."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set from the main thread
        yield received
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum)

    previous = {number: signal.signal(number, interrupt) for number in SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def guarded(environment: Environment, debug: bool = False) -> Iterator[None]:
    """Turn project errors into one line and their exit code (raised as ``invoke.Exit``); signals into 128 + signal."""
    with signals_as_interrupts() as received:
        try:
            yield
        except KfDexError as error:
            if debug or debug_requested(environment):
                traceback.print_exc(file=environment.stderr)
            environment.error(error.message)
            raise Exit(code=int(error.exit_code)) from None
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", received[0] if received else signal.SIGINT)
            name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
            environment.error(f"interrupted{name}")
            raise Exit(code=128 + int(signum)) from None
