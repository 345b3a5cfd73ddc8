"""The load engine behind ``kfdex load``: one request, sent over and over from C keep-alive connections.

Independent of the .env: the caller builds a ``LoadTarget`` (URL, method,
headers with the credential and any Host, body) and ``run_load`` sends it
``requests`` times or for ``duration`` seconds from ``concurrency`` worker
threads, each with its own persistent connection.  Nothing is retried and no
redirect is followed: every answer's status is counted, and a connection
error or timeout is counted under its own name.  An answer that sends the
call to Dex (a 3xx to ``/dex/`` or ``/oauth2/``, a 401, or a 403 sign-in
page) means the session is gone: the run stops and the report says
``session_expired``.  Ctrl-C stops the run and returns what was measured.

Which client: the client shares two cores with the model server, so its CPU
per request decides how close it gets to wrk.  Measured against the sandbox
NodePort (client CPU per request): ``requests`` ~900 µs, urllib3 pool ~340
µs, aiohttp on uvloop ~250-350 µs, geventhttpclient ~200-250 µs,
``http.client`` ~200 µs (~100 µs against nginx); libcurl's multi interface
from one thread (``curlmulti``, pycurl) ~13 µs against nginx, level with a bare
pycurl loop.  So HTTP load
goes through ``curlmulti`` when pycurl (the ``load`` extra) is installed, and
otherwise through ``http.client`` in threads: it needs no dependency, and
blocking sockets release the GIL while waiting, so C threads keep C requests
in flight.  gRPC senders always run in threads.
"""

from __future__ import annotations

import http.client
import itertools
import ssl
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from ..auth.signals import session_refused
from ..core.errors import UsageError
from ..core.values import COUNT, OR_NONE, PARALLEL
from ..core.values import TIMEOUT as SECONDS_ABOVE_ZERO
from .basics import CONNECTION_ERROR, TIMEOUT, LoadTarget, _Worker, succeeded


@dataclass
class Progress:
    """A running count, handed to the progress callback a few times a second."""

    done: int
    errors: int
    elapsed: float
    total: int | None
    duration: float | None


@dataclass
class LoadReport:
    """What a run measured; ``samples`` hold (start offset s, latency µs, status) of each counted request."""

    requests: int
    statuses: dict[str, int]  # every answer, by status ("200", "503", "connection-error", ...)
    duration_s: float
    offsets: array[float] = field(default_factory=lambda: array("d"))
    latencies_us: array[int] = field(default_factory=lambda: array("q"))
    codes: list[str] = field(default_factory=list)
    session_expired: bool = False
    interrupted: bool = False
    note: str = ""  # why the run stopped early, for a person
    renewals: int | None = None  # --renew: how many times the session was renewed during the run

    @property
    def errors(self) -> dict[str, int]:
        """Answers that were not a success (a 2xx, or gRPC's OK), by status."""
        return {status: count for status, count in sorted(self.statuses.items()) if not succeeded(status)}


class _Run:
    """State shared by the worker threads of one phase."""

    def __init__(self, budget: int | None, deadline: float | None, record: bool, clock: Callable[[], float]) -> None:
        self.budget = budget
        self.deadline = deadline
        self.record = record
        self.clock = clock
        self.started = clock()
        self.stop = threading.Event()
        self.session_expired = False
        self.note = ""

        self._tickets = itertools.count()  # next() on it is atomic under the GIL: no lock per request

    def ticket(self) -> bool:
        """May this worker send one more request?"""
        if self.stop.is_set():
            return False
        if self.deadline is not None and self.clock() >= self.deadline:
            return False
        return self.budget is None or next(self._tickets) < self.budget

    def tickets(self, wanted: int, now: float) -> int:
        """How many of ``wanted`` more requests may be sent, ``now`` being the clock's reading (one check for a batch)."""
        if self.stop.is_set() or (self.deadline is not None and now >= self.deadline):
            return 0
        if self.budget is None:
            return wanted
        return sum(1 for _ in range(wanted) if next(self._tickets) < self.budget)


class Sender(Protocol):
    """What a worker sends with: one request per ``send`` (status or error name, and whether a login was asked for)."""

    def send(self) -> tuple[str, bool]: ...

    def close(self) -> None: ...


class HttpSender:
    """One keep-alive HTTP/1.1 connection sending the same request (``http.client``: the cheapest client per request)."""

    def __init__(self, target: LoadTarget) -> None:
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"cannot send load to {target.url!r}: give an http:// or https:// URL")
        self.path = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
        self.method = target.method
        self.body = target.body
        self.headers = {"Content-Length": str(len(target.body)), **target.headers}
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=target.verify if isinstance(target.verify, str) else None)
            if target.verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self.connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port or 443, timeout=target.timeout, context=context
            )
        else:
            self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=target.timeout)

    def close(self) -> None:
        self.connection.close()

    def send(self) -> tuple[str, bool]:
        """One request; returns its status (or error name) and whether it says the session is gone."""
        try:
            self.connection.request(self.method, self.path, body=self.body, headers=self.headers)
            response = self.connection.getresponse()
            body = response.read()
        except TimeoutError:
            self.connection.close()
            return TIMEOUT, False
        except (OSError, http.client.HTTPException):
            self.connection.close()  # the next request opens a new connection; this one is counted, not retried
            return CONNECTION_ERROR, False
        status = response.status
        if response.will_close:
            self.connection.close()
        refused = status >= 300 and session_refused(status, response.getheader("Location") or "", body)
        return str(status), refused


