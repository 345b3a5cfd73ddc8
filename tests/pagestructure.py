"""The structure of a Dex or oauth2-proxy page, for comparing the sandbox's pages with the real ones.

Independent of the client's parser (``scripts/auth/dexpages.py``) on purpose: the
comparison must not inherit the client's blind spots.  A page's structure is
what a client can act on: forms (method, action, inputs), links and their
texts, buttons, the login-error box, headings, paragraphs and oauth2-proxy's
``div.content`` messages, the approval page's scope list, and the footer.
Attribute values come out HTML-unescaped (``html.parser`` does that); values
that are per-request ids (``state``, ``req``, ...) are replaced by ``*`` so
that a page served by a running sandbox compares equal to a golden page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

PER_REQUEST = frozenset({"state", "req", "hmac", "code", "nonce", "code_challenge"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


def normalise_url(url: str) -> str:
    """The URL with the values of per-request query keys replaced by ``*`` (nothing else changed)."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    parts = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        parts.append(f"{key}{eq}*" if key in PER_REQUEST and value else part)
    return f"{base}?{'&'.join(parts)}"


@dataclass
class Form:
    """One form: method (lower case), action (unescaped, normalised) and its inputs (name, type, value)."""

    method: str
    action: str | None
    inputs: list[tuple[str, str, str | None]] = field(default_factory=list)


@dataclass
class Structure:
    """What a client can see and act on in a page."""

    title: str | None = None
    headings: list[str] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text), outside the footer
    buttons: list[str] = field(default_factory=list)
    error_box: str | None = None  # Dex's <div id="login-error" class="dex-error-box">
    paragraphs: list[str] = field(default_factory=list)  # <p> outside the footer
    messages: list[str] = field(default_factory=list)  # oauth2-proxy's <div class="content"> outside the footer
    subtle: list[str] = field(default_factory=list)  # Dex's <div class="dex-subtle-text"> (approval: who asks)
    scopes: list[str] = field(default_factory=list)  # Dex's <ul class="dex-list"> items
    status_code: str | None = None  # oauth2-proxy's <div class="status-code">
    footer: list[str] = field(default_factory=list)  # texts and link targets inside <footer>


def _text(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.structure = Structure()
        self.open: list[tuple[str, dict[str, str], list[str]]] = []  # tag, attributes, text inside
        self.form: Form | None = None

    def _inside(self, tag: str, css_class: str | None = None) -> bool:
        return any(t == tag and (css_class is None or css_class in a.get("class", "").split()) for t, a, _ in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            action = attributes.get("action")
            self.form = Form((attributes.get("method") or "get").lower(), None if action is None else normalise_url(action))
            self.structure.forms.append(self.form)
        elif tag == "input":
            name = attributes.get("name", "")
            value = attributes.get("value")
            if name in PER_REQUEST and value:
                value = "*"
            entry = (name, attributes.get("type", "text"), value)
            if self.form is not None:
                self.form.inputs.append(entry)
        if tag not in _VOID:
            self.open.append((tag, attributes, []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        for _tag, _attributes, text in self.open:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                break
        else:
            return
        closed = self.open[index:]
        del self.open[index:]
        for closed_tag, attributes, text in reversed(closed):
            self._closed(closed_tag, attributes, _text(text))

    def _closed(self, tag: str, attributes: dict[str, str], text: str) -> None:
        found = self.structure
        classes = attributes.get("class", "").split()
        in_footer = self._inside("footer")
        if tag == "title" and self._inside("head"):  # not an inline SVG's <title>
            found.title = text
        elif tag in ("h1", "h2"):
            found.headings.append(text)
        elif tag == "a" and "href" in attributes:
            href = normalise_url(attributes["href"])
            if in_footer:
                found.footer.append(f"link {href}")
            else:
                found.links.append((href, text))
        elif tag == "button":
            found.buttons.append(text)
        elif tag == "div":
            self._closed_div(attributes, classes, text, in_footer)
        elif tag == "p":
            (found.footer if in_footer else found.paragraphs).append(text)
        elif tag == "li" and self._inside("ul", "dex-list"):
            found.scopes.append(text)

    def _closed_div(self, attributes: dict[str, str], classes: list[str], text: str, in_footer: bool) -> None:
        found = self.structure
        if attributes.get("id") == "login-error":
            found.error_box = f"{' '.join(classes)}: {text}"
        elif "content" in classes and not in_footer:
            found.messages.append(text)
        elif "dex-subtle-text" in classes:
            found.subtle.append(text)
        elif "status-code" in classes:
            found.status_code = text


def extract(page: str) -> Structure:
    """The structure of an HTML page."""
    parser = _Parser()
    parser.feed(page)
    parser.close()
    return parser.structure
