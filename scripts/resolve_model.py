"""Step: read the InferenceService with kubectl and keep where the ingress routes to it (MODEL_HOST, MODEL_PATH).

``kubectl get inferenceservice MODEL_NAME -n MODEL_NAMESPACE -o json``: the
host of ``status.url`` is the ``Host`` header Istio routes on; a path in that
URL (KServe's path-based routing, ``/serving/<namespace>/<name>``) is the
prefix of every model path through the ingress.  The model's ``Ready``
condition is reported, with its reason when it is not ready; the keys are
written either way (a model that is loading is still routed to).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .core.environment import Environment
from .core.errors import KubectlError
from .core.standalone import main
from .core.state import State
from .core.step import VERBOSE, Step, StepResult
from .transport.kube import NotFound, kubectl_json
from .transport.settings import kube_name


def read_inference_service(state: State, environment: Environment | None = None) -> dict[str, Any]:
    """The InferenceService MODEL_NAME in MODEL_NAMESPACE, as the API server returns it."""
    model = kube_name(state, "MODEL_NAME")
    namespace = kube_name(state, "MODEL_NAMESPACE")
    try:
        return dict(kubectl_json(state, "get", "inferenceservice", model, "-n", namespace, environment=environment))
    except NotFound:
        raise KubectlError(
            f"no InferenceService {model} in {namespace}: check MODEL_NAME and MODEL_NAMESPACE "
            f"(`kubectl get inferenceservices -n {namespace}` lists them)"
        ) from None
    except KubectlError as error:
        if "resource type" in error.message:
            raise KubectlError(f"{error.message} (is KServe installed in this cluster?)") from None
        raise


def readiness(isvc: dict[str, Any]) -> tuple[bool, str]:
    """Whether the Ready condition is True, and how to say it: ``ready`` or ``not ready: Reason (message)``."""
    conditions = (isvc.get("status") or {}).get("conditions") or []
    ready = next((entry for entry in conditions if entry.get("type") == "Ready"), None)
    if ready is None:
        return False, "not ready: no Ready condition yet (KServe has not reconciled it)"
    if str(ready.get("status")) == "True":
        return True, "ready"
    failing = next(
        (entry for entry in conditions if entry.get("type") != "Ready" and str(entry.get("status")) != "True" and entry.get("reason")),
        ready,
    )
    reason = failing.get("reason") or ready.get("reason") or "no reason given"
    message = failing.get("message") or ready.get("message") or ""
    return False, f"not ready: {reason}" + (f" ({message})" if message else "")


def url_parts(isvc: dict[str, Any]) -> tuple[str, str]:
    """The Host (with its port, if any) and the path prefix of ``status.url``."""
    url = str((isvc.get("status") or {}).get("url") or "")
    parts = urlsplit(url)
    if not parts.netloc:
        _ready, said = readiness(isvc)
        name = (isvc.get("metadata") or {}).get("name", "the InferenceService")
        raise KubectlError(f"{name} has no status.url yet ({said}): wait for KServe, or check `kubectl describe isvc {name}`")
    return parts.netloc, parts.path.rstrip("/")


def run(state: State, environment: Environment) -> StepResult:
    """Resolve the model's Host (and path prefix) from the InferenceService."""
    isvc = read_inference_service(state, environment)
    host, prefix = url_parts(isvc)
    _ready, said = readiness(isvc)
    routing = f"path {prefix}" if prefix else "by Host"
    return StepResult({"MODEL_HOST": host, "MODEL_PATH": prefix or None}, f"{host} ({routing}); {said}")


STEP = Step(
    "resolve-model",
    run,
    "Read the InferenceService with kubectl: the Host and path the ingress routes to it, and whether it is ready.",
    reads=("KUBECONFIG", "MODEL_NAME", "MODEL_NAMESPACE"),
    writes=("MODEL_HOST", "MODEL_PATH"),
    options=(VERBOSE,),
)

if __name__ == "__main__":
    main(STEP)
