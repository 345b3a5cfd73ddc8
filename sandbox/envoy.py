"""The Envoy stand-in in front of the real components, configured as Istio's ingress gateway is per release.

``--components real`` only: Dex and oauth2-proxy are the real programs; this
plays the gateway's filter chain in Envoy's order (docs/real-components.md):

1. ext_authz: an HTTP check to oauth2-proxy with the original method and
   path and only the allowed request headers; on 200 the allowed upstream
   headers go on with the request, any other answer goes back to the client
   with its status, body and the allowed client headers; a 5xx or a transport
   error is a 403.  1.9.0 checks every request; from 1.9.1 a request that
   carries ``Authorization``, or asks for ``/dex/*`` or ``/oauth2/*``, skips it.
2. jwt_authn: a bearer token must be signed by a key of its issuer's JWKS
   (Dex's, or the Kubernetes stand-in's), name a configured issuer and be
   unexpired, else 401 with Envoy's words; from 1.9.1 a request without a valid
   JWT outside ``/dex/*`` and ``/oauth2/*`` gets the require-JWT 403.
3. routes: ``/dex`` to Dex, ``/oauth2`` to oauth2-proxy (from 1.9.1), every
   other path routed by Host to MLServer as the stand-in gateway does.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .flavors import Flavor
from .httpserve import Reply, Request
from .realrun import Plan

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer", "proxy-connection"}
ALWAYS_TO_CHECK = ("host", "authorization")  # with the method and path: Envoy always sends these to the check
ALWAYS_TO_CLIENT = ("path", "status", "content-length", "www-authenticate", "location")  # when client headers are listed
UNAUTHENTICATED_PATHS = ("/dex/", "/oauth2/")  # the notPaths of 1.9.1's CUSTOM and require-JWT policies


@dataclass(frozen=True)
class ExtAuthz:
    """One ext_authz http_service, as the release's extensionProviders (or EnvoyFilter) set it."""

    port: int
    allowed_headers: tuple[str, ...]  # authorization_request.allowed_headers
    upstream_headers: tuple[str, ...]  # authorization_response.allowed_upstream_headers
    client_headers: tuple[str, ...] | None  # authorization_response.allowed_client_headers (None: all)


def oauth2_proxy_provider(port: int) -> ExtAuthz:
    """meshConfig extensionProviders ``oauth2-proxy`` (1.9.0 to main: cm.enable-oauth2-proxy.yaml)."""
    return ExtAuthz(
        port,
        allowed_headers=("authorization", "cookie"),
        upstream_headers=("authorization", "path", "x-auth-request-email", "x-auth-request-groups", "x-auth-request-user"),
        client_headers=("content-type", "set-cookie"),
    )


def authservice_filter(port: int) -> ExtAuthz:
    """EnvoyFilter ``authn-filter`` (≤1.8: common/oidc-authservice/base/envoy-filter.yaml): no client header list."""
    return ExtAuthz(port, ("authorization", "cookie", "x-auth-token"), ("kubeflow-userid",), None)


def _exchange(port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    if body or method in ("POST", "PUT", "PATCH"):
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body or None)
    return connection.getresponse()


def _reply(answer: http.client.HTTPResponse, keep: Callable[[str], bool] = lambda _name: True) -> Reply:
    """An upstream answer passed on: status, body and the headers ``keep`` lets through (Content-Type among them)."""
    body = answer.read()
    headers = [(name, value) for name, value in answer.getheaders() if name.lower() not in HOP_BY_HOP and keep(name.lower())]
    return Reply(answer.status, body, headers, None)


