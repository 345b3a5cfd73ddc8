"""Step 1: find the address and port of the Istio ingress gateway with kubectl.

A load balancer address wins when the service has one (its ``http2`` port);
otherwise the NodePort rule of KServe's docs applies: the hostIP of the
``istio=ingressgateway`` pod and the ``http2`` nodePort of the service.
"""

from __future__ import annotations

from typing import Any

from .auth.credentials import COOKIE_KEYS, TOKEN_KEYS, credential_noun
from .core.environment import Environment
from .core.errors import KubectlError
from .core.standalone import main
from .core.state import State
from .core.step import VERBOSE, Step, StepResult
from .transport.kube import NotFound, kubectl_json
from .transport.settings import ingress_origin

NAMESPACE = "istio-system"
SERVICE = "istio-ingressgateway"
POD_SELECTOR = "istio=ingressgateway"


def _http2_port(service: dict[str, Any]) -> dict[str, Any]:
    ports = service.get("spec", {}).get("ports") or []
    for port in ports:
        if port.get("name") == "http2":
            return port
    for port in ports:
        if port.get("port") == 80:
            return port
    raise KubectlError(f"service {SERVICE} in {NAMESPACE} has no port named http2 (nor port 80)")


def _load_balancer_address(service: dict[str, Any]) -> str | None:
    for entry in service.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return str(address)
    return None


def _node_address(state: State, environment: Environment) -> str:
    pods = kubectl_json(state, "get", "pods", "-n", NAMESPACE, "-l", POD_SELECTOR, environment=environment).get("items") or []
    running = [pod for pod in pods if pod.get("status", {}).get("phase") == "Running"] or pods
    for pod in running:
        host_ip = pod.get("status", {}).get("hostIP")
        if host_ip:
            return str(host_ip)
    raise KubectlError(f"no pod with label {POD_SELECTOR} in {NAMESPACE} has a hostIP: is the Istio ingress gateway running?")


def run(state: State, environment: Environment) -> StepResult:
    """Resolve the ingress."""
    try:
        service = kubectl_json(state, "get", "service", SERVICE, "-n", NAMESPACE, environment=environment)
    except NotFound:
        raise KubectlError(
            f"service {SERVICE} not found in {NAMESPACE}: is Istio installed, and is this the right cluster?"
        ) from None
    port = _http2_port(service)
    address = _load_balancer_address(service)
    if address:
        host, number, kind = address, port.get("port"), "LoadBalancer"
    else:
        number = port.get("nodePort")
        if not number:
            raise KubectlError(
                f"service {SERVICE} has neither a load balancer address nor a nodePort: "
                "use `kubectl port-forward -n istio-system svc/istio-ingressgateway 8080:80` "
                "and set INGRESS_HOST=127.0.0.1, INGRESS_PORT=8080 in .env"
            )
        host, kind = _node_address(state, environment), "NodePort"
    updates: dict[str, str | None] = {"INGRESS_HOST": host, "INGRESS_PORT": str(number), "INGRESS_KIND": kind}
    origin = ingress_origin(state.with_overrides({"INGRESS_HOST": host, "INGRESS_PORT": str(number)}))
    stale = [keys for keys in (COOKIE_KEYS, TOKEN_KEYS) if state.value(keys.value) and state.value(keys.origin) != origin]
    for keys in stale:  # a credential of another ingress is of no use here, and must not be sent here
        updates.update(dict.fromkeys(keys.all))
    forgotten = f"; forgot the {' and '.join(credential_noun(keys) for keys in stale)} of another ingress" if stale else ""
    return StepResult(updates, f"{host}:{number} ({kind}){forgotten}")


STEP = Step(
    "resolve-ingress",
    run,
    "Find the Istio ingress address and port with kubectl.",
    reads=("KUBECONFIG",),
    writes=("INGRESS_HOST", "INGRESS_PORT", "INGRESS_KIND"),
    clears=(*COOKIE_KEYS.all, *TOKEN_KEYS.all),
    options=(VERBOSE,),
)

if __name__ == "__main__":
    main(STEP)
