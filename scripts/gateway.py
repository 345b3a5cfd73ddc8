"""HTTP to the Kubeflow ingress: one origin, a timeout on every call, retries where the network is at fault.

``Gateway`` refuses to send anything to an origin other than the one it was
made for, so credentials and cookies cannot follow a redirect to another host.
Redirects are never followed by ``requests``: the login steps read each one.

The retry policy (tenacity) covers 502/503/504, connection errors, read
timeouts and, where the caller says so, other "not ready yet" answers.  It is
bounded by attempts and by a deadline, waits with exponential backoff and
jitter, and prints one line per retry on stderr with no header or body in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from . import console
from .cookies import CookieHeader
from .errors import GatewayError
from .state import State

RETRIED_STATUSES = frozenset({502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class TransientError(Exception):
    """An answer worth retrying; carries a short description without secrets."""

    def __init__(self, description: str, response: requests.Response | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.response = response


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one call is retried."""

    attempts: int = 30
    deadline: float = 300.0
    wait_initial: float = 1.0
    wait_max: float = 15.0

    @classmethod
    def from_state(cls, state: State) -> RetryPolicy:
        """The policy set in .env (``RETRY_*``), with defaults sized for a Knative cold start."""
        default = cls()
        return cls(
            attempts=max(1, int(state.number("RETRY_ATTEMPTS", default.attempts))),
            deadline=state.number("RETRY_DEADLINE", default.deadline),
            wait_initial=state.number("RETRY_WAIT_INITIAL", default.wait_initial),
            wait_max=state.number("RETRY_WAIT_MAX", default.wait_max),
        )


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, with the default port made explicit."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def is_redirect(response: requests.Response) -> bool:
    """True for a 3xx answer that carries a Location."""
    return response.status_code in REDIRECT_STATUSES and "Location" in response.headers


class Gateway:
    """A requests session bound to one origin, with timeouts and the retry policy."""

    def __init__(self, state: State, port_key: str = "INGRESS_PORT", sleep: Callable[[float], None] = time.sleep) -> None:
        host = state.require("INGRESS_HOST")
        port = state.require(port_key)
        scheme = "https" if port == "443" else "http"
        self.base = f"{scheme}://{host}:{port}"
        self.origin = origin_of(self.base)
        self.timeout = (10.0, state.number("HTTP_TIMEOUT", 30.0))
        self.policy = RetryPolicy.from_state(state)
        self._sleep = sleep
        self.session = requests.Session()
        self.session.trust_env = False  # no .netrc credentials or proxies slipped in from the environment

    def url(self, target: str) -> str:
        """An absolute URL for a path or URL, refused when it leaves the ingress origin."""
        absolute = urljoin(self.base + "/", target)
        if origin_of(absolute) != self.origin:
            raise GatewayError(
                f"the gateway redirected to {origin_of(absolute)}, not {self.origin}: "
                "refusing to send credentials there (check INGRESS_HOST/INGRESS_PORT)"
            )
        return absolute

    def send(
        self,
        method: str,
        target: str,
        *,
        cookies: CookieHeader | None = None,
        headers: dict[str, str] | None = None,
        retry_when: Callable[[requests.Response], str | None] | None = None,
        attempts: int | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request, retried while the network is at fault; redirects are returned, not followed.

        ``retry_when`` may name further answers to retry (returns a description, or None).
        The cookies given are sent and updated from the answer.
        """
        url = self.url(target)
        path = urlsplit(url).path or "/"

        def attempt() -> requests.Response:
            sent_headers = dict(headers or {})
            if cookies:
                sent_headers["Cookie"] = cookies.header()
            try:
                response = self.session.request(
                    method, url, headers=sent_headers, timeout=self.timeout, allow_redirects=False, **kwargs
                )
            except requests.exceptions.SSLError as error:
                raise GatewayError(f"TLS failed for {self.origin}: {_short(error)}") from None
            except requests.exceptions.ConnectionError as error:
                raise TransientError(f"{self.origin} not reachable ({_short(error)})") from None
            except requests.exceptions.Timeout:
                raise TransientError(f"no answer from {self.origin} in {self.timeout[1]:g}s") from None
            if response.status_code in RETRIED_STATUSES:
                raise TransientError(f"{response.status_code} {response.reason}", response)
            extra = retry_when(response) if retry_when else None
            if extra:
                raise TransientError(extra, response)
            return response

        def announce(retry: RetryCallState) -> None:
            error = retry.outcome.exception() if retry.outcome else None
            reason = error.description if isinstance(error, TransientError) else "error"
            wait = retry.next_action.sleep if retry.next_action else 0.0
            console.info(f"retry: {method} {path} → {reason}; attempt {retry.attempt_number + 1} of {cap} in {wait:.1f}s")

        cap = attempts or self.policy.attempts
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(cap) | stop_after_delay(self.policy.deadline),
            wait=wait_exponential(multiplier=self.policy.wait_initial, max=self.policy.wait_max)
            + wait_random(0, self.policy.wait_initial),
            before_sleep=announce,
            sleep=self._sleep,
            reraise=True,
        )
        started = time.monotonic()
        try:
            response = retrying(attempt)
        except TransientError as error:
            tries = retrying.statistics.get("attempt_number", cap)
            elapsed = time.monotonic() - started
            raise GatewayExhausted(
                f"{method} {path} still failing after {tries} attempt(s) in {elapsed:.0f}s: {error.description}; "
                "try again later, or raise RETRY_ATTEMPTS / RETRY_DEADLINE",
                error.response,
            ) from None
        if cookies is not None:
            cookies.apply(response)
        return response


class GatewayExhausted(GatewayError):
    """Retries ran out; the last answer (if any) is kept for callers that read it."""

    def __init__(self, message: str, response: requests.Response | None) -> None:
        super().__init__(message)
        self.response = response


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
    return text.splitlines()[0][:120] if text else type(error).__name__
