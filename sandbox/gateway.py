"""A stand-in for Istio's ingress gateway with oidc-authservice or oauth2-proxy, and Dex behind it.

It answers as ``docs/auth-flows.md`` says each generation (flavor)
answers: the redirects, Dex's password, connector and approval pages, the
callback and its cookies, and the failure signals of the spec's table.
Authenticated ``/v1`` and ``/v2`` calls are forwarded to the real MLServer;
unauthenticated ones get what the flavor answers a browser without a session.
Pages come from ``sandbox.pages`` (the real releases' structure); redirects
and cookies are written as the real Go components write them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

import requests

from . import pages, pipelines
from .faults import BadSetting, check_faults, envoy_reply, is_count, is_seconds, is_status
from .flavors import FLAVORS, NEWEST, Flavor
from .httpserve import Reply, Request
from .serviceaccounts import TokenIssuer

CLIENT_ID = "kubeflow-oidc-authservice"
DEMO_LOGIN = "user@example.com"
DEMO_PASSWORD = "12341234"
COOKIE_CHUNK = 4000
CLIENT_NAME = "Dex Login Application"  # Kubeflow's Dex staticClients name for the client id
CONNECTOR_NAMES = {"local": "Email", "ldap": "LDAP"}  # Dex's display names; others are title-cased
GO_EPOCH_PLUS_ONE = "Thu, 01 Jan 1970 00:00:01 GMT"  # gorilla/sessions' Expires for MaxAge < 0
MODEL_NAME = "sklearn-irisv2"  # the sandbox's one InferenceService, unless started in front of a model of another name
MODEL_NAMESPACE = "kubeflow-user-example-com"
GATEWAY_AUDIENCE = "istio-ingressgateway.istio-system.svc.cluster.local"  # what the gateway's RequestAuthentication wants
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # kubectl create token's default audience


@dataclass
class AuthRequest:
    """A Dex auth request (``req`` / ``state`` id) in flight."""

    client_state: str
    redirect_uri: str
    scopes: list[str] = field(default_factory=list)
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
    model_seconds: float = 0.0  # each inference call waits this long before MLServer answers it (iris alone takes ~1 ms)
    model_domain: str = "example.com"  # KServe's ingress domain: the isvc URL's host is NAME.NAMESPACE.DOMAIN
    path_routing: bool = False  # KServe's path-based routing: status.url is http://<ingress>/serving/NAMESPACE/NAME
    isvc_not_ready: str = ""  # a reason (RevisionMissing): the InferenceService's Ready condition is False


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _users(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(key, str) and isinstance(item, str) for key, item in value.items())


_SETTING_CHECKS: dict[str, tuple[object, str]] = {
    "flavor": (lambda value: value in FLAVORS, f"one of {', '.join(FLAVORS)}"),
    "connectors": (_strings, "a list of connector names"),
    "login_prompt": (lambda value: isinstance(value, str), "text"),
    "users": (_users, "an object of login: password"),
    "session_seconds": (is_count, "a whole number of seconds"),
    "auth_request_seconds": (is_count, "a whole number of seconds"),
    "big_cookie": (lambda value: isinstance(value, bool), "true or false"),
    "approval_reuse_status": (is_status, "an HTTP status, a whole number from 100 to 599"),
    "rbac_deny": (lambda value: isinstance(value, bool), "true or false"),
    "model_not_ready_until": (is_seconds, "epoch seconds"),
    "model_not_ready_seconds": (is_seconds, "seconds, a number zero or more"),
    "model_seconds": (is_seconds, "seconds, a number zero or more"),
    "model_domain": (lambda value: isinstance(value, str) and bool(value), "a DNS domain"),
    "path_routing": (lambda value: isinstance(value, bool), "true or false"),
    "isvc_not_ready": (lambda value: isinstance(value, str), "a reason (text), or empty"),
}


def check_settings(changes: object) -> None:
    """Raise BadSetting naming the first setting (or fault field) the sandbox cannot take, before anything uses it."""
    if not isinstance(changes, dict):
        raise BadSetting("the settings must be a JSON object of gateway settings")
    for name, value in changes.items():
        if name == "faults":
            check_faults(value)
            continue
        if name not in _SETTING_CHECKS:
            raise BadSetting(f"{name}: no such sandbox setting; use faults, {', '.join(_SETTING_CHECKS)}")
        accepts, wanted = _SETTING_CHECKS[name]
        if not accepts(value):  # type: ignore[operator]
            raise BadSetting(f"{name} {value!r}: give {wanted}")


class World:
    """Everything the gateway, the NodePorts and the Kubernetes stand-in share."""

    def __init__(self, model_port: int, settings: Settings | None = None, model_name: str = MODEL_NAME) -> None:
        self.lock = threading.RLock()
        self.settings = settings or Settings()
        self.model_port = model_port
        self.model_name = model_name  # the InferenceService's, and the model's on the V2 server behind it
        self.key = secrets.token_bytes(32)
        self.sessions: dict[str, float] = {}  # session value -> expiry (epoch seconds)
        self.tokens: dict[str, float] = {}  # ServiceAccount tokens -> expiry
        self.signer = TokenIssuer(API_AUDIENCE)  # the API server's issuer (real mode: the stand-in's URL)
        self.auth_requests: dict[str, AuthRequest] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (client state, redirect_uri)
        self.client_states: dict[str, str] = {}  # authservice state / oauth2 nonce -> original path
        self.csrf: dict[str, tuple[str, float]] = {}  # oauth2-proxy csrf cookie -> (nonce, expiry)
        self.upstream = requests.Session()

    @property
    def flavor(self) -> Flavor:
        return FLAVORS[self.settings.flavor]

    # sessions ------------------------------------------------------------------

    @property
    def model_host(self) -> str:
        """The Host the gateway routes to the model (the isvc URL's host, host-based routing)."""
        return f"{self.model_name}.{MODEL_NAMESPACE}.{self.settings.model_domain}"

    def issue_token(self, seconds: int, audiences: list[str] | None = None, subject: str = "default-editor") -> str:
        """A ServiceAccount token shaped as a JWT (kube API's create token); the gateway accepts only its own audience."""
        audiences = [GATEWAY_AUDIENCE] if audiences is None else audiences
        now = int(time.time())
        claims = {
            "aud": audiences or [API_AUDIENCE],
            "exp": now + seconds,
            "iat": now,
            "sub": f"system:serviceaccount:{MODEL_NAMESPACE}:{subject}",
            "jti": secrets.token_hex(8),
        }
        token = self.signer.sign(claims)
        if GATEWAY_AUDIENCE in claims["aud"]:
            with self.lock:
                self.tokens[token] = time.time() + seconds
        return token

    def session_cookie(self, request: Request) -> str | None:
        """The session cookie's value in a request, joined from its ``_0``, ``_1``… parts when split."""
        name = self.flavor.session_cookie
        cookies = request.cookies()
        value = cookies.get(name)
        if value is None:
            parts = []
            while f"{name}_{len(parts)}" in cookies:
                parts.append(cookies[f"{name}_{len(parts)}"])
            value = "".join(parts) or None
        return value

    def end_session(self, value: str | None) -> bool:
        """Delete a session from the store (a server-side logout); True when it was valid."""
        with self.lock:
            return self.sessions.pop(value or "", 0) > time.time()

    def authenticated(self, request: Request) -> bool:
        """True when the request carries a session or token this flavor accepts."""
        flavor = self.flavor
        value = self.session_cookie(request)
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

    def before_inference(self) -> str | None:
        """MLServer's refusal of an inference call while the model loads, or None once the call may go on.

        Both fronts (REST here, gRPC in grpcfront) ask this, so the model's readiness and speed are one rule:
        a loading model refuses with MLServer's own words; a ready one first takes `model_seconds`.
        """
        if time.time() < self.settings.model_not_ready_until:
            return f"Model {self.model_name} is not ready yet."
        time.sleep(self.settings.model_seconds)  # a model slower than iris
        return None

    def forward(self, request: Request) -> Reply:
        """Pass a call to MLServer and its answer back."""
        if "/infer" in request.path and (refusal := self.before_inference()) is not None:
            return Reply(400, json.dumps({"error": refusal}).encode(), [], "application/json")
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
            return self._oauth2_start(request, request.query.get("rd") or "/")
        if path == flavor.callback_path:
            return self._callback(request)
        logout = self._logout(request)
        if logout is not None:
            return logout
        if self.world.authenticated(request):
            return self.routed(request)
        return self.unauthenticated(request)

    def routed(self, request: Request) -> Reply:
        """Istio's virtual services: the model by its Host (or, with path routing, its path); login and dashboard on any Host."""
        prefix = f"/serving/{MODEL_NAMESPACE}/{self.world.model_name}"
        if self.world.settings.path_routing and request.path.startswith(prefix + "/"):
            return self.protected(replace(request, target=request.target[len(prefix) :]))
        if request.path.startswith(("/v1/", "/v2/", "/serving/")):
            host = re.sub(r":\d+$", "", request.headers.get("host", "")).lower()
            if request.path.startswith("/serving/") or host.lower() != self.world.model_host:
                return Reply(404, b"", [("server", "istio-envoy")], None)  # Envoy's 404 NR: no route for this Host
        return self.protected(request)

    def protected(self, request: Request) -> Reply:
        """What an authenticated caller reaches: the model, the Pipelines API, or the dashboard."""
        if request.path.startswith(pipelines.PREFIX):
            return pipelines.answer(request)
        if request.path.startswith(("/v1/", "/v2/")):
            if self.world.settings.rbac_deny:
                return Reply(403, b"RBAC: access denied", [("server", "istio-envoy")])
            return self.world.forward(request)
        return Reply.html(200, "<html><title>Kubeflow Central Dashboard (sandbox)</title></html>")

    # logout ------------------------------------------------------------------------

    def _logout(self, request: Request) -> Reply | None:
        """The generation's own logout endpoint, answered as the real one does; None for any other request.

        oidc-authservice 28c59ef: ``GET /logout`` deletes the cookie's session from its store, 303 to ``/``.
        e236439: ``POST /authservice/logout`` with the session as ``Authorization: Bearer``: 201 and
        ``{"afterLogoutURL": …}`` (401 without a valid one).  oauth2-proxy: ``/oauth2/sign_out`` clears the
        browser's cookie and redirects, but keeps sessions in the cookie itself: the value stays valid.
        """
        flavor, path = self.world.flavor, request.path
        if flavor.proxy == "authservice-old" and path == "/logout" and request.method == "GET":
            self.world.end_session(self.world.session_cookie(request))
            cleared = f"{flavor.session_cookie}=; Path=/; Expires={GO_EPOCH_PLUS_ONE}; Max-Age=0"
            return Reply.redirect(request.method, 303, "/", [("Set-Cookie", cleared)])
        if flavor.proxy == "authservice" and path == "/authservice/logout" and request.method == "POST":
            bearer = request.headers.get("authorization", "")
            if not bearer.startswith("Bearer ") or not self.world.end_session(bearer[len("Bearer ") :]):
                return Reply(401, b"", [], None)
            return Reply.json_text(201, json.dumps({"afterLogoutURL": flavor.after_logout_url}) + "\n")
        if flavor.proxy == "oauth2-proxy" and path == "/oauth2/sign_out":
            names = [name for name in request.cookies() if name == flavor.session_cookie or name.startswith(flavor.session_cookie + "_")]
            expired = formatdate(time.time() - 3600, usegmt=True)
            cleared = [("Set-Cookie", f"{name}=; Path=/; Expires={expired}; HttpOnly; SameSite=Lax") for name in names or [flavor.session_cookie]]
            return Reply.redirect(request.method, 302, request.query.get("rd") or "/", cleared)
        return None

    # without a session -------------------------------------------------------------

    def unauthenticated(self, request: Request) -> Reply:
        flavor = self.world.flavor
        if flavor.proxy == "oauth2-proxy":
            if flavor.unauthenticated == "redirect":
                return self._oauth2_start(request, request.target)
            if request.path.startswith(("/api/", "/apis/", "/ml_metadata")):
                return Reply.json_text(401, "{}")
            return Reply.html(403, pages.sign_in_page(flavor, request.target))
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
        headers = []
        if flavor.csrf_cookie:
            cookie = f"{flavor.csrf_cookie}={client_state}; Path=/"
            if flavor.state_cookie_max_age:
                cookie += f"; Expires={_gorilla_expires(flavor.state_cookie_max_age)}; Max-Age={flavor.state_cookie_max_age}"
            headers.append(("Set-Cookie", cookie))
        return Reply.redirect(request.method, 302, f"/dex/auth?{query}", headers)

    def _oauth2_start(self, request: Request, rd: str) -> Reply:
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
            "redirect_uri": flavor.callback_path,
            "response_type": "code",
            "scope": "profile email groups openid",
            "state": f"{nonce}:{rd}",
        }
        query.update({"approval_prompt": "force"} if flavor.approval == "page" else {"prompt": "none"})
        cookie = f"{flavor.csrf_cookie}={csrf}; Path=/; Expires={_http_date(15 * 60)}; HttpOnly"
        location = f"/dex/auth?{urlencode(sorted(query.items()))}"  # Go's url.Values.Encode sorts by key
        return Reply.redirect(request.method, 302, location, [*self._no_cache(), ("Set-Cookie", cookie)])

    def _no_cache(self) -> list[tuple[str, str]]:
        """oauth2-proxy's no-cache headers on its own answers, when it is routed (1.9.1 on; ext_authz drops them on 1.9.0)."""
        if self.world.flavor.unauthenticated != "sign-in":
            return []
        return [
            ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0"),
            ("Expires", "Thu, 01 Jan 1970 00:00:00 UTC"),
            ("X-Accel-Expires", "0"),
        ]

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
                    message = "Login Failed: Unable to find a valid CSRF token. Please try again."
                    return Reply.html(403, pages.proxy_error_page(flavor, 403, "Forbidden", message))
            elif flavor.proxy == "authservice" and (
                cookies.get(flavor.csrf_cookie or "") != state or state not in self.world.client_states
            ):
                return Reply(
                    400,
                    b"CSRF check failed. This may happen if you opened the login form in more than 1 tabs. Please try to login again.",
                )
            if not self.redeem(code, state):
                if flavor.proxy == "oauth2-proxy":
                    return Reply(500, b"Failed to exchange authorization code with token.")
                # oidc-authservice answers 500 "Failed to exchange authorization code with token." to Envoy's
                # ext_authz check, which turns any 5xx into its status_on_error: an empty 403
                return Reply(403, b"")
            key = nonce if flavor.proxy == "oauth2-proxy" else state
            original = self.world.client_states.pop(key, "/")
            if flavor.proxy == "oauth2-proxy":
                self.world.csrf.pop(cookies.get(flavor.csrf_cookie or "", ""), None)
            seconds = self.world.settings.session_seconds
            value = secrets.token_urlsafe(48 if not self.world.settings.big_cookie else 3300)
            self.world.sessions[value] = time.time() + seconds
        return Reply.redirect(request.method, 302, original, [*self._no_cache(), *self._session_cookies(value, seconds)])

    def redeem(self, code: str, state: str) -> bool:
        """The code exchange with Dex: True when Dex issued ``code`` for ``state``."""
        exchanged = self.world.codes.pop(code, None)
        return exchanged is not None and exchanged[0] == state

    def _session_cookies(self, value: str, seconds: int) -> list[tuple[str, str]]:
        flavor = self.world.flavor
        attributes = f"Path=/; Expires={_http_date(seconds)}; Max-Age={seconds}"
        if flavor.proxy == "authservice":
            attributes += "; SameSite=Lax"
        elif flavor.proxy == "oauth2-proxy":  # no cookie_samesite in Kubeflow's cfg: no SameSite
            attributes = f"Path=/; Expires={_http_date(seconds)}; HttpOnly"
        name = flavor.session_cookie
        if len(value) > COOKIE_CHUNK:
            chunks = [value[i : i + COOKIE_CHUNK] for i in range(0, len(value), COOKIE_CHUNK)]
            headers = [("Set-Cookie", f"{name}_{i}={chunk}; {attributes}") for i, chunk in enumerate(chunks)]
        else:
            headers = [("Set-Cookie", f"{name}={value}; {attributes}")]
        if flavor.proxy == "oauth2-proxy":  # oauth2-proxy clears its CSRF cookie first, an hour in the past
            headers.insert(0, ("Set-Cookie", f"{flavor.csrf_cookie}=; Path=/; Expires={_http_date(-3600)}; HttpOnly"))
        elif flavor.csrf_cookie:
            headers.append(("Set-Cookie", f"{flavor.csrf_cookie}=; Path=/; Expires={GO_EPOCH_PLUS_ONE}; Max-Age=0"))
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
            return self._login(request, request.query.get("state", ""), "Requested resource does not exist.")
        if parts[1:3] == ["dex", "approval"]:
            return self._approval(request)
        return self._error(request, 404, "Not Found")

    def _error(self, request: Request, status: int, message: str) -> Reply:
        """Dex's error page: http.StatusText(status) and the handler's message."""
        return Reply.html(status, pages.dex_error_page(request.path, HTTPStatus(status).phrase, message))

    def _auth(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != CLIENT_ID:
            return self._error(request, 404, f'Invalid client_id ("{query.get("client_id", "")}").')
        if query.get("redirect_uri") != self.flavor.callback_path:
            return self._error(request, 400, f'Unregistered redirect_uri ("{query.get("redirect_uri", "")}").')
        connectors = self.settings.connectors
        chosen = query.get("connector_id")
        new_id = None if self.flavor.login_by_state else self._new_request(query)
        suffix = f"req={new_id}" if new_id else urlencode(query)
        links = sorted(
            (pages.ConnectorLink(c, CONNECTOR_NAMES.get(c, c.title()), f"/dex/auth/{c}?{suffix}") for c in connectors),
            key=lambda link: link.name,
        )
        if len(connectors) > 1 and not chosen:
            return Reply.html(200, pages.connector_page(request.path, links))
        reply = Reply.redirect(request.method, 302, f"/dex/auth/{chosen or connectors[0]}?{suffix}")
        if not chosen and self.flavor.login_by_state and request.method == "GET":
            # Dex redirects to its one connector and then renders the connector page too, into the same body
            reply = replace(reply, body=reply.body + b"\n" + pages.connector_page(request.path, links).encode())
        return reply

    def _new_request(self, query: dict[str, str]) -> str:
        request_id = secrets.token_hex(13)
        with self.world.lock:
            self.world.auth_requests[request_id] = AuthRequest(
                query.get("state", ""), query.get("redirect_uri", ""), query.get("scope", "").split()
            )
        return request_id

    def _connector(self, request: Request, connector: str) -> Reply:
        if connector not in self.settings.connectors or connector != "local":
            return self._error(request, 404, "Connector ID does not match a valid Connector")
        if not self.flavor.login_by_state:
            return self._login(request, request.query.get("req", ""), "Login session expired.")
        request_id = self._new_request(request.query)
        # with a choice of connectors, the password page links back to it (the query without connector_id)
        choice = {key: value for key, value in request.query.items() if key != "connector_id"}
        back = f"/dex/auth?{urlencode(choice)}" if len(self.settings.connectors) > 1 else ""
        return Reply.redirect(
            request.method, 302, f"/dex/auth/{connector}/login?{urlencode({'back': back, 'state': request_id})}"
        )

    def _login(self, request: Request, request_id: str, missing: str) -> Reply:
        with self.world.lock:
            auth = self.world.auth_requests.get(request_id)
        if auth is None:
            return self._error(request, 400, missing)
        if time.time() - auth.created > self.settings.auth_request_seconds:
            return self._error(request, 400, "User session has expired.")

        def page(username: str = "", invalid: bool = False) -> str:
            return pages.password_page(
                self.flavor.dex_version,
                request.path,
                request.target,  # Dex's PostURL: the request URI as received
                self.settings.login_prompt,
                username=username,
                invalid=invalid,
                connectors=len(self.settings.connectors),
                back=request.query.get("back", ""),
            )

        if request.method != "POST":
            return Reply.html(200, page())
        form = request.form()
        login, password = form.get("login", ""), form.get("password", "")
        expected = self.settings.users.get(login)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):  # any UTF-8, as Dex
            return Reply.html(self.flavor.wrong_password_status, page(login, invalid=True))
        with self.world.lock:
            auth.logged_in = True
        if self.flavor.approval == "none":
            return Reply.redirect(request.method, 303, self._finish(request_id))
        signature = f"&hmac={self._hmac(request_id)}" if self.flavor.approval in ("auto-hmac", "page") else ""
        return Reply.redirect(request.method, 303, f"/dex/approval?req={request_id}{signature}")

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
            return self._error(request, 500, "Database error.")
        if self.flavor.approval in ("auto-hmac", "page"):
            given = request.query.get("hmac", "")
            if not given or not hmac.compare_digest(given, self._hmac(request_id)):
                return self._error(request, 401, "Unauthorized request")
        if self.flavor.approval != "page":
            return Reply.redirect(request.method, 303, self._finish(request_id))
        if request.method != "POST":
            scopes = pages.scope_descriptions(self.flavor.dex_version, auth.scopes)
            return Reply.html(200, pages.approval_page(self.flavor.dex_version, request.path, CLIENT_NAME, scopes, request_id))
        if request.form().get("approval") != "approve":
            with self.world.lock:
                self.world.auth_requests.pop(request_id, None)
            location = f"{auth.redirect_uri}?error=access_denied&state={quote(auth.client_state, safe='')}"
            return Reply.redirect(request.method, 303, location)
        return Reply.redirect(request.method, 303, self._finish(request_id))

    def _finish(self, request_id: str) -> str:
        """Consume the auth request; the callback URL with a fresh code."""
        code = secrets.token_urlsafe(18)
        with self.world.lock:
            auth = self.world.auth_requests.pop(request_id)
            self.world.codes[code] = (auth.client_state, auth.redirect_uri)
        return f"{auth.redirect_uri}?code={code}&state={quote(auth.client_state, safe='')}"


def _http_date(seconds_from_now: int) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


def _gorilla_expires(max_age: int) -> str:
    """The Expires gorilla/sessions writes for MaxAge: now + time.Duration(max_age) * time.Second.

    The product is int64 nanoseconds and wraps as Go's arithmetic does: for
    authservice's 1200000000000 that lands about 30.5 years ahead.
    """
    nanoseconds = (max_age * 10**9 + 2**63) % 2**64 - 2**63
    return formatdate(time.time() + nanoseconds / 10**9, usegmt=True)
