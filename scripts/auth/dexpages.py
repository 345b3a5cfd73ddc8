"""Reading the HTML pages Dex and oauth2-proxy answer with.

Only the structure the real templates have is relied on (see
``docs/real-components.md``): forms (action, method, inputs), links, Dex's
``login-error`` box and error page (heading and paragraph), and oauth2-proxy's
sign-in alert and error page (heading and ``content`` detail).  Attribute values are unescaped by the parser,
so ``back=&amp;state=`` in a form action comes out as ``back=&state=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit


@dataclass
class Form:
    """One ``<form>`` and the named inputs inside it."""

    action: str | None
    method: str
    inputs: dict[str, str] = field(default_factory=dict)

    def target(self, page_url: str) -> str:
        """Where a browser sends this form: the action resolved against the page's URL (itself when absent)."""
        return urljoin(page_url, self.action) if self.action else page_url


@dataclass
class Page:
    """What a login-related page holds."""

    forms: list[Form] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text)
    login_error: str | None = None  # Dex: <div id="login-error">
    alert: str | None = None  # oauth2-proxy's sign-in page: <div class="alert">
    heading: str | None = None  # the first <h1>/<h2>
    paragraphs: list[str] = field(default_factory=list)  # <p> outside forms, headers and footers
    notes: list[str] = field(default_factory=list)  # oauth2-proxy's error details: <div class="content">
    status_box: str | None = None  # oauth2-proxy's error page: <div class="status-code">
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
        """What the page tells a person went wrong; None on a page that reports no error.

        Dex: the login-error box, or an error page's status heading and message.
        oauth2-proxy: the sign-in page's alert, or the error page's heading and first detail.
        """
        if self.login_error or self.alert:
            return self.login_error or self.alert
        details = [note for note in self.notes if not note.startswith("Request ID:")]
        message = details[0] if details else self.paragraphs[0] if self.paragraphs else None
        if message is None:
            return self.heading if self.status_box else None
        return f"{self.heading}: {message}" if self.heading else message


# elements whose text is never a message: scripts, styles, inline logos, page headers and footers
_SKIPPED = frozenset({"script", "style", "svg", "header", "footer"})


class _PageParser(HTMLParser):
    """Collects forms, links and the few texts a login page shows; tolerant of any markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: Form | None = None
        self._skipping: list[str] = []  # open elements of _SKIPPED
        self._capture: str | None = None  # which text we are collecting
        self._capture_tag = ""
        self._capture_depth = 0  # nesting of _capture_tag inside the captured element
        self._text: list[str] = []
        self._link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping.append(tag)
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(attributes.get("action") or None, (attributes.get("method") or "get").lower())
            self.page.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None:
            name = attributes.get("name")
            if name:
                self._form.inputs[name] = attributes.get("value", "")
        if self._capture is not None:
            self._capture_depth += tag == self._capture_tag
            return
        what = self._what_to_capture(tag, attributes)
        if what is not None:
            self._capture, self._capture_tag, self._capture_depth, self._text = what, tag, 0, []
            self._link = attributes.get("href") if what == "link" else None

    def _what_to_capture(self, tag: str, attributes: dict[str, str]) -> str | None:
        classes = attributes.get("class", "").split()
        if tag == "a" and "href" in attributes:
            return "link"
        if self._skipping:
            return None
        if tag == "div":
            if attributes.get("id") == "login-error":
                return "login-error"
            if "alert" in classes:
                return "alert"
            if "status-code" in classes:
                return "status"
            return "note" if classes == ["content"] else None
        if tag in ("h1", "h2") and self.page.heading is None:
            return "heading"
        if tag == "p" and self._form is None:
            return "paragraph"
        if tag == "title" and self.page.title is None:
            return "title"
        return None

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
        if tag == "form":
            self._form = None
        if self._capture is None or tag != self._capture_tag:
            return
        if self._capture_depth:
            self._capture_depth -= 1
            return
        self._finish_capture(" ".join("".join(self._text).split()))

    def _finish_capture(self, text: str) -> None:
        what, self._capture = self._capture, None
        if what == "link" and self._link is not None:
            self.page.links.append((self._link, text))
        elif what == "login-error":
            self.page.login_error = text
        elif what == "alert":
            self.page.alert = text.lstrip("×").strip() or None
        elif what == "status":
            self.page.status_box = text
        elif what == "note" and text:
            self.page.notes.append(text)
        elif what == "heading":
            self.page.heading = text
        elif what == "paragraph" and text:
            self.page.paragraphs.append(text)
        elif what == "title":
            self.page.title = text

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
