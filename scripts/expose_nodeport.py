"""Step 6: expose the model's predictor pod as a NodePort Service with kubectl.

Finds the pod labelled ``serving.kserve.io/inferenceservice=<MODEL_NAME>`` in
``MODEL_NAMESPACE``, runs ``kubectl expose pod ... --type=NodePort`` and picks
the nodePort whose targetPort is 8080 (the model server), never a guessed port
name; and the one whose targetPort is 8081 (the model server's gRPC port, as
MLServer listens) as ``NODE_PORT_GRPC``, when the pod declares it.  Running it again reuses the Service, or recreates it when it no longer
selects the current pod.  ``--delete`` removes the Service: a NodePort left
behind is a hole in the cluster.
"""

from __future__ import annotations

from typing import Any

from .core.environment import Environment
from .core.errors import KubectlError
from .core.standalone import main
from .core.state import State
from .core.step import VERBOSE, Option, Step, StepResult
from .transport.kube import NotFound, kubectl, kubectl_json
from .transport.settings import kube_name

MODEL_PORT = 8080
GRPC_PORT = 8081  # MLServer's (and KServe's V2 servers') gRPC port
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def service_name(model: str) -> str:
    """The Service we create for a model (a DNS-1035 label of at most 63 characters)."""
    return f"{model[:54]}-nodeport"


def _predictor_pod(state: State, environment: Environment, model: str, namespace: str) -> dict[str, Any]:
    pods = kubectl_json(state, "get", "pods", "-n", namespace, "-l", f"{ISVC_LABEL}={model}", environment=environment).get("items") or []
    running = [pod for pod in pods if pod.get("status", {}).get("phase") == "Running"]
    if not running:
        found = f"{len(pods)} pod(s), none running" if pods else "no pod"
        raise KubectlError(
            f"{found} labelled {ISVC_LABEL}={model} in {namespace}: check MODEL_NAME/MODEL_NAMESPACE "
            "and that the InferenceService is ready (a model scaled to zero has no pod)"
        )
    return running[0]


def _model_node_port(service: dict[str, Any]) -> str:
    for port in service.get("spec", {}).get("ports") or []:
        if str(port.get("targetPort")) == str(MODEL_PORT) and port.get("nodePort"):
            return str(port["nodePort"])
    name = service.get("metadata", {}).get("name", "?")
    raise KubectlError(
        f"service {name} has no nodePort for targetPort {MODEL_PORT}: delete it with `invoke expose-nodeport --delete`"
    )


def _grpc_node_port(service: dict[str, Any]) -> str | None:
    """The nodePort of targetPort 8081, or None when the Service (the pod) has no gRPC port."""
    for port in service.get("spec", {}).get("ports") or []:
        if str(port.get("targetPort")) == str(GRPC_PORT) and port.get("nodePort"):
            return str(port["nodePort"])
    return None


def _selects(service: dict[str, Any], pod: dict[str, Any]) -> bool:
    selector = service.get("spec", {}).get("selector") or {}
    labels = pod.get("metadata", {}).get("labels") or {}
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _existing(state: State, environment: Environment, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return kubectl_json(state, "get", "service", name, "-n", namespace, environment=environment)
    except NotFound:
        return None


def run(state: State, environment: Environment, delete: bool = False) -> StepResult:
    """Expose (or with delete=True, remove) the predictor's NodePort."""
    model = kube_name(state, "MODEL_NAME")
    namespace = kube_name(state, "MODEL_NAMESPACE")
    name = state.value("NODE_PORT_SERVICE") or service_name(model)
    if delete:
        existed = _existing(state, environment, name, namespace) is not None
        if existed:
            kubectl(state, "delete", "service", name, "-n", namespace, environment=environment)
        summary = f"service {namespace}/{name} deleted" if existed else f"no service {namespace}/{name} to delete"
        return StepResult({"NODE_PORT": None, "NODE_PORT_GRPC": None, "NODE_PORT_SERVICE": None}, summary, skipped=not existed)
    pod = _predictor_pod(state, environment, model, namespace)
    pod_name = pod["metadata"]["name"]
    service = _existing(state, environment, name, namespace)
    action = "reused"
    if service is not None and not _selects(service, pod):
        kubectl(state, "delete", "service", name, "-n", namespace, environment=environment)
        service, action = None, "recreated for the current pod"
    if service is None:
        # the created Service as the API server answered it: its nodePorts are allocated at creation
        service = kubectl_json(state, "expose", "pod", pod_name, "-n", namespace, "--type=NodePort", f"--name={name}", environment=environment)
        action = "exposed" if action == "reused" else action
    node_port = _model_node_port(service)
    grpc_port = _grpc_node_port(service)
    grpc = f", gRPC {GRPC_PORT} → nodePort {grpc_port}" if grpc_port else ""
    summary = f"{pod_name}:{MODEL_PORT} → nodePort {node_port}{grpc} (service {name}, {action})"
    return StepResult({"NODE_PORT": node_port, "NODE_PORT_GRPC": grpc_port, "NODE_PORT_SERVICE": name}, summary)


STEP = Step(
    "expose-nodeport",
    run,
    "Expose the model's predictor pod as a NodePort Service.",
    reads=("KUBECONFIG", "MODEL_NAME", "MODEL_NAMESPACE", "NODE_PORT_SERVICE"),
    writes=("NODE_PORT", "NODE_PORT_GRPC", "NODE_PORT_SERVICE"),
    options=(Option("delete", "delete the NodePort Service instead of creating it", kind=bool, default=False), VERBOSE),
)

if __name__ == "__main__":
    main(STEP)
