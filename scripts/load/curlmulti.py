"""libcurl's multi interface (pycurl) as the load client: C requests in flight from one thread, cheaply.

The thread engine spends about 125 µs of Python per request in
``http.client``; a client that saturates first measures itself, not the
model.  Here one thread drives C libcurl handles (one keep-alive connection
each) through a ``CurlMulti``: per request, Python only re-adds a handle,
reads its status and records the sample.  It serves both ``run_load``
(closed loop: a handle is re-added as soon as it is done) and ``run_rate``
(a handle is added at its request's due time).  ``pycurl`` is the ``load``
extra; without it the engine keeps its threads.

What ``load`` promises holds: the target's exact method, URL, headers
(credential, Host) and body, libcurl's own additions removed (``Accept``,
``Expect``), no proxy from the environment (the credential goes only to its
origin), no redirect followed, every answer counted by status, a connection
error or timeout counted under its own name.  Nothing is retried: libcurl
resends a request on a fresh connection when a reused one dies before any
answer comes back; its pre-request callback sees a second send of the same
transfer and aborts it, so that request counts as a connection error, as
with ``http.client``.
"""

from __future__ import annotations

import ssl
from array import array
from collections import Counter
from typing import Any

from ..auth.signals import session_refused
from ..core.errors import UsageError
from .basics import CONNECTION_ERROR, GRACE_S, LATE_AFTER_S, TIMEOUT, LoadTarget, _Worker, refused_mid_run

CURLE_OPERATION_TIMEDOUT = 28
SELECT_S = 0.05  # the longest wait for sockets before looking at the stop flag and the schedule again
SPIN_S = 0.0002  # a fixed-rate run polls instead of sleeping this close to a due time: a sleep wakes up to ~100 µs late
PREREQFUNC_OK, PREREQFUNC_ABORT = 0, 1  # libcurl's CURL_PREREQFUNC_OK and _ABORT (pycurl is imported only when used)


CLIENTS = ("auto", "curl", "http.client")


def available() -> bool:
    """Whether pycurl (the ``load`` extra) is installed."""
    from ..core.extras import missing

    return "pycurl" not in missing("load")


def check_client(client: str) -> None:
    """A UsageError, before anything starts, for an unknown ``--client`` or ``curl`` without pycurl."""
    from ..core.extras import require
    from ..core.values import shown

    if client not in CLIENTS:
        raise UsageError(f"--client {shown(client)}: give one of {', '.join(CLIENTS)}")
    if client == "curl":
        require("load", "--client curl", modules=("pycurl",))


def chosen(client: str, target: LoadTarget | None, senders: Any) -> bool:
    """Whether a run sends with libcurl: ``auto`` when pycurl is installed and the load is HTTP; a UsageError when it cannot."""
    check_client(client)
    if client == "http.client":
        return False
    if senders is not None or target is None:
        if client == "curl":
            raise UsageError("--client curl sends HTTP only: leave it out with --protocol grpc")
        return False
    return available()


def workers(target: LoadTarget, connections: int, threaded: Any, make: Any, client: str, senders: Any) -> list[Any]:
    """The workers of a run: one ``CurlWorker`` for all connections, or one ``threaded(make())`` per connection."""
    if chosen(client, target, senders):
        make().close()  # the thread engine's sender checks the URL: one rule for both clients
        return [CurlWorker(target, connections)]
    return [threaded(make()) for _ in range(connections)]


class _Transfer:
    """What one handle's current request needs besides the handle: its body so far, sends, and when it was due and left."""

    __slots__ = ("body", "counted", "lag_us", "offset", "sends")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.sends = 0
        self.offset = 0.0  # seconds into the counted run, for the report's per-second series
        self.lag_us = 0  # fixed rate: from its due time to when it was handed to libcurl
        self.counted = True

    def prereq(self, *_connection: Any) -> int:
        """libcurl is about to send the request: a second send in one transfer would be a retry, so it is refused."""
        self.sends += 1
        return PREREQFUNC_OK if self.sends == 1 else PREREQFUNC_ABORT


