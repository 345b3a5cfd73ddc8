"""The credentials a login produced (session cookie or ServiceAccount token): how they are sent, when they end, how that is shown.

``AUTH_COOKIE`` (a ``Cookie:`` header value), ``AUTH_EXPIRES`` (ISO 8601, UTC),
``AUTH_ORIGIN`` (the ingress it came from) and ``AUTH_LOGIN`` are written by
extract-cookie; ``AUTH_BEARER`` and its ``_EXPIRES``, ``_ORIGIN`` and
``_SUBJECT`` by create-token.  A credential is sent only to the ingress it came
from, or to a NodePort on that same host (``ensure_bound``).  The time is always
given by the caller (the environment's clock).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..core.environment import Environment
from ..core.errors import ConfigError, SessionError, SessionOver, UsageError
from ..core.state import State
from ..core.step import AUTH_METHODS

UNREADABLE = datetime.min.replace(tzinfo=timezone.utc)  # an expiry that is not a date: long past, so never valid


def format_expiry(expires: datetime | None, now: datetime) -> str:
    """``valid until 2026-11-29 14:02 UTC (in 23h 59m)``, or ``expired ... ago``."""
    if expires is None:
        return "no expiry given by the gateway"
    if expires == UNREADABLE:
        return "has an expiry that is not a date (ISO 8601, as the login writes it), so it counts as expired"
    left = int((expires - now).total_seconds())
    stamp = expires.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if left <= 0:
        return f"expired at {stamp} ({_duration(-left)} ago)"
    return f"valid until {stamp} (in {_duration(left)})"


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds % 60:02d}s"


def parse_expiry(text: str) -> datetime | None:
    """AUTH_EXPIRES as a datetime: None when empty (no expiry given), ``UNREADABLE`` when it is not a date."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return UNREADABLE
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second: ``2026-11-29T14:02:00Z``."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


AHEAD = 300.0  # what renews ahead of a credential's end (locust --renew, kfp_client) starts at most five minutes before


def renew_before(lifetime: float) -> float:
    """Seconds before its end that a credential lasting ``lifetime`` seconds is renewed ahead: a third of it, at most AHEAD."""
    return min(AHEAD, lifetime / 3)


@dataclass(frozen=True)
class Credential:
    """A session cookie or a bearer token, the ingress it belongs to, and until when."""

    kind: str  # "cookie" or "token"
    value: str  # the Cookie header value, or the bare token
    expires: str  # ISO 8601 UTC, "" when the gateway gave none
    origin: str  # scheme://host:port of the ingress it came from ("" when not recorded)
    owner: str  # the Dex login or ServiceAccount it was issued to ("" when not recorded)

    @property
    def keys(self) -> CredentialKeys:
        return COOKIE_KEYS if self.kind == "cookie" else TOKEN_KEYS

    @property
    def noun(self) -> str:
        return credential_noun(self.keys)

    @property
    def header_name(self) -> str:
        return "Cookie" if self.kind == "cookie" else "Authorization"

    def header_value(self, shown: Callable[[str], str] = str) -> str:
        """The header's value, with the secret passed through ``shown`` (masking, or as is)."""
        return shown(self.value) if self.kind == "cookie" else f"Bearer {shown(self.value)}"

    def headers(self) -> dict[str, str]:
        """The header that carries it on a request."""
        return {self.header_name: self.header_value()}

    def expiry(self) -> datetime | None:
        return parse_expiry(self.expires)


@dataclass(frozen=True)
class CredentialKeys:
    """The .env keys that hold one kind of credential."""

    kind: str
    value: str
    expires: str
    origin: str
    owner: str
    login_hint: str  # the command that gets a fresh one

    @property
    def all(self) -> tuple[str, str, str, str]:
        """Every key of this credential: what forgetting it removes."""
        return (self.value, self.expires, self.origin, self.owner)


COOKIE_KEYS = CredentialKeys("cookie", "AUTH_COOKIE", "AUTH_EXPIRES", "AUTH_ORIGIN", "AUTH_LOGIN", "`invoke login`")
TOKEN_KEYS = CredentialKeys("token", "AUTH_BEARER", "AUTH_BEARER_EXPIRES", "AUTH_BEARER_ORIGIN", "AUTH_BEARER_SUBJECT", "`invoke login --token`")


