"""The stand-in keeps up: the real components' answers, recorded, against the stand-in's to the same requests.

Marked ``real``.  One browser-like walk (``walk``) goes through a gateway
without following redirects by itself: the first unauthenticated request,
an API path, the sign-in page where there is one, Dex's password page, a
wrong password, the right one, the callback, and the model with the session.
Each answer is recorded structurally: status, header names as sent (case
included), each Set-Cookie's name and attributes (values and dates left out),
the Location with per-request values masked, and the page's structure
(``tests.pagestructure``) or the body's first line.  The real sandbox's record
must equal the stand-in's for the same flavor, except for the differences
``docs/real-components.md`` lists (``COMPARED_WITH``, ``LIFETIME_EITHER``).
"""

from __future__ import annotations

import difflib
import http.client
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

import pytest

from sandbox import control
from tests.pagestructure import extract, normalise_url

pytestmark = pytest.mark.real
MODEL_HOST = "sklearn-irisv2.kubeflow-user-example-com.example.com"
MASKED_HEADERS = frozenset({"date", "content-length", "x-request-id", "x-envoy-upstream-service-time"})
ATTRIBUTE = re.compile(r"^\s*([A-Za-z-]+)(?:=(.*))?$")

# differences docs/real-components.md lists ("The stand-in against the real components"):
# a flavor whose real version is another's is compared with the stand-in playing that one
COMPARED_WITH = {"kf17": "kf18"}  # kf17 runs Dex v2.36.0 (v2.31.2 is not served): the stand-in's kf18 plays exactly that
# oauth2-proxy v7.15.6 (in place of v7.13.0 and v7.14.3, not served) writes Max-Age where v7.7.1 writes Expires
LIFETIME_EITHER = frozenset({"kf111", "kfnext"})


@dataclass
class Browser:
    """A cookie jar and a gateway; ``lines`` is the record."""

    port: int
    lifetime_either: bool = False  # record Max-Age and Expires alike, as "lifetime"
    cookies: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def send(self, method: str, target: str, form: dict[str, str] | None = None, host: str = "") -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": host or f"127.0.0.1:{self.port}", "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, target, body=body, headers=headers)
        answer = connection.getresponse()
        text = answer.read().decode("utf-8", "replace")
        self._record(method, target, answer, text)
        answer.text = text  # type: ignore[attr-defined]
        return answer

    def _record(self, method: str, target: str, answer: http.client.HTTPResponse, text: str) -> None:
        self.lines.append(f"{method} {normalise_url(urlsplit(target).path + _query(target))} -> {answer.status}")
        for name in sorted({name for name, _ in answer.getheaders()} - MASKED_HEADERS):
            if name.lower() not in MASKED_HEADERS:
                self.lines.append(f"  header {name}")
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                self._cookie(value)
            elif name.lower() == "location":
                self.lines.append(f"  location {normalise_url(value)}")
        kind = answer.getheader("content-type", "")
        if "html" in kind and "<" in text:
            self.lines.append(f"  page {extract(text)}")
        elif text.strip():  # JSON and plain bodies: their type only
            self.lines.append(f"  body {kind.split(';')[0]}")

    def _cookie(self, value: str) -> None:
        pair, *attributes = value.split(";")
        name, _, content = pair.partition("=")
        kept = []
        for attribute in attributes:
            match = ATTRIBUTE.match(attribute)
            if match:
                key = match.group(1).lower()
                key = "lifetime" if self.lifetime_either and key in ("expires", "max-age") else key
                kept.append(f"{key}={match.group(2)}" if key in ("path", "samesite", "domain") else key)
        self.lines.append(f"  set-cookie {name.strip()}{'' if content else ' (cleared)'}: {', '.join(sorted(kept))}")
        if content and "max-age=0" not in value.lower():
            self.cookies[name.strip()] = content
        else:
            self.cookies.pop(name.strip(), None)


def _query(target: str) -> str:
    query = urlsplit(target).query
    return f"?{query}" if query else ""


def _follow(browser: Browser, answer: http.client.HTTPResponse, limit: int = 6) -> http.client.HTTPResponse:
    """Follow redirects by hand (each hop recorded) to the first answer that is not one."""
    for _ in range(limit):
        location = answer.getheader("location")
        if answer.status not in (301, 302, 303, 307) or not location:
            return answer
        answer = browser.send("GET", urlsplit(urljoin("http://gateway/", location))._replace(scheme="", netloc="").geturl())
    return answer


def walk(port: int, flavor: str) -> list[str]:
    """The record of one browser's login through the gateway on ``port``."""
    browser = Browser(port, lifetime_either=flavor in LIFETIME_EITHER)
    browser.send("GET", "/apis/v1beta1/pipelines")
    browser.cookies.clear()
    answer = _follow(browser, browser.send("GET", "/"))
    if answer.status == 403 and "/oauth2/start" in answer.text:  # type: ignore[attr-defined]
        answer = _follow(browser, browser.send("GET", "/oauth2/start?rd=%2F"))
    action = re.search(r'<form[^>]*action="([^"]+)"', answer.text)  # type: ignore[attr-defined]
    assert action, f"no password form for {flavor}: {browser.lines[-3:]}"
    post_to = action.group(1).replace("&amp;", "&")
    browser.send("POST", post_to, {"login": "user@example.com", "password": "wrong"})
    answer = _follow(browser, browser.send("POST", post_to, {"login": "user@example.com", "password": "12341234"}))
    browser.send("GET", "/v2/models/sklearn-irisv2/ready", host=MODEL_HOST)
    return browser.lines


def test_the_stand_in_answers_as_the_real_components(real: control.Sandbox, cluster: control.Sandbox) -> None:
    cluster.configure(flavor=COMPARED_WITH.get(real.flavor, real.flavor))
    recorded = walk(real.gateway_port, real.flavor)
    imitated = walk(cluster.gateway_port, real.flavor)
    difference = list(difflib.unified_diff(recorded, imitated, "real", "stand-in", lineterm="", n=1))
    assert not difference, "\n".join(difference)