def _configured(target: LoadTarget, transfer: _Transfer) -> Any:
    import pycurl

    handle = pycurl.Curl()
    handle.setopt(pycurl.URL, target.url)
    if target.method != "POST":
        handle.setopt(pycurl.CUSTOMREQUEST, target.method)
    handle.setopt(pycurl.POSTFIELDS, target.body)
    # libcurl adds Accept and, for large bodies, Expect: an empty value removes a header, so the request is the target's
    handle.setopt(pycurl.HTTPHEADER, ["Accept:", "Expect:", *(f"{name}: {value}" for name, value in target.headers.items())])
    handle.setopt(pycurl.PROXY, "")  # no proxy from the environment: the credential goes to its origin only
    handle.setopt(pycurl.NOPROXY, "")  # (and libcurl need not read no_proxy from the environment for each request)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    handle.setopt(pycurl.FOLLOWLOCATION, 0)
    handle.setopt(pycurl.NOSIGNAL, 1)
    handle.setopt(pycurl.TIMEOUT_MS, max(1, round(target.timeout * 1000)))
    if target.verify is False:
        handle.setopt(pycurl.SSL_VERIFYPEER, 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 0)
    elif isinstance(target.verify, str):
        handle.setopt(pycurl.CAINFO, target.verify)
    elif target.url.startswith("https:"):  # the trust http.client has: Python's default CA paths, not the wheel's
        paths = ssl.get_default_verify_paths()
        if paths.cafile:
            handle.setopt(pycurl.CAINFO, paths.cafile)
        if paths.capath:
            handle.setopt(pycurl.CAPATH, paths.capath)
    handle.setopt(pycurl.WRITEFUNCTION, transfer.body.append)
    handle.setopt(pycurl.PREREQFUNCTION, transfer.prereq)
    return handle


