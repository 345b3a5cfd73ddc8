"""What a usable value is, checked in one place for command-line options and .env settings alike.

``Number`` says what kind of number a value must be and its bounds; an option
(``--attempts 0``) and the setting it overrides (``RETRY_ATTEMPTS=0``) are
checked by the same ``Number`` and refused with the same words.  ``host_problem``
says what is wrong with a host name (a scheme, a port or a path inside it).
``shown`` puts a value in a message: quoted, shortened, and never a secret.
Every refusal is a ``UsageError`` (exit 2): the value is there but cannot be used.
This module imports nothing heavy, so that listing tasks stays cheap.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import UsageError
from .keys import is_secret

SHOWN_LENGTH = 40  # characters of a value quoted in a message
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_KUBERNETES_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_text(value: str) -> bool:
    """False for a value holding bytes that were not UTF-8 (an environment variable or argument decoded with surrogateescape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clipped(text: str, limit: int = 160) -> str:
    """``text`` cut to about ``limit`` characters at a space, never inside a word, number or address; ``…`` marks the cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space].rstrip(" ,;:") if space > 0 else head) + " …"


def shown(value: str, key: str = "") -> str:
    """A value for a message: quoted (control characters visible), shortened, masked for a secret key."""
    if key and is_secret(key):
        return "'…'"
    if len(value) > SHOWN_LENGTH:
        return repr(value[:SHOWN_LENGTH]) + "…"
    return repr(value)


def _plain(bound: float) -> str:
    """``1000000`` rather than ``1e+06``: a bound as a person writes it."""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e15 else f"{bound:g}"


@dataclass(frozen=True)
class Number:
    """A number a person gives: whole or not, and its bounds."""

    kind: type = float  # int or float
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # strictly more than this (a timeout of 0 would be no timeout)
    unit: str = ""  # " seconds"

    @property
    def wanted(self) -> str:
        """``1 or more``, ``from 1 to 65535``, ``more than 0 seconds``."""
        if self.minimum is not None and self.maximum is not None:
            return f"from {_plain(self.minimum)} to {_plain(self.maximum)}{self.unit}"
        if self.above is not None and self.maximum is not None:
            return f"more than {_plain(self.above)} and at most {_plain(self.maximum)}{self.unit}"
        if self.above is not None:
            return f"more than {_plain(self.above)}{self.unit}"
        if self.minimum is not None:
            return f"{_plain(self.minimum)}{self.unit} or more"
        return f"a number{self.unit}"

    def _fits(self, value: float) -> bool:
        return (
            (isinstance(value, int) or math.isfinite(value))  # a whole number of 400 digits is finite, and too big for a float
            and (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.above is None or value > self.above)
        )

    def check(self, value: float, label: str, fix: str = "") -> None:
        """A UsageError ``<label>: give <wanted>[, or <fix>]`` for a value out of bounds."""
        if not self._fits(value):
            raise UsageError(f"{label}: give {self.wanted}{_then(fix)}")

    def parse(self, text: str, label: str, fix: str = "") -> float:
        """The number in ``text`` (an int for whole numbers), checked like an option's value."""
        try:
            value = self.kind(text.strip())
        except (ValueError, OverflowError):
            whole = "whole " if self.kind is int else ""
            raise UsageError(f"{label} is not a {whole}number: give {self.wanted}{_then(fix)}") from None
        self.check(value, label, fix)
        return value


def _then(fix: str) -> str:
    return f", or {fix}" if fix else ""


COUNT = Number(int, minimum=1)  # attempts
SECONDS = Number(float, minimum=0, unit=" seconds")  # a deadline or a wait
TIMEOUT = Number(float, above=0, unit=" seconds")  # how long to wait for an answer
PORT = Number(int, minimum=1, maximum=65535)
MAX_PARALLEL = 1024  # connections, threads or processes one run may open
PARALLEL = Number(int, minimum=1, maximum=MAX_PARALLEL)  # load's concurrency, Locust's local workers
OR_NONE = Number(int, minimum=0)  # warmup requests
RATE = Number(float, above=0, unit=" per second")  # Locust's spawn rate
# load's --rate and --sweep: a million sends a second is far past what one client process can send (README's bench)
LOAD_RATE = Number(float, above=0, maximum=1_000_000, unit=" per second")
LATENCY_MS = Number(float, above=0, unit=" ms")  # load's --slo-p99
_TIMESPAN = re.compile(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?")


MAX_TIMESPAN = 30 * 86400  # seconds: a run longer than a month is a typo


def timespan(text: str, label: str) -> int:
    """Seconds in a Locust time span (``30s``, ``5m``, ``1h30m``, or whole seconds), more than 0; else a UsageError."""
    cleaned = text.strip().lower()
    found = _TIMESPAN.fullmatch(cleaned) if cleaned and not cleaned.isdigit() else None
    if cleaned.isdigit():
        seconds = int(cleaned)
    elif found:
        hours, minutes, secs = (int(part or 0) for part in found.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise UsageError(f"{label} {shown(text)}: give a time span such as 30s, 5m, 1h or 1h30m")
    if seconds <= 0:
        raise UsageError(f"{label} {shown(text)}: give more than 0 seconds, such as 30s")
    if seconds > MAX_TIMESPAN:  # Locust's own parsing fails past C's int, after its processes started
        raise UsageError(f"{label} {shown(text)}: give at most {MAX_TIMESPAN // 3600}h (30 days)")
    return seconds


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text  # a zone index cannot go in a URL as is


def is_host(text: str) -> bool:
    """True for an IP address (IPv6 with or without brackets) or a DNS name of letters, digits, - and _."""
    if text.startswith("[") and text.endswith("]"):
        return ":" in text and _is_ip(text[1:-1])
    if _is_ip(text):
        return True
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def url_host(host: str) -> str:
    """The host as it goes in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_problem(text: str, port_key: str = "") -> str | None:
    """What keeps ``text`` from being a host name, with the fix; None when it is one.

    With no ``port_key`` a ``host:port`` is accepted (a Host header); else the port belongs in that key.
    """
    host, colon, port = text.rpartition(":")
    if is_host(text) or (not port_key and colon and port.isdigit() and PORT._fits(int(port)) and is_host(host)):
        return None
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname or "the host"
        return f"has a scheme: give the host alone ({host}), and the scheme in INGRESS_SCHEME"
    if colon and port.isdigit() and is_host(host):
        return f"has a port: give the host alone ({host}) and the port ({port}) in {port_key or 'the host'}"
    host, slash, _path = text.partition("/")
    if slash and is_host(host):
        return f"has a path: give the host alone ({host})"
    return "is not a host name or IP address"


def is_kubernetes_name(text: str) -> bool:
    """True for a Kubernetes object name (DNS-1123: lower-case letters, digits, - and ., at most 253)."""
    return len(text) <= 253 and _KUBERNETES_NAME.fullmatch(text) is not None
