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

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from json import dumps
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import curlscript
from .credentials import AUTH_METHODS, COOKIE_KEYS, TOKEN_KEYS, Credential, ensure_bound, format_expiry, is_valid, saved
from .dexflow import describe, login_signal
from .environment import Environment
from .errors import ModelError, SessionError, SessionOver, UsageError
from .gateway import Gateway, GatewaySettings, Sent
from .payloads import Payload, load
from .routing import bound, route
from .settings import ingress_origin, path_prefix
from .standalone import main
from .state import State
from .step import ATTEMPTS, AUTH, CURL, DEADLINE, PAYLOAD, VERBOSE, Option, Step, StepResult
from .values import shown

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


def prepare(state: State, environment: Environment, payload: str, auth: str = "auto", via: str | None = None) -> ModelCall:
    """Check the payload, choose the credential and the route, and refuse to send it anywhere it does not belong."""
    body = load(payload)
    end = connect(state, environment, auth, via)
    headers = {**end.headers, "Content-Type": "application/json"}
    return ModelCall(end.settings, end.prefix + _path(body, end.model), headers, body, end.credential, end.via, end.model)


def _path(payload: Payload, model: str) -> str:
    name = quote(model, safe="")
    return f"/v2/models/{name}/infer" if payload.protocol == "v2" else f"/v1/models/{name}:predict"


def sent_to_login(credential: str, where: str = "to a login") -> SessionOver:
    """The error for a call the gateway sent to a login instead of the model (REST and gRPC alike)."""
    if credential == "token":
        return SessionOver(
            f"the gateway sent the call {where}: it did not accept the ServiceAccount token "
            "(expired, wrong audience, or a Kubeflow that takes no bearer tokens); use `invoke login` instead"
        )
    return SessionOver(f"the gateway sent the call {where}: the session is expired or not valid here; run `invoke login`")


def refusal(response: requests.Response, model: str, namespace: str, path: str, credential: str) -> Exception | None:
    """The error for an answer that is not a prediction, or None when it is one."""
    status = response.status_code
    where = login_signal(response)
    if where:
        return sent_to_login(credential, where)
    if status == 403:
        return ModelError(
            f"{describe(response)} calling {model}: your user may not call models in {namespace or 'this namespace'}"
        )
    if status == 404 and not response.content and response.headers.get("server") == "istio-envoy":
        return ModelError(
            f"the gateway has no route to {model} for this Host (Istio's empty 404): "
            "run `invoke resolve-model` to take MODEL_HOST (and MODEL_PATH) from the InferenceService"
        )
    if status == 404:
        hint = "check MODEL_NAME (and MODEL_HOST)"
        if "/v1/" in path:
            hint += "; a V2-only server such as MLServer answers 404 to V1 calls: use a V2 payload"
        return ModelError(f"model {model} not found ({describe(response)}): {hint}")
    if status >= 400:
        return ModelError(f"the model answered {describe(response)}")
    return None


def took(sent: Sent) -> str:
    """``200 in 18 ms``, and after retries the whole time too: ``200 in 18 ms, 9.2 s with 5 retries``."""
    line = f"{sent.response.status_code} in {sent.response.elapsed.total_seconds() * 1000:.0f} ms"
    if sent.retries:
        line += f", {sent.seconds:.1f} s with {sent.retries} {'retry' if sent.retries == 1 else 'retries'}"
    return line


SHOWN_VALUES = 20  # per output, by default: a 50 MB answer is not a screenful
SHOWN_OUTPUTS = 20


def _leaves(data: Any) -> Iterator[Any]:
    """The values of a (nested) list in order, depth first."""
    if isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    else:
        yield data


def _shown_data(data: Any, full: bool) -> str:
    """An output's data as JSON; past SHOWN_VALUES values, the first ones and how many were left out."""
    if full or not isinstance(data, list):
        return json.dumps(data)
    first = list(islice(_leaves(data), SHOWN_VALUES + 1))
    if len(first) <= SHOWN_VALUES:
        return json.dumps(data)
    total = sum(1 for _ in _leaves(data))
    return f"{json.dumps(first[:SHOWN_VALUES])[:-1]}, …] (the first {SHOWN_VALUES} of {total} values; --full or --json prints all)"


def format_outputs(answer: dict[str, Any], full: bool = False) -> str:
    """``predict = [1, 1]`` per V2 output, or ``predictions = [...]`` for V1; long ones cut to a screenful unless ``full``."""
    if "outputs" in answer:
        outputs = answer.get("outputs") or []
        shown = outputs if full else outputs[:SHOWN_OUTPUTS]
        lines = [f"{output.get('name') or f'output-{index}'} = {_shown_data(output.get('data'), full)}" for index, output in enumerate(shown)]
        if len(shown) < len(outputs):
            lines.append(f"… and {len(outputs) - len(shown)} more outputs (--full or --json prints all)")
        return "\n".join(lines) or "(no outputs)"
    if "predictions" in answer:
        return f"predictions = {_shown_data(answer['predictions'], full)}"
    return json.dumps(answer)


PROTOCOLS = ("rest", "grpc")


def grpc_asked(protocol: str) -> bool:
    """True for ``--protocol grpc``, False for rest; a UsageError for anything else."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {shown(protocol)}: use {' or '.join(PROTOCOLS)}")
    return protocol == "grpc"


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
        from .model_info import check as check_model

        environment.info(f"check: {check_model(state, environment, auth).summary}")
    if grpc:  # scripts.grpcv2 (and grpc itself) load only when asked for
        from . import grpcv2

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
    if auth not in AUTH_METHODS:
        raise UsageError(f"unknown auth method {auth!r}: use one of {', '.join(AUTH_METHODS)}")
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
        Option("protocol", "rest (HTTP/JSON) or grpc (the V2 gRPC service; needs the extra kfdex[grpc])", default="rest"),
        ATTEMPTS,
        DEADLINE,
        VERBOSE,
        CURL,
    ),
    curl=curl,
)

if __name__ == "__main__":
    main(STEP)
