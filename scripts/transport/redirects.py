"""Where a redirect points, read from its ``Location`` header as a browser reads it.

Headers arrive as bytes that ``http.client`` decodes as Latin-1, in whatever
case the sender wrote the name (Envoy sends ``location``), and sometimes more
than once.  A browser takes the bytes as UTF-8, strips surrounding whitespace
and the fragment, accepts repeats of the same value and refuses a response
whose ``Location`` headers disagree.  This module does the same, so that the
login steps follow exactly what a browser would follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import GatewayError

if TYPE_CHECKING:  # only for annotations: requests loads when a request is sent
    import requests

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _as_browser_reads(raw: str) -> str:
    """Latin-1 decoded header text re-read as UTF-8 (as requests does for its own redirects)."""
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        text = raw
    return text.strip().partition("#")[0]


def location_values(response: requests.Response) -> list[str]:
    """Every ``Location`` header of an answer, unfolded, in order."""
    raw_headers = getattr(response.raw, "headers", None)
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        return [str(value) for value in raw_headers.getlist("Location")]
    single = response.headers.get("Location")
    return [single] if single is not None else []


def location_of(response: requests.Response) -> str:
    """The redirect target as written ("" when there is none); several different ones are refused."""
    targets = list(dict.fromkeys(target for target in map(_as_browser_reads, location_values(response)) if target))
    if len(targets) > 1:
        raise GatewayError(
            f"the gateway answered {response.status_code} with {len(targets)} different Location headers: "
            "a browser refuses that too; check the gateway's configuration"
        )
    return targets[0] if targets else ""


def is_redirect(response: requests.Response) -> bool:
    """True for a 3xx answer that says where to go."""
    return response.status_code in REDIRECT_STATUSES and bool(location_of(response))
