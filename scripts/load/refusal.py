"""Whether an answer under load means the session is gone: one test for the engine and the locustfile.

This module imports nothing, so the locustfile (which Locust runs as a file,
outside this package) can load it from beside itself.
"""

from __future__ import annotations

SIGN_IN_WORDS = (b"sign in", b"<form", b"log in")


def session_refused(status: int, location: str, body: bytes) -> bool:
    """True when an answer sends the call to a login: the session or token is no longer accepted."""
    if 300 <= status < 400:
        return "/dex/" in location or "/oauth2/" in location
    if status == 401:
        return True
    if status == 403:
        head = body[:2000].lower()
        return head.strip() == b"{}" or any(word in head for word in SIGN_IN_WORDS)
    return False
