"""The session a login produced: how it is sent, when it ends, and how that is shown.

``AUTH_COOKIE`` (a ``Cookie:`` header value) and ``AUTH_EXPIRES`` (ISO 8601,
UTC) are written by extract-cookie and read by infer and status.
"""

from __future__ import annotations

from datetime import datetime, timezone

from . import console
from .errors import SessionError
from .state import State


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(timezone.utc)


def format_expiry(expires: datetime | None, now: datetime | None = None) -> str:
    """``valid until 2026-11-29 14:02 UTC (in 23h 59m)``, or ``expired ... ago``."""
    if expires is None:
        return "no expiry given by the gateway"
    moment = now or now_utc()
    left = int((expires - moment).total_seconds())
    stamp = expires.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if left <= 0:
        return f"expired at {stamp} ({_duration(-left)} ago)"
    return f"valid until {stamp} (in {_duration(left)})"


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds % 60:02d}s"


def parse_expiry(text: str) -> datetime | None:
    """AUTH_EXPIRES as a datetime (None when empty or unreadable)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second: ``2026-11-29T14:02:00Z``."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def auth_headers(state: State) -> dict[str, str]:
    """The headers that carry the session; SessionError when there is none or it expired."""
    cookie = state.value("AUTH_COOKIE")
    if not cookie:
        raise SessionError(f"no session in {state.path}: run `invoke login` first")
    expires = parse_expiry(state.value("AUTH_EXPIRES"))
    if expires is not None and expires <= now_utc():
        raise SessionError(f"the session cookie {format_expiry(expires)}: run `invoke login`")
    return {"Cookie": cookie}


def describe_cookie(cookie: str, expires: datetime | None) -> str:
    """``authservice_session=MTY…tfZ, valid until ...`` with values masked."""
    return f"{console.mask_cookie_header(cookie)}, {format_expiry(expires)}"
