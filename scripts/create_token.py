"""Token login: a Kubernetes ServiceAccount token the gateway accepts as a bearer, from the real kubectl.

Runs ``kubectl -n <namespace> create token <sa> --audience=<the ingress gateway>
--duration=<d>`` and keeps the token as ``AUTH_BEARER`` with the expiry the API
server gave (``AUTH_BEARER_EXPIRES``).  No password is involved; your
kubeconfig user needs permission to create tokens for that ServiceAccount.
Kubeflow 1.7 and later accept such tokens at the gateway.
"""

from __future__ import annotations

import argparse
import re

from . import console
from .errors import KubectlError, UsageError
from .kube import NotFound, kubectl_json
from .runner import StepResult, main
from .session import format_expiry, parse_expiry
from .state import State

AUDIENCE = "istio-ingressgateway.istio-system.svc.cluster.local"
DEFAULT_SERVICE_ACCOUNT = "default-editor"
DEFAULT_DURATION = "24h"
_GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


def run(state: State, service_account: str = "", duration: str = "") -> StepResult:
    """Create a token; writes AUTH_BEARER and AUTH_BEARER_EXPIRES."""
    account = service_account or state.value("TOKEN_SERVICE_ACCOUNT", DEFAULT_SERVICE_ACCOUNT)
    lasting = duration or state.value("TOKEN_DURATION", DEFAULT_DURATION)
    if not _GO_DURATION.fullmatch(lasting):
        raise UsageError(f"token duration {lasting!r} is not a duration such as 24h, 90m or 1h30m")
    namespace = state.value("TOKEN_NAMESPACE") or state.require("MODEL_NAMESPACE")
    try:
        answer = kubectl_json(
            state, "-n", namespace, "create", "token", account, f"--audience={AUDIENCE}", f"--duration={lasting}"
        )
    except NotFound:
        raise KubectlError(
            f"no ServiceAccount {account} in {namespace}: set TOKEN_SERVICE_ACCOUNT (Kubeflow profiles have default-editor)"
        ) from None
    status = answer.get("status") or {}
    token, expiry = status.get("token"), status.get("expirationTimestamp", "")
    if not token:
        raise KubectlError("`kubectl create token` printed no token")
    summary = f"ServiceAccount {namespace}/{account}: {console.mask(token)}, {format_expiry(parse_expiry(expiry))}"
    return StepResult({"AUTH_BEARER": token, "AUTH_BEARER_EXPIRES": expiry}, summary)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service-account", default="", help=f"ServiceAccount (default TOKEN_SERVICE_ACCOUNT, else {DEFAULT_SERVICE_ACCOUNT})"
    )
    parser.add_argument("--duration", default="", help=f"token lifetime (default TOKEN_DURATION, else {DEFAULT_DURATION})")


if __name__ == "__main__":
    main("create-token", run, __doc__.splitlines()[0], _options)