def credential_noun(keys: CredentialKeys) -> str:
    """``session cookie`` or ``token``."""
    return "session cookie" if keys.kind == "cookie" else "token"


def saved(state: State, keys: CredentialKeys) -> Credential | None:
    """The credential of this kind in the state, valid or not; None when there is none."""
    value = state.value(keys.value)
    if not value:
        return None
    return Credential(keys.kind, value, state.value(keys.expires), state.value(keys.origin), state.value(keys.owner))


def is_valid(credential: Credential | None, now: datetime) -> bool:
    """True for a credential whose expiry (if any) is still ahead."""
    if credential is None:
        return False
    expires = credential.expiry()
    return expires is None or expires > now


def choose(state: State, now: datetime, method: str = "auto") -> Credential:
    """The credential to send: ``auto`` takes the Dex session cookie while it is valid, else the token.

    Raises SessionOver (a SessionError) when the chosen credential is missing or expired.
    """
    if method not in AUTH_METHODS:
        raise UsageError(f"unknown auth method {method!r}: use one of {', '.join(AUTH_METHODS)}")
    candidates = [keys for keys in (COOKIE_KEYS, TOKEN_KEYS) if method in ("auto", keys.kind)]
    found = [(keys, saved(state, keys)) for keys in candidates]
    for _keys, credential in found:
        if credential is not None and is_valid(credential, now):
            return credential
    for keys, credential in found:
        if credential is not None:
            raise SessionOver(f"the {credential.noun} {format_expiry(credential.expiry(), now)}: run {keys.login_hint}")
    wanted = " (or ".join(keys.login_hint for keys in candidates) + (")" if len(candidates) > 1 else "")
    raise SessionOver(f"no {'token' if method == 'token' else 'session'} in {state.path}: run {wanted} first")


def same_cluster(credential_origin: str, destination: str, ingress_origin: str) -> bool:
    """True when a credential from ``credential_origin`` may go to ``destination``.

    It must come from the ingress the state points at now, and go there or to a
    NodePort on that same host (the model's, as expose-nodeport makes it).
    """
    if not credential_origin or credential_origin != ingress_origin:
        return False
    return destination == ingress_origin or urlsplit(destination).hostname == urlsplit(ingress_origin).hostname


# what may stand in a header: a Cookie header's name=value pairs, or a bearer token (RFC 6750's token68)
_COOKIE_HEADER = re.compile(r"[^\s=;]+=[\x21-\x3a\x3c-\x7e]*(?:; ?[^\s=;]+=[\x21-\x3a\x3c-\x7e]*)*")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def ensure_sendable(credential: Credential) -> None:
    """A ConfigError, sending nothing, when the saved value cannot go in a header as it is (a line break, a stray space).

    A header with a line break in it would carry a second header of someone's choosing; the value is never shown.
    """
    form = _COOKIE_HEADER if credential.kind == "cookie" else _TOKEN68
    if not form.fullmatch(credential.value):
        wanted = "name=value pairs separated by '; '" if credential.kind == "cookie" else "a bearer token (no spaces or line breaks)"
        raise ConfigError(f"{credential.keys.value} in the state is not {wanted}: nothing was sent; run {credential.keys.login_hint}")


def ensure_bound(credential: Credential, destination: str, ingress_origin: str) -> None:
    """A SessionError, sending nothing, when ``credential`` does not belong where it is about to go (or cannot be sent)."""
    ensure_sendable(credential)
    if same_cluster(credential.origin, destination, ingress_origin):
        return
    hint = credential.keys.login_hint
    if not credential.origin:
        raise SessionError(
            f"the {credential.noun} in the state does not say which ingress it belongs to "
            f"({credential.keys.origin} is not set): run {hint} to get one bound to {ingress_origin}"
        )
    # name the ingress the state points at: the call may be on its way to a NodePort of it, which is not what differs
    elsewhere = ingress_origin if credential.origin != ingress_origin else destination
    raise SessionError(f"the {credential.noun} in the state belongs to {credential.origin}, not {elsewhere}: run {hint}")


def describe_cookie(cookie: str, expires: datetime | None, environment: Environment) -> str:
    """``authservice_session=MTY…tfZ, valid until ...`` with values masked."""
    return f"{environment.mask_cookie_header(cookie)}, {format_expiry(expires, environment.now())}"
