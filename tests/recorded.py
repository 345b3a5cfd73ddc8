"""Answers built from recorded bytes, read by requests exactly as it reads one from the wire.

The real Dex and oauth2-proxy pages live in ``../shared/real-pages`` (reference
data beside the repository, never copied into it): ``golden_page`` reads one,
and skips the test with a clear message when that folder is absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse
from urllib3._collections import HTTPHeaderDict

REAL_PAGES = Path(__file__).resolve().parents[2] / "shared" / "real-pages"
GOLDEN = REAL_PAGES / "golden"


def golden_names() -> list[str]:
    """The golden pages' file names, or [] when the reference data is absent."""
    return sorted(path.name for path in GOLDEN.glob("*.html")) if GOLDEN.is_dir() else []


def golden_page(name: str) -> bytes:
    """The bytes of one golden page; skips the test when ../shared is not beside the checkout."""
    if not GOLDEN.is_dir():
        pytest.skip(f"the real pages are not here ({GOLDEN}): run the tests from a checkout beside shared/")
    return (GOLDEN / name).read_bytes()


def answer(
    status: int,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    url: str = "http://127.0.0.1:31380/",
    method: str = "GET",
) -> requests.Response:
    """A requests Response for these status, raw headers (names as sent, repeats kept) and body."""
    raw = HTTPResponse(
        body=io.BytesIO(body),
        headers=HTTPHeaderDict(headers or []),
        status=status,
        preload_content=False,
        decode_content=False,
    )
    request = requests.Request(method, url).prepare()
    response = HTTPAdapter().build_response(request, raw)
    response.content  # noqa: B018 - read the body now, as requests does for a non-streamed call
    return response