class JwtAuthn:
    """Envoy's jwt_authn for Istio's RequestAuthentications: Dex's issuer and the Kubernetes stand-in's."""

    def __init__(self, issuers: dict[str, str]) -> None:
        self.issuers = issuers  # issuer -> JWKS URL
        self.keys: dict[str, Any] = {}  # issuer -> PyJWKSet
        self.lock = threading.Lock()

    def _keys(self, issuer: str, kid: str | None) -> Any:
        import jwt
        import requests

        with self.lock:
            held = self.keys.get(issuer)
            if held is None or (kid and all(key.key_id != kid for key in held.keys)):
                held = jwt.PyJWKSet.from_dict(requests.get(self.issuers[issuer], timeout=10).json())
                self.keys[issuer] = held
            return held

    def verify(self, token: str) -> tuple[dict[str, Any] | None, str]:
        """The token's claims, or None and Envoy's words for why it is refused."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss", "")
        except jwt.PyJWTError:
            return None, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
        if issuer not in self.issuers:
            return None, "Jwt issuer is not configured"
        try:
            keys = self._keys(issuer, header.get("kid"))
            key = next((k for k in keys.keys if not header.get("kid") or k.key_id == header.get("kid")), None)
            if key is None:
                return None, "Jwks doesn't have key to match kid or alg from Jwt"
            claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=issuer, options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            return None, "Jwt is expired"
        except (jwt.PyJWTError, OSError, ValueError):
            return None, "Jwt verification fails"
        return claims, ""


class EnvoyGateway:
    """Istio's ingress gateway for ``flavor``, in front of the real programs of ``plan``.

    ``routed`` is the Host routing to the model (the stand-in gateway's), ``protected`` the model itself.
    """

    def __init__(self, flavor: Flavor, plan: Plan, routed: Callable[[Request], Reply], protected: Callable[[Request], Reply]) -> None:
        self.flavor = flavor
        self.plan = plan
        self.routed = routed
        self.protected = protected
        self.newer = flavor.unauthenticated == "sign-in"  # 1.9.1 on: conditional CUSTOM, require-JWT, /oauth2 route
        self.istio_jwt = flavor.proxy == "oauth2-proxy"  # RequestAuthentications exist from 1.9.0 on
        self.check = oauth2_proxy_provider(plan.proxy_port) if self.istio_jwt else authservice_filter(plan.proxy_port)
        self.jwt = JwtAuthn({plan.dex_url: f"{plan.dex_url}/keys", plan.api_url: f"{plan.api_url}/openid/v1/jwks"})

    def __call__(self, request: Request) -> Reply:
        denied, request = self.authorize(request)
        if denied is not None:
            return denied
        path = request.path
        if path == "/dex" or path.startswith("/dex/"):
            return self.proxy(self.plan.dex_port, request)
        if self.newer and path.startswith("/oauth2/"):
            return self.proxy(self.plan.proxy_port, request)
        return self.routed(request)

    def sidecar(self, request: Request) -> Reply:
        """A NodePort to the predictor: the same filter chain, then the model (no routing)."""
        denied, request = self.authorize(request)
        return denied or self.protected(request)

    def denial(self, request: Request) -> Reply | None:
        """The filter chain's denial of ``request``, or None (the gRPC front's check)."""
        return self.authorize(request)[0]

    def authorize(self, request: Request) -> tuple[Reply | None, Request]:
        """The filter chain before the routes: a denial, or the request as it goes on upstream."""
        open_path = request.path.startswith(UNAUTHENTICATED_PATHS)
        if not (self.newer and ("authorization" in request.headers or open_path)):
            denied, request = self.ext_authz(request)
            if denied is not None:
                return denied, request
        bearer = request.headers.get("authorization", "")
        if self.istio_jwt and bearer.startswith("Bearer "):
            claims, why = self.jwt.verify(bearer[len("Bearer ") :])
            if claims is None:
                return _jwt_denied(request, why), request
            userid = claims.get("email") or claims.get("sub", "")
            return None, replace(request, headers={**request.headers, "kubeflow-userid": str(userid)})
        if self.newer and not open_path:
            return Reply(403, b"RBAC: access denied"), request  # require-JWT: no request principal
        return None, request

    def ext_authz(self, request: Request) -> tuple[Reply | None, Request]:
        """The HTTP check: a denial, or the request with the allowed upstream headers of the check's 200."""
        sent = [(name, value) for name, value in request.headers.items() if name in (*ALWAYS_TO_CHECK, *self.check.allowed_headers)]
        try:
            answer = _exchange(self.check.port, request.method, request.target, sent, b"")
            reply = _reply(answer)
        except (OSError, http.client.HTTPException):
            return Reply(403, b"", [], None), request  # status_on_error
        if reply.status >= 500:
            return Reply(403, b"", [], None), request
        if reply.status != 200:
            listed = self.check.client_headers
            allowed = None if listed is None else (*listed, *ALWAYS_TO_CLIENT)
            headers = [(n, v) for n, v in reply.headers if allowed is None or n.lower() in allowed]
            return Reply(reply.status, reply.body, headers, None), request
        added = {n.lower(): v for n, v in reply.headers if n.lower() in self.check.upstream_headers}
        return None, replace(request, headers={**request.headers, **added})

    def proxy(self, port: int, request: Request) -> Reply:
        """A route to a real program: the request as it came (Host kept), its answer as it went."""
        headers = [(n, v) for n, v in request.headers.items() if n not in HOP_BY_HOP]
        headers += [("x-forwarded-proto", "http"), ("x-envoy-expected-rq-timeout-ms", "15000")]
        started = time.monotonic()
        try:
            return _reply(_exchange(port, request.method, request.target, headers, request.body))
        except (OSError, http.client.HTTPException):
            words = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
            return Reply(503, words, [("x-envoy-upstream-service-time", f"{1000 * (time.monotonic() - started):.0f}")])


def _jwt_denied(request: Request, why: str) -> Reply:
    """jwt_authn's 401: its words as the body and a WWW-Authenticate naming the URL."""
    realm = f"http://{request.headers.get('host', '')}{request.path}"
    return Reply(401, why.encode(), [("www-authenticate", f'Bearer realm="{realm}", error="invalid_token"')])
