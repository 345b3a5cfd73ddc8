"""Cookies the gateway sets during login, kept as a ``Cookie:`` header value in .env.

The login crosses several processes (one per step), so cookies cannot live in a
``requests`` jar: each step reads the header value from .env, applies the
``Set-Cookie`` headers it receives (new values, deletions, expiry) and writes
it back.  We only ever talk to the ingress origin, so domain and path
scoping do not apply.

``Set-Cookie`` is parsed as RFC 6265 section 5.2 tells a user agent to, not as
the grammar of section 4.1 says a server should write it: real gateways write
values a strict parser rejects (oidc-authservice in Kubeflow 1.7 and 1.8 sends
``Max-Age=1200000000000``, a Go duration in nanoseconds).  An attribute that
cannot be read is ignored, an expiry past the last date we can represent is
capped there, and nothing in a header can make the parser raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: requests loads when a request is sent
    import requests


# the last moment we represent: RFC 6265 5.2.1 lets a user agent cap an expiry there
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
# the earliest: what a Max-Age of zero or less means (5.2.2)
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)

# RFC 6265 5.1.1: the date is split on these delimiters, then each token is tried in turn
_DATE_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9].*)?$", re.DOTALL)
_DAY = re.compile(r"([0-9]{1,2})(?:[^0-9].*)?$", re.DOTALL)
_YEAR = re.compile(r"([0-9]{2,4})(?:[^0-9].*)?$", re.DOTALL)
# a Max-Age this long is past LATEST from any date we can represent; longer digit strings are not even
# converted (Python refuses int() of more than 4300 digits)
_LONGEST_MAX_AGE = 10**12 * 400
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _date_fields(text: str) -> tuple[tuple[int, ...] | None, int | None, int | None, int | None]:
    """RFC 6265 5.1.1 steps 1-2: the first time, day, month and year tokens found, in that order of tries."""
    clock = day = month = year = None
    for token in filter(None, _DATE_DELIMITERS.split(text)):
        if clock is None and (found := _TIME.match(token)):
            clock = tuple(int(part) for part in found.groups())
        elif day is None and (found := _DAY.match(token)):
            day = int(found.group(1))
        elif month is None and token[:3].isascii() and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (found := _YEAR.match(token)):
            year = int(found.group(1))
    return clock, day, month, year


def parse_cookie_date(text: str) -> datetime | None:
    """An ``Expires`` value read by the algorithm of RFC 6265 5.1.1; None when it is no date."""
    clock, day, month, year = _date_fields(text)
    if clock is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = clock
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:  # day 31 of a 30-day month, 29 February of a common year
        return None


def _max_age(text: str) -> int | None:
    """A ``Max-Age`` value as RFC 6265 5.2.2 reads it: optional ``-`` then digits, else ignored."""
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) > len(str(_LONGEST_MAX_AGE)):
        return -1 if negative else _LONGEST_MAX_AGE
    return int(text)


def expiry_after(now: datetime, seconds: int) -> datetime:
    """``now`` plus a Max-Age: the earliest moment for zero or less, capped at LATEST."""
    if seconds <= 0:
        return EARLIEST
    if seconds >= (LATEST - now).total_seconds():
        return LATEST
    return now + timedelta(seconds=seconds)


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
    """Parse one ``Set-Cookie`` header (RFC 6265 5.2); None when it sets no cookie.

    Max-Age wins over Expires wherever both stand (5.3 step 3), whatever their order.
    """
    pair, *attributes = header.split(";")
    name, sep, value = pair.partition("=")
    name, value = name.strip(" \t"), value.strip(" \t")
    if not sep or not name:
        return None
    expires: datetime | None = None
    max_age: int | None = None
    for attribute in attributes:
        key, _, raw = attribute.partition("=")
        key, raw = key.strip(" \t").lower(), raw.strip(" \t")
        if key == "max-age":
            seconds = _max_age(raw)
            max_age = seconds if seconds is not None else max_age
        elif key == "expires":
            expires = parse_cookie_date(raw) or expires
    if max_age is not None:
        expires = expiry_after(now, max_age)
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
