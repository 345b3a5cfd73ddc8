"""The HTML pages the sandbox's Dex and oauth2-proxy serve, shaped as the real releases render them.

The templates here are the sandbox's own, but each page has the structure of
the real one for the flavor's release (``shared/real-pages``): the same forms
(method, action), inputs (name, type, value), links, error box, headings and
messages, escaped as Go's ``html/template`` escapes them.  Clients and tests
parse these pages as they would parse a real cluster's, so every difference
between releases that a parser can notice is kept:

- Dex: the "Select another login method." link is ``javascript:history.back()``
  when there are several connectors on v2.22, the ``back`` query value from
  v2.29; v2.41 adds a script disabling the submit button; after v2.22 the
  approval page says so when the client asked for no personal information.
- oauth2-proxy: the footer names the version unless Kubeflow sets it to "-".
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from .flavors import Flavor

# ---- Go html/template escaping --------------------------------------------------------

_GO_HTML = {'"': "&#34;", "&": "&amp;", "'": "&#39;", "+": "&#43;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
_URL_KEEP = set("!#$&*+,/:;=?@[]-._~%")


def go_escape(text: str) -> str:
    """Text or an attribute value as html/template writes it: ``" & ' + < >`` as entities."""
    return "".join(_GO_HTML.get(char, char) for char in text)


def go_url(url: str) -> str:
    """A URL in an ``href``/``action`` attribute as html/template writes it.

    First its URL normaliser: bytes outside the unreserved and reserved sets
    become ``%xx`` (lower-case hex; ``%`` is kept), then the attribute escaping
    (``&`` -> ``&amp;``, ``+`` -> ``&#43;``).  A scheme other than http(s),
    mailto or none becomes ``#ZgotmplZ``, as html/template filters it.
    """
    scheme, sep, _ = url.partition(":")
    if sep and "/" not in scheme and scheme.lower() not in ("http", "https", "mailto"):
        return "#ZgotmplZ"
    normalised = "".join(
        chr(byte) if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in _URL_KEEP) else f"%{byte:02x}"
        for byte in url.encode()
    )
    return go_escape(normalised)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.lstrip("v").split("."))


# ---- Dex --------------------------------------------------------------------------------

ISSUER_PATH = "/dex"
SCOPE_DESCRIPTIONS = {
    "offline_access": "Have offline access",
    "profile": "View basic profile information",
    "email": "View your email address",
    "groups": "View your groups",  # from v2.35
}


def scope_descriptions(dex_version: str, scopes: Sequence[str]) -> list[str]:
    """What Dex's approval page lists for the requested scopes: sorted descriptions of the known ones."""
    known = dict(SCOPE_DESCRIPTIONS)
    if _version(dex_version) < (2, 35):
        known.pop("groups")
    return sorted(known[scope] for scope in scopes if scope in known)


def _assets(request_path: str) -> str:
    """The relative prefix Dex gives its assets: one ``../`` per level below the issuer path's first."""
    below = request_path[len(ISSUER_PATH) :].strip("/").split("/")
    return "../" * max(len(below) - 1, 0)


def _dex_page(request_path: str, panel: str, after: str = "") -> str:
    assets = _assets(request_path)
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        "<title>dex</title>\n"
        f'<link rel="stylesheet" href="{assets}static/main.css">\n'
        f'<link rel="stylesheet" href="{assets}theme/styles.css">\n'
        f'<link rel="icon" href="{assets}theme/favicon.png">\n'
        "</head>\n"
        '<body class="theme-body">\n'
        f'<div class="theme-navbar"><div class="theme-navbar__logo-wrap"><img class="theme-navbar__logo" src="{assets}theme/logo.png"></div></div>\n'
        f'<div class="dex-container">\n<div class="theme-panel">\n{panel}</div>\n{after}</div>\n'
        "</body>\n</html>\n"
    )


def _heading(text: str) -> str:
    return f'<h2 class="theme-heading">{go_escape(text)}</h2>\n'


def dex_error_page(request_path: str, status_text: str, message: str) -> str:
    """Dex's error page: the status text as heading, the handler's message in a paragraph."""
    return _dex_page(request_path, f"{_heading(status_text)}<p>{go_escape(message)}</p>\n")


