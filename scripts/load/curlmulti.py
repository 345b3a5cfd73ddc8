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
from collections import deque
from typing import Any

from ..auth.signals import session_refused
from ..core.errors import UsageError
from .basics import CONNECTION_ERROR, GRACE_S, LATE_AFTER_S, TIMEOUT, LoadTarget, _Worker, refused_mid_run, succeeded

CURLE_OPERATION_TIMEDOUT = 28
SELECT_S = 0.05  # the longest wait for sockets before looking at the stop flag and the schedule again


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
    """One handle and what its current request needs: its due time (or start), whether it counts, its answer's body."""

    __slots__ = ("body", "counted", "due", "handle", "sends")

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.body: list[bytes] = []
        self.sends = 0
        self.due = 0.0
        self.counted = True

    def prereq(self, *_connection: Any) -> int:
        """libcurl is about to send the request: a second send in one transfer would be a retry, so it is refused."""
        import pycurl

        self.sends += 1
        return pycurl.PREREQFUNC_OK if self.sends == 1 else pycurl.PREREQFUNC_ABORT


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
    """All C connections of a run, driven from one thread; its samples are merged as a worker's."""

    def __init__(self, target: LoadTarget, connections: int) -> None:
        import pycurl

        super().__init__(self)  # it is its own sender: the engine closes it when the run ends
        self.multi = pycurl.CurlMulti()
        self.transfers = []
        for _ in range(connections):
            transfer = _Transfer(None)
            transfer.handle = _configured(target, transfer)
            self.transfers.append(transfer)
        self.by_handle = {id(transfer.handle): transfer for transfer in self.transfers}
        self.active: set[int] = set()  # handles in the multi now
        self.late = 0
        self.last_sent = 0.0  # when the last counted send of a fixed-rate run left

    def send(self) -> tuple[str, bool]:  # the Sender protocol; this worker sends through its loop only
        raise NotImplementedError

    def close(self) -> None:
        for transfer in self.transfers:
            transfer.handle.close()
        self.multi.close()

    def _start(self, transfer: _Transfer, due: float, counted: bool = True) -> None:
        transfer.body.clear()
        transfer.sends = 0
        transfer.due = due
        transfer.counted = counted
        self.multi.add_handle(transfer.handle)
        self.active.add(id(transfer.handle))

    def _finish(self, run: Any, transfer: _Transfer, error: int, now: float) -> None:
        """Count one finished transfer (``error`` 0 when libcurl got an answer); stop the run when a login is asked for."""
        import pycurl

        handle = transfer.handle
        self.multi.remove_handle(handle)
        self.active.discard(id(handle))
        if error:
            status, refused = (TIMEOUT if error == CURLE_OPERATION_TIMEDOUT else CONNECTION_ERROR), False
        else:
            code = handle.getinfo(pycurl.RESPONSE_CODE)
            status = str(code)
            refused = code >= 300 and session_refused(code, handle.getinfo(pycurl.REDIRECT_URL) or "", b"".join(transfer.body))
        if run.record and transfer.counted:
            self.record(transfer.due - run.counted_from, now - transfer.due, status)
            self.done += 1
            self.failed += not succeeded(status)
        if refused:
            refused_mid_run(run, status)

    def _turn(self, run: Any, timeout: float) -> list[_Transfer]:
        """Let libcurl work, wait up to ``timeout`` for sockets, and count what finished; the transfers now free."""
        import pycurl

        multi = self.multi
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        freed: list[_Transfer] = []
        while True:
            left, finished, failed = multi.info_read()
            if finished or failed:
                now = run.clock()
                for handle in finished:
                    freed.append(self.by_handle[id(handle)])
                    self._finish(run, freed[-1], 0, now)
                for handle, error, _message in failed:
                    freed.append(self.by_handle[id(handle)])
                    self._finish(run, freed[-1], error, now)
            if not left:
                break
        if not freed and timeout > 0:
            multi.select(timeout)
        return freed

    def _drain(self, run: Any) -> None:
        """The run is over or stopped: the requests already sent are answered and counted, as the thread engine's are."""
        while self.active:
            self._turn(run, SELECT_S)

    def loop(self, run: Any) -> None:
        """Closed loop (``engine._Run``): each handle is re-added as soon as it finishes, while the run gives tickets."""
        if hasattr(run, "next_due"):
            self._scheduled(run)
            return
        if not hasattr(run, "counted_from"):
            run.counted_from = run.started
        busy = 0
        for transfer in self.transfers:
            if run.ticket():
                self._start(transfer, run.clock())
                busy += 1
        while busy and not run.stop.is_set():
            for transfer in self._turn(run, SELECT_S):
                busy -= 1
                if run.ticket():
                    self._start(transfer, run.clock())
                    busy += 1
        self._drain(run)

    def _scheduled(self, run: Any) -> None:
        """Fixed rate (``rate._Schedule``): a free handle takes the next due time and is added when it comes."""
        clock = run.clock
        waiting: deque[tuple[_Transfer, float, bool]] = deque()
        free = list(self.transfers)
        over = False
        while not run.stop.is_set():
            while free and not over:
                ticket = run.next_due()
                over = ticket is None
                if ticket is not None:
                    waiting.append((free.pop(), *ticket))
            over = self._start_due(run, waiting) or over
            busy = len(self.active)
            if not busy and not waiting:
                break
            now = clock()
            timeout = min(SELECT_S, max(0.0, waiting[0][1] - now)) if waiting else SELECT_S
            free.extend(self._turn(run, timeout if busy else 0.0))
            if not busy and waiting and waiting[0][1] > now:
                run.stop.wait(min(waiting[0][1] - now, SELECT_S))
        if run.stop.is_set() and getattr(run, "stopped_at", 0.0) is None:
            run.stopped_at = clock()
        self._drain(run)

    def _start_due(self, run: Any, waiting: deque[tuple[_Transfer, float, bool]]) -> bool:
        """Add every waiting handle whose due time has come; True when the window closed with sends still waiting."""
        now = run.clock()
        while waiting and waiting[0][1] <= now:
            if now > run.ends + GRACE_S:
                waiting.clear()  # skipped, and counted so: due in the window, never sent
                return True
            transfer, due, counted = waiting.popleft()
            self._start(transfer, due, counted)
            if counted:
                self.late += now - due > LATE_AFTER_S
                self.last_sent = now
        return False
