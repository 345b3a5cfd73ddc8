"""HTTP to the Kubeflow ingress: one origin, a timeout on every call, retries where the network is at fault.

``Gateway`` refuses to send anything to an origin other than the one it was
made for, so credentials and cookies cannot follow a redirect to another host.
Redirects are never followed by ``requests``: the login steps read each one.
TLS is verified (``INGRESS_CA_BUNDLE`` for a private CA); ``INGRESS_INSECURE``
turns verification off and says so every time.

The retry policy (tenacity) covers 502/503/504, connection errors, read
timeouts and, where the caller says so, other "not ready yet" answers.  It is
bounded by attempts and by a deadline, waits with exponential backoff and
jitter, and prints one line per retry on stderr with no header, query or body
in it.  Nothing listening at all (connection refused, unknown host) is given a
few attempts only: a wrong address should not cost a five-minute wait.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random,
)
from urllib3.exceptions import InsecureRequestWarning

from . import console
from .cookies import CookieHeader
from .errors import ConfigError, GatewayError
from .state import State

RETRIED_STATUSES = frozenset({502, 503, 504})
UNREACHABLE_ATTEMPTS = 4  # connection refused / unknown host: a few quick tries, not the whole deadline
_TRUE = ("1", "true", "yes", "on")


class TransientError(Exception):
    """An answer worth retrying; carries a short description without secrets."""

    def __init__(self, description: str, response: requests.Response | None = None, unreachable: bool = False) -> None:
        super().__init__(description)
        self.description = description
        self.response = response
        self.unreachable = unreachable


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


def _unreachable_too_often(retry: RetryCallState) -> bool:
    error = retry.outcome.exception() if retry.outcome else None
    return isinstance(error, TransientError) and error.unreachable and retry.attempt_number >= UNREACHABLE_ATTEMPTS


class Gateway:
    """A requests session bound to one origin, with timeouts, TLS settings and the retry policy."""

    def __init__(
        self,
        state: State,
        port_key: str = "INGRESS_PORT",
        sleep: Callable[[float], None] = time.sleep,
        scheme: str | None = None,
    ) -> None:
        host = state.require("INGRESS_HOST")
        port = state.require(port_key)
        scheme = scheme or state.value("INGRESS_SCHEME") or ("https" if port == "443" else "http")
        if scheme not in ("http", "https"):
            raise ConfigError(f"INGRESS_SCHEME={scheme!r} in {state.path}: use http or https")
        self.base = f"{scheme}://{host}:{port}"
        self.origin = origin_of(self.base)
        self.timeout = (10.0, state.number("HTTP_TIMEOUT", 30.0))
        self.policy = RetryPolicy.from_state(state)
        self._sleep = sleep
        self.session = requests.Session()
        self.session.trust_env = False  # no .netrc credentials or proxies slipped in from the environment
        self.insecure = False
        if scheme == "https":
            self.session.verify = self._verify(state)

    def _verify(self, state: State) -> bool | str:
        if state.value("INGRESS_INSECURE").lower() in _TRUE:
            console.warn(
                f"TLS verification is OFF for {self.origin} (INGRESS_INSECURE): anyone on the way can read your credentials"
            )
            self.insecure = True
            return False
        bundle = state.value("INGRESS_CA_BUNDLE")
        if bundle:
            if not Path(bundle).expanduser().is_file():
                raise ConfigError(f"INGRESS_CA_BUNDLE={bundle} in {state.path} is not a file: give the PEM file of your CA")
            return str(Path(bundle).expanduser())
        return True

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

        ``retry_when`` may name further answers to retry (returns a description, or None);
        ``attempts`` lowers the attempt cap for this call.  The cookies given are sent and
        updated from the answer.
        """
        url = self.url(target)
        path = urlsplit(url).path or "/"
        cap = min(attempts or self.policy.attempts, self.policy.attempts)

        def attempt() -> requests.Response:
            sent_headers = dict(headers or {})
            if cookies:
                sent_headers["Cookie"] = cookies.header()
            try:
                with warnings.catch_warnings():
                    if self.insecure:  # we said so once, in our own words
                        warnings.simplefilter("ignore", InsecureRequestWarning)
                    response = self.session.request(
                        method, url, headers=sent_headers, timeout=self.timeout, allow_redirects=False, **kwargs
                    )
            except requests.exceptions.SSLError as error:
                raise GatewayError(
                    f"TLS failed for {self.origin} ({_short(error)}): set INGRESS_CA_BUNDLE to your CA's PEM file (not retried)"
                ) from None
            except requests.exceptions.ConnectionError as error:
                reason = _short(error)
                if isinstance(error, requests.exceptions.ConnectTimeout) or "timed out" in reason:
                    raise TransientError(f"{self.origin} not reachable ({reason})") from None
                raise TransientError(f"{self.origin} not reachable ({reason})", unreachable=True) from None
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

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_any(stop_after_attempt(cap), stop_after_delay(self.policy.deadline), _unreachable_too_often),
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
            spent = f"{tries} attempt(s) in {time.monotonic() - started:.0f}s"
            if error.unreachable:
                message = (
                    f"cannot connect to {self.origin}: {error.description.split('(')[-1].rstrip(')')} after {spent}; "
                    "check INGRESS_HOST/INGRESS_PORT (`invoke resolve-ingress`) and that the gateway is up"
                )
            else:
                message = (
                    f"{method} {path} still failing after {spent}: {error.description}; "
                    "try again later, or raise RETRY_ATTEMPTS / RETRY_DEADLINE"
                )
            raise GatewayExhausted(message, error.response) from None
        if cookies is not None:
            cookies.apply(response)
        return response


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
    return text.splitlines()[0][:120] if text else type(error).__name__
