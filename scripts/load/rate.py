"""Fixed-rate load behind ``kfdex load --rate R``: an open model, as wrk2 and vegeta send it.

Request *i* of a run is due at ``i / R`` seconds after the start, whatever
happened to the ones before it.  ``connections`` workers (each over its own
keep-alive connection, as wrk2's ``-c``) take the due times in order; a worker
that is free before its request is due waits for it, one that is still busy
sends it late.  Each latency counts from the request's *due* time, not from
when it left, so time spent queueing in the client while the server stalled
is part of the figures (coordinated omission corrected, as wrk2 and vegeta
do).  Nothing quietly lowers the rate: a send that leaves more than
``LATE_AFTER_S`` after its due time is counted as late, sends still waiting
when the run's window closes are not sent and are counted as skipped, and the
achieved rate is what was sent over the window.

The workers, senders and report are the closed-loop engine's (``engine``):
the same request, credential and route, every answer counted by status,
nothing retried, a login asked for stops the run.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from ..core.errors import UsageError
from ..core.values import LOAD_RATE, OR_NONE, PARALLEL
from ..core.values import TIMEOUT as SECONDS
from .basics import GRACE_S, LATE_AFTER_S, refused_mid_run
from .engine import HttpSender, LoadReport, LoadTarget, Progress, Sender, _phase, _report, _Worker, succeeded


@dataclass
class RateReport(LoadReport):
    """A fixed-rate run: the engine's report, plus what was offered and what the client kept of it."""

    offered_rps: float = 0.0
    window_s: float = 0.0  # the time over which sends were due
    scheduled: int = 0  # sends due in the window
    late: int = 0  # sent, but more than LATE_AFTER_S after their due time
    connections: int = 0
    span_s: float = 0.0  # from the first due time to one interval after the last counted send actually left
    lags_us: array[int] = field(default_factory=lambda: array("q"))  # each counted send's lag behind its due time

    @property
    def skipped(self) -> int:
        """Sends due in the window that never left (the run closed, or stopped, with them still waiting)."""
        return max(0, self.scheduled - self.requests)

    @property
    def achieved_rps(self) -> float:
        """Sends per second over the time they actually took to leave (as vegeta's rate): below the offered rate when late."""
        span = max(self.window_s, self.span_s)
        return self.requests / span if span > 0 else 0.0


class _Schedule:
    """The due times of one run, handed out in order; also the run state the engine's phase loop expects."""

    def __init__(self, rate: float, count: int, uncounted: int, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.interval = 1.0 / rate
        self.count = count
        self.uncounted = uncounted  # the first due times are warmup: sent at the rate, not counted
        self.record = True  # (the engine's closed-loop warmup phase records nothing)
        self.stop = threading.Event()
        self.session_expired = False
        self.note = ""
        self._tickets = itertools.count()  # next() is atomic under the GIL
        self.started = clock()
        self.counted_from = self.started + uncounted * self.interval
        self.ends = self.started + (uncounted + count) * self.interval
        self.stopped_at: float | None = None  # when a stop (Ctrl-C, a login asked for) cut the window short

    def next_due(self) -> tuple[float, bool] | None:
        """The next due time and whether it is counted; None when the run is over or stopped."""
        ticket = next(self._tickets)
        if self.stop.is_set() or ticket >= self.uncounted + self.count:
            return None
        return self.started + ticket * self.interval, ticket >= self.uncounted


class _RateWorker(_Worker):
    """One connection of a fixed-rate run: waits for each due time, sends, and counts from the due time."""

    def __init__(self, sender: Sender) -> None:
        super().__init__(sender)
        self.late = 0
        self.last_sent = 0.0  # when this worker's last counted send left
        self.lags: array[int] = array("q")  # each counted send's lag behind its due time, µs

    def loop(self, run: _Schedule) -> None:  # type: ignore[override]
        clock = run.clock
        while (ticket := run.next_due()) is not None:
            due, counted = ticket
            now = clock()
            if now < due:
                if run.stop.wait(due - now):
                    break
            elif now > run.ends + GRACE_S:
                break  # the window closed while this send waited: skipped, and counted so
            began = clock()
            status, refused = self.sender.send()
            ended = clock()
            if counted:
                self.record(due - run.counted_from, ended - due, status)
                self.late += began - due > LATE_AFTER_S
                self.lags.append(max(0, round((began - due) * 1_000_000)))
                self.last_sent = max(self.last_sent, began)
                self.done += 1
                self.failed += not succeeded(status)
            if refused:
                refused_mid_run(run, status)
        if run.stop.is_set() and run.stopped_at is None:
            run.stopped_at = clock()


def check_rate(rate: float, duration: float | None, connections: int, warmup: int, flag: str = "--rate") -> int:
    """A UsageError for a fixed-rate run that makes no sense (the options' own rules); else how many sends are due."""
    LOAD_RATE.check(rate, f"{flag} {rate:g}" if flag == "--rate" else f"{flag}: the rate {rate:g}")
    if duration is None:
        raise UsageError(f"{flag} needs --duration S (a positive number of seconds), so that the run is bounded")
    for flag, value, wanted in (
        ("--duration", duration, SECONDS),
        ("--concurrency", connections, PARALLEL),
        ("--warmup", warmup, OR_NONE),
    ):
        wanted.check(value, f"{flag} {value:g}")
    count = math.floor(rate * duration)
    if count < 1:
        raise UsageError(f"--rate {rate:g} for {duration:g} s sends nothing: give a longer --duration or a higher --rate")
    return count


def run_rate(
    target: LoadTarget | None,
    *,
    rate: float,
    duration: float | None,
    connections: int,
    warmup: int = 0,
    progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    stop: threading.Event | None = None,
    senders: Callable[[], Sender] | None = None,
    client: str = "auto",
) -> RateReport:
    """Send ``target`` at ``rate`` requests per second for ``duration`` seconds over ``connections`` connections.

    ``warmup`` sends go first, at the same rate, and are not counted.  The
    rest is as ``engine.run_load``: ``senders`` for gRPC, ``client`` to choose
    libcurl or ``http.client``, ``progress`` about ten times a second, ``stop``
    or Ctrl-C for the partial report.
    """
    count = check_rate(rate, duration, connections, warmup)
    if senders is None and target is None:
        raise UsageError("nothing to send load to")
    make: Callable[[], Sender] = senders or (lambda: HttpSender(target))  # type: ignore[arg-type]
    from .curlmulti import workers as chosen_workers

    workers = chosen_workers(target, connections, _RateWorker, make, client, senders)  # type: ignore[arg-type]
    try:
        schedule = _Schedule(rate, count, warmup, clock)
        interrupted = _phase(workers, schedule, progress, stop, count, duration)  # type: ignore[arg-type]
        elapsed = max(0.0, clock() - schedule.counted_from)
    finally:
        for worker in workers:
            worker.sender.close()
    base = _report(workers, elapsed, schedule, interrupted)  # type: ignore[arg-type]
    window = count / rate
    if schedule.stopped_at is not None:  # cut short: only what was due before the stop was offered
        window = min(window, max(0.0, schedule.stopped_at - schedule.counted_from))
    return RateReport(
        **{item.name: getattr(base, item.name) for item in fields(LoadReport)},
        offered_rps=rate,
        window_s=window,
        scheduled=min(count, math.ceil(window * rate)),
        late=sum(worker.late for worker in workers),
        span_s=max(0.0, max(worker.last_sent for worker in workers) - schedule.counted_from + schedule.interval),
        connections=connections,
        lags_us=array("q", (lag for worker in workers for lag in worker.lags)),  # type: ignore[attr-defined]
    )
