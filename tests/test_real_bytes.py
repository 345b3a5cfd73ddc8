"""The client against the bytes real components send: their cookies, headers and rendered pages.

The pages come from ``../shared/real-pages/golden``: Dex v2.22 - v2.41 and
oauth2-proxy v7.6 / v7.7 templates rendered as their handlers render them.
Every golden page must be listed in ``EXPECTED`` below, so a new one fails
until someone says what the client should read from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.auth.dexflow import describe, is_restart_signal, page_of, request_id, sign_in_target
from scripts.core.errors import GatewayError
from scripts.transport.cookies import EARLIEST, LATEST, CookieHeader, parse_cookie_date, parse_set_cookie
from scripts.transport.redirects import is_redirect, location_of
from tests.recorded import answer, golden_names, golden_page

NOW = datetime(2026, 11, 29, 7, 59, 47, tzinfo=timezone.utc)

# ---- Set-Cookie as RFC 6265 section 5.2 reads it -------------------------------------------------

# what oidc-authservice (Kubeflow 1.7, 1.8) sends on the first redirect: Max-Age is 20 minutes in nanoseconds
AUTHSERVICE_STATE_COOKIE = "oidc_state_csrf=MTc5MzA0NjQ; Path=/; Expires=Sun, 20 May 2057 07:59:47 GMT; Max-Age=1200000000000"


def test_authservice_nanosecond_max_age_is_capped_not_an_error() -> None:
    cookie = parse_set_cookie(AUTHSERVICE_STATE_COOKIE, NOW)
    assert cookie is not None and cookie.name == "oidc_state_csrf" and cookie.value == "MTc5MzA0NjQ"
    assert cookie.expires == LATEST
    assert not cookie.is_deletion(NOW)


def test_authservice_state_cookie_is_kept_for_the_callback() -> None:
    jar = CookieHeader()
    kept = jar.apply(answer(302, headers=[("location", "/dex/auth?state=x"), ("set-cookie", AUTHSERVICE_STATE_COOKIE)]), NOW)
    assert [cookie.name for cookie in kept] == ["oidc_state_csrf"]
    assert jar.header() == "oidc_state_csrf=MTc5MzA0NjQ"


@pytest.mark.parametrize(
    ("attributes", "expires"),
    [
        ("Max-Age=60", NOW + timedelta(seconds=60)),
        ("Expires=Sun, 29 Nov 2026 14:02:00 GMT", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),
        ("expires=Sunday, 29-Nov-26 14:02:00 GMT", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),  # RFC 850
        ("Expires=Sun Nov 29 14:02:00 2026", datetime(2026, 11, 29, 14, 2, tzinfo=timezone.utc)),  # asctime
        ("Expires=Thu, 01 Jan 1970 00:00:00 GMT", datetime(1970, 1, 1, tzinfo=timezone.utc)),
        ("Expires=Wed, 01 Jan 1969 00:00:00 GMT", datetime(1969, 1, 1, tzinfo=timezone.utc)),  # before 1970: in the past
        ("Expires=Fri, 31 Dec 10000 23:59:59 GMT", None),  # a five-digit year is no year: ignored
        ("Expires=Mon, 01 Jan 1600 00:00:00 GMT", None),  # before 1601: ignored
        ("Expires=Sat, 31 Feb 2026 00:00:00 GMT", None),  # no such day: ignored
        ("Expires=tomorrow", None),
        ("Expires=", None),
        ("Max-Age=1200000000000", LATEST),
        ("Max-Age=" + "9" * 5000, LATEST),  # past Python's int() digit limit
        ("Max-Age=0", EARLIEST),
        ("Max-Age=-5", EARLIEST),
        ("Max-Age=+5", None),  # not 1*DIGIT after an optional '-': ignored
        ("Max-Age=1e3", None),
        ("Max-Age=٣", None),  # a non-ASCII digit is no digit
        ("Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", NOW + timedelta(seconds=60)),  # Max-Age wins, in any order
        ("Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60", NOW + timedelta(seconds=60)),
        ("Max-Age=60; Max-Age=oops", NOW + timedelta(seconds=60)),  # an unreadable one is ignored, the last readable wins
        ("Max-Age=60; Max-Age=120", NOW + timedelta(seconds=120)),
    ],
)
def test_expiry_attributes(attributes: str, expires: datetime | None) -> None:
    cookie = parse_set_cookie(f"session=abc; Path=/; {attributes}", NOW)
    assert cookie is not None and cookie.expires == expires


def test_cookie_date_tokens_in_any_order_and_two_digit_years() -> None:
    assert parse_cookie_date("07:59:47 2057 May 20") == datetime(2057, 5, 20, 7, 59, 47, tzinfo=timezone.utc)
    assert parse_cookie_date("20 May 69 00:00:00") == datetime(2069, 5, 20, tzinfo=timezone.utc)
    assert parse_cookie_date("20 May 70 00:00:00") == datetime(1970, 5, 20, tzinfo=timezone.utc)
    assert parse_cookie_date("20 May 2057 24:00:00") is None


@pytest.mark.parametrize(
    ("header", "name", "value"),
    [
        ("a=b", "a", "b"),
        ("  a = b ;Path=/", "a", "b"),
        ('a="quoted"', "a", '"quoted"'),  # kept as sent, as browsers do (5.2 does not unquote)
        ("a=b=c", "a", "b=c"),
        ("a=", "a", ""),
    ],
)
def test_name_and_value(header: str, name: str, value: str) -> None:
    cookie = parse_set_cookie(header, NOW)
    assert cookie is not None and (cookie.name, cookie.value) == (name, value)


@pytest.mark.parametrize("header", ["", "novalue", "=value", " ;a=b", "\t=x; Max-Age=5"])
def test_headers_that_set_no_cookie(header: str) -> None:
    assert parse_set_cookie(header, NOW) is None


_attribute_names = st.sampled_from(["Max-Age", "max-age", "MAX-AGE", "Expires", "expires", "Path", "Domain", "HttpOnly", "x"])
_header_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=400, deadline=None)
@given(
    name=_header_text,
    value=_header_text,
    attributes=st.lists(st.tuples(_attribute_names, st.one_of(_header_text, st.integers().map(str))), max_size=6),
    now=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(timezone.utc)),
)
def test_no_set_cookie_header_makes_the_parser_raise(
    name: str, value: str, attributes: list[tuple[str, str]], now: datetime
) -> None:
    header = f"{name}={value}" + "".join(f"; {key}={raw}" for key, raw in attributes)
    cookie = parse_set_cookie(header, now)
    if cookie is not None and cookie.expires is not None:
        assert min(EARLIEST, datetime(1601, 1, 1, tzinfo=timezone.utc)) <= cookie.expires <= LATEST


@settings(max_examples=200, deadline=None)
@given(st.lists(_header_text, max_size=5))
def test_no_answer_makes_the_cookie_jar_raise(headers: list[str]) -> None:
    latin1 = [header.encode("utf-8").decode("latin-1") for header in headers]  # how http.client hands bytes over
    jar = CookieHeader("a=1")
    jar.apply(answer(302, headers=[("Set-Cookie", header) for header in latin1]), NOW)
    assert isinstance(jar.header(), str)


# ---- Location, as a browser reads it --------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "target"),
    [
        ([("location", "/dex/auth?x=1")], "/dex/auth?x=1"),  # Envoy writes names in lower case
        ([("LOCATION", "/a")], "/a"),
        ([("Location", "  /a  ")], "/a"),
        ([("Location", "/a#fragment")], "/a"),
        ([("Location", "/a"), ("location", "/a")], "/a"),  # the same value twice is one target
        ([("Location", "/caf\u00c3\u00a9")], "/café"),  # UTF-8 bytes as http.client decodes them (Latin-1)
        ([("Location", "/\u00e9")], "/é"),  # Latin-1 that is not UTF-8 stays as it was
        ([("Location", "/dex/auth/local/login?back=&state=a%2Bb")], "/dex/auth/local/login?back=&state=a%2Bb"),
    ],
)
def test_location_values(headers: list[tuple[str, str]], target: str) -> None:
    response = answer(302, headers=headers)
    assert is_redirect(response) and location_of(response) == target


def test_different_locations_are_refused_as_a_browser_does() -> None:
    with pytest.raises(GatewayError, match="2 different Location headers"):
        location_of(answer(302, headers=[("Location", "/a"), ("Location", "/b")]))


@pytest.mark.parametrize("headers", [[], [("Location", "")], [("Location", "   ")], [("Location", "#only-a-fragment")]])
def test_a_redirect_without_a_target_is_not_followed(headers: list[tuple[str, str]]) -> None:
    assert not is_redirect(answer(302, headers=headers))


def test_a_location_on_a_non_redirect_status_is_not_a_redirect() -> None:
    assert not is_redirect(answer(200, headers=[("Location", "/a")]))


# ---- the real pages -------------------------------------------------------------------------------

PAGE_URL = "http://127.0.0.1:31380/dex/approval?req=abcdef&hmac=c2lnbmVk"
CONNECTOR_LINKS = {
    "local": "/dex/auth/local?client_id=kubeflow-oidc-authservice&redirect_uri=%2Fauthservice%2Foidc%2Fcallback"
    "&response_type=code&scope=openid+profile+email+groups&state=MTc0ab-_",
    "ldap": "/dex/auth/ldap?req=x%20y%28z%29%27%c3%a9",
}
CSRF_FAILURE = "Forbidden: Login Failed: Unable to find a valid CSRF token. Please try again."


def _password_get() -> dict[str, object]:
    return {
        "status": 200,
        "form": "http://127.0.0.1:31380/dex/auth/local/login?back=&state=abc",
        "inputs": {"login": "", "password": ""},
        "request_id": "abc",
        "error": None,
    }


def _password_bad(name: str) -> dict[str, object]:
    status = 200 if name < "v2.36" else 401  # Dex answers a wrong password with 401 from v2.36
    return {
        "status": status,
        # the action as Go escaped it: %27%22%3cx%3e%20y&#43;z&amp;w
        "form": "http://127.0.0.1:31380/dex/auth/local?req=abc%27%22%3cx%3e%20y+z&w",
        "inputs": {"login": 'us"er+1@example.com', "password": ""},
        "request_id": "abc'\"<x> y z",  # as Dex reads it back: + is a space in a query
        "error": "Invalid Email Address and password.",
    }


def _expected(name: str) -> dict[str, object]:
    kind = name.split("-", 1)[1].removesuffix(".html")
    if kind == "pw-get":
        return _password_get()
    if kind == "pw-bad":
        return _password_bad(name)
    if name.startswith("v7.") and kind == "error":  # oauth2-proxy's error page, as a lost CSRF cookie renders it
        return {"status": 403, "error": CSRF_FAILURE, "restart": True}
    return {
        "login": {"status": 200, "links": CONNECTOR_LINKS, "error": None},
        "approval": {"status": 200, "approval": {"req": "abcdef", "approval": "approve"}, "error": None},
        "approval-empty": {"status": 200, "approval": {"req": "abcdef", "approval": "approve"}, "error": None},
        "error": {"status": 404, "error": 'Not Found: Invalid client_id ("a+b<c>&\'").', "restart": False},
        "signin": {"status": 403, "sign_in": "/oauth2/start?rd=%2Fv2%2Fmodels%2Fx%3Fa%3D1%26b%3D2%2B3", "error": None},
        "signin2": {"status": 403, "sign_in": "/oauth2/start?rd=%2F", "error": "401: Invalid Username or Password"},
        "error2": {"status": 403, "error": "Forbidden", "restart": False},
    }[kind]


def test_every_golden_page_has_an_expectation() -> None:
    names = golden_names()
    if not names:
        pytest.skip("the real pages are not here: run the tests from a checkout beside shared/")
    kinds = {name.split("-", 1)[1] for name in names}
    assert kinds == {
        "pw-get.html", "pw-bad.html", "login.html", "approval.html", "approval-empty.html",
        "error.html", "error2.html", "signin.html", "signin2.html",
    }  # fmt: skip


@pytest.mark.parametrize("name", golden_names() or ["(shared/real-pages absent)"])
def test_what_the_client_reads_from_a_real_page(name: str) -> None:
    expected = _expected(name) if name.startswith("v") else {}
    body = golden_page(name)
    response = answer(int(expected["status"]), body, [("content-type", "text/html; charset=utf-8")], PAGE_URL)
    page = page_of(response)
    assert page.error_text() == expected["error"]
    password = page.password_form()
    if "form" in expected:
        assert password is not None and password.method == "post"
        assert password.target(PAGE_URL) == expected["form"]
        assert password.inputs == expected["inputs"]
        assert request_id(password.target(PAGE_URL)) == expected["request_id"]
    else:
        assert password is None
    assert page.connector_links() == expected.get("links", {})
    approval = page.approval_form()
    assert (approval.inputs if approval else None) == expected.get("approval")
    if approval is not None:
        assert approval.method == "post" and approval.target(PAGE_URL) == PAGE_URL  # no action: the page's own URL, hmac and all
    assert sign_in_target(response, PAGE_URL) == expected.get("sign_in")
    if "restart" in expected:
        assert is_restart_signal(response) is expected["restart"]
        assert describe(response) == f'{response.status_code} "{expected["error"]}"'


# ---- the model server's own errors ------------------------------------------------------------------

MLSERVER_TRACEBACK = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/mlserver/rest/endpoints.py", line 101, in infer
    inference_response = await self._data_plane.infer(
  File "/venv/lib/python3.11/site-packages/sklearn/linear_model/_base.py", line 389, in decision_function
ValueError: X has 3 features, but LogisticRegression is expecting 4 features as input.
"""


def test_a_traceback_is_described_by_its_last_line() -> None:
    response = answer(500, MLSERVER_TRACEBACK.encode(), [("content-type", "text/plain; charset=utf-8")])
    assert describe(response) == '500 "ValueError: X has 3 features, but LogisticRegression is expecting 4 features as input."'


def test_a_plain_error_is_described_by_its_first_line() -> None:
    response = answer(503, b"no healthy upstream\nmore", [("content-type", "text/plain")])
    assert describe(response) == '503 "no healthy upstream"'
