"""The injected environment: where output goes, whether secrets show, who is at the keyboard, and the clock.

One ``Environment`` is made per command (from the process, or by a test with
in-memory streams and a fixed clock) and passed from the task down to the
steps, the HTTP layer and every line a person sees, so that masking is applied
in one place and nothing reads process globals.  Progress, warnings and errors
go to ``stderr``; data (infer's answer, status) goes to ``stdout``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO
from urllib.parse import parse_qsl, urlsplit, urlunsplit

_CHECK = "✓"
_SKIP = "·"
_CLEAR_LINE = "\r\x1b[K"  # back to the start of the line, and erase it
_TRUE = ("1", "true", "yes", "on")
_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # what str.splitlines() and terminals break on


def verbose_requested(variables: Mapping[str, str]) -> bool:
    """True when ``KFDEX_VERBOSE`` asks for every hop to be shown."""
    return variables.get("KFDEX_VERBOSE", "").strip().lower() in _TRUE


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
    verbose: bool = False  # every HTTP hop and kubectl command on stderr (--verbose, KFDEX_VERBOSE=1)
    _live: bool = field(default=False, init=False, repr=False)  # a progress line is on stderr, not ended yet

    @classmethod
    def from_process(cls, show_secrets: bool = False, verbose: bool = False) -> Environment:
        """The real process: sys streams, the real clock, stdin's terminal status, os.environ."""
        return cls(
            sys.stdout,
            sys.stderr,
            show_secrets,
            interactive=sys.stdin.isatty(),
            variables=os.environ,
            verbose=verbose or verbose_requested(os.environ),
        )

    @property
    def stderr_is_terminal(self) -> bool:
        """True when stderr is a terminal: a progress line can be rewritten in place there."""
        try:
            return bool(self.stderr.isatty())
        except (AttributeError, ValueError):  # a closed or minimal stream
            return False

    def now(self) -> datetime:
        """The current time by this environment's clock."""
        return self.clock()

    # masking -----------------------------------------------------------------

    def mask(self, value: str) -> str:
        """A generated secret (cookie, token, one-time code) shortened to its first and last three characters, unless secrets are shown."""
        if self.show_secrets:
            return value
        if len(value) <= 12:
            return "…" if value else ""
        return f"{value[:3]}…{value[-3:]}"

    def mask_password(self, value: str) -> str:
        """A secret a person chose, with no character of it (nor its length) shown, unless secrets are shown."""
        if self.show_secrets:
            return value
        return "…" if value else ""

    def mask_cookie_header(self, header: str) -> str:
        """``a=secret; b=secret`` with each value masked and each name kept."""
        parts = []
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            parts.append(f"{name}{sep}{self.mask(value)}" if sep else self.mask(name))
        return "; ".join(parts)

    def mask_url(self, url: str) -> str:
        """The URL with every query value masked (names kept), unless secrets are shown: queries carry one-time codes."""
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if not pairs or self.show_secrets:
            return url
        query = "&".join(f"{name}={self.mask(value)}" for name, value in pairs)
        return urlunsplit(parts._replace(query=query))

    # lines -------------------------------------------------------------------

    def in_own_words(self, text: str) -> str:
        """Messages name the next command as `invoke TASK`: say it the way this person runs the tool (`kfdex TASK`)."""
        return text if self.program == "invoke" else text.replace("`invoke ", f"`{self.program} ")

    def _line(self, stream: TextIO, text: str) -> None:
        text = self.in_own_words(text)
        if self._live and stream is self.stderr:  # a line of its own, not glued to the progress line
            stream.write(_CLEAR_LINE)
            self._live = False
        print(text, file=stream, flush=True)

    def progress(self, message: str, on_terminal: str | None = None) -> None:
        """How a wait goes: on a terminal one line rewritten in place (``on_terminal``), elsewhere a line each time."""
        if not self.stderr_is_terminal:
            self._line(self.stderr, message)
            return
        self.stderr.write(_CLEAR_LINE + (on_terminal or message))
        self.stderr.flush()
        self._live = True

    def progress_done(self) -> None:
        """End the progress line on a terminal (it stays on screen as it last read)."""
        if self._live:
            self.stderr.write("\n")
            self.stderr.flush()
            self._live = False

    def hop(self, what: str, target: str, outcome: str, *, cookies_sent: Iterable[str] = (),
            cookies_set: Iterable[str] = (), location: str = "", milliseconds: float | None = None) -> None:
        """With --verbose, one line per HTTP hop or command run: ``GET URL → 302 Location: …``.

        URLs have their query values masked (unless secrets are shown); cookies are named, never valued.
        """
        if not self.verbose:
            return
        line = f"> {what} {self.mask_url(target) if '://' in target else target} → {outcome}"
        if location:
            line += f"; Location: {self.mask_url(location)}"
        sent, set_ = list(cookies_sent), list(cookies_set)
        if sent:
            line += f"; sent cookies: {', '.join(sent)}"
        if set_:
            line += f"; set cookies: {', '.join(set_)}"
        if milliseconds is not None:
            line += f" ({milliseconds:.0f} ms)"
        self._line(self.stderr, line)

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
        """The one-line error a failed command ends with (a line break inside a value it quotes is shown escaped)."""
        self._line(self.stderr, "error: " + _LINE_BREAK.sub(lambda found: repr(found.group())[1:-1], message))

    def data(self, text: str) -> None:
        """Output meant for the user or a pipe: stdout."""
        self._line(self.stdout, text)
