"""The one table of the gateway's login signals (scripts/auth/signals.py): every row, for every client that reads it.

Each row is read three ways: by the table itself (what the load engines and the
locustfile see: status, ``Location``, body bytes), by ``dexflow.login_signal``
on a real ``requests`` answer (the steps, ``infer``, ``doctor``, the library),
and, for the rows whose body the wire hides, as the gRPC client sees them.
"""

from __future__ import annotations

import pytest

from scripts.auth.dexflow import login_signal
from scripts.auth.signals import TO_DEX, TO_LOGIN, login_signal_of, session_refused
from tests.recorded import answer, golden_names, golden_page

HTML = [("Content-Type", "text/html; charset=utf-8")]
JSON = [("Content-Type", "application/json")]

# status, Location, body, what a model call hears, what navigation (the library's Session) hears
ROWS = [
    pytest.param(302, "/dex/auth?client_id=x", b"", TO_DEX, TO_DEX, id="redirect to Dex"),
    pytest.param(302, "/oauth2/start?rd=%2F", b"", TO_DEX, TO_DEX, id="redirect to oauth2-proxy"),
    pytest.param(303, "https://idp.example.com/authorize", b"", TO_LOGIN, TO_LOGIN, id="redirect to another origin"),
    pytest.param(302, "/pipeline/", b"", TO_LOGIN, None, id="redirect within the origin"),
    pytest.param(401, "", b"{}", TO_LOGIN, TO_LOGIN, id="oauth2-proxy's {} on API paths"),
    pytest.param(401, "", b"Jwt is expired", TO_LOGIN, TO_LOGIN, id="Istio refuses the token"),
    pytest.param(403, "", b"{}", TO_LOGIN, TO_LOGIN, id="403 {}"),
    pytest.param(403, "", b"RBAC: access denied", None, None, id="Istio RBAC is the model's refusal"),
    pytest.param(404, "", b"", None, None, id="no route"),
    pytest.param(503, "", b"no healthy upstream", None, None, id="upstream down"),
    pytest.param(200, "", b'{"outputs": []}', None, None, id="a prediction"),
]


def _headers(location: str, body: bytes) -> list[tuple[str, str]]:
    kind = HTML if body.lstrip().startswith(b"<") else JSON
    return kind + ([("Location", location)] if location else [])


@pytest.mark.parametrize(("status", "location", "body", "for_the_model", "for_navigation"), ROWS)
def test_every_row_of_the_table(status: int, location: str, body: bytes, for_the_model: str | None, for_navigation: str | None) -> None:
    elsewhere = location.startswith("https://")
    assert login_signal_of(status, location, body) == for_the_model
    assert login_signal_of(status, location, body, navigation=True, elsewhere=elsewhere) == for_navigation
    assert session_refused(status, location, body) == (for_the_model is not None)
    response = answer(status, body, _headers(location, body), url="http://127.0.0.1:31380/v2/models/m/infer")
    assert login_signal(response) == for_the_model
    assert login_signal(response, navigation=True) == for_navigation


@pytest.mark.parametrize(
    ("status", "expected"),
    [(302, TO_LOGIN), (307, TO_LOGIN), (401, TO_LOGIN), (403, TO_LOGIN), (404, None), (503, None)],
)
def test_grpc_sees_only_the_status(status: int, expected: str | None) -> None:
    """gRPC hears the gateway's HTTP/2 status without Location or body: a 403 may be the sign-in page."""
    assert login_signal_of(status, "", None) == expected


def _expected_for(name: str) -> tuple[int, str | None]:
    """How each real page is served: oauth2-proxy's sign-in page 403 (a login), its error page 403, Dex's 200 or 401."""
    if "signin" in name:
        return 403, TO_LOGIN
    if name.startswith("v7.") and "error" in name:
        return 403, None
    if "pw-bad" in name:
        return 401, None  # Dex's wrong-password page: an HTML 401 that is Dex's own answer, not a login signal
    return 200, None


@pytest.mark.parametrize("name", golden_names() or ["(real pages absent)"])
def test_the_real_pages(name: str) -> None:
    body = golden_page(name)
    status, expected = _expected_for(name)
    assert login_signal_of(status, "", body) == expected
    assert login_signal(answer(status, body, HTML)) == expected
