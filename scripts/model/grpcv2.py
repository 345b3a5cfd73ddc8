"""``infer --protocol grpc``: the same V2 payload as a ``ModelInferRequest`` to ``inference.GRPCInferenceService``.

The client is grpcio with the V2 service's compiled stubs from tritonclient
(``tritonclient.grpc.service_pb2``: Triton speaks the same ``inference``
package as KServe's V2 protocol), installed with the optional extra ``grpc``.
Only the stubs are used, not tritonclient's own client: grpcio's channel lets
us set ``:authority``, send the credential as metadata and read the real
status code of every failure.

Routes are infer's: ``INGRESS_HOST:NODE_PORT_GRPC`` (the nodePort of the model
server's gRPC port, written by expose-nodeport), or the ingress at
``INGRESS_HOST:INGRESS_PORT`` with ``:authority`` set to ``MODEL_HOST``
(TLS with the same CA settings when the ingress is HTTPS).  The credential
goes as ``cookie`` or ``authorization: Bearer`` metadata, bound to its
ingress as for REST.  The gateway's HTTP answers (a redirect or 401/403 to
Dex, 404 for an unknown host) reach a gRPC client as a failed call whose
details name the HTTP status: those are read back into infer's errors.
UNAVAILABLE (a model scaling from zero, a gateway 502/503/504) and "not ready
yet" are retried with the same bounded policy and the same retry lines.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from json import dumps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..auth.credentials import Credential
from ..auth.signals import login_signal_of
from ..core.environment import Environment
from ..core.errors import GatewayError, ModelError, SessionError, UsageError
from ..core.extras import require
from ..core.state import State
from ..core.step import StepResult
from ..core.values import clipped
from ..transport.gateway import NO_ANSWER, UNREACHABLE, GatewaySettings, RetriesExhausted, TransientError, with_retries
from . import routing
from .answers import format_outputs, sent_to_login
from .payloads import load

METHOD = "/inference.GRPCInferenceService/ModelInfer"
EXTRA = "pip install 'kfdex[grpc]' (or '.[grpc]' in a checkout)"

# V2 datatype -> the InferTensorContents field that carries it, and struct's letter for raw contents
CONTENTS = {
    "BOOL": ("bool_contents", "?"),
    "INT8": ("int_contents", "b"),
    "INT16": ("int_contents", "h"),
    "INT32": ("int_contents", "i"),
    "INT64": ("int64_contents", "q"),
    "UINT8": ("uint_contents", "B"),
    "UINT16": ("uint_contents", "H"),
    "UINT32": ("uint_contents", "I"),
    "UINT64": ("uint64_contents", "Q"),
    "FP32": ("fp32_contents", "f"),
    "FP64": ("fp64_contents", "d"),
    "BYTES": ("bytes_contents", ""),
}
_HTTP_STATUS = re.compile(r"Received http2 header with status: (\d+)")


def protos() -> tuple[Any, Any, Any]:
    """grpc, the V2 messages and their stubs; a UsageError naming the extra when they are not installed."""
    require("grpc", "--protocol grpc")  # every module of the extra, before any of them is imported
    try:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc
    except ImportError as missing:  # installed, but broken
        raise UsageError(f"--protocol grpc needs the optional extra grpc ({missing.name} is missing): {EXTRA}") from None
    return grpc, service_pb2, service_pb2_grpc


# the payload and the answer ----------------------------------------------------------------


def _flat(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [item for part in data for item in _flat(part)]
    return [data]


def _parameter(message: Any, value: Any) -> None:
    """One V2 parameter into an ``InferParameter`` (bool, int, float or string)."""
    if isinstance(value, bool):
        message.bool_param = value
    elif isinstance(value, int):
        message.int64_param = value
    elif isinstance(value, float):
        message.double_param = value
    elif isinstance(value, str):
        message.string_param = value
    else:
        raise UsageError(f"parameter value {value!r}: gRPC parameters are booleans, numbers or strings")


def _parameters(target: Any, parameters: dict[str, Any] | None) -> None:
    for name, value in (parameters or {}).items():
        _parameter(target[name], value)


def _contents(tensor: Any, datatype: str, values: list[Any]) -> None:
    """The data into the tensor's typed contents; a UsageError for a value its datatype cannot hold."""
    if datatype == "BYTES":
        values = [value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value for value in values]
    try:
        getattr(tensor.contents, CONTENTS[datatype][0]).extend(values)
    except (TypeError, ValueError) as error:
        raise UsageError(f"input {tensor.name!r}: its data does not fit datatype {datatype} ({error})") from None


