"""The Kubeflow auth generations the sandbox gateway can play, as in ``docs/auth-flows.md``.

Flavors exist only here: the client never names one.
"""

from __future__ import annotations

from dataclasses import dataclass

GO_TWENTY_MINUTES = 20 * 60 * 10**9  # int(20 * time.Minute) in Go: nanoseconds


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
    dex_version: str  # the Dex release whose page templates the sandbox's pages follow (shared/real-pages)
    oauth2_proxy_version: str | None = None  # the oauth2-proxy release whose pages it follows
    oauth2_proxy_footer: str = ""  # oauth2-proxy's --footer: "" shows "Secured with OAuth2 Proxy version ...", "-" none
    oauth2_proxy_logo: str = "default"  # --custom-sign-in-logo: "default" (oauth2-proxy's) or "kubeflow"
    # oidc-authservice's state cookie MaxAge as its code sets it: e236439 sets int(20 * time.Minute), a Go
    # duration in nanoseconds, so the cookie says Max-Age=1200000000000; 0 when no state cookie is set
    state_cookie_max_age: int = 0
    # oidc-authservice e236439's AFTER_LOGOUT_URL, answered by POST /authservice/logout (Kubeflow's params.env:
    # unset in 1.7, so its default; "/" in 1.8)
    after_logout_url: str = "/authservice/site/after_logout"
    # --components real: the builds (sandbox/real/<component>-<version>) this flavor runs, and its config folder
    # (sandbox/real/config/<name>); a version not served or not building here is replaced, as docs/real-components.md says
    real: tuple[str, ...] = ()
    real_config: str = ""


FLAVORS: dict[str, Flavor] = {
    flavor.name: flavor
    for flavor in (
        Flavor(
            name="kf15",
            kubeflow="1.3 – 1.6",
            dex="v2.22",
            proxy="authservice-old",
            callback_path="/login/oidc",
            session_cookie="authservice_session",
            csrf_cookie=None,
            login_by_state=False,
            wrong_password_status=200,
            approval="auto",
            unauthenticated="redirect",
            accepts_token_header=True,
            accepts_bearer=False,
            dex_version="v2.22.0",
            real=("dex-v2.24.0",),  # authservice 28c59ef is not served: the stand-in plays it
            real_config="kf15",
        ),
        Flavor(
            name="kf17",
            kubeflow="1.7",
            dex="v2.31",
            proxy="authservice",
            callback_path="/authservice/oidc/callback",
            session_cookie="authservice_session",
            csrf_cookie="oidc_state_csrf",
            login_by_state=True,
            wrong_password_status=200,
            approval="auto-hmac",
            unauthenticated="redirect",
            accepts_token_header=False,
            accepts_bearer=True,
            dex_version="v2.31.0",  # Kubeflow 1.7 ships v2.31.2: the same templates
            state_cookie_max_age=GO_TWENTY_MINUTES,
            real=("dex-v2.36.0",),  # v2.31.2 is not served; authservice e236439 neither
            real_config="kf17",
        ),
        Flavor(
            name="kf18",
            kubeflow="1.8",
            dex="v2.36",
            proxy="authservice",
            callback_path="/authservice/oidc/callback",
            session_cookie="authservice_session",
            csrf_cookie="oidc_state_csrf",
            login_by_state=True,
            wrong_password_status=401,
            approval="none",
            unauthenticated="redirect",
            accepts_token_header=False,
            accepts_bearer=True,
            dex_version="v2.36.0",
            state_cookie_max_age=GO_TWENTY_MINUTES,
            after_logout_url="/",
            real=("dex-v2.36.0",),
            real_config="kf17",
        ),
        Flavor(
            name="kf190",
            kubeflow="1.9.0",
            dex="v2.39",
            proxy="oauth2-proxy",
            callback_path="/oauth2/callback",
            session_cookie="oauth2_proxy_kubeflow",
            csrf_cookie="oauth2_proxy_kubeflow_csrf",
            login_by_state=True,
            wrong_password_status=401,
            approval="page",
            unauthenticated="redirect",
            accepts_token_header=False,
            accepts_bearer=True,
            dex_version="v2.39.1",
            oauth2_proxy_version="v7.6.0",  # Kubeflow 1.9.0 keeps the default footer and logo
            real=("dex-v2.39.1", "oauth2-proxy-v7.6.0"),
            real_config="kf190",
        ),
        Flavor(
            name="kf191",
            kubeflow="1.9.1, 1.10",
            dex="v2.39 / v2.41",
            proxy="oauth2-proxy",
            callback_path="/oauth2/callback",
            session_cookie="oauth2_proxy_kubeflow",
            csrf_cookie="oauth2_proxy_kubeflow_csrf",
            login_by_state=True,
            wrong_password_status=401,
            approval="none",
            unauthenticated="sign-in",
            accepts_token_header=False,
            accepts_bearer=True,
            dex_version="v2.41.1",
            oauth2_proxy_version="v7.7.1",
            oauth2_proxy_footer="-",  # Kubeflow 1.10 sets banner and footer to "-" and its own logo
            oauth2_proxy_logo="kubeflow",
            real=("dex-v2.41.1", "oauth2-proxy-v7.7.1"),
            real_config="kf191",
        ),
        Flavor(
            name="kf111",
            kubeflow="1.11",
            dex="v2.44",
            proxy="oauth2-proxy",
            callback_path="/oauth2/callback",
            session_cookie="oauth2_proxy_kubeflow",
            csrf_cookie="oauth2_proxy_kubeflow_csrf",
            login_by_state=True,
            wrong_password_status=401,
            approval="none",
            unauthenticated="sign-in",
            accepts_token_header=False,
            accepts_bearer=True,
            dex_version="v2.41.1",  # the newest Dex whose pages are recorded (shared/real-pages)
            oauth2_proxy_version="v7.7.1",
            oauth2_proxy_footer="-",
            oauth2_proxy_logo="kubeflow",
            real=("dex-v2.44.0", "oauth2-proxy-v7.15.6"),  # v7.13.0 is not served: the nearest that is
            real_config="kf191",  # 1.9.1's oauth2_proxy.cfg, unchanged through 1.11
        ),
        Flavor(
            name="kfnext",
            kubeflow="main",
            dex="v2.45",
            proxy="oauth2-proxy",
            callback_path="/oauth2/callback",
            session_cookie="oauth2_proxy_kubeflow",
            csrf_cookie="oauth2_proxy_kubeflow_csrf",
            login_by_state=True,
            wrong_password_status=401,
            approval="none",
            unauthenticated="sign-in",
            accepts_token_header=False,
            accepts_bearer=True,
            dex_version="v2.41.1",
            oauth2_proxy_version="v7.7.1",
            oauth2_proxy_footer="-",
            oauth2_proxy_logo="kubeflow",
            real=("dex-v2.44.0", "oauth2-proxy-v7.15.6"),  # v2.45.0 and v7.14.3 are not served, Dex's master does not build
            real_config="kf191",
        ),
    )
}
NEWEST = "kf191"
