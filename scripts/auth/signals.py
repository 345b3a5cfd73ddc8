"""The one table that says whether a gateway's answer sends the caller to a login.

Every client asks it: the login steps and ``infer`` (through
``dexflow.login_signal``), ``doctor``, the load engines, the locustfile and the
gRPC client.  It reads only what every wire shows (status, ``Location``, the
first bytes of the body), and imports only the standard library so the
locustfile, which Locust runs as a file outside this package, can load it by
path.  The rows are those of ``docs/auth-flows.md``.
"""

from __future__ import annotations

import re

TO_DEX = "to Dex"
TO_LOGIN = "to a login"

REDIRECTS = frozenset({301, 302, 303, 307, 308})

# oauth2-proxy's sign-in page: a form that starts the login (``GET /oauth2/start``), relative or absolute.
_SIGN_IN_FORM = re.compile(rb"""<form[^>]*\baction\s*=\s*["']?[^"'>\s]*/oauth2/start\b""", re.IGNORECASE)


def is_sign_in_page(body: bytes) -> bool:
    """True for oauth2-proxy's sign-in page (its 403 to a browser without a session)."""
    return bool(_SIGN_IN_FORM.search(body[:20000]))


def login_signal_of(
    status: int, location: str, body: bytes | None, navigation: bool = False, elsewhere: bool = False
) -> str | None:
    """Where this answer sends the caller (``to Dex``, ``to a login``), or None when it is not a login.

    Row by row: a redirect to Dex or oauth2-proxy is a login; any other redirect is one for a
    model's API (it never redirects otherwise) but for navigation only when it leaves the origin
    (``elsewhere``); a 401 or 403 is one as oauth2-proxy's sign-in page or its ``{}`` (401 on
    API paths), or when the wire shows no body (``None``: gRPC sees only the status of the
    gateway's HTTP/2 answer); a 401 that is not HTML is one too (Istio's refused JWT), while an
    HTML 401 is Dex's own page (a wrong password); Istio's 403 ``RBAC: access denied`` is the
    model's refusal, not a login; anything else is not a login.
    """
    if status in REDIRECTS:
        if "/dex/" in location or "/oauth2/" in location:
            return TO_DEX
        return TO_LOGIN if not navigation or elsewhere else None
    if status in (401, 403) and (body is None or body.strip() == b"{}" or is_sign_in_page(body)):
        return TO_LOGIN
    if status == 401 and not body.lstrip().startswith(b"<"):  # Istio's refused JWT; an HTML 401 is Dex's own page
        return TO_LOGIN
    return None


def session_refused(status: int, location: str, body: bytes) -> bool:
    """True when a model call's answer sends it to a login: the session or token is no longer accepted."""
    return login_signal_of(status, location, body) is not None