def to_request(model: str, body: dict[str, Any], pb: Any) -> Any:
    """A V2 JSON body (inputs: name, shape, datatype, data; parameters; outputs) as a ``ModelInferRequest``."""
    request = pb.ModelInferRequest(model_name=model, id=str(body.get("id") or ""))
    _parameters(request.parameters, body.get("parameters"))
    for given in body.get("inputs") or []:
        datatype = str(given.get("datatype", "")).upper()
        if datatype not in CONTENTS:
            raise UsageError(f"input {given.get('name')!r}: datatype {datatype or '(none)'} cannot be sent over gRPC contents; use one of {', '.join(CONTENTS)}")
        tensor = request.inputs.add(name=given.get("name", ""), datatype=datatype, shape=[int(n) for n in given.get("shape") or []])
        _parameters(tensor.parameters, given.get("parameters"))
        _contents(tensor, datatype, _flat(given.get("data")))
    for wanted in body.get("outputs") or []:
        output = request.outputs.add(name=wanted.get("name", ""))
        _parameters(output.parameters, wanted.get("parameters"))
    return request


def _value(parameter: Any) -> Any:
    which = parameter.WhichOneof("parameter_choice")
    return getattr(parameter, which) if which else None


def _raw(datatype: str, raw: bytes) -> list[Any]:
    """``raw_output_contents``: little-endian values, or for BYTES each one after its 4-byte length."""
    if datatype == "BYTES":
        values, offset = [], 0
        while offset + 4 <= len(raw):
            (length,) = struct.unpack_from("<I", raw, offset)
            values.append(raw[offset + 4 : offset + 4 + length].decode("utf-8", "replace"))
            offset += 4 + length
        return values
    letter = CONTENTS.get(datatype, ("", ""))[1]
    if not letter:
        raise ModelError(f"the model answered a raw {datatype} output, which kfdex cannot read")
    return list(struct.unpack(f"<{len(raw) // struct.calcsize(letter)}{letter}", raw))


def to_json(response: Any) -> dict[str, Any]:
    """A ``ModelInferResponse`` in the V2 JSON form the REST path answers (data flat, as MLServer sends it)."""
    outputs = []
    for index, tensor in enumerate(response.outputs):
        datatype = tensor.datatype
        if index < len(response.raw_output_contents):
            data = _raw(datatype, response.raw_output_contents[index])
        else:
            data = list(getattr(tensor.contents, CONTENTS.get(datatype, ("bytes_contents", ""))[0]))
            if datatype == "BYTES":
                data = [value.decode("utf-8", "replace") for value in data]
        output: dict[str, Any] = {"name": tensor.name, "shape": list(tensor.shape), "datatype": datatype}
        if tensor.parameters:
            output["parameters"] = {name: _value(value) for name, value in tensor.parameters.items()}
        output["data"] = data
        outputs.append(output)
    answer: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version:
        answer["model_version"] = response.model_version
    if response.id:
        answer["id"] = response.id
    answer["parameters"] = {name: _value(value) for name, value in response.parameters.items()}  # MLServer's REST sends {}
    answer["outputs"] = outputs
    return answer


# where the call goes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a gRPC call goes: the address, the ``:authority`` (None: the address), TLS, and how it was chosen."""

    settings: GatewaySettings
    authority: str | None
    via: str  # "nodePort" or "ingress"

    @property
    def address(self) -> str:
        parts = urlsplit(self.settings.base)
        return f"{parts.hostname}:{parts.port}" if ":" not in (parts.hostname or "") else f"[{parts.hostname}]:{parts.port}"

    @property
    def tls(self) -> bool:
        return self.settings.base.startswith("https:")


def _channel(grpc: Any, target: Target) -> Any:
    options = [("grpc.default_authority", target.authority)] if target.authority else []
    if not target.tls:
        return grpc.insecure_channel(target.address, options=options)
    if target.settings.insecure:
        raise UsageError("INGRESS_INSECURE is set: gRPC over TLS always verifies; set INGRESS_CA_BUNDLE to your CA's PEM file instead")
    bundle = target.settings.verify
    try:
        roots = Path(bundle).read_bytes() if isinstance(bundle, str) else None
    except OSError as error:
        raise UsageError(f"INGRESS_CA_BUNDLE={bundle}: cannot read it ({error.strerror})") from None
    return grpc.secure_channel(target.address, grpc.ssl_channel_credentials(root_certificates=roots), options=options)


