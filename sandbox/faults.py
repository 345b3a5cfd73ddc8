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

import time
from typing import Any

from .httpserve import App, Reply, Request

ENVOY_WORDS = {
    502: b"upstream connect error or disconnect/reset before headers. reset reason: connection termination",
    503: b"no healthy upstream",
    504: b"upstream request timeout",
}


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