def password_page(
    dex_version: str,
    request_path: str,
    post_url: str,
    prompt: str,
    *,
    username: str = "",
    invalid: bool = False,
    connectors: int = 1,
    back: str = "",
) -> str:
    """The password form; ``post_url`` is the request URI as received (Dex's PostURL).

    The back link: v2.22 shows ``javascript:history.back()`` with several
    ``connectors``; later releases show the ``back`` query value when it is set.
    """
    if username:  # a failed attempt: the login kept, the focus on the password
        login_extra, password_extra = f' value="{go_escape(username)}"', " autofocus"
    else:
        login_extra, password_extra = " autofocus", ""
    rows = (
        '<div class="theme-form-row">'
        f'<div class="theme-form-label"><label for="userid">{go_escape(prompt)}</label></div>'
        '<input tabindex="1" required id="login" name="login" type="text" class="theme-form-input"'
        f' placeholder="{go_escape(prompt.lower())}"{login_extra}/>'
        "</div>\n"
        '<div class="theme-form-row">'
        '<div class="theme-form-label"><label for="password">Password</label></div>'
        '<input tabindex="2" required id="password" name="password" type="password" class="theme-form-input"'
        f' placeholder="password"{password_extra}/>'
        "</div>\n"
    )
    error = f'<div id="login-error" class="dex-error-box">Invalid {go_escape(prompt)} and password.</div>\n' if invalid else ""
    submit = '<button tabindex="3" id="submit-login" type="submit" class="dex-btn theme-btn--primary">Login</button>\n'
    form = f'<form method="post" action="{go_url(post_url)}">\n{rows}{error}{submit}</form>\n'
    if _version(dex_version) < (2, 29):
        back_href = "javascript:history.back()" if connectors > 1 else ""
        back_attribute = back_href  # a constant of the template: not filtered
    else:
        back_href = back
        back_attribute = go_url(back)
    link = (
        f'<div class="theme-link-back"><a class="dex-subtle-text" href="{back_attribute}">Select another login method.</a></div>\n'
        if back_href
        else ""
    )
    after = ""
    if _version(dex_version) >= (2, 41):  # the page disables its button once submitted
        after = (
            "<script>\n"
            "  var loginForm = document.forms[0];\n"
            '  loginForm.addEventListener("submit", function () {\n'
            '    document.getElementById("submit-login").disabled = true;\n'
            "  });\n"
            "</script>\n"
        )
    return _dex_page(request_path, _heading("Log in to Your Account") + form + link, after)


@dataclass(frozen=True)
class ConnectorLink:
    """One button of Dex's connector choice."""

    id: str
    name: str
    url: str


def connector_page(request_path: str, connectors: Sequence[ConnectorLink], issuer: str = "dex") -> str:
    """Dex's connector choice: per connector, a link wrapping a ``Log in with <Name>`` button."""
    rows = "".join(
        '<div class="theme-form-row">'
        f'<a href="{go_url(link.url)}" target="_self">'
        '<button class="dex-btn theme-btn-provider">'
        f'<span class="dex-btn-icon dex-btn-icon--{go_escape(link.id)}"></span>'
        f'<span class="dex-btn-text">Log in with {go_escape(link.name)}</span>'
        "</button></a></div>\n"
        for link in connectors
    )
    return _dex_page(request_path, f"{_heading(f'Log in to {issuer} ')}<div>\n{rows}</div>\n")


def approval_page(dex_version: str, request_path: str, client: str, scopes: Sequence[str], request_id: str) -> str:
    """Dex's "Grant Access" page: what the client asks for, and an approve and a reject form.

    ``scopes`` are the descriptions to list (see ``scope_descriptions``).
    """
    if scopes or _version(dex_version) < (2, 29):
        items = "".join(f"<li>{go_escape(scope)}</li>\n" for scope in scopes)
        asks = f'<div class="dex-subtle-text">{go_escape(client)} would like to:</div>\n<ul class="dex-list">\n{items}</ul>\n'
    else:
        asks = f'<div class="dex-subtle-text">{go_escape(client)} has not requested any personal information</div>\n'

    def decision(value: str, style: str, label: str) -> str:
        return (
            '<div class="theme-form-row"><form method="post">'
            f'<input type="hidden" name="req" value="{go_escape(request_id)}"/>'
            f'<input type="hidden" name="approval" value="{value}">'
            f'<button type="submit" class="dex-btn {style}"><span class="dex-btn-text">{label}</span></button>'
            "</form></div>\n"
        )

    panel = (
        _heading("Grant Access")
        + f'<hr class="dex-separator">\n<div>\n{asks}</div>\n<hr class="dex-separator">\n'
        + "<div>\n"
        + decision("approve", "theme-btn--success", "Grant Access")
        + decision("rejected", "theme-btn-provider", "Cancel")
        + "</div>\n"
    )
    return _dex_page(request_path, panel)


