"""The credentials a login produced (session cookie or ServiceAccount token): how they are sent, when they end, how that is shown.

``AUTH_COOKIE`` (a ``Cookie:`` header value) and ``AUTH_EXPIRES`` (ISO 8601,
UTC) are written by extract-cookie; ``AUTH_BEARER`` and ``AUTH_BEARER_EXPIRES``
by create-token; infer and status read them.  The time is always given by the
caller (the environment's clock).
"""

from __future__ import annotations

from datetime import datetime, timezone

from .environment import Environment
from .errors import SessionError, UsageError
from .state import State


def format_expiry(expires: datetime | None, now: datetime) -> str:
    """``valid until 2026-11-29 14:02 UTC (in 23h 59m)``, or ``expired ... ago``."""
    if expires is None:
        return "no expiry given by the gateway"
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


AUTH_METHODS = ("auto", "cookie", "token")


def _credential(state: State, value_key: str, expiry_key: str) -> tuple[str, datetime | None]:
    return state.value(value_key), parse_expiry(state.value(expiry_key))


def auth_headers(state: State, now: datetime, method: str = "auto") -> tuple[dict[str, str], str]:
    """The headers that carry the session and which kind it is ("cookie" or "token").

    ``auto`` takes the Dex session cookie while it is valid, else the token.
    Raises SessionError when the chosen credential is missing or expired.
    """
    if method not in AUTH_METHODS:
        raise UsageError(f"unknown auth method {method!r}: use one of {', '.join(AUTH_METHODS)}")
    cookie, cookie_expires = _credential(state, "AUTH_COOKIE", "AUTH_EXPIRES")
    token, token_expires = _credential(state, "AUTH_BEARER", "AUTH_BEARER_EXPIRES")
    cookie_ok = bool(cookie) and (cookie_expires is None or cookie_expires > now)
    token_ok = bool(token) and (token_expires is None or token_expires > now)
    if method in ("auto", "cookie") and cookie_ok:
        return {"Cookie": cookie}, "cookie"
    if method in ("auto", "token") and token_ok:
        return {"Authorization": f"Bearer {token}"}, "token"
    if method in ("auto", "cookie") and cookie:
        raise SessionError(f"the session cookie {format_expiry(cookie_expires, now)}: run `invoke login`")
    if method in ("auto", "token") and token:
        raise SessionError(f"the token {format_expiry(token_expires, now)}: run `invoke login --token`")
    wanted = {"cookie": "`invoke login`", "token": "`invoke login --token`"}.get(
        method, "`invoke login` (or `invoke login --token`)"
    )
    raise SessionError(f"no {'token' if method == 'token' else 'session'} in {state.path}: run {wanted} first")


def describe_cookie(cookie: str, expires: datetime | None, environment: Environment) -> str:
    """``authservice_session=MTY…tfZ, valid until ...`` with values masked."""
    return f"{environment.mask_cookie_header(cookie)}, {format_expiry(expires, environment.now())}"
