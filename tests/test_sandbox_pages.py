"""The sandbox sends what the real components send: page structure, redirects, cookies, header case.

The sandbox's pages (``sandbox/pages.py``) are rendered with the values the
golden pages in ``shared/real-pages/golden`` were rendered with (see
``shared/real-pages/SOURCES.md``) and their structure (``tests.pagestructure``)
must equal the golden page's for the flavor's Dex or oauth2-proxy release.
A few checks go through a running sandbox gateway.  The reference data lives
outside the repository (``../shared``); without it these tests skip.
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sandbox import pages
from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from tests.pagestructure import extract

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GOLDEN = SHARED / "real-pages" / "golden"
DEX_FLAVORS = sorted(FLAVORS)

# the values the golden pages were rendered with
STATE = "MTc0ab-_"
AUTH_QUERY = (
    "client_id=kubeflow-oidc-authservice&redirect_uri=%2Fauthservice%2Foidc%2Fcallback"
    f"&response_type=code&scope=openid+profile+email+groups&state={STATE}"
)
CSRF_MESSAGE = "Login Failed: Unable to find a valid CSRF token. Please try again."
SIGN_IN_RD = "/v2/models/x?a=1&b=2+3"


def golden(name: str) -> str:
    path = GOLDEN / name
    if not GOLDEN.is_dir():
        pytest.skip(f"reference pages not found: {GOLDEN} (the shared folder next to the repository)")
    return path.read_text(encoding="utf-8")


def sandbox_dex_page(version: str, page: str) -> str:
    """The sandbox's page ``page`` for Dex ``version``, rendered with the golden page's values."""
    if page == "pw-get":
        return pages.password_page(
            version, "/dex/auth/local/login", "/dex/auth/local/login?back=&state=abc", "Email Address", connectors=1
        )
    if page == "pw-bad":
        return pages.password_page(
            version,
            "/dex/auth/local",
            "/dex/auth/local?req=abc'\"<x> y+z&w",
            "Email Address",
            username='us"er+1@example.com',
            invalid=True,
            connectors=2,
            back=f"/dex/auth?{AUTH_QUERY}",
        )
    if page == "login":
        links = [
            pages.ConnectorLink("local", "Email", f"/dex/auth/local?{AUTH_QUERY}"),
            pages.ConnectorLink("ldap", "LDAP", "/dex/auth/ldap?req=x y(z)'é"),
        ]
        return pages.connector_page("/dex/auth", links)
    if page == "approval":
        scopes = pages.scope_descriptions("v2.41.1", ["openid", "profile", "email", "groups"])
        return pages.approval_page(version, "/dex/approval", "Dex Login Application", scopes, "abcdef")
    if page == "approval-empty":
        return pages.approval_page(version, "/dex/approval", "Dex <Login> App", [], "abcdef")
    if page == "error":
        return pages.dex_error_page("/dex/auth/local/login", "Not Found", 'Invalid client_id ("a+b<c>&\'").')
    raise AssertionError(page)


def raw_attributes(page: str) -> list[str]:
    """Form actions, link targets and input values exactly as written (escaping included)."""
    pattern = r'<form\b[^>]*\baction="([^"]*)"|<a\b[^>]*\bhref="([^"]*)"|<input\b[^>]*\bvalue="([^"]*)"'
    return ["".join(groups) for groups in re.findall(pattern, page)]


@pytest.mark.parametrize("page", ["pw-get", "pw-bad", "login", "approval", "approval-empty", "error"])
@pytest.mark.parametrize("flavor", DEX_FLAVORS)
def test_dex_pages_have_the_real_structure(flavor: str, page: str) -> None:
    version = FLAVORS[flavor].dex_version
    real = golden(f"{version}-{page}.html")
    ours = sandbox_dex_page(version, page)
    assert extract(ours) == extract(real)
    assert raw_attributes(ours) == raw_attributes(real)  # Go's escaping: &amp; &#43; %3c ...


def test_oauth2_proxy_sign_in_page_kf191() -> None:
    flavor = FLAVORS["kf191"]
    real = golden(f"{flavor.oauth2_proxy_version}-signin.html")
    ours = pages.sign_in_page(flavor, SIGN_IN_RD)
    assert extract(ours) == extract(real)
    assert raw_attributes(ours) == raw_attributes(real)


def test_oauth2_proxy_csrf_error_page_kf190() -> None:
    flavor = FLAVORS["kf190"]
    real = golden(f"{flavor.oauth2_proxy_version}-error.html")
    ours = pages.proxy_error_page(flavor, 403, "Forbidden", CSRF_MESSAGE, redirect="/", request_id="3f2a-uuid")
    assert extract(ours) == extract(real)
    assert raw_attributes(ours) == raw_attributes(real)
    assert extract(ours).footer == [
        f"link {'https://github.com/oauth2-proxy/oauth2-proxy#oauth2_proxy'}",
        "Secured with OAuth2 Proxy version v7.6.0",
    ]


def test_oauth2_proxy_csrf_error_page_kf191() -> None:
    """kf191 sets the footer to "-": the golden error page has the default footer, error2 shows "-"."""
    flavor = FLAVORS["kf191"]
    real = extract(golden(f"{flavor.oauth2_proxy_version}-error.html"))
    without_footer = extract(golden(f"{flavor.oauth2_proxy_version}-error2.html"))
    ours = extract(pages.proxy_error_page(flavor, 403, "Forbidden", CSRF_MESSAGE, redirect="/", request_id="3f2a-uuid"))
    assert ours.footer == without_footer.footer == []
    real.footer = []
    assert ours == real


# ---- through a running sandbox gateway -----------------------------------------------------------


def _get(port: int, target: str, cookie: str = "") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", target, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _body(port: int, method: str, target: str, body: str = "") -> tuple[http.client.HTTPResponse, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    connection.request(method, target, body=body or None, headers=headers)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response, text


def test_served_sign_in_page_kf191(cluster: Sandbox) -> None:
    real = golden("v7.7.1-signin.html")
    cluster.configure(flavor="kf191")
    response, text = _body(cluster.gateway_port, "GET", SIGN_IN_RD)
    assert response.status == 403
    assert extract(text) == extract(real)


def test_served_password_page_and_redirects_kf17(cluster: Sandbox) -> None:
    real = golden("v2.31.0-pw-get.html")
    cluster.configure(flavor="kf17")
    port = cluster.gateway_port
    target = "/v2/models/sklearn-irisv2/infer"
    for _ in range(3):  # protected path -> /dex/auth -> /dex/auth/local -> /dex/auth/local/login
        response, text = _body(port, "GET", target)
        assert response.status == 302
        location = response.getheader("location")
        assert location is not None
        escaped = location.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;")
        redirect_body = f'<a href="{escaped}">Found</a>.\n\n'  # Go's http.Redirect for a GET
        if urlsplit(target).path == "/dex/auth":  # Dex (v2.29 on) then renders its connector page into the same body
            assert text.startswith(redirect_body) and extract(text).buttons == ["Log in with Email"]
        else:
            assert text == redirect_body
        assert response.getheader("content-type") == "text/html; charset=utf-8"
        target = location
    assert urlsplit(target).path == "/dex/auth/local/login"
    response, text = _body(port, "GET", target)
    assert response.status == 200
    assert extract(text) == extract(real)
    response, text = _body(port, "POST", target, "login=user%40example.com&password=12341234")
    assert response.status == 303
    assert text == ""  # no body and no content type for a POST (Go writes none)
    assert response.getheader("content-type") is None


@pytest.mark.parametrize("flavor", ["kf17", "kf18"])
def test_authservice_state_cookie_has_the_nanosecond_max_age(cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    response = _get(cluster.gateway_port, "/")
    names = [name for name, _ in response.getheaders()]
    assert names == [name.lower() for name in names]  # Envoy writes every header name in lower case
    assert ("server", "istio-envoy") in response.getheaders()
    cookies = [value for name, value in response.getheaders() if name == "set-cookie"]
    assert len(cookies) == 1
    assert re.fullmatch(
        r"oidc_state_csrf=[^;]+; Path=/; Expires=\w{3}, \d\d \w{3} (\d{4}) \d\d:\d\d:\d\d GMT; Max-Age=1200000000000", cookies[0]
    )
    year = int(re.search(r"Expires=\w{3}, \d\d \w{3} (\d{4})", cookies[0]).group(1))  # type: ignore[union-attr]
    assert year >= 2050  # gorilla/sessions' Expires: now + a wrapped int64 of nanoseconds, about 30 years


def test_a_structure_difference_is_caught() -> None:
    """The comparison is not vacuous: a missing back link or a changed input fails it."""
    real = extract(golden("v2.31.0-pw-bad.html"))
    no_back_link = pages.password_page(
        "v2.31.0",
        "/dex/auth/local",
        "/dex/auth/local?req=abc'\"<x> y+z&w",
        "Email Address",
        username='us"er+1@example.com',
        invalid=True,
        connectors=1,
    )
    assert extract(no_back_link) != real
    renamed = sandbox_dex_page("v2.31.0", "pw-bad").replace('name="password"', 'name="passwd"')
    assert extract(renamed) != real
