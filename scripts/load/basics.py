"""What every load engine shares: the target, the status names, the timing limits and the thread worker.

``engine`` (threads over ``http.client``), ``curlmulti`` (libcurl's multi
interface) and ``rate`` (a fixed arrival rate) build on these; nothing here
imports them, so the choice of engine can be made above all three.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations
    from .engine import Sender, _Run

CONNECTION_ERROR = "connection-error"
TIMEOUT = "timeout"
LATE_AFTER_S = 0.001  # a send that leaves later than this after its due time is late
GRACE_S = 0.1  # sends still waiting this long after the window's end are skipped


@dataclass(frozen=True)
class LoadTarget:
    """What every request of a run sends: the same method, URL, headers and body."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)  # includes the credential and Host, if any
    body: bytes = b""
    timeout: float = 30.0
    verify: bool | str = True  # https only: False, or a CA bundle path


def succeeded(status: str) -> bool:
    """A 2xx HTTP status, or gRPC's OK."""
    return status.startswith("2") or status == "OK"


def refused_mid_run(run: Any, status: str) -> None:
    """End the run: the gateway asked for a login (status ``status``): the session is over, or was never taken."""
    run.session_expired = True
    run.note = f"the gateway answered {status} asking for a login"
    run.stop.set()


class _Worker:
    """One thread: its sender and its samples."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.offsets: array[float] = array("d")
        self.latencies: array[int] = array("q")
        self.codes: list[str] = []
        self.statuses: Counter[str] = Counter()
        self.done = 0  # this phase's requests and failures, read by the progress line
        self.failed = 0

    def record(self, offset: float, seconds: float, status: str) -> None:
        """One counted answer: when it was sent (seconds into the run), how long it took, and its status."""
        self.offsets.append(offset)
        self.latencies.append(max(1, round(seconds * 1_000_000)))
        self.codes.append(status)
        self.statuses[status] += 1

    def loop(self, run: _Run) -> None:
        clock = run.clock
        while run.ticket():
            began = clock()
            status, refused = self.sender.send()
            took = clock() - began
            if run.record:
                self.record(began - run.started, took, status)
            self.done += 1
            self.failed += not succeeded(status)
            if refused:
                refused_mid_run(run, status)
