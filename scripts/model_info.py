"""Step: ask the model server whether it is live and ready, whether the model is ready, and what it takes.

Over the same route and credential as ``infer`` (``routing.connect``): GET
``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<MODEL_NAME>/ready``
(MLServer answers these 200 with an empty body: the status is the answer), then
``/v2/models/<MODEL_NAME>`` for the V2 metadata: inputs, outputs, versions and
platform, printed readably on stdout, or the raw JSON with ``--json``.
``infer --check`` runs the same check before it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from json import dumps
from typing import Any
from urllib.parse import quote

from .answers import refusal
from .environment import Environment
from .errors import ModelError
from .gateway import Gateway
from .routing import Endpoint, connect, grpc_asked
from .standalone import main
from .state import State
from .step import ATTEMPTS, AUTH, DEADLINE, VERBOSE, Option, Step, StepResult


@dataclass(frozen=True)
class ModelInfo:
    """What the checks found: the server and model ready, and the metadata."""

    metadata: dict[str, Any]
    summary: str


def _get(gateway: Gateway, end: Endpoint, path: str, namespace: str) -> Any:
    """One GET; its answer when 200, else the error that explains it."""
    response = gateway.send("GET", end.prefix + path, headers=end.headers)
    refused = refusal(response, end.model, namespace, path, end.credential.kind)
    if refused is not None:
        raise refused
    return response


def check_grpc(state: State, environment: Environment, auth: str = "auto") -> ModelInfo:
    """The same check over the V2 gRPC service: ServerLive, ServerReady, ModelReady, ModelMetadata."""
    from .grpcv2 import readiness

    found = readiness(state, environment, auth)
    for ok, what, call in ((found.live, "not live", "ServerLive"), (found.ready, "not ready", "ServerReady")):
        if not ok:
            raise ModelError(f"the model server is {what} ({call} answered false): check the predictor pod's logs")
    if not found.model_ready:
        raise ModelError(f"model {found.model} is not ready (ModelReady answered false): wait for it to load, then try again")
    return ModelInfo(found.metadata, f"{found.model} (gRPC, {found.via}, {found.kind}): server live and ready, model ready")


def check(state: State, environment: Environment, auth: str = "auto", via: str | None = None) -> ModelInfo:
    """Server live and ready, model ready, metadata read: a ModelError naming the first that is not."""
    end = connect(state, environment, auth, via)
    gateway = Gateway(end.settings, environment)
    namespace = state.value("MODEL_NAMESPACE")
    name = quote(end.model, safe="")
    for path, what in (("/v2/health/live", "the model server is not live"), ("/v2/health/ready", "the model server is not ready")):
        response = _get(gateway, end, path, namespace)
        if response.status_code != 200:
            raise ModelError(f"{what} (GET {path} answered {response.status_code}): check the predictor pod's logs")
    response = _get(gateway, end, f"/v2/models/{name}/ready", namespace)
    if response.status_code != 200:
        raise ModelError(f"model {end.model} is not ready (answered {response.status_code}): wait for it to load, then try again")
    response = _get(gateway, end, f"/v2/models/{name}", namespace)
    try:
        metadata = dict(response.json())
    except (ValueError, TypeError):
        raise ModelError(f"the model's metadata (GET /v2/models/{name}) is not a JSON object") from None
    return ModelInfo(metadata, f"{end.model} ({end.via}, {end.credential.kind}): server live and ready, model ready")


def _tensors(entries: Any) -> str:
    """``input-0 FP32 [-1, 4]; ...``, or ``(not declared)``."""
    shown = [f"{entry.get('name', '?')} {entry.get('datatype', '?')} {dumps(entry.get('shape'))}" for entry in entries or []]
    return "; ".join(shown) or "(not declared)"


def format_metadata(metadata: dict[str, Any]) -> str:
    """The V2 metadata, one aligned line per field."""
    rows = (
        ("name", metadata.get("name") or "?"),
        ("versions", ", ".join(map(str, metadata.get("versions") or [])) or "(none)"),
        ("platform", metadata.get("platform") or "(not given)"),
        ("inputs", _tensors(metadata.get("inputs"))),
        ("outputs", _tensors(metadata.get("outputs"))),
    )
    return "\n".join(f"{label:<9} {value}" for label, value in rows)


def run(state: State, environment: Environment, json: bool = False, auth: str = "auto", protocol: str = "rest") -> StepResult:
    """Check the model and print its metadata (nothing is written to .env)."""
    info = check_grpc(state, environment, auth) if grpc_asked(protocol) else check(state, environment, auth)
    output = dumps(info.metadata, indent=2) if json else format_metadata(info.metadata)
    return StepResult({}, info.summary, output=output)


STEP = Step(
    "model-info",
    run,
    "Check that the model server and the model are ready, and print the model's V2 metadata.",
    reads=(
        "MODEL_NAME", "MODEL_NAMESPACE", "MODEL_HOST", "MODEL_PATH", "INGRESS_HOST", "INGRESS_PORT", "NODE_PORT",
        "AUTH_COOKIE", "AUTH_ORIGIN", "AUTH_BEARER", "AUTH_BEARER_ORIGIN", "NODE_PORT_GRPC",
    ),
    options=(
        Option("json", "print the raw V2 metadata JSON", kind=bool, default=False, short="j"),
        AUTH,
        Option("protocol", "rest (HTTP/JSON) or grpc (ServerLive, ServerReady, ModelReady, ModelMetadata; the grpc extra)", default="rest"),
        ATTEMPTS,
        DEADLINE,
        VERBOSE,
    ),
)

if __name__ == "__main__":
    main(STEP)
