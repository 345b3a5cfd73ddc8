"""Whether the model can be called: the server live and ready, the model ready, its V2 metadata read.

Over the same route and credential as ``infer`` (``routing.connect``): GET
``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<MODEL_NAME>/ready``
(MLServer answers these 200 with an empty body: the status is the answer), then
``/v2/models/<MODEL_NAME>``; over gRPC, ServerLive, ServerReady, ModelReady and
ModelMetadata.  One check for ``model-info``, ``infer --check``, ``doctor`` and
the library's ``Kubeflow.model_info``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..core.environment import Environment
from ..core.errors import ModelError
from ..core.state import State
from ..transport.gateway import Gateway
from .answers import refusal
from .routing import Endpoint, connect


@dataclass(frozen=True)
class ModelInfo:
    """What the checks found: the server and model ready, and the metadata."""

    metadata: dict[str, Any]
    summary: str


def _get(gateway: Gateway, end: Endpoint, path: str, namespace: str, attempts: int | None) -> Any:
    """One GET (retried by the policy, ``attempts`` at most); its answer when 200, else the error that explains it."""
    response = gateway.send("GET", end.prefix + path, headers=end.headers, attempts=attempts)
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


def check(state: State, environment: Environment, auth: str = "auto", via: str | None = None, attempts: int | None = None) -> ModelInfo:
    """Server live and ready, model ready, metadata read: a ModelError naming the first that is not.

    ``attempts``: at most this many tries of each call (``doctor``: 1, it reports what it finds); else the retry policy's,
    which waits for a model that is still starting.
    """
    end = connect(state, environment, auth, via)
    gateway = Gateway(end.settings, environment)
    namespace = state.value("MODEL_NAMESPACE")
    name = quote(end.model, safe="")
    for path, what in (("/v2/health/live", "the model server is not live"), ("/v2/health/ready", "the model server is not ready")):
        response = _get(gateway, end, path, namespace, attempts)
        if response.status_code != 200:
            raise ModelError(f"{what} (GET {path} answered {response.status_code}): check the predictor pod's logs")
    response = _get(gateway, end, f"/v2/models/{name}/ready", namespace, attempts)
    if response.status_code != 200:
        raise ModelError(f"model {end.model} is not ready (answered {response.status_code}): wait for it to load, then try again")
    response = _get(gateway, end, f"/v2/models/{name}", namespace, attempts)
    try:
        metadata = dict(response.json())
    except (ValueError, TypeError):
        raise ModelError(f"the model's metadata (GET /v2/models/{name}) is not a JSON object") from None
    return ModelInfo(metadata, f"{end.model} ({end.via}, {end.credential.kind}): server live and ready, model ready")
