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
One that a finalizer swallowed is raised again before the next step; one that
code caught and dropped still makes the command exit as interrupted.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass
class _Interrupts:
    """The signals one command received, and where its ``Interrupted`` is."""

    received: list[int] = field(default_factory=list)
    raised: Interrupted | None = None  # on its way out: another signal only joins ``received``
    lost: Interrupted | None = None  # raised inside a finalizer, which printed and dropped it: raised again between steps


_current: _Interrupts | None = None  # the command's, while ``signals_as_interrupts`` holds


def raise_lost_interrupt() -> None:
    """Raise again an ``Interrupted`` that a finalizer swallowed (called between steps, so the command stops there)."""
    interrupts = _current
    if interrupts is not None and interrupts.lost is not None and interrupts.raised is None:
        interrupts.raised, interrupts.lost = interrupts.lost, None
        raise interrupts.raised


@contextmanager
def signals_as_interrupts() -> Iterator[list[int]]:
    """Meanwhile, the first of ``SIGNALS`` raises ``Interrupted``; every one received is listed in what this yields.

    A handler that runs inside a finalizer (``__del__``, a weakref callback)
    raises where Python prints the exception and goes on: that ``Interrupted``
    is kept as lost, raised again by ``raise_lost_interrupt``, and the next
    signal raises one of its own.
    """
    global _current
    interrupts = _Interrupts()
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set from the main thread
        yield interrupts.received
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        interrupts.received.append(signum)
        if interrupts.raised is None:
            interrupts.raised, interrupts.lost = Interrupted(signum), None
            raise interrupts.raised

    def unraisable(what: sys.UnraisableHookArgs) -> None:
        if interrupts.raised is not None and what.exc_value is interrupts.raised:
            interrupts.lost, interrupts.raised = interrupts.raised, None
        else:
            previous_hook(what)

    previous = {number: signal.signal(number, interrupt) for number in SIGNALS}
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    outer, _current = _current, interrupts
    try:
        yield interrupts.received
    finally:
        _current = outer
        sys.unraisablehook = previous_hook
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def guarded(environment: Environment, debug: bool = False) -> Iterator[None]:
    """Turn project errors into one line and their exit code (raised as ``invoke.Exit``); signals into 128 + signal."""
    with signals_as_interrupts() as received:
        try:
            yield
            if received:  # an interrupt that was lost or caught and dropped: the command still ends as interrupted
                raise Interrupted(received[0])
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
