"""What ``--components real`` runs for a flavor: each real program's command line, environment and config.

The configs are our own files in ``sandbox/real/config/<flavor>/``, written
from the release's manifests; here they get their ports and Dex's issuer
filled in (``${DEX_URL}``, ``${DEX_PORT}``) and are written into the sandbox
folder.  The secrets are Kubeflow's published example values (the manifests'
``secret_params.env`` and secretGenerator literals), as the sandbox plays
that example installation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template

from . import realbuild
from .flavors import Flavor

CONFIGS = realbuild.MODULES / "config"
CLIENT_ID = "kubeflow-oidc-authservice"
CLIENT_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"  # common/dex/base/secret_params.env
COOKIE_SECRET = "7d16fee92f8d11b8940b081b3f8b8acb"  # the oauth2-proxy kustomization's secretGenerator
PASSWORD_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"  # Secret dex-passwords: 12341234
SERVICE_ACCOUNT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # 1.9.0's extra_jwt_issuers audience
PLAN = "real.json"  # in the sandbox folder: the ports the cluster process's Envoy stand-in routes to


@dataclass(frozen=True)
class Program:
    """One real process: its name in pids.json and logs, its command line and environment, its readiness URL."""

    name: str
    argv: list[str]
    environment: dict[str, str]
    ready: str


@dataclass(frozen=True)
class Plan:
    """Where the real components listen; written as ``real.json`` for the cluster process."""

    flavor: str
    dex_port: int
    proxy_port: int  # oauth2-proxy's, or the authservice stand-in's (in the cluster process)
    api_port: int
    programs: list[Program] = field(default_factory=list)

    @property
    def dex_url(self) -> str:
        """Dex's issuer: the one URL every component names."""
        return f"http://127.0.0.1:{self.dex_port}/dex"

    @property
    def api_url(self) -> str:
        """The Kubernetes stand-in's address: its ServiceAccount token issuer."""
        return f"http://127.0.0.1:{self.api_port}"

    def save(self, folder: Path) -> None:
        data = {key: value for key, value in asdict(self).items() if key != "programs"}
        (folder / PLAN).write_text(json.dumps(data))


def load(folder: Path) -> Plan | None:
    """The plan ``save`` wrote, or None for a stand-in sandbox."""
    try:
        return Plan(**json.loads((folder / PLAN).read_text()))
    except OSError:
        return None


def _render(flavor: Flavor, name: str, folder: Path, values: dict[str, str]) -> Path:
    """``sandbox/real/config/<flavor>/<name>`` with its ``${...}`` filled in, written into the sandbox folder."""
    text = Template((CONFIGS / flavor.real_config / name).read_text()).substitute(values)
    target = folder / name
    target.write_text(text)
    return target


def token_audience(flavor: Flavor) -> str:
    """The audience the real gateway wants ServiceAccount tokens for, where it is not the gateway's own ("" there).

    Kubeflow 1.9.0's oauth2-proxy verifies them itself, as its extra JWT issuer: the cluster's issuer and audience.
    """
    return SERVICE_ACCOUNT_AUDIENCE if flavor.proxy == "oauth2-proxy" and flavor.unauthenticated == "redirect" else ""


def plan(flavor: Flavor, folder: Path, ports: tuple[int, int, int]) -> Plan:
    """The real programs of ``flavor`` on ``ports`` (Dex, oauth2-proxy, the Kubernetes API), configs written to ``folder``."""
    dex_port, proxy_port, api_port = ports
    builds = {realbuild.component(build): build for build in flavor.real}
    draft = Plan(flavor.name, dex_port, proxy_port, api_port)
    values = {"DEX_URL": draft.dex_url, "DEX_PORT": str(dex_port), "DEX_WEB": str(realbuild.binary(builds["dex"]).parent / "web")}
    secrets = {"OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET}
    programs = [
        Program(
            "dex",
            [str(realbuild.binary(builds["dex"])), "serve", str(_render(flavor, "dex.yaml", folder, values))],
            {**secrets, "DEX_USER_PASSWORD": PASSWORD_HASH},
            f"{draft.dex_url}/.well-known/openid-configuration",
        )
    ]
    if "oauth2-proxy" in builds:
        environment = {
            "OAUTH2_PROXY_CLIENT_ID": CLIENT_ID,
            "OAUTH2_PROXY_CLIENT_SECRET": CLIENT_SECRET,
            "OAUTH2_PROXY_COOKIE_SECRET": COOKIE_SECRET,
            "OAUTH2_PROXY_COOKIE_SECURE": "false",  # FORCE_HTTPS
            "OAUTH2_PROXY_SSL_INSECURE_SKIP_VERIFY": "true",  # ALLOW_SELF_SIGNED_ISSUER
            "OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS": "true",  # ENABLE_M2M_TOKENS
        }
        if token_audience(flavor):  # 1.9.0's m2m-self-signed overlay: the cluster's own issuer
            environment["OAUTH2_PROXY_EXTRA_JWT_ISSUERS"] = f"{draft.api_url}={token_audience(flavor)}"
        config = _render(flavor, "oauth2_proxy.cfg", folder, values)
        argv = [str(realbuild.binary(builds["oauth2-proxy"])), f"--http-address=127.0.0.1:{proxy_port}", f"--config={config}"]
        programs.append(Program("oauth2-proxy", argv, environment, f"http://127.0.0.1:{proxy_port}/ping"))
    return Plan(draft.flavor, draft.dex_port, draft.proxy_port, draft.api_port, programs)
