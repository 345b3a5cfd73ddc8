"""Step 7: send a payload to the model with the session, and show what it answered.

V2 bodies go to ``/v2/models/<MODEL_NAME>/infer``, V1 bodies to
``/v1/models/<MODEL_NAME>:predict``, at ``INGRESS_HOST:NODE_PORT`` (after
expose-nodeport) or, when ``NODE_PORT`` is unset and ``MODEL_HOST`` is set,
through the ingress with that ``Host`` header.  Gateway timeouts and the model
server's "not ready yet" are retried; an answer that sends us back to Dex
means the session is gone.  Outputs are printed readably on stdout, or the raw
JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from json import dumps
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .auth.credentials import COOKIE_KEYS, TOKEN_KEYS, Credential, ensure_bound, format_expiry, is_valid, saved
from .core.environment import Environment
from .core.errors import ModelError, SessionError, UsageError
from .core.standalone import main
from .core.state import State
from .core.step import ATTEMPTS, AUTH, CURL, DEADLINE, PAYLOAD, PROTOCOLS, VERBOSE, Option, Step, StepResult
from .model.answers import SHOWN_VALUES, format_outputs, refusal
from .model.payloads import Payload, load
from .model.routing import connect, grpc_asked, route
from .render import curlscript
from .transport.gateway import Gateway, GatewaySettings, Sent
from .transport.settings import ingress_origin, path_prefix

if TYPE_CHECKING:  # only for annotations: requests loads when a request is sent
    from datetime import datetime

    import requests


def _not_ready(response: requests.Response) -> str | None:
    """MLServer answers 400 "Model X is not ready yet." while a model loads: retry that."""
    if response.status_code == 400 and "not ready yet" in response.text[:500]:
        return "400 model not ready yet"
    return None


@dataclass(frozen=True)
class ModelCall:
    """One call to the model, ready to send: where, with which headers and body, carrying which credential."""

    settings: GatewaySettings
    path: str
    headers: dict[str, str]  # the credential, Host when through the ingress, Content-Type
    payload: Payload
    credential: Credential
    via: str  # "nodePort" or "ingress"
    model: str

    @property
    def url(self) -> str:
        return self.settings.base + self.path


def prepare(state: State, environment: Environment, payload: str, auth: str = "auto", via: str | None = None) -> ModelCall:
    """Check the payload, choose the credential and the route, and refuse to send it anywhere it does not belong."""
    body = load(payload)
    end = connect(state, environment, auth, via)
    headers = {**end.headers, "Content-Type": "application/json"}
    return ModelCall(end.settings, end.prefix + _path(body, end.model), headers, body, end.credential, end.via, end.model)


def _path(payload: Payload, model: str) -> str:
    name = quote(model, safe="")
    return f"/v2/models/{name}/infer" if payload.protocol == "v2" else f"/v1/models/{name}:predict"


def took(sent: Sent) -> str:
    """``200 in 18 ms``, and after retries the whole time too: ``200 in 18 ms, 9.2 s with 5 retries``."""
    line = f"{sent.response.status_code} in {sent.response.elapsed.total_seconds() * 1000:.0f} ms"
    if sent.retries:
        line += f", {sent.seconds:.1f} s with {sent.retries} {'retry' if sent.retries == 1 else 'retries'}"
    return line


def run(
    state: State,
    environment: Environment,
    payload: str = "iris",
    json: bool = False,
    auth: str = "auto",
    check: bool = False,
    protocol: str = "rest",
    full: bool = False,
) -> StepResult:
    """Call the model; prints its outputs (nothing is written to .env)."""
    grpc = grpc_asked(protocol)  # an unknown protocol is refused before anything is sent
    if check:  # model-info's check first: server live and ready, model ready
        from .model.modelcheck import check as check_model

        environment.info(f"check: {check_model(state, environment, auth).summary}")
    if grpc:  # scripts.model.grpcv2 (and grpc itself) load only when asked for
        from .model import grpcv2

        return grpcv2.run(state, environment, payload, json, auth, full)
    answered = answer(state, environment, payload, auth)
    output = dumps(answered.answer, indent=2) if json else format_outputs(answered.answer, full)
    return StepResult({}, answered.summary, output=output)


@dataclass(frozen=True)
class Answered:
    """The model's JSON answer to one call, and infer's line about it."""

    answer: Any
    summary: str


def answer(
    state: State,
    environment: Environment,
    payload: str,
    auth: str = "auto",
    gateway: Callable[[GatewaySettings, Environment], Gateway] = Gateway,
) -> Answered:
    """One REST call to the model and its JSON answer: what ``kfdex infer`` and ``Kubeflow.infer`` both send.

    ``gateway`` makes the Gateway for the call's destination (the library keeps one open between calls).
    """
    call = prepare(state, environment, payload, auth)
    gateway = gateway(call.settings, environment)
    sent = gateway.call("POST", call.path, json=call.payload.body, headers=call.headers, retry_when=_not_ready)
    response = sent.response
    model, body, via, credential = call.model, call.payload, call.via, call.credential
    refused = refusal(response, model, state.value("MODEL_NAMESPACE"), call.path, credential.kind)
    if refused is not None:
        raise refused
    try:
        answered = response.json()
    except ValueError:
        raise ModelError(f"the model answered {response.status_code} with a body that is not JSON") from None
    return Answered(answered, f"{model} ({body.protocol}, {via}, {credential.kind}) {took(sent)}")


def curl(
    state: State,
    environment: Environment,
    payload: str = "iris",
    json: bool = False,  # noqa: ARG001 - curl prints the raw JSON answer either way
    auth: str = "auto",
    check: bool = False,  # noqa: ARG001 - the printed commands make the call only
    protocol: str = "rest",
    full: bool = False,  # noqa: ARG001 - the printed command prints the whole answer
) -> str:
    """The model call as a curl command that reads $AUTH_COOKIE / $AUTH_BEARER when bound to this ingress, else the .env values."""
    if protocol != "rest":
        raise UsageError("--curl prints REST calls: leave out --protocol grpc (or use grpcurl with `kfdex credential`)")
    body = load(payload)
    routed = route(state)
    prefix = path_prefix(state) if routed.via == "ingress" else ""
    path = prefix + _path(body, state.require("MODEL_NAME"))
    origin = ingress_origin(state)
    saved_here = _saved_here(state, environment, auth, routed.settings.origin, origin)
    return curlscript.infer(state, environment, routed.settings.base + path, routed.host or "", body.body, auth, saved_here, origin)


def _saved_here(state: State, environment: Environment, auth: str, destination: str, origin: str) -> dict[str, str]:
    """The .env credentials the printed command may carry: valid and bound here; a warning for each one ``auth`` wants left out.

    Printing still succeeds: the shell the commands run in may hold a valid credential of its own.
    """
    here = {}
    for keys in (COOKIE_KEYS, TOKEN_KEYS):
        found = saved(state, keys)
        if found is None:
            continue
        why = _left_out(found, destination, origin, environment.now())
        if why is None:
            here[keys.kind] = found.value
        elif auth in ("auto", keys.kind):
            environment.warn(f"{why}; the printed command leaves it out (it sends ${keys.value} only if the shell holds one for {origin})")
    return here


def _left_out(found: Credential, destination: str, origin: str, now: datetime) -> str | None:
    """Why a saved credential may not go to ``destination`` (expired, or bound to another ingress), or None when it may."""
    if not is_valid(found, now):
        return f"the {found.noun} in the state {format_expiry(found.expiry(), now)}: run {found.keys.login_hint}"
    try:
        ensure_bound(found, destination, origin)
    except SessionError as error:
        return error.message
    return None


STEP = Step(
    "infer",
    run,
    "Send a payload to the model with the session and print its outputs.",
    reads=(
        "MODEL_NAME", "MODEL_NAMESPACE", "MODEL_HOST", "MODEL_PATH", "INGRESS_HOST", "INGRESS_PORT", "NODE_PORT",
        "AUTH_COOKIE", "AUTH_ORIGIN", "AUTH_BEARER", "AUTH_BEARER_ORIGIN", "NODE_PORT_GRPC",
    ),
    options=(
        PAYLOAD,
        Option("json", "print the raw JSON answer", kind=bool, default=False, short="j"),
        Option("full", f"print every output value (by default at most {SHOWN_VALUES} per output)", kind=bool, default=False),
        AUTH,
        Option("check", "first check that the server and the model are ready, as model-info does", kind=bool, default=False),
        Option("protocol", "rest (HTTP/JSON) or grpc (the V2 gRPC service; needs the extra kfdex[grpc])", default="rest", choices=PROTOCOLS),
        ATTEMPTS,
        DEADLINE,
        VERBOSE,
        CURL,
    ),
    curl=curl,
)

if __name__ == "__main__":
    main(STEP)
