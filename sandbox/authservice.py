"""oidc-authservice's stand-in for ``--components real``: its check endpoint, in front of the real Dex.

No version of oidc-authservice is served by the Go module proxy
(docs/real-components.md), so the ≤1.8 flavors run the real Dex with this
stand-in as the ext_authz service: the stand-in gateway's authservice
answers (redirect to Dex with the state cookie, the callback and its session
cookies, ServiceAccount tokens), except that the callback redeems the code at
the real Dex's token endpoint, as authservice does.
"""

from __future__ import annotations

import requests

from .gateway import DEMO_LOGIN, StandInGateway, World
from .httpserve import Reply, Request
from .realrun import CLIENT_ID, CLIENT_SECRET, Plan


class AuthserviceStandIn(StandInGateway):
    """The check: 200 with ``kubeflow-userid`` for a session or token, else what authservice answers."""

    def __init__(self, world: World, plan: Plan) -> None:
        super().__init__(world)
        self.token_url = f"{plan.dex_url}/token"

    def __call__(self, request: Request) -> Reply:
        if request.path == "/dex" or request.path.startswith("/dex/"):  # SKIP_AUTH_URLS / SKIP_AUTH_URI=/dex
            return Reply(200, b"")
        if request.path == self.world.flavor.callback_path:
            return self._callback(request)
        if self.world.authenticated(request):
            return Reply(200, b"", [("kubeflow-userid", DEMO_LOGIN)])
        return self.unauthenticated(request)

    def redeem(self, code: str, state: str) -> bool:  # noqa: ARG002 - the state was checked against the cookie
        """The code exchange at the real Dex's token endpoint (client secret basic)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.world.flavor.callback_path}
        try:
            answer = requests.post(self.token_url, data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and "id_token" in answer.json()
