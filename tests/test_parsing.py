"""Parsing what the gateway and the user hand us: Set-Cookie, Dex pages, payloads."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.auth.credentials import format_expiry
from scripts.auth.dexpages import parse_page
from scripts.core.errors import UsageError
from scripts.model.payloads import check, load
from scripts.transport.cookies import CookieHeader, parse_set_cookie

NOW = datetime(2026, 11, 28, 14, 2, tzinfo=timezone.utc)


# ---- Set-Cookie ----------------------------------------------------------------------


def test_max_age_wins_over_expires() -> None:
    cookie = parse_set_cookie("authservice_session=abc; Path=/; Expires=Sun, 29 Nov 2026 14:02:00 GMT; Max-Age=60", NOW)
    assert cookie is not None and cookie.value == "abc"
    assert cookie.expires == NOW + timedelta(seconds=60)


def test_expires_is_parsed_as_utc() -> None:
    cookie = parse_set_cookie("oauth2_proxy_kubeflow=v; Path=/; Expires=Sun, 29 Nov 2026 14:02:00 GMT; HttpOnly", NOW)
    assert cookie is not None and cookie.expires == NOW + timedelta(days=1)


def test_cleared_cookie_is_a_deletion() -> None:
    cookie = parse_set_cookie("oidc_state_csrf=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0", NOW)
    assert cookie is not None and cookie.is_deletion(NOW)


def test_header_without_a_pair_is_ignored() -> None:
    assert parse_set_cookie("garbage", NOW) is None


def test_cookie_header_round_trip() -> None:
    jar = CookieHeader("a=1; b=two=2")
    assert jar.names() == ["a", "b"]
    assert jar.header() == "a=1; b=two=2"


# ---- Dex and oauth2-proxy pages --------------------------------------------------------

PASSWORD_PAGE = """<form method="post" action="/dex/auth/local/login?back=&amp;state=abc123">
<input name="login" type="text" value=""><input name="password" type="password">
<div id="login-error" class="dex-error-box">Invalid Username and password.</div></form>"""


def test_password_form_action_is_unescaped() -> None:
    page = parse_page(PASSWORD_PAGE)
    form = page.password_form()
    assert form is not None and form.action == "/dex/auth/local/login?back=&state=abc123"
    assert page.login_error == "Invalid Username and password."


def test_approval_form_is_the_approve_one() -> None:
    page = parse_page(
        '<h2>Grant Access</h2><form method="post"><input type="hidden" name="req" value="r1"/>'
        '<input type="hidden" name="approval" value="approve"></form>'
        '<form method="post"><input type="hidden" name="req" value="r1"/><input type="hidden" name="approval" value="rejected"></form>'
    )
    form = page.approval_form()
    assert form is not None and form.action is None and form.inputs == {"req": "r1", "approval": "approve"}


def test_sign_in_page_and_connector_links() -> None:
    sign_in = parse_page('<form method="GET" action="/oauth2/start"><input type="hidden" name="rd" value="/v2/x"></form>')
    form = sign_in.sign_in_form()
    assert form is not None and form.inputs["rd"] == "/v2/x"
    chooser = parse_page(
        '<a href="/dex/auth/ldap?req=1">Log in with LDAP</a><a href="/dex/auth/local?req=1">Log in with Email</a>'
    )
    assert chooser.connector_links() == {"ldap": "/dex/auth/ldap?req=1", "local": "/dex/auth/local?req=1"}


def test_dex_error_page_text() -> None:
    page = parse_page('<h2 class="theme-heading">Bad Request</h2><p>Requested resource does not exist.</p>')
    assert page.error_text() == "Bad Request: Requested resource does not exist."


# ---- payloads ----------------------------------------------------------------------------


def test_shipped_payloads_are_valid() -> None:
    assert load("iris").protocol == "v2"
    assert load("iris-v1").protocol == "v1"
    assert load("iris.json").body["inputs"][0]["shape"] == [2, 4]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3]}]},
            r"shape \[2, 4\] holds 8 elements but data has 3",
        ),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}, r"unknown datatype 'FLOAT'"),
        ({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, r"lacks datatype"),
        ({"inputs": []}, r"non-empty list"),
        ({"data": [1]}, r"neither 'inputs' \(V2\) nor 'instances' \(V1\)"),
        ({"instances": "x"}, r"'instances' must be a list"),
        ([1, 2], r"must be a JSON object"),
    ],
)
def test_bad_payloads_are_explained(body: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check(body, "p.json")


def test_unknown_payload_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"no payload 'irs': give a file path or one of iris, iris-v1"):
        load("irs")


def test_payload_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"inputs": [')
    with pytest.raises(UsageError, match=r"is not JSON \(line 1"):
        load(str(bad))


def test_payload_by_path(tmp_path: Path) -> None:
    good = tmp_path / "mine.json"
    good.write_text(json.dumps({"instances": [[1, 2, 3, 4]]}))
    assert load(str(good)).protocol == "v1"


# ---- expiry ------------------------------------------------------------------------------


def test_expiry_is_shown_with_time_left_and_when_past() -> None:
    assert format_expiry(NOW + timedelta(hours=23, minutes=59), NOW) == "valid until 2026-11-29 14:01 UTC (in 23h 59m)"
    assert format_expiry(NOW - timedelta(minutes=5), NOW) == "expired at 2026-11-28 13:57 UTC (5m 00s ago)"


# ---- properties of page parsing ------------------------------------------------------------


_query_values = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_parsing_any_text_never_raises(text: str) -> None:
    page = parse_page(text)
    assert page.password_form() is None or "password" in text


@settings(max_examples=200, deadline=None)
@given(state=_query_values, back=_query_values, error=_query_values)
def test_a_password_form_reads_back_whatever_dex_escaped(state: str, back: str, error: str) -> None:
    action = f"/dex/auth/local/login?back={quote(back, safe='')}&state={quote(state, safe='')}"
    html = (
        f'<form method="post" action="{escape(action)}"><input name="login" value=""><input name="password" type="password">'
        f'<div id="login-error" class="dex-error-box">{escape(error)}</div></form>'
    )
    page = parse_page(html)
    form = page.password_form()
    assert form is not None and form.action == action
    assert page.login_error == " ".join(error.split())


def test_payload_from_standard_input() -> None:
    payload = load("-", io.StringIO(json.dumps({"instances": [[1, 2, 3, 4]]})))
    assert (payload.name, payload.protocol) == ("stdin", "v1")


def test_payload_given_inline() -> None:
    payload = load(' {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}')
    assert (payload.name, payload.protocol) == ("inline", "v2")


@pytest.mark.parametrize(
    ("source", "stdin", "message"),
    [
        ("-", "{", r"payload <stdin> is not JSON \(line 1"),
        ("-", "", r"payload <stdin> is not JSON"),
        ('{"inputs": [}', "", r"payload \(inline\) is not JSON"),
        ('{"inputs": []}', "", r"payload \(inline\): 'inputs' must be a non-empty list"),
    ],
)
def test_bad_payloads_from_stdin_or_inline_are_explained(source: str, stdin: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load(source, io.StringIO(stdin))


def test_a_long_answer_is_cut_to_a_screenful_unless_full() -> None:
    from scripts.model.answers import SHOWN_OUTPUTS, SHOWN_VALUES, format_outputs

    big = {"outputs": [{"name": "predict", "data": [[index, index] for index in range(1000)]}]}
    shown = format_outputs(big)
    assert shown.startswith("predict = [0, 0, 1, 1,") and f"the first {SHOWN_VALUES} of 2000 values" in shown
    assert len(shown) < 300
    assert format_outputs(big, full=True) == f"predict = {json.dumps(big['outputs'][0]['data'])}"
    many = {"outputs": [{"name": f"o{index}", "data": [index]} for index in range(SHOWN_OUTPUTS + 5)]}
    assert format_outputs(many).splitlines()[-1] == "… and 5 more outputs (--full or --json prints all)"
    assert format_outputs({"outputs": [{"name": "predict", "data": [1, 1]}]}) == "predict = [1, 1]"
    assert "of 30 values" in format_outputs({"predictions": list(range(30))})


@pytest.mark.parametrize(("given", "kind"), [("[]", "an array"), ("null", "null"), ('"iris"', "a string"), ("5", "a number")])
def test_inline_json_that_is_not_an_object_is_named_so(given: str, kind: str) -> None:
    with pytest.raises(UsageError, match=rf"payload \(inline\) is {kind}: give a JSON object"):
        load(given)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://Example.COM/x", "http://example.com:80"),
        ("https://h:8443/", "https://h:8443"),
        ("http://[::1]:31380/v2", "http://[::1]:31380"),  # a URL again, as the request used it
    ],
)
def test_an_origin_is_scheme_host_and_port(url: str, origin: str) -> None:
    from scripts.transport.gateway import origin_of

    assert origin_of(url) == origin


def test_an_endless_payload_stops_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """`kfdex infer -p - < /dev/zero` once read until the machine ran out of memory."""
    from scripts.model import payloads

    class Endless(io.StringIO):
        served = 0

        def read(self, size: int | None = -1) -> str:
            assert size is not None and 0 < size <= 1024 * 1024, "an unbounded read"
            self.served += size
            return "0" * size

    monkeypatch.setattr(payloads, "MAX_PAYLOAD_CHARACTERS", 3 * 1024 * 1024)
    endless = Endless()
    with pytest.raises(UsageError, match=r"^the payload from standard input is larger than 3 MiB: give a smaller one$"):
        load("-", endless)
    assert endless.served <= 4 * 1024 * 1024