def _phase(
    workers: list[_Worker],
    run: _Run,
    progress: Callable[[Progress], None] | None,
    stop: threading.Event | None,
    total: int | None,
    duration: float | None,
) -> bool:
    """Run the workers until the phase ends; True when it was interrupted (Ctrl-C or ``stop``)."""
    for worker in workers:
        worker.done = worker.failed = 0
    ended = [threading.Event() for _ in workers]
    threads = [
        threading.Thread(target=_loop, args=(worker, run, done), name=f"load-{index}", daemon=True)
        for index, (worker, done) in enumerate(zip(workers, ended, strict=True))
    ]
    for thread in threads:
        thread.start()
    interrupted = False
    try:
        while waiting := [done for done in ended if not done.is_set()]:
            waiting[0].wait(0.1)
            if stop is not None and stop.is_set():
                interrupted = True
                run.stop.set()
            if progress is not None:
                done, failed = sum(worker.done for worker in workers), sum(worker.failed for worker in workers)
                progress(Progress(done, failed, run.clock() - run.started, total, duration))
    except KeyboardInterrupt:
        interrupted = True
        run.stop.set()
        for done in ended:
            done.wait()
    return interrupted


def _loop(worker: _Worker, run: _Run, ended: threading.Event) -> None:
    """One worker's thread: its loop, then ``ended`` set, which ``_phase`` waits for before the senders close.

    Not ``Thread.join``: a signal that interrupts a join marks the thread as ended while it still runs
    (CPython 3.11's bpo-45274 handling), and its sender would be closed under it.
    """
    try:
        worker.loop(run)
    finally:
        ended.set()


def _check_bounds(concurrency: int, requests: int | None, duration: float | None, warmup: int) -> None:
    """A UsageError for a run that would not be bounded, or bounds that make no sense (the options' own rules)."""
    if (requests is None) == (duration is None):
        raise UsageError("give either --requests or --duration (one of them), so that the run is bounded")
    for flag, value, wanted in (
        ("--concurrency", concurrency, PARALLEL),
        ("--requests", requests, COUNT),
        ("--duration", duration, SECONDS_ABOVE_ZERO),
        ("--warmup", warmup, OR_NONE),
    ):
        if value is not None:
            wanted.check(value, f"{flag} {value:g}")


def run_load(
    target: LoadTarget | None,
    *,
    concurrency: int,
    requests: int | None = None,
    duration: float | None = None,
    warmup: int = 0,
    progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    stop: threading.Event | None = None,
    senders: Callable[[], Sender] | None = None,
    client: str = "auto",
) -> LoadReport:
    """Send ``target`` ``requests`` times, or for ``duration`` seconds, from ``concurrency`` connections.

    ``senders`` makes each worker's sender instead of an HTTP connection to ``target`` (gRPC load).
    ``client``: ``curl`` (libcurl's multi interface, one thread), ``http.client`` (a thread per
    connection) or ``auto`` (curl when pycurl is installed and the load is HTTP).

    ``warmup`` requests go first and are not counted.  ``progress`` is called
    from this thread about ten times a second.  Setting ``stop`` (or Ctrl-C)
    ends the run early with the partial report (``interrupted``).
    """
    _check_bounds(concurrency, requests, duration, warmup)
    if senders is None and target is None:
        raise UsageError("nothing to send load to")
    make: Callable[[], Sender] = senders or (lambda: HttpSender(target))  # type: ignore[arg-type]
    from .curlmulti import workers as chosen_workers  # libcurl's multi interface when pycurl is installed

    workers = chosen_workers(target, concurrency, _Worker, make, client, senders)  # type: ignore[arg-type]
    try:
        interrupted = False
        if warmup:
            warm = _Run(warmup, None, False, clock)
            interrupted = _phase(workers, warm, None, stop, warmup, None)
            if warm.session_expired:
                return LoadReport(0, {}, 0.0, session_expired=True, note=warm.note)
        run = _Run(requests, None if duration is None else clock() + duration, True, clock)
        if not interrupted:
            interrupted = _phase(workers, run, progress, stop, requests, duration)
        elapsed = clock() - run.started
    finally:
        for worker in workers:
            worker.sender.close()
    return _report(workers, elapsed, run, interrupted)


def _report(workers: list[_Worker], elapsed: float, run: _Run, interrupted: bool) -> LoadReport:
    statuses: Counter[str] = Counter()
    offsets: array[float] = array("d")
    latencies: array[int] = array("q")
    codes: list[str] = []
    for worker in workers:
        statuses.update(worker.statuses)
        offsets.extend(worker.offsets)
        latencies.extend(worker.latencies)
        codes.extend(worker.codes)
    note = run.note or ("stopped early (interrupted)" if interrupted else "")
    return LoadReport(
        requests=len(latencies),
        statuses=dict(statuses),
        duration_s=elapsed,
        offsets=offsets,
        latencies_us=latencies,
        codes=codes,
        session_expired=run.session_expired,
        interrupted=interrupted and not run.session_expired,
        note=note,
    )
