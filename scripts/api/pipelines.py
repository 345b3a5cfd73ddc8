"""Kubeflow Pipelines through kfdex: a ``kfp.Client`` whose credential comes from a ``Kubeflow`` and is renewed ahead.

Tokens go through kfp's own hook for changing credentials, ``credentials=`` (a
``TokenCredentialsBase``): kfp calls its ``refresh_api_key_hook`` before every
API call, and ``KubeflowCredentials`` puts the current token there.  For a Dex
session kfp has no hook: ``cookies=`` is a fixed string, and the hook above
only runs when kfp also sends an ``Authorization`` header (a placeholder bearer
that oauth2-proxy would reject).  So the Client's configuration answers kfp's
per-call question "which credentials?" (``auth_settings``, which the generated
API client consults before every call, and which has a ``cookie`` kind) with the
current session cookie.  kfp reads answers itself, so a refusal cannot be
answered by a resend here: both renew *ahead* of the credential's end
(``credentials.renew_before``).  Loaded only by ``Kubeflow.kfp_client`` (the
``kfp`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfp.client.token_credentials_base import TokenCredentialsBase

if TYPE_CHECKING:
    from . import Kubeflow


class KubeflowCredentials(TokenCredentialsBase):
    """kfp's credentials hook over a ``Kubeflow`` logged in with a token: the current token before every call."""

    def __init__(self, kubeflow: Kubeflow) -> None:
        self.kubeflow = kubeflow

    def refresh_api_key_hook(self, config: Any) -> None:
        config.api_key["authorization"] = self.kubeflow.fresh().value
        config.api_key_prefix["authorization"] = "Bearer"


def session_cookie(kubeflow: Kubeflow) -> dict[str, dict[str, str]]:
    """kfp's ``auth_settings`` answer for a Dex session: the current cookie, as the ``Cookie`` header."""
    return {"Bearer": {"type": "api_key", "in": "cookie", "key": "Cookie", "value": kubeflow.fresh().value}}


def client(kubeflow: Kubeflow, **kwargs: Any) -> Any:
    """``kfp.Client(host=<ingress>/pipeline, ...)`` carrying the object's credential, renewed ahead of its end."""
    import kfp

    credential = kubeflow.fresh()
    verify = kubeflow.verify
    settings: dict[str, Any] = {"ssl_ca_cert": verify} if isinstance(verify, str) else {"verify_ssl": verify}
    if credential.kind == "token":
        settings["credentials"] = KubeflowCredentials(kubeflow)
    else:
        settings["cookies"] = credential.value  # for the calls kfp makes while the Client is being made
    made = kfp.Client(host=kubeflow.url("/pipeline"), **{**settings, **kwargs})
    if credential.kind == "cookie":
        made._healthz_api.api_client.configuration.auth_settings = lambda: session_cookie(kubeflow)
    return made
