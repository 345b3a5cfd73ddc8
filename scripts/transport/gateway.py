"""HTTP to the Kubeflow ingress: one origin, a timeout on every call, retries where the network is at fault.

``Gateway`` refuses to send anything to an origin other than the one it was
made for, so credentials and cookies cannot follow a redirect to another host.
Redirects are never followed by ``requests``: the login steps read each one.
It knows nothing of the .env file: ``GatewaySettings`` (built from the state
in ``scripts.transport.settings``) says where to go and how.  TLS is verified (a CA
bundle for a private CA); an insecure setting turns verification off and says
so every time.  Cookies are the caller's: ``send`` never changes its arguments.

The retry policy (tenacity) covers 502/503/504, connection errors, read
timeouts and, where the caller says so, other "not ready yet" answers.  It is
bounded by attempts and by a deadline, waits with exponential backoff and
jitter, and says so on stderr with no header, query or body in it: one line per
retry, or on a terminal one line rewritten in place (elapsed time, attempts, the
last answer).  Nothing listening at all (connection refused, unknown host) is given a
few attempts only: a wrong address should not cost a five-minute wait.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..core.environment import Environment
from ..core.errors import GatewayError
from ..core.values import clipped

if TYPE_CHECKING:  # requests and tenacity load when a Gateway is made, not when tasks are listed
    import requests
    from tenacity import RetryCallState

RETRIED_STATUSES = frozenset({502, 503, 504})
UNREACHABLE_ATTEMPTS = 4  # connection refused / unknown host: a few quick tries, not the whole deadline

# what went wrong with one attempt, as TransientError.kind
UNREACHABLE = "unreachable"  # nothing listening, or the host does not resolve
NO_ANSWER = "no answer"  # connect or read timeout
ANSWER = "answer"  # an answer worth retrying (502/503/504, or the caller's retry_when)


class TransientError(Exception):
    """One attempt that is worth retrying: what happened (``kind``), why (``reason``), and the answer if any."""

    def __init__(self, description: str, reason: str, kind: str, response: requests.Response | None = None) -> None:
        super().__init__(description)
        self.description = description  # for the retry line: no header, query or body
        self.reason = reason  # "connection refused", "504 Gateway Timeout"
        self.kind = kind
        self.response = response

    @property
    def unreachable(self) -> bool:
        return self.kind == UNREACHABLE


class GatewayExhausted(GatewayError):
    """Retries ran out; the last answer (if any) is kept for callers that read it."""

    def __init__(self, message: str, response: requests.Response | None) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one call is retried."""

    attempts: int = 30
    deadline: float = 300.0
    wait_initial: float = 1.0
    wait_max: float = 15.0


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the HTTP layer needs: the origin, TLS, timeouts and the retry policy (see ``scripts.transport.settings``)."""

    base: str  # scheme://host:port
    verify: bool | str = True  # True, a CA bundle's path, or False (INGRESS_INSECURE on https)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    address: str = "INGRESS_HOST/INGRESS_PORT"  # the keys (and the task) that say where base is, for messages

    @property
    def origin(self) -> str:
        return origin_of(self.base)

    @property
    def insecure(self) -> bool:
        return self.verify is False


@dataclass(frozen=True)
class Sent:
    """An answer and what it took: how many retries, and the seconds from the first try to the answer (waits included)."""

    response: requests.Response
    retries: int
    seconds: float


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, with the default port made explicit (an IPv6 host in brackets, as in a URL)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _unreachable_too_often(retry: RetryCallState) -> bool:
    error = retry.outcome.exception() if retry.outcome else None
    return isinstance(error, TransientError) and error.unreachable and retry.attempt_number >= UNREACHABLE_ATTEMPTS


class RetriesExhausted(Exception):
    """``with_retries`` gave up: the last transient error, how many attempts were made and how long it took."""

    def __init__(self, error: TransientError, tries: int, seconds: float) -> None:
        super().__init__(error.description)
        self.error, self.tries, self.seconds = error, tries, seconds


def with_retries(
    attempt: Callable[[], Any], policy: RetryPolicy, environment: Environment, label: str, cap: int | None = None
) -> tuple[Any, int, float]:
    """``attempt()`` retried on TransientError under ``policy`` (tenacity): the answer, the retries and the seconds.

    Each retry is announced through the environment (one live line on a terminal); a
    refused connection gets a few quick attempts, not the whole deadline.  Raises
    RetriesExhausted when the attempts or the deadline run out.  REST (Gateway.call) and
    gRPC (scripts.model.grpcv2) share it, so both retry, and say so, the same way.
    """
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        stop_after_attempt,
        stop_after_delay,
        stop_any,
        wait_exponential,
        wait_random,
    )

    most_attempts = min(cap or policy.attempts, policy.attempts)
    started = time.monotonic()

    def announce(retry: RetryCallState) -> None:
        error = retry.outcome.exception() if retry.outcome else None
        reason = error.description if isinstance(error, TransientError) else "error"
        wait = retry.next_action.sleep if retry.next_action else 0.0
        most = min(most_attempts, UNREACHABLE_ATTEMPTS) if isinstance(error, TransientError) and error.unreachable else most_attempts
        environment.progress(
            f"retry: {label} → {reason}; attempt {retry.attempt_number + 1} of {most} in {wait:.1f}s",
            on_terminal=f"waiting for {label}: {time.monotonic() - started:.1f}s, "
            f"{retry.attempt_number} of {most} attempts, last answer {reason}",
        )

    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_any(stop_after_attempt(most_attempts), stop_after_delay(policy.deadline), _unreachable_too_often),
        wait=wait_exponential(multiplier=policy.wait_initial, max=policy.wait_max) + wait_random(0, policy.wait_initial),
        before_sleep=announce,
        sleep=environment.sleep,
        reraise=True,
    )
    try:
        answer = retrying(attempt)
    except TransientError as error:
        raise RetriesExhausted(error, retrying.statistics.get("attempt_number", most_attempts), time.monotonic() - started) from None
    finally:
        environment.progress_done()  # the live line stays on screen as it last read
    return answer, retrying.statistics.get("attempt_number", 1) - 1, time.monotonic() - started


class Gateway:
    """A requests session bound to one origin: sends what it is given and returns the answer, changing nothing else."""

    def __init__(self, settings: GatewaySettings, environment: Environment) -> None:
        self.settings = settings
        self.base = settings.base
        self.origin = settings.origin
        self.policy = settings.retry
        self._environment = environment
        import requests

        self.session = requests.Session()
        self.session.trust_env = False  # no .netrc credentials or proxies slipped in from the environment
        self.session.verify = settings.verify
        if settings.insecure:
            environment.warn(
                f"TLS verification is OFF for {self.origin} (INGRESS_INSECURE): anyone on the way can read your credentials"
            )

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.settings.connect_timeout, self.settings.read_timeout)

    def url(self, target: str) -> str:
        """An absolute URL for a path or URL, refused when it leaves the ingress origin."""
        absolute = urljoin(self.base + "/", target)
        refuse_foreign(absolute, self.origin, f"check {self.settings.address}")
        return absolute

    def _attempt(
        self, method: str, url: str, retry_when: Callable[[requests.Response], str | None] | None, **kwargs: Any
    ) -> requests.Response:
        """One try; a TransientError when it is worth another."""
        import requests

        started = time.monotonic()
        sent = _cookie_names(kwargs.get("headers"))
        try:
            with warnings.catch_warnings():
                if self.settings.insecure:  # we said so once, in our own words
                    from urllib3.exceptions import InsecureRequestWarning

                    warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as error:
            self._hop(method, url, started, sent, outcome="TLS failed")
            raise GatewayError(
                f"TLS failed for {self.origin} ({_short(error)}): set INGRESS_CA_BUNDLE to your CA's PEM file (not retried)"
            ) from None
        except requests.exceptions.ConnectionError as error:
            reason = _short(error)
            self._hop(method, url, started, sent, outcome=reason)
            timed_out = isinstance(error, requests.exceptions.ConnectTimeout) or "timed out" in reason
            raise TransientError(
                f"{self.origin} not reachable ({reason})", reason, NO_ANSWER if timed_out else UNREACHABLE
            ) from None
        except requests.exceptions.Timeout:
            waited = f"{self.settings.read_timeout:g}s"
            self._hop(method, url, started, sent, outcome=f"no answer in {waited}")
            raise TransientError(f"no answer from {self.origin} in {waited}", f"no answer in {waited}", NO_ANSWER) from None
        self._hop(method, url, started, sent, response=response)
        said = f"{response.status_code} {response.reason}" if response.status_code in RETRIED_STATUSES else None
        said = said or (retry_when(response) if retry_when else None)
        if said:
            raise TransientError(said, said, ANSWER, response)
        return response

    def _hop(
        self, method: str, url: str, started: float, sent: list[str], *, response: requests.Response | None = None, outcome: str = ""
    ) -> None:
        """Tell the environment about one attempt (shown with --verbose): never a header value or a body."""
        from .cookies import parse_set_cookie, set_cookie_headers
        from .redirects import location_values

        location, set_names = "", []
        if response is not None:
            outcome = f"{response.status_code} {response.reason or ''}".strip()
            location = ", ".join(location_values(response))
            now = self._environment.now()
            parsed = (parse_set_cookie(header, now) for header in set_cookie_headers(response))
            set_names = [cookie.name for cookie in parsed if cookie is not None]
        self._environment.hop(
            method,
            url,
            outcome,
            cookies_sent=sent,
            cookies_set=set_names,
            location=location,
            milliseconds=(time.monotonic() - started) * 1000,
        )

    def send(self, method: str, target: str, **kwargs: Any) -> requests.Response:
        """The answer of ``call``, for callers that need nothing else."""
        return self.call(method, target, **kwargs).response

    def call(
        self,
        method: str,
        target: str,
        *,
        retry_when: Callable[[requests.Response], str | None] | None = None,
        attempts: int | None = None,
        **kwargs: Any,
    ) -> Sent:
        """One request, retried while the network is at fault; redirects are returned, not followed.

        ``retry_when`` may name further answers to retry (returns a description, or None);
        ``attempts`` lowers the attempt cap for this call.  Other keyword arguments go to
        ``requests`` (headers, data, json).  Returns the answer with its retries and total time.
        """
        url = self.url(target)
        path = urlsplit(url).path or "/"
        try:
            response, retries, seconds = with_retries(
                lambda: self._attempt(method, url, retry_when, **kwargs), self.policy, self._environment, f"{method} {path}", attempts
            )
        except RetriesExhausted as gave_up:
            spent = f"{gave_up.tries} attempt(s) in {gave_up.seconds:.0f}s"
            capped = attempts is not None and attempts < self.policy.attempts  # RETRY_ATTEMPTS does not govern this call
            raise GatewayExhausted(self._gave_up(method, path, spent, gave_up.error, capped), gave_up.error.response) from None
        return Sent(response, retries, seconds)

    def _gave_up(self, method: str, path: str, spent: str, error: TransientError, capped: bool) -> str:
        if error.unreachable:
            return (
                f"cannot connect to {self.origin}: {error.reason} after {spent}; "
                f"check {self.settings.address} and that the gateway is up"
            )
        settings = "" if capped else ", or raise RETRY_ATTEMPTS / RETRY_DEADLINE"
        return f"{method} {path} still failing after {spent}: {error.description}; try again later{settings}"


def refuse_foreign(url: str, origin: str, what_to_check: str) -> None:
    """A GatewayError when ``url`` (a redirect's, or one the .env holds) is not on ``origin``, where credentials may go."""
    if origin_of(url) != origin:
        raise GatewayError(f"{url} is not on the ingress {origin}: refusing to send credentials there ({what_to_check})")


def _cookie_names(headers: Any) -> list[str]:
    """The names of the cookies in a request's ``Cookie`` header."""
    header = next((value for name, value in (headers or {}).items() if name.lower() == "cookie"), "")
    return [part.split("=", 1)[0].strip() for part in header.split(";") if "=" in part]


def _short(error: BaseException) -> str:
    text = str(error)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "certificate verify failed",
    ):
        if marker in text:
            return marker.lower()
    if "NameResolutionError" in text or "getaddrinfo failed" in text:
        return "name or service not known"
    if not text:
        return type(error).__name__
    first = text.splitlines()[0]
    _, wrapped, caused = first.rpartition("(Caused by ")  # urllib3 wraps the reason: keep the innermost part, whole
    return clipped(caused.removesuffix(")") if wrapped else first)