class CurlWorker(_Worker):
    """All C connections of a run, driven from one thread; its samples are merged as a worker's.

    Its per-request cost is what decides how close a Python client comes to
    wrk, so the loop does little per answer: libcurl's own transfer time
    (``TOTAL_TIME_T``, integer microseconds) is the latency, the clock is read
    once per batch of answers, tickets are taken per batch, and the counts by
    status are made from the list of statuses once the loop ends.
    """

    def __init__(self, target: LoadTarget, connections: int) -> None:
        import pycurl

        super().__init__(self)  # it is its own sender: the engine closes it when the run ends
        self.multi = pycurl.CurlMulti()
        self.transfers: dict[Any, _Transfer] = {}
        for _ in range(connections):
            transfer = _Transfer()
            self.transfers[_configured(target, transfer)] = transfer
        self.free = list(self.transfers)  # handles not in the multi now
        self.names: dict[int, str] = {}  # status code -> its name, one string each
        self.lags: array[int] = array("q")  # fixed rate: each counted send's lag behind its due time, µs
        self.late = 0
        self.last_sent = 0.0  # when the last counted send of a fixed-rate run left

    def send(self) -> tuple[str, bool]:  # the Sender protocol; this worker sends through its loop only
        raise NotImplementedError

    def close(self) -> None:
        for handle in self.transfers:
            handle.close()
        self.multi.close()

    @property
    def busy(self) -> int:
        """How many requests are in flight."""
        return len(self.transfers) - len(self.free)

    def _add(self, handle: Any, offset: float, lag_us: int, counted: bool) -> None:
        transfer = self.transfers[handle]
        transfer.sends, transfer.offset, transfer.lag_us, transfer.counted = 0, offset, lag_us, counted
        self.multi.add_handle(handle)

    def _collect(self, run: Any) -> int:
        """Let libcurl work and count every transfer it finished (their handles go back to ``free``); how many."""
        multi = self.multi
        multi.perform()  # libcurl >= 7.20 never asks to be called again at once
        finished = 0
        while True:
            left, answered, failed = multi.info_read()
            if answered:
                self._answered(run, answered)
            if failed:
                self._failed(run, failed)
            finished += len(answered) + len(failed)
            if not left:
                return finished

    def _answered(self, run: Any, handles: list[Any]) -> None:
        """Transfers that got an answer: count each (latency: libcurl's own transfer time, plus any lag behind its due time)."""
        import pycurl

        remove, transfers, names, free = self.multi.remove_handle, self.transfers, self.names, self.free
        offsets, latencies, codes = self.offsets.append, self.latencies.append, self.codes.append
        record, counted = run.record, 0
        for handle in handles:
            remove(handle)
            free.append(handle)
            transfer = transfers[handle]
            code = handle.getinfo(pycurl.RESPONSE_CODE)
            status = names.get(code) or names.setdefault(code, str(code))
            if code >= 300:
                self._unsuccessful(run, handle, transfer, code, status)
            transfer.body.clear()
            if transfer.counted and record:
                offsets(transfer.offset)
                latencies(max(1, transfer.lag_us + handle.getinfo(pycurl.TOTAL_TIME_T)))
                codes(status)
                counted += 1
        self.done += counted

    def _unsuccessful(self, run: Any, handle: Any, transfer: _Transfer, code: int, status: str) -> None:
        """A 3xx, 4xx or 5xx answer: a failure if counted, and the end of the run if it asks for a login."""
        import pycurl

        self.failed += transfer.counted and run.record
        if session_refused(code, handle.getinfo(pycurl.REDIRECT_URL) or "", b"".join(transfer.body)):
            refused_mid_run(run, status)

    def _failed(self, run: Any, failed: list[tuple[Any, int, str]]) -> None:
        """Transfers that got no answer: counted as a timeout or a connection error (never resent)."""
        import pycurl

        for handle, error, _message in failed:
            self.multi.remove_handle(handle)
            self.free.append(handle)
            transfer = self.transfers[handle]
            transfer.body.clear()
            if transfer.counted and run.record:
                self.offsets.append(transfer.offset)
                self.latencies.append(max(1, transfer.lag_us + handle.getinfo(pycurl.TOTAL_TIME_T)))
                self.codes.append(TIMEOUT if error == CURLE_OPERATION_TIMEDOUT else CONNECTION_ERROR)
                self.done += 1
                self.failed += 1

    def _drain(self, run: Any) -> None:
        """The run is over or stopped: the requests already sent are answered and counted, as the thread engine's are."""
        while self.busy:
            if not self._collect(run):
                self.multi.select(SELECT_S)
        self.statuses = Counter(self.codes)

    def loop(self, run: Any) -> None:
        """Closed loop (``engine._Run``): each handle is re-added as soon as it is done, while the run gives tickets."""
        if hasattr(run, "next_due"):
            self._scheduled(run)
            return
        clock, stop = run.clock, run.stop
        now = clock()
        self._relaunch(run, now)
        while self.busy and not stop.is_set():
            if self._collect(run):
                self._relaunch(run, clock())
            else:
                self.multi.select(SELECT_S)
        self._drain(run)

    def _relaunch(self, run: Any, now: float) -> None:
        """Add as many free handles as the run gives tickets for, all started now."""
        free = self.free
        offset = now - getattr(run, "counted_from", run.started)
        for _ in range(run.tickets(len(free), now)):
            self._add(free.pop(), offset, 0, run.record)

    def _scheduled(self, run: Any) -> None:
        """Fixed rate (``rate._Schedule``): a free handle takes the next due time and is added when it comes."""
        clock, stop = run.clock, run.stop
        ticket = run.next_due()
        while not stop.is_set() and (ticket is not None or self.busy):
            ticket = self._start_due(run, ticket)
            if self._collect(run):
                continue  # answers may have freed a handle for a send already due
            wait = ticket[0] - clock() if ticket is not None and self.free else SELECT_S
            self._wait(run, min(wait, SELECT_S))
        if stop.is_set() and getattr(run, "stopped_at", 0.0) is None:
            run.stopped_at = clock()
        self._drain(run)

    def _wait(self, run: Any, seconds: float) -> None:
        """Wait for sockets or the next due time; the last ``SPIN_S`` before it is spent polling, since a sleep wakes late."""
        if seconds <= SPIN_S:
            return  # close to the due time: the loop polls libcurl (no sleep) until it comes
        if self.busy:
            self.multi.select(seconds - SPIN_S)
        else:
            run.stop.wait(seconds - SPIN_S)

    def _start_due(self, run: Any, ticket: tuple[float, bool] | None) -> tuple[float, bool] | None:
        """Add a free handle for every send whose due time has come; the next ticket not yet sent (None: none left)."""
        now = run.clock()
        free = self.free
        while ticket is not None and free and ticket[0] <= now:
            if now > run.ends + GRACE_S:
                return None  # the window closed with sends still waiting: skipped, and counted so
            due, counted = ticket
            lag = now - due
            self._add(free.pop(), due - run.counted_from, round(lag * 1_000_000), counted)
            if counted:
                self.late += lag > LATE_AFTER_S
                self.last_sent = now
                self.lags.append(round(lag * 1_000_000))
            ticket = run.next_due()
        return ticket
