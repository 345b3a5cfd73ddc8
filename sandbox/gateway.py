"""A stand-in for Istio's ingress gateway with oidc-authservice or oauth2-proxy, and Dex behind it.

It answers as ``shared/spec/auth-flows.md`` says each generation (flavor)
answers: the redirects, Dex's password, connector and approval pages, the
callback and its cookies, and the failure signals of the spec's table.
Authenticated ``/v1`` and ``/v2`` calls are forwarded to the real MLServer;
unauthenticated ones get what the flavor answers a browser without a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlencode

import requests

from .faults import envoy_reply
from .flavors import FLAVORS, NEWEST, Flavor
from .httpserve import Reply, Request

CLIENT_ID = "kubeflow-oidc-authservice"
DEMO_LOGIN = "user@example.com"
DEMO_PASSWORD = "12341234"
COOKIE_CHUNK = 4000


@dataclass
class AuthRequest:
    """A Dex auth request (``req`` / ``state`` id) in flight."""

    client_state: str
    redirect_uri: str
    logged_in: bool = False
    created: float = field(default_factory=time.time)


@dataclass
class Settings:
    """What the sandbox is told to be; changed at run time through the control endpoint."""

    flavor: str = NEWEST
    connectors: list[str] = field(default_factory=lambda: ["local"])
    login_prompt: str = "Email Address"
    users: dict[str, str] = field(default_factory=lambda: {DEMO_LOGIN: DEMO_PASSWORD})
    session_seconds: int = 86400
    auth_request_seconds: int = 86400  # Dex's authRequest expiry
    big_cookie: bool = False
    faults: list[dict[str, Any]] = field(default_factory=list)  # see sandbox.faults
    approval_reuse_status: int = 500  # Dex says 500 "Database error."; through the gateway users saw 504
    rbac_deny: bool = False  # Istio's AuthorizationPolicy refuses the model: 403 "RBAC: access denied"
    model_not_ready_until: float = 0.0  # epoch seconds: MLServer's 400 "not ready yet" until then


class World:
    """Everything the gateway, the NodePorts and the Kubernetes stand-in share."""

    def __init__(self, model_port: int, settings: Settings | None = None) -> None:
        self.lock = threading.RLock()
        self.settings = settings or Settings()
        self.model_port = model_port
        self.key = secrets.token_bytes(32)
        self.sessions: dict[str, float] = {}  # session value -> expiry (epoch seconds)
        self.tokens: dict[str, float] = {}  # ServiceAccount tokens -> expiry
        self.auth_requests: dict[str, AuthRequest] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (client state, redirect_uri)
        self.client_states: dict[str, str] = {}  # authservice state / oauth2 nonce -> original path
        self.csrf: dict[str, tuple[str, float]] = {}  # oauth2-proxy csrf cookie -> (nonce, expiry)
        self.upstream = requests.Session()

    @property
    def flavor(self) -> Flavor:
        return FLAVORS[self.settings.flavor]

    # sessions ------------------------------------------------------------------

    def issue_token(self, seconds: int) -> str:
        """A ServiceAccount token the gateway will accept as a bearer (kube API's create token)."""
        payload = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        token = f"eyJhbGciOiJSUzI1NiJ9.{payload}.{secrets.token_urlsafe(16)}"
        with self.lock:
            self.tokens[token] = time.time() + seconds
        return token

    def authenticated(self, request: Request) -> bool:
        """True when the request carries a session or token this flavor accepts."""
        flavor = self.flavor
        cookies = request.cookies()
        value = cookies.get(flavor.session_cookie)
        if value is None:
            parts = []
            while f"{flavor.session_cookie}_{len(parts)}" in cookies:
                parts.append(cookies[f"{flavor.session_cookie}_{len(parts)}"])
            value = "".join(parts) or None
        candidates = [value] if value else []
        if flavor.accepts_token_header and request.headers.get("x-auth-token"):
            candidates.append(request.headers["x-auth-token"])
        bearer = request.headers.get("authorization", "")
        now = time.time()
        with self.lock:
            if flavor.accepts_bearer and bearer.startswith("Bearer "):
                token = bearer[len("Bearer ") :]
                if self.tokens.get(token, 0) > now or (flavor.proxy == "authservice" and self.sessions.get(token, 0) > now):
                    return True
            return any(self.sessions.get(candidate, 0) > now for candidate in candidates)

    def expire_sessions(self) -> int:
        """End every session now (the 'session expired early' fault); returns how many."""
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
            return count

    # the model server ------------------------------------------------------------

    def forward(self, request: Request) -> Reply:
        """Pass a call to MLServer and its answer back."""
        if time.time() < self.settings.model_not_ready_until and "/infer" in request.path:
            error = b'{"error": "Model sklearn-irisv2 is not ready yet."}'
            return Reply(400, error, [], "application/json")
        headers = {"Content-Type": request.headers.get("content-type", "application/json")}
        try:
            answer = self.upstream.request(
                request.method,
                f"http://127.0.0.1:{self.model_port}{request.target}",
                data=request.body,
                headers=headers,
                timeout=60,
            )
        except requests.RequestException:
            return Reply(503, b"no healthy upstream")
        return Reply(answer.status_code, answer.content, [], answer.headers.get("Content-Type", "application/json"))


class StandInGateway:
    """The ingress gateway app: auth in front, MLServer behind."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, request: Request) -> Reply:
        flavor = self.world.flavor
        path = request.path
        if path == "/dex" or path.startswith("/dex/"):
            return Dex(self.world).handle(request)
        if flavor.proxy == "oauth2-proxy" and path == "/oauth2/start":
            return self._oauth2_start(request.query.get("rd") or "/")
        if path == flavor.callback_path:
            return self._callback(request)
        if self.world.authenticated(request):
            return self.protected(request)
        return self.unauthenticated(request)

    def protected(self, request: Request) -> Reply:
        """What an authenticated caller reaches: the model, or the dashboard."""
        if request.path.startswith(("/v1/", "/v2/")):
            if self.world.settings.rbac_deny:
                return Reply(403, b"RBAC: access denied", [("server", "istio-envoy")])
            return self.world.forward(request)
        return Reply.html(200, "<html><title>Kubeflow Central Dashboard (sandbox)</title></html>")

    # without a session -------------------------------------------------------------

    def unauthenticated(self, request: Request) -> Reply:
        flavor = self.world.flavor
        if flavor.proxy == "oauth2-proxy":
            if flavor.unauthenticated == "redirect":
                return self._oauth2_start(request.target)
            if request.path.startswith(("/api/", "/apis/", "/ml_metadata")):
                return Reply.json_text(401, "{}")
            return Reply.html(403, _sign_in_page(request.target))
        client_state = secrets.token_urlsafe(12)
        with self.world.lock:
            self.world.client_states[client_state] = request.target
        query = urlencode(
            {
                "client_id": CLIENT_ID,
                "redirect_uri": flavor.callback_path,
                "response_type": "code",
                "scope": "openid profile email groups",
                "state": client_state,
            }
        )
        headers = [("Set-Cookie", f"{flavor.csrf_cookie}={client_state}; Path=/")] if flavor.csrf_cookie else []
        return Reply.redirect(302, f"/dex/auth?{query}", headers)

    def _oauth2_start(self, rd: str) -> Reply:
        flavor = self.world.flavor
        nonce = secrets.token_urlsafe(16)
        csrf = secrets.token_urlsafe(32)
        with self.world.lock:
            self.world.csrf[csrf] = (nonce, time.time() + 15 * 60)
            self.world.client_states[nonce] = rd
        query = {
            "client_id": CLIENT_ID,
            "code_challenge": secrets.token_urlsafe(32),
            "code_challenge_method": "S256",
            "nonce": secrets.token_urlsafe(16),
            "redirect_uri": flavor.callback_path,
            "response_type": "code",
            "scope": "profile email groups openid",
            "state": f"{nonce}:{rd}",
        }
        query.update({"approval_prompt": "force"} if flavor.approval == "page" else {"prompt": "none"})
        cookie = f"{flavor.csrf_cookie}={csrf}; Path=/; Expires={_http_date(15 * 60)}; HttpOnly"
        return Reply.redirect(302, f"/dex/auth?{urlencode(query)}", [("Set-Cookie", cookie)])

    # the callback -------------------------------------------------------------------

    def _callback(self, request: Request) -> Reply:
        flavor = self.world.flavor
        code, state = request.query.get("code", ""), request.query.get("state", "")
        cookies = request.cookies()
        with self.world.lock:
            if flavor.proxy == "oauth2-proxy":
                nonce, _, _rd = state.partition(":")
                held = self.world.csrf.get(cookies.get(flavor.csrf_cookie or "", ""))
                if held is None or held[0] != nonce or held[1] < time.time():
                    return Reply.html(
                        403, _error_page("Forbidden", "Login Failed: Unable to find a valid CSRF token. Please try again.")
                    )
            elif flavor.proxy == "authservice" and (
                cookies.get(flavor.csrf_cookie or "") != state or state not in self.world.client_states
            ):
                return Reply(
                    400,
                    b"CSRF check failed. This may happen if you opened the login form in more than 1 tabs. Please try to login again.",
                )
            exchanged = self.world.codes.pop(code, None)
            if exchanged is None or exchanged[0] != state:
                return Reply(500, b"Failed to exchange authorization code with token.")
            key = nonce if flavor.proxy == "oauth2-proxy" else state
            original = self.world.client_states.pop(key, "/")
            if flavor.proxy == "oauth2-proxy":
                self.world.csrf.pop(cookies.get(flavor.csrf_cookie or "", ""), None)
            seconds = self.world.settings.session_seconds
            value = secrets.token_urlsafe(48 if not self.world.settings.big_cookie else 3300)
            self.world.sessions[value] = time.time() + seconds
        return Reply.redirect(302, original, self._session_cookies(value, seconds))

    def _session_cookies(self, value: str, seconds: int) -> list[tuple[str, str]]:
        flavor = self.world.flavor
        attributes = f"Path=/; Expires={_http_date(seconds)}; Max-Age={seconds}"
        if flavor.proxy == "authservice":
            attributes += "; SameSite=Lax"
        elif flavor.proxy == "oauth2-proxy":
            attributes = f"Path=/; Expires={_http_date(seconds)}; HttpOnly; SameSite=Lax"
        name = flavor.session_cookie
        if len(value) > COOKIE_CHUNK:
            chunks = [value[i : i + COOKIE_CHUNK] for i in range(0, len(value), COOKIE_CHUNK)]
            headers = [("Set-Cookie", f"{name}_{i}={chunk}; {attributes}") for i, chunk in enumerate(chunks)]
        else:
            headers = [("Set-Cookie", f"{name}={value}; {attributes}")]
        if flavor.csrf_cookie:
            headers.append(("Set-Cookie", f"{flavor.csrf_cookie}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"))
        return headers


class Dex:
    """Dex's answers under ``/dex``, for the flavor's Dex version."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.flavor = world.flavor
        self.settings = world.settings

    def handle(self, request: Request) -> Reply:
        parts = request.path.rstrip("/").split("/")  # ['', 'dex', 'auth', connector, 'login']
        if parts[1:3] == ["dex", "auth"] and len(parts) == 3:
            return self._auth(request)
        if parts[1:3] == ["dex", "auth"] and len(parts) == 4:
            return self._connector(request, parts[3])
        if parts[1:3] == ["dex", "auth"] and len(parts) == 5 and parts[4] == "login" and self.flavor.login_by_state:
            return self._login(request, parts[3], request.query.get("state", ""), "Requested resource does not exist.")
        if parts[1:3] == ["dex", "approval"]:
            return self._approval(request)
        return Reply.html(404, _error_page("Not Found", "Not Found"))

    def _auth(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != CLIENT_ID:
            return Reply.html(404, _error_page("Not Found", f'Invalid client_id ("{query.get("client_id", "")}").'))
        if query.get("redirect_uri") != self.flavor.callback_path:
            return Reply.html(400, _error_page("Bad Request", f'Unregistered redirect_uri ("{query.get("redirect_uri", "")}").'))
        connectors = self.settings.connectors
        chosen = query.get("connector_id")
        new_id = None if self.flavor.login_by_state else self._new_request(query)
        suffix = f"req={new_id}" if new_id else urlencode(query)
        if len(connectors) > 1 and not chosen:
            links = "".join(
                f'<li><a href="/dex/auth/{c}?{html.escape(suffix)}" class="dex-btn"><span>Log in with {c.title()}</span></a></li>'
                for c in connectors
            )
            return Reply.html(200, _page("Log in to dex", f'<ul class="dex-connectors">{links}</ul>'))
        return Reply.redirect(302, f"/dex/auth/{chosen or connectors[0]}?{suffix}")

    def _new_request(self, query: dict[str, str]) -> str:
        request_id = secrets.token_hex(13)
        with self.world.lock:
            self.world.auth_requests[request_id] = AuthRequest(query.get("state", ""), query.get("redirect_uri", ""))
        return request_id

    def _connector(self, request: Request, connector: str) -> Reply:
        if connector not in self.settings.connectors or connector != "local":
            return Reply.html(404, _error_page("Not Found", "Connector ID does not match a valid Connector"))
        if not self.flavor.login_by_state:
            return self._login(request, connector, request.query.get("req", ""), "Login session expired.")
        request_id = self._new_request(request.query)
        return Reply.redirect(302, f"/dex/auth/{connector}/login?back=&state={request_id}")

    def _login(self, request: Request, connector: str, request_id: str, missing: str) -> Reply:
        with self.world.lock:
            auth = self.world.auth_requests.get(request_id)
        if auth is None:
            return Reply.html(400, _error_page("Bad Request", missing))
        if time.time() - auth.created > self.settings.auth_request_seconds:
            return Reply.html(400, _error_page("Bad Request", "User session has expired."))
        action = (
            f"/dex/auth/{connector}/login?back=&state={request_id}"
            if self.flavor.login_by_state
            else f"/dex/auth/{connector}?req={request_id}"
        )
        if request.method != "POST":
            return Reply.html(200, _password_page(action, self.settings.login_prompt))
        form = request.form()
        login, password = form.get("login", ""), form.get("password", "")
        expected = self.settings.users.get(login)
        if expected is None or not hmac.compare_digest(expected, password):
            error = f"Invalid {self.settings.login_prompt} and password."
            return Reply.html(self.flavor.wrong_password_status, _password_page(action, self.settings.login_prompt, login, error))
        with self.world.lock:
            auth.logged_in = True
        if self.flavor.approval == "none":
            return Reply.redirect(303, self._finish(request_id))
        signature = f"&hmac={self._hmac(request_id)}" if self.flavor.approval in ("auto-hmac", "page") else ""
        return Reply.redirect(303, f"/dex/approval?req={request_id}{signature}")

    def _hmac(self, request_id: str) -> str:
        digest = hmac.new(self.world.key, request_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _approval(self, request: Request) -> Reply:
        request_id = request.query.get("req", "") or request.form().get("req", "")
        with self.world.lock:
            auth = self.world.auth_requests.get(request_id)
        if auth is None or not auth.logged_in:
            if self.settings.approval_reuse_status == 504:
                return envoy_reply(504)
            return Reply.html(500, _error_page("Internal Server Error", "Database error."))
        if self.flavor.approval in ("auto-hmac", "page"):
            given = request.query.get("hmac", "")
            if not given or not hmac.compare_digest(given, self._hmac(request_id)):
                return Reply.html(401, _error_page("Unauthorized", "Unauthorized request"))
        if self.flavor.approval != "page":
            return Reply.redirect(303, self._finish(request_id))
        if request.method != "POST":
            return Reply.html(200, _approval_page(request_id))
        if request.form().get("approval") != "approve":
            with self.world.lock:
                self.world.auth_requests.pop(request_id, None)
            return Reply.redirect(303, f"{auth.redirect_uri}?error=access_denied&state={quote(auth.client_state, safe='')}")
        return Reply.redirect(303, self._finish(request_id))

    def _finish(self, request_id: str) -> str:
        """Consume the auth request; the callback URL with a fresh code."""
        code = secrets.token_urlsafe(18)
        with self.world.lock:
            auth = self.world.auth_requests.pop(request_id)
            self.world.codes[code] = (auth.client_state, auth.redirect_uri)
        return f"{auth.redirect_uri}?code={code}&state={quote(auth.client_state, safe='')}"


def _http_date(seconds_from_now: int) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


def _page(title: str, body: str) -> str:
    return f'<!DOCTYPE html><html><head><title>dex</title></head><body><div class="theme-panel"><h2 class="theme-heading">{html.escape(title)}</h2>{body}</div></body></html>'


def _error_page(status_text: str, message: str) -> str:
    return _page(status_text, f"<p>{html.escape(message)}</p>")


def _password_page(action: str, prompt: str, login: str = "", error: str | None = None) -> str:
    error_box = f'<div id="login-error" class="dex-error-box">{html.escape(error)}</div>' if error else ""
    form = (
        f'<form method="post" action="{html.escape(action)}">'
        f'<div class="theme-form-row"><label for="userid">{html.escape(prompt)}</label>'
        f'<input tabindex="1" required id="login" name="login" type="text" placeholder="email address" value="{html.escape(login)}" autofocus/></div>'
        '<div class="theme-form-row"><label for="password">Password</label>'
        '<input tabindex="2" required id="password" name="password" type="password" placeholder="password"/></div>'
        f'{error_box}<button tabindex="3" id="submit-login" type="submit" class="dex-btn theme-btn--primary">Login</button></form>'
    )
    return _page("Log in to Your Account", form)


def _approval_page(request_id: str) -> str:
    forms = (
        f'<form method="post"><input type="hidden" name="req" value="{html.escape(request_id)}"/>'
        '<input type="hidden" name="approval" value="approve"><button type="submit" class="dex-btn theme-btn--success">'
        '<span class="dex-btn-text">Grant Access</span></button></form>'
        f'<form method="post"><input type="hidden" name="req" value="{html.escape(request_id)}"/>'
        '<input type="hidden" name="approval" value="rejected"><button type="submit" class="dex-btn theme-btn-provider">'
        '<span class="dex-btn-text">Cancel</span></button></form>'
    )
    return _page("Grant Access", f"<p>kubeflow-oidc-authservice would like to:</p>{forms}")


def _sign_in_page(rd: str) -> str:
    return (
        '<!DOCTYPE html><html><head><title>Sign In</title></head><body><section class="hero">'
        '<form method="GET" action="/oauth2/start">'
        f'<input type="hidden" name="rd" value="{html.escape(rd)}">'
        '<button type="submit" class="button block is-primary">Sign in with Dex</button></form>'
        "</section></body></html>"
    )
