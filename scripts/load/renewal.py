"""``--renew`` under load: the run's one credential, renewed once when the gateway says the session is over.

``Renewal`` holds what every sender sends (the ``LoadTarget``, credential
included), which login it carries and how many renewals were made; ``renew``
(the caller's: the library's login, ``scripts.api``) gives the next target.
A ``RenewingSender`` wraps a worker's sender: an answer that sends the call to a
login makes it fetch the new target (renewing only if nobody has yet since its
own) and send that one request again, once; only the resent answer is counted.
A renewal that fails ends the run as a session's end does, with its reason.

Locust's workers are other processes: ``keep_ahead`` renews before the session
ends (``credentials.renew_before``) and hands each
new target to ``publish`` (``scripts.load.locust_run``: through the master to
its workers, over Locust's message channel).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..auth.credentials import renew_before
from ..core.errors import KfDexError
from .engine import LoadTarget, Sender

SHORTEST_WAIT = 0.25  # between renewals, whatever the session's lifetime says


class Renewal:
    """The target every sender sends, the login it carries (``generation``), and the renewals made."""

    def __init__(self, target: LoadTarget, renew: Callable[[], LoadTarget]) -> None:
        self.target = target
        self.generation = 0
        self.renewals = 0
        self.failure = ""  # why a renewal failed: the run then ends as a session's end
        self._renew = renew
        self._lock = threading.Lock()

    def after(self, seen: int) -> tuple[int, LoadTarget] | None:
        """The target after login ``seen``: renewed now unless a sender already did; None when renewing failed."""
        with self._lock:
            if self.failure:
                return None
            if seen == self.generation:
                try:
                    self.target = self._renew()
                except KfDexError as error:
                    self.failure = error.message
                    return None
                self.generation += 1
                self.renewals += 1
            return self.generation, self.target


class RenewingSender:
    """A worker's sender that answers the session's end with a renewal and one resend."""

    def __init__(self, renewal: Renewal, make: Callable[[LoadTarget], Sender]) -> None:
        self.renewal = renewal
        self.make = make
        self.generation = renewal.generation
        self.inner = make(renewal.target)

    def send(self) -> tuple[str, bool]:
        status, refused = self.inner.send()
        if not refused:
            return status, refused
        fresh = self.renewal.after(self.generation)
        if fresh is None:
            return status, True
        self.inner.close()
        self.generation, target = fresh
        self.inner = self.make(target)
        return self.inner.send()

    def close(self) -> None:
        self.inner.close()


def keep_ahead(
    renewal: Renewal, remaining: Callable[[], float | None], publish: Callable[[LoadTarget], None], stop: threading.Event
) -> None:
    """Until ``stop``: renew a while before the credential's end (``remaining`` seconds; None: no known end) and publish."""
    lifetime = remaining()
    while lifetime is not None:
        left = remaining() or 0.0
        if stop.wait(max(left - renew_before(lifetime), SHORTEST_WAIT)):
            return
        fresh = renewal.after(renewal.generation)
        if fresh is None:
            return  # the gateway's refusal will end the run, saying why
        publish(fresh[1])
        lifetime = remaining()
