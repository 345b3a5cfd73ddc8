"""Token login: a Kubernetes ServiceAccount token the gateway accepts as a bearer, from the real kubectl.

Runs ``kubectl -n <namespace> create token <sa> --audience=<the ingress gateway, or TOKEN_AUDIENCE>
--duration=<d>`` and keeps the token as ``AUTH_BEARER`` with the expiry the API
server gave (``AUTH_BEARER_EXPIRES``).  No password is involved; your
kubeconfig user needs permission to create tokens for that ServiceAccount.
Kubeflow 1.7 and later accept such tokens at the gateway.
"""

from __future__ import annotations

import re

from .auth.credentials import TOKEN_KEYS, format_expiry, parse_expiry
from .core.environment import Environment
from .core.errors import KubectlError, UsageError
from .core.standalone import main
from .core.state import State
from .core.step import VERBOSE, Option, Step, StepResult
from .core.values import is_kubernetes_name, shown
from .transport.kube import NotFound, command_line, kubectl_json
from .transport.settings import ingress_origin, kube_name

AUDIENCE = "istio-ingressgateway.istio-system.svc.cluster.local"
DEFAULT_SERVICE_ACCOUNT = "default-editor"
DEFAULT_DURATION = "24h"
_GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


def _request(state: State, service_account: str | None, duration: str | None) -> tuple[str, str, str, str]:
    """The ServiceAccount, the lifetime, the namespace and the audience of the token to ask for."""
    if service_account and not is_kubernetes_name(service_account):  # the same rule as TOKEN_SERVICE_ACCOUNT's
        raise UsageError(f"--service-account {shown(service_account)} is not a Kubernetes name: use lower-case letters, digits, - and .")
    account = service_account or kube_name(state, "TOKEN_SERVICE_ACCOUNT", DEFAULT_SERVICE_ACCOUNT)
    lasting = duration or state.value("TOKEN_DURATION", DEFAULT_DURATION)
    if not _GO_DURATION.fullmatch(lasting):
        raise UsageError(f"token duration {shown(lasting)} is not a duration such as 24h, 90m or 1h30m")
    namespace = kube_name(state, "TOKEN_NAMESPACE", "") or kube_name(state, "MODEL_NAMESPACE")
    audience = state.value("TOKEN_AUDIENCE", AUDIENCE)
    if not audience or not audience.isprintable() or any(character.isspace() or character == "," for character in audience):
        raise UsageError(f"TOKEN_AUDIENCE {shown(audience)} must be one audience (no spaces or commas)")
    return account, lasting, namespace, audience


def command(state: State, service_account: str | None = None, duration: str | None = None) -> str:
    """The shell line of ``kubectl create token`` that prints the bare token (for --curl)."""
    account, lasting, namespace, audience = _request(state, service_account, duration)
    return command_line(state, "-n", namespace, "create", "token", account, f"--audience={audience}", f"--duration={lasting}")


def run(state: State, environment: Environment, service_account: str | None = None, duration: str | None = None) -> StepResult:
    """Create a token."""
    account, lasting, namespace, audience = _request(state, service_account, duration)
    origin = ingress_origin(state)  # the gateway the token is for: known before a token is made
    try:
        answer = kubectl_json(
            state,
            "-n",
            namespace,
            "create",
            "token",
            account,
            f"--audience={audience}",
            f"--duration={lasting}",
            environment=environment,
        )
    except NotFound:
        raise KubectlError(
            f"no ServiceAccount {account} in {namespace}: set TOKEN_SERVICE_ACCOUNT (Kubeflow profiles have default-editor)"
        ) from None
    status = answer.get("status") or {}
    token, expiry = status.get("token"), status.get("expirationTimestamp", "")
    if not token:
        raise KubectlError("`kubectl create token` printed no token")
    summary = f"ServiceAccount {namespace}/{account}: {environment.mask(token)}, {format_expiry(parse_expiry(expiry), environment.now())}"
    updates = {
        TOKEN_KEYS.value: token,
        TOKEN_KEYS.expires: expiry,
        TOKEN_KEYS.origin: origin,  # the token is sent nowhere else
        TOKEN_KEYS.owner: f"{namespace}/{account}",
    }
    return StepResult(updates, summary)


STEP = Step(
    "create-token",
    run,
    "Get a ServiceAccount token for the gateway with kubectl.",
    reads=(
        "KUBECONFIG",
        "TOKEN_SERVICE_ACCOUNT",
        "TOKEN_DURATION",
        "TOKEN_NAMESPACE",
        "TOKEN_AUDIENCE",
        "MODEL_NAMESPACE",
        "INGRESS_HOST",
        "INGRESS_PORT",
    ),
    writes=TOKEN_KEYS.all,
    options=(
        Option(
            "service_account",
            f"ServiceAccount to get a token for (default TOKEN_SERVICE_ACCOUNT, else {DEFAULT_SERVICE_ACCOUNT})",
        ),
        Option("duration", f"token lifetime such as 24h or 90m (default TOKEN_DURATION, else {DEFAULT_DURATION})"),
        VERBOSE,
    ),
    hint="login --token",
)

if __name__ == "__main__":
    main(STEP)
