"""Reading the HTML pages Dex and oauth2-proxy answer with.

Only the structure documented in ``shared/spec/auth-flows.md`` is relied on:
forms (action, method, inputs), links, the ``login-error`` box, and the error
page's heading and paragraph.  Attribute values are unescaped by the parser,
so ``back=&amp;state=`` in a form action comes out as ``back=&state=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit


@dataclass
class Form:
    """One ``<form>`` and the named inputs inside it."""

    action: str | None
    method: str
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    """What a login-related page holds."""

    forms: list[Form] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text)
    login_error: str | None = None
    heading: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    title: str | None = None

    def password_form(self) -> Form | None:
        """Dex's password form: inputs ``login`` and ``password``."""
        return next((f for f in self.forms if "login" in f.inputs and "password" in f.inputs), None)

    def approval_form(self) -> Form | None:
        """Dex's Grant Access form: a hidden ``approval=approve``."""
        return next((f for f in self.forms if f.inputs.get("approval") == "approve"), None)

    def sign_in_form(self) -> Form | None:
        """oauth2-proxy's sign-in form: ``GET /oauth2/start`` with a hidden ``rd``."""
        for form in self.forms:
            if form.action and urlsplit(form.action).path.endswith("/oauth2/start"):
                return form
        return None

    def connector_links(self) -> dict[str, str]:
        """Dex's connector choices: connector id -> href (``/dex/auth/<id>?...``)."""
        found: dict[str, str] = {}
        for href, _text in self.links:
            match = re.search(r"/auth/([^/]+)$", urlsplit(href).path)
            if match:
                found.setdefault(match.group(1), href)
        return found

    def error_text(self) -> str | None:
        """The message of a Dex error page (heading + paragraph), if this is one."""
        if self.login_error:
            return self.login_error
        if self.heading and self.paragraphs:
            return f"{self.heading}: {self.paragraphs[0]}"
        return self.paragraphs[0] if self.paragraphs else self.heading


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: Form | None = None
        self._capture: str | None = None  # which text we are collecting
        self._text: list[str] = []
        self._link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(attributes.get("action") or None, (attributes.get("method") or "get").lower())
            self.page.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None:
            name = attributes.get("name")
            if name:
                self._form.inputs[name] = attributes.get("value", "")
        elif tag == "a" and "href" in attributes:
            self._start_capture("a")
            self._link = attributes["href"]
        elif tag == "div" and attributes.get("id") == "login-error":
            self._start_capture("login-error")
        elif tag in ("h1", "h2"):
            self._start_capture("heading")
        elif tag == "p":
            self._start_capture("p")
        elif tag == "title":
            self._start_capture("title")

    def _start_capture(self, what: str) -> None:
        self._capture = what
        self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
            return
        ends = {"a": "a", "div": "login-error", "h1": "heading", "h2": "heading", "p": "p", "title": "title"}
        if self._capture is None or ends.get(tag) != self._capture:
            return
        text = " ".join("".join(self._text).split())
        if self._capture == "a" and self._link is not None:
            self.page.links.append((self._link, text))
        elif self._capture == "login-error":
            self.page.login_error = text
        elif self._capture == "heading" and self.page.heading is None:
            self.page.heading = text
        elif self._capture == "p" and text:
            self.page.paragraphs.append(text)
        elif self._capture == "title":
            self.page.title = text
        self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._text.append(data)


def parse_page(html: str) -> Page:
    """Parse an HTML page; never raises on malformed markup."""
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # pragma: no cover - html.parser is lenient; keep what was read
        pass
    return parser.page
