"""The injected environment: where output goes, whether secrets show, who is at the keyboard, and the clock.

One ``Environment`` is made per command (from the process, or by a test with
in-memory streams and a fixed clock) and passed from the task down to the
steps, the HTTP layer and every line a person sees, so that masking is applied
in one place and nothing reads process globals.  Progress, warnings and errors
go to ``stderr``; data (infer's answer, status) goes to ``stdout``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO

_CHECK = "✓"
_SKIP = "·"


def utc_now() -> datetime:
    """The real clock, timezone-aware."""
    return datetime.now(timezone.utc)


@dataclass
class Environment:
    """Output streams, the secrets switch, terminal detection, the clock and the sleeper of one command."""

    stdout: TextIO
    stderr: TextIO
    show_secrets: bool = False
    interactive: bool = False  # a person can be asked (stdin is a terminal)
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    variables: Mapping[str, str] = field(default_factory=dict)  # the process environment (ENV_FILE, KFDEX_DEBUG)
    program: str = "invoke"  # how the person runs tasks: `invoke login` in a checkout, `kfdex login` installed

    @classmethod
    def from_process(cls, show_secrets: bool = False) -> Environment:
        """The real process: sys streams, the real clock, stdin's terminal status, os.environ."""
        return cls(sys.stdout, sys.stderr, show_secrets, interactive=sys.stdin.isatty(), variables=os.environ)

    def now(self) -> datetime:
        """The current time by this environment's clock."""
        return self.clock()

    # masking -----------------------------------------------------------------

    def mask(self, value: str) -> str:
        """A secret shortened to its first and last three characters, unless secrets are shown."""
        if self.show_secrets:
            return value
        if len(value) <= 12:
            return "…" if value else ""
        return f"{value[:3]}…{value[-3:]}"

    def mask_cookie_header(self, header: str) -> str:
        """``a=secret; b=secret`` with each value masked and each name kept."""
        parts = []
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            parts.append(f"{name}{sep}{self.mask(value)}" if sep else self.mask(name))
        return "; ".join(parts)

    # lines -------------------------------------------------------------------

    def _line(self, stream: TextIO, text: str) -> None:
        # messages name the next command as `invoke TASK`: say it the way this person runs the tool
        if self.program != "invoke":
            text = text.replace("`invoke ", f"`{self.program} ")
        print(text, file=stream, flush=True)

    def step_ok(self, step: str, detail: str) -> None:
        """``✓ step  detail`` on stderr: a step finished."""
        self._line(self.stderr, f"{_CHECK} {step:<16} {detail}")

    def step_skipped(self, step: str, detail: str) -> None:
        """``· step  detail``: a step had nothing to do here and succeeded."""
        self._line(self.stderr, f"{_SKIP} {step:<16} {detail}")

    def info(self, message: str) -> None:
        """A progress line on stderr."""
        self._line(self.stderr, message)

    def warn(self, message: str) -> None:
        """A warning line on stderr."""
        self._line(self.stderr, f"warning: {message}")

    def error(self, message: str) -> None:
        """The one-line error a failed command ends with."""
        self._line(self.stderr, f"error: {message}")

    def data(self, text: str) -> None:
        """Output meant for the user or a pipe: stdout."""
        self._line(self.stdout, text)
