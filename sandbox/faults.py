"""Faults the sandbox injects, shaped as a real cluster shows them.

A fault matches requests by path prefix (and method, if given) and answers the
first ``count`` of them with ``status`` (Envoy's words for 502/503/504), after
``delay`` seconds if set.  With ``after`` the request is first passed on, so
it takes effect upstream, and only the answer is lost: a gateway timing out on
a slow Dex, as users of the manual recipe saw on approval.  Faults are part of
the gateway settings, so tests change them at run time through
``/sandbox/config`` and ``invoke sandbox-up --settings FILE`` sets them at start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .httpserve import App, Reply, Request

ENVOY_WORDS = {
    502: b"upstream connect error or disconnect/reset before headers. reset reason: connection termination",
    503: b"no healthy upstream",
    504: b"upstream request timeout",
}


class BadSetting(ValueError):
    """A sandbox setting that cannot be used; the message names the field, its value and what it takes."""


def is_status(value: object) -> bool:
    """An HTTP status code: a whole number from 100 to 599."""
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def is_count(value: object) -> bool:
    """A whole number, zero or more."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_seconds(value: object) -> bool:
    """A finite number of seconds, zero or more."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


FAULT_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "path": (lambda value: isinstance(value, str) and value.startswith("/"), "a path starting with /"),
    "method": (lambda value: isinstance(value, str) and value.isalpha(), "an HTTP method such as POST"),
    "status": (is_status, "an HTTP status, a whole number from 100 to 599"),
    "count": (is_count, "a whole number, zero or more"),
    "delay": (is_seconds, "seconds, a number zero or more"),
    "after": (lambda value: isinstance(value, bool), "true or false"),
}


def check_faults(faults: object, name: str = "faults") -> None:
    """Raise BadSetting naming the first field of ``faults`` that a fault cannot take."""
    if not isinstance(faults, list):
        raise BadSetting(f"{name} {faults!r}: give a list of faults (objects with path, status, count, ...)")
    for index, fault in enumerate(faults):
        where = f"{name}[{index}]"
        if not isinstance(fault, dict):
            raise BadSetting(f"{where} {fault!r}: give an object with path, status, count, ...")
        for field, value in fault.items():
            if field not in FAULT_FIELDS:
                raise BadSetting(f"{where}.{field}: no such fault field; use {', '.join(FAULT_FIELDS)}")
            accepts, wanted = FAULT_FIELDS[field]
            if not accepts(value):
                raise BadSetting(f"{where}.{field} {value!r}: give {wanted}")


def envoy_reply(status: int) -> Reply:
    """An answer as istio-envoy gives it for a gateway error."""
    return Reply(status, ENVOY_WORDS.get(status, b"gateway error"), [("server", "istio-envoy")])


def take(faults: list[dict[str, Any]], request: Request) -> dict[str, Any] | None:
    """The first fault that matches the request and has count left (the count is decremented)."""
    for fault in faults:
        if fault.get("count", 1) <= 0:
            continue
        if not request.path.startswith(fault.get("path", "/")):
            continue
        if fault.get("method") and fault["method"].upper() != request.method:
            continue
        fault["count"] = fault.get("count", 1) - 1
        return dict(fault)
    return None


class Faulty:
    """Wraps an app so that the world's faults apply to it."""

    def __init__(self, world: Any, app: App) -> None:
        self.world = world
        self.app = app

    def __call__(self, request: Request) -> Reply:
        with self.world.lock:
            fault = take(self.world.settings.faults, request)
        if fault is None:
            return self.app(request)
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("after"):
            self.app(request)
        status = int(fault.get("status") or 0)
        return envoy_reply(status) if status else self.app(request)