def metadata(credential: Credential) -> list[tuple[str, str]]:
    """The credential as gRPC metadata: ``cookie`` or ``authorization`` (lower case, as HTTP/2 requires)."""
    return [(credential.header_name.lower(), credential.header_value())]


# failures --------------------------------------------------------------------------------------


def session_refused(credential: Credential) -> SessionError:
    """The REST path's words for a call the gateway sent to a login (the gRPC client sees no Location)."""
    return sent_to_login(credential.kind)


def failure(error: Any, target: Target, credential: Credential, model: str) -> Exception:
    """What a failed call means: a TransientError to retry, or the error for a person."""
    code, details = error.code(), (error.details() or "").strip()
    status = _HTTP_STATUS.search(details)
    http = int(status.group(1)) if status else 0
    if http and login_signal_of(http, "", None):
        return session_refused(credential)
    if http == 404:
        routed = f":authority {target.authority} (MODEL_HOST)" if target.authority else target.address
        return ModelError(f"no route to model {model} for {routed}: the gateway answered HTTP 404; check MODEL_HOST and MODEL_NAME")
    if http in (502, 503, 504):
        return TransientError(f"HTTP {http} from the gateway", f"HTTP {http}", "answer")
    if "not ready yet" in details:
        return TransientError(f"{code.name}: {clipped(details)}", clipped(details), "answer")
    if code.name == "UNAVAILABLE":
        unreachable = "failed to connect" in details.lower() or "connection refused" in details.lower()
        return TransientError(f"UNAVAILABLE: {clipped(details)}", clipped(details), UNREACHABLE if unreachable else NO_ANSWER)
    if code.name == "DEADLINE_EXCEEDED":
        return TransientError(f"no answer in {target.settings.read_timeout:g}s", "deadline exceeded", NO_ANSWER)
    if http:
        return ModelError(f"the gateway answered HTTP {http} to the gRPC call, with no gRPC status")
    return ModelError(f"the model answered {code.name}: {details or '(no message)'}")


# the call --------------------------------------------------------------------------------------


def bound(state: State, environment: Environment, auth: str, via: str | None = None) -> tuple[Target, Credential]:
    """The route (``routing``'s rule, with the gRPC NodePort) and the credential for a gRPC call."""
    routed, credential = routing.bound(state, environment, auth, via, port_key="NODE_PORT_GRPC")
    return Target(routed.settings, routed.host, routed.via), credential


def v2_request(state: State, payload: str, pb: Any) -> Any:
    """The payload as a ModelInferRequest for MODEL_NAME; V1 payloads are refused."""
    body = load(payload)
    if body.protocol != "v2":
        raise UsageError("--protocol grpc sends V2 payloads only (inputs with name, shape, datatype, data): use --protocol rest for V1")
    return to_request(state.require("MODEL_NAME"), body.body, pb)


def infer(state: State, environment: Environment, payload: str, auth: str) -> tuple[dict[str, Any], str]:
    """Send the payload over gRPC; returns the V2 JSON answer and infer's summary line."""
    grpc, pb, stubs = protos()
    request = v2_request(state, payload, pb)
    model = state.require("MODEL_NAME")
    target, credential = bound(state, environment, auth)
    with _channel(grpc, target) as channel:
        stub = stubs.GRPCInferenceServiceStub(channel)

        def attempt() -> Any:
            try:
                return stub.ModelInfer(request, metadata=metadata(credential), timeout=target.settings.read_timeout)
            except grpc.RpcError as error:
                raise failure(error, target, credential, model) from None

        started = time.monotonic()
        response, retries = retried(attempt, target, environment)
    spent = time.monotonic() - started
    line = f"OK in {spent * 1000:.0f} ms" + (f" with {retries} {'retry' if retries == 1 else 'retries'}" if retries else "")
    summary = f"{model} (v2 over gRPC, {target.via}, {credential.kind}) {line}"
    return to_json(response), summary