# ---- oauth2-proxy --------------------------------------------------------------------------

PROXY_PREFIX = "/oauth2"
PROVIDER_NAME = "Dex"
_LOGOS = {  # the sandbox's own marks, standing where the configured logo is
    "default": '<svg width="96" height="96" viewBox="0 0 96 96" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="OAuth2 Proxy (sandbox)">'
    '<circle cx="48" cy="48" r="40" fill="#1957ba"/></svg>',
    "kubeflow": '<svg width="96" height="96" viewBox="0 0 96 96" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Kubeflow (sandbox)">'
    '<rect x="12" y="12" width="72" height="72" rx="12" fill="#4279f4"/></svg>',
}


def _proxy_page(title: str, body: str, flavor: Flavor) -> str:
    if flavor.oauth2_proxy_footer == "-":
        footer = ""
    elif flavor.oauth2_proxy_footer:
        footer = f"<p>{go_escape(flavor.oauth2_proxy_footer)}</p>"
    else:
        footer = (
            '<p>Secured with <a href="https://github.com/oauth2-proxy/oauth2-proxy#oauth2_proxy" class="has-text-grey">'
            f"OAuth2 Proxy</a> version {go_escape(flavor.oauth2_proxy_version or '')}</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en" charset="utf-8">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{go_escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{PROXY_PREFIX}/static/css/bulma.min.css">\n'
        "</head>\n"
        f'<body class="has-background-light">\n{body}'
        f'<footer class="footer has-text-grey has-background-light is-size-7"><div class="content has-text-centered">{footer}</div></footer>\n'
        "</body>\n</html>\n"
    )


def sign_in_page(flavor: Flavor, redirect: str) -> str:
    """oauth2-proxy's sign-in page: a GET form to ``/oauth2/start`` carrying ``rd``, and the provider button."""
    logo = _LOGOS.get(flavor.oauth2_proxy_logo, _LOGOS["default"])
    body = (
        '<section class="section has-background-light">\n'
        '<div class="box block sign-in-box has-text-centered">\n'
        f'<div class="block logo-box">{logo}</div>\n'
        f'<form method="GET" action="{go_url(PROXY_PREFIX + "/start")}">\n'
        f'<input type="hidden" name="rd" value="{go_escape(redirect)}">\n'
        f'<button type="submit" class="button block is-primary">Sign in with {go_escape(PROVIDER_NAME)}</button>\n'
        "</form>\n</div>\n</section>\n"
    )
    return _proxy_page("Sign In", body, flavor)


def proxy_error_page(
    flavor: Flavor,
    status: int,
    title: str,
    message: str,
    *,
    redirect: str = "/",
    request_id: str | None = None,
) -> str:
    """oauth2-proxy's error page: status and title, a "More Info" card, "Go back" and "Sign in" forms.

    ``request_id`` defaults to a fresh UUID, as oauth2-proxy makes one per request.
    """
    request_id = str(uuid.uuid4()) if request_id is None else request_id
    details = "".join(
        f'<div class="content">{go_escape(text)}</div>\n'
        for text in (message, f"Request ID: {request_id}" if request_id else "")
        if text
    )
    more_info = (
        '<div id="more-info" class="block card is-fullwidth is-shadowless">\n'
        '<header class="card-header is-shadowless"><p class="card-header-title">More Info</p>'
        '<a class="card-header-icon card-toggle"><i class="fa fa-angle-down"></i></a></header>\n'
        f'<div class="card-content has-text-left is-hidden">\n{details}</div>\n</div>\n'
        if details
        else ""
    )
    actions = (
        '<hr>\n<div class="columns">\n'
        f'<div class="column"><form method="GET" action="{go_url(redirect)}">'
        '<button type="submit" class="button is-danger is-fullwidth">Go back</button></form></div>\n'
        f'<div class="column"><form method="GET" action="{go_url(PROXY_PREFIX + "/sign_in")}">'
        f'<input type="hidden" name="rd" value="{go_escape(redirect)}">'
        '<button type="submit" class="button is-primary is-fullwidth">Sign in</button></form></div>\n'
        "</div>\n"
        if redirect
        else ""
    )
    body = (
        '<section class="section">\n<div class="box block error-box has-text-centered">\n'
        f'<div class="status-code">{status}</div>\n'
        f'<div class="block"><h1 class="subtitle is-1">{go_escape(title)}</h1></div>\n'
        f"{more_info}{actions}</div>\n</section>\n"
    )
    return _proxy_page(f"{status} {title}", body, flavor)
