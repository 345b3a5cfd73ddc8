"""Cookies the gateway sets during login, kept as a ``Cookie:`` header value in .env.

The login crosses several processes (one per step), so cookies cannot live in a
``requests`` jar: each step reads the header value from .env, applies the
``Set-Cookie`` headers it receives (new values, deletions, expiry) and writes
it back.  We only ever talk to the ingress origin, so domain and path
scoping do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import requests


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header."""

    name: str
    value: str
    expires: datetime | None  # None: a browser-session cookie

    def is_deletion(self, now: datetime) -> bool:
        """True when the header clears the cookie (empty, or expiry not after now)."""
        return self.expires is not None and self.expires <= now


def parse_set_cookie(header: str, now: datetime) -> SetCookie | None:
    """Parse one ``Set-Cookie`` header; None when it has no ``name=value`` pair."""
    first, *attributes = header.split(";")
    name, sep, value = first.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    expires: datetime | None = None
    max_age: int | None = None
    for attribute in attributes:
        key, _, raw = attribute.strip().partition("=")
        key = key.strip().lower()
        if key == "max-age":
            try:
                max_age = int(raw.strip())
            except ValueError:
                continue
        elif key == "expires":
            try:
                parsed = parsedate_to_datetime(raw.strip())
            except (TypeError, ValueError, IndexError):
                continue
            expires = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if max_age is not None:  # Max-Age wins over Expires (RFC 6265 5.3)
        expires = now + timedelta(seconds=max_age) if max_age > 0 else now
    return SetCookie(name, value, expires)


def set_cookie_headers(response: requests.Response) -> list[str]:
    """Every ``Set-Cookie`` header of a response, unfolded."""
    raw_headers = getattr(response.raw, "headers", None)
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        return list(raw_headers.getlist("Set-Cookie"))
    single = response.headers.get("Set-Cookie")
    return [single] if single else []


class CookieHeader:
    """An ordered set of cookies, read from and written as a ``Cookie:`` header value."""

    def __init__(self, header: str = "") -> None:
        self._values: dict[str, str] = {}
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                self._values[name] = value

    def apply(self, response: requests.Response, now: datetime) -> list[SetCookie]:
        """Take the response's ``Set-Cookie`` headers in; return the cookies it set (not deleted)."""
        moment = now
        kept: list[SetCookie] = []
        for header in set_cookie_headers(response):
            cookie = parse_set_cookie(header, moment)
            if cookie is None:
                continue
            if cookie.is_deletion(moment) or cookie.value == "":
                self._values.pop(cookie.name, None)
                kept = [k for k in kept if k.name != cookie.name]
                continue
            self._values[cookie.name] = cookie.value
            kept = [k for k in kept if k.name != cookie.name] + [cookie]
        return kept

    def names(self) -> list[str]:
        """Names of the cookies held, in order."""
        return list(self._values)

    def header(self) -> str:
        """The ``Cookie:`` header value: ``a=1; b=2``."""
        return "; ".join(f"{name}={value}" for name, value in self._values.items())

    def __bool__(self) -> bool:
        return bool(self._values)
