"""Where a model call goes, for REST and gRPC alike: the NodePort or the ingress with MODEL_HOST.

One rule: ``--via`` when given, else the NodePort when expose-nodeport recorded
one (``NODE_PORT`` for REST, ``NODE_PORT_GRPC`` for gRPC), else the ingress with
MODEL_HOST as the Host (``:authority``).  ``bound`` adds the credential, checked
in one order for every client: a bad setting, then the session, then a missing
setting, and never sent anywhere it does not belong.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auth.credentials import Credential, choose, ensure_bound
from ..core.environment import Environment
from ..core.errors import ConfigError, UsageError
from ..core.state import State
from ..core.step import PROTOCOLS, ROUTES
from ..core.values import shown
from ..transport.gateway import GatewaySettings
from ..transport.settings import gateway_settings, host, ingress_origin, path_prefix


@dataclass(frozen=True)
class Route:
    """The gateway settings, the Host (None: the address itself) and how the route was chosen."""

    settings: GatewaySettings
    host: str | None
    via: str  # "nodePort" or "ingress"


def route(state: State, via: str | None = None, port_key: str = "NODE_PORT") -> Route:
    """The NodePort (when ``port_key`` is set, or asked for) or the ingress with MODEL_HOST."""
    if via not in (None, *ROUTES):
        raise UsageError(f"--via {shown(via)}: use one of {', '.join(ROUTES)}")
    if via == "nodeport" or (via is None and state.value(port_key)):
        # the NodePort reaches the model server's own port: plain HTTP whatever the ingress speaks
        return Route(gateway_settings(state, port_key=port_key, scheme="http"), None, "nodePort")
    if state.value("MODEL_HOST"):
        return Route(gateway_settings(state), host(state, "MODEL_HOST"), "ingress")
    if via == "ingress":
        raise ConfigError(f"MODEL_HOST is not set in {state.path}: set it to the host of the InferenceService's URL")
    if port_key != "NODE_PORT" and state.value("NODE_PORT"):  # expose-nodeport ran: the predictor has no such port
        raise ConfigError(
            f"{port_key} is not set in {state.path}: expose-nodeport found no gRPC port on the predictor, only its HTTP "
            "port; call the model over REST, or `invoke resolve-model` to call it through the ingress"
        )
    raise ConfigError(
        f"{port_key} is not set in {state.path}: run `invoke expose-nodeport` first, "
        "or `invoke resolve-model` to call the model through the ingress"
    )


def bound(
    state: State, environment: Environment, auth: str = "auto", via: str | None = None, port_key: str = "NODE_PORT"
) -> tuple[Route, Credential]:
    """The route and the credential: a bad setting is reported first, a missing one after a missing session."""
    try:
        routed: Route | None = route(state, via, port_key)
    except ConfigError:
        routed = None
    credential = choose(state, environment.now(), auth)
    routed = routed or route(state, via, port_key)
    ensure_bound(credential, routed.settings.origin, ingress_origin(state))
    return routed, credential


def grpc_asked(protocol: str) -> bool:
    """True for ``--protocol grpc``, False for rest; a UsageError for anything else."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {shown(protocol)}: use one of {', '.join(PROTOCOLS)}")
    return protocol == "grpc"


@dataclass(frozen=True)
class Endpoint:
    """Where the model is reached and with what: the route infer, load and model-info share."""

    settings: GatewaySettings
    prefix: str  # MODEL_PATH through the ingress (KServe's path-based routing), "" otherwise
    headers: dict[str, str]  # the credential, and Host when through the ingress
    credential: Credential
    via: str  # "nodePort" or "ingress"
    model: str


def connect(state: State, environment: Environment, auth: str = "auto", via: str | None = None) -> Endpoint:
    """Choose the credential and the route, and refuse to send it anywhere it does not belong."""
    model = state.require("MODEL_NAME")
    routed, credential = bound(state, environment, auth, via)
    prefix = path_prefix(state) if routed.via == "ingress" else ""
    extra_headers = {"Host": routed.host} if routed.host else {}
    return Endpoint(routed.settings, prefix, {**credential.headers(), **extra_headers}, credential, routed.via, model)
