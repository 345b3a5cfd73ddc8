"""The Kubeflow auth generations the sandbox gateway can play, as in ``shared/spec/auth-flows.md``.

Flavors exist only here: the client never names one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    """How one generation's gateway (authservice or oauth2-proxy) and Dex answer."""

    name: str
    kubeflow: str
    dex: str
    proxy: str  # "authservice-old", "authservice" or "oauth2-proxy"
    callback_path: str
    session_cookie: str
    csrf_cookie: str | None
    login_by_state: bool  # Dex v2.29+: /dex/auth/local/login?back=&state=<id>; else /dex/auth/local?req=<id>
    wrong_password_status: int  # 200 up to Dex 2.35, 401 from 2.36
    approval: str  # "auto" (GET redirects), "auto-hmac" (needs hmac), "page" (Grant Access form), "none"
    unauthenticated: str  # "redirect" (authservice, kf190) or "sign-in" (kf191: 403 page / 401 {})
    accepts_token_header: bool  # kf15: X-Auth-Token: <session>
    accepts_bearer: bool  # Authorization: Bearer <ServiceAccount token or session>


FLAVORS: dict[str, Flavor] = {
    flavor.name: flavor
    for flavor in (
        Flavor(
            "kf15",
            "1.3 – 1.6",
            "v2.22",
            "authservice-old",
            "/login/oidc",
            "authservice_session",
            None,
            False,
            200,
            "auto",
            "redirect",
            True,
            False,
        ),
        Flavor(
            "kf17",
            "1.7",
            "v2.31",
            "authservice",
            "/authservice/oidc/callback",
            "authservice_session",
            "oidc_state_csrf",
            True,
            200,
            "auto-hmac",
            "redirect",
            False,
            True,
        ),
        Flavor(
            "kf18",
            "1.8",
            "v2.36",
            "authservice",
            "/authservice/oidc/callback",
            "authservice_session",
            "oidc_state_csrf",
            True,
            401,
            "none",
            "redirect",
            False,
            True,
        ),
        Flavor(
            "kf190",
            "1.9.0",
            "v2.39",
            "oauth2-proxy",
            "/oauth2/callback",
            "oauth2_proxy_kubeflow",
            "oauth2_proxy_kubeflow_csrf",
            True,
            401,
            "page",
            "redirect",
            False,
            True,
        ),
        Flavor(
            "kf191",
            "1.9.1, 1.10",
            "v2.39 / v2.41",
            "oauth2-proxy",
            "/oauth2/callback",
            "oauth2_proxy_kubeflow",
            "oauth2_proxy_kubeflow_csrf",
            True,
            401,
            "none",
            "sign-in",
            False,
            True,
        ),
    )
}
NEWEST = "kf191"