class LoadSender:
    """One channel sending the same ModelInfer again and again for ``load --protocol grpc``: nothing retried, all counted."""

    def __init__(self, grpc: Any, stubs: Any, target: Target, request: Any, credential: Credential) -> None:
        self.grpc, self.request, self.timeout = grpc, request, target.settings.read_timeout
        self.metadata = metadata(credential)
        self.channel = _channel(grpc, target)
        self.stub = stubs.GRPCInferenceServiceStub(self.channel)

    def send(self) -> tuple[str, bool]:
        """``OK``, a gRPC status name, or ``HTTP <status>`` when the gateway answered at the HTTP/2 layer."""
        try:
            self.stub.ModelInfer(self.request, metadata=self.metadata, timeout=self.timeout)
        except self.grpc.RpcError as error:
            found = _HTTP_STATUS.search(error.details() or "")
            if found:
                return f"HTTP {found.group(1)}", login_signal_of(int(found.group(1)), "", None) is not None
            return error.code().name, False
        return "OK", False

    def close(self) -> None:
        self.channel.close()


def load_senders(state: State, environment: Environment, payload: str, auth: str, via: str | None) -> Callable[[], LoadSender]:
    """What ``load --protocol grpc`` sends with: the payload as infer sends it, to the same bound route."""
    grpc, pb, stubs = protos()
    request = v2_request(state, payload, pb)
    target, credential = bound(state, environment, auth, via)
    return lambda: LoadSender(grpc, stubs, target, request, credential)


@dataclass(frozen=True)
class Readiness:
    """What ServerLive, ServerReady, ModelReady and ModelMetadata answered, and over which route and credential."""

    live: bool
    ready: bool
    model_ready: bool
    metadata: dict[str, Any]
    model: str
    via: str
    kind: str


def readiness(state: State, environment: Environment, auth: str) -> Readiness:
    """model-info over gRPC: the server's and the model's readiness, and the model's V2 metadata (as the REST JSON)."""
    grpc, pb, stubs = protos()
    from google.protobuf.json_format import MessageToDict
    model = state.require("MODEL_NAME")
    target, credential = bound(state, environment, auth)
    with _channel(grpc, target) as channel:
        stub = stubs.GRPCInferenceServiceStub(channel)

        def ask(method: str, request: Any) -> Any:
            def attempt() -> Any:
                try:
                    return getattr(stub, method)(request, metadata=metadata(credential), timeout=target.settings.read_timeout)
                except grpc.RpcError as error:
                    raise failure(error, target, credential, model) from None

            return retried(attempt, target, environment)[0]

        live = ask("ServerLive", pb.ServerLiveRequest()).live
        ready = ask("ServerReady", pb.ServerReadyRequest()).ready
        model_ready = ask("ModelReady", pb.ModelReadyRequest(name=model)).ready
        described = ask("ModelMetadata", pb.ModelMetadataRequest(name=model)) if model_ready else None
    found = MessageToDict(described, preserving_proto_field_name=True) if described is not None else {}
    return Readiness(live, ready, model_ready, found, model, target.via, credential.kind)


def retried(attempt: Any, target: Target, environment: Environment) -> tuple[Any, int]:
    """``attempt()`` under the gateway's retry policy, with the same retry lines as REST; the answer and the retries."""
    try:
        response, retries, _seconds = with_retries(attempt, target.settings.retry, environment, "gRPC ModelInfer")
    except RetriesExhausted as gave_up:
        if gave_up.error.unreachable:
            raise GatewayError(
                f"cannot connect to {target.address} over gRPC: {gave_up.error.reason} after {gave_up.tries} attempt(s); "
                f"check {target.settings.address} and that the gateway is up"
            ) from None
        raise GatewayError(
            f"gRPC ModelInfer still failing after {gave_up.tries} attempt(s): {gave_up.error.description}; "
            "try again later, or raise RETRY_ATTEMPTS / RETRY_DEADLINE"
        ) from None
    return response, retries


def run(state: State, environment: Environment, payload: str, json: bool, auth: str, full: bool = False) -> StepResult:
    """infer's step over gRPC: prints the outputs as the REST path does (``--json``: the V2 JSON form)."""
    answer, summary = infer(state, environment, payload, auth)
    return StepResult({}, summary, output=dumps(answer, indent=2) if json else format_outputs(answer, full))
