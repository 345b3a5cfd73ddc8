"""What the tool prints: progress and warnings on stderr, data on stdout, secrets masked.

One module owns every line a person sees, so that masking is applied in one
place.  ``show_secrets`` is switched on only by ``--show-secrets``.
"""

from __future__ import annotations

import sys
from typing import TextIO

_settings = {"show_secrets": False}

_CHECK = "✓"
_SKIP = "·"
_CROSS = "✗"


def reveal_secrets(show: bool) -> None:
    """Turn masking off (True) or on (False) for the rest of this process."""
    _settings["show_secrets"] = show


def mask(value: str) -> str:
    """A secret shortened to its first and last three characters, unless revealing."""
    if _settings["show_secrets"]:
        return value
    if len(value) <= 12:
        return "…" if value else ""
    return f"{value[:3]}…{value[-3:]}"


def mask_cookie_header(header: str) -> str:
    """``a=secret; b=secret`` with each value masked and each name kept."""
    parts = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        parts.append(f"{name}{sep}{mask(value)}" if sep else mask(name))
    return "; ".join(parts)


def _stream(stream: TextIO | None) -> TextIO:
    return stream if stream is not None else sys.stderr


def step_ok(step: str, detail: str, stream: TextIO | None = None) -> None:
    """``✓ step  detail`` on stderr: a step finished."""
    print(f"{_CHECK} {step:<16} {detail}", file=_stream(stream), flush=True)


def step_skipped(step: str, detail: str, stream: TextIO | None = None) -> None:
    """``· step  detail``: a step had nothing to do here and succeeded."""
    print(f"{_SKIP} {step:<16} {detail}", file=_stream(stream), flush=True)


def step_failed(step: str, detail: str, stream: TextIO | None = None) -> None:
    """``✗ step  detail``: a step failed."""
    print(f"{_CROSS} {step:<16} {detail}", file=_stream(stream), flush=True)


def info(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    """The one-line error a failed command ends with."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def data(text: str) -> None:
    """Output meant for the user or a pipe: stdout."""
    print(text, file=sys.stdout, flush=True)
