"""A small Kubernetes API that the real kubectl talks to.

It serves what this tool's kubectl commands need and nothing more: version
and discovery, pods listed by label selector, services get/list/create/delete,
and ServiceAccount tokens (``kubectl create token``).  Objects are plain JSON
as the real API server returns them.  A NodePort service that selects the
predictor pod opens a real port that reaches MLServer through the same auth
check as the gateway (the pod's Istio sidecar).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .gateway import API_AUDIENCE, DEMO_LOGIN, MODEL_NAMESPACE, World
from .httpserve import Reply, Request
from .protowire import token_request_spec

ISTIO_NAMESPACE = "istio-system"
SERVICE_ACCOUNTS = ("default", "default-editor", "default-viewer")

_RESOURCES = [
    {
        "name": "namespaces",
        "singularName": "namespace",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["get", "list"],
        "shortNames": ["ns"],
    },
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"], "shortNames": ["po"]},
    {
        "name": "services",
        "singularName": "service",
        "namespaced": True,
        "kind": "Service",
        "verbs": ["create", "delete", "get", "list"],
        "shortNames": ["svc"],
    },
    {
        "name": "serviceaccounts",
        "singularName": "serviceaccount",
        "namespaced": True,
        "kind": "ServiceAccount",
        "verbs": ["get", "list"],
        "shortNames": ["sa"],
    },
    {
        "name": "serviceaccounts/token",
        "singularName": "",
        "namespaced": True,
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
        "verbs": ["create"],
    },
]


def _status(code: int, reason: str, message: str) -> Reply:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return Reply.json_text(code, json.dumps(body))


def _ok(body: dict[str, Any], code: int = 200) -> Reply:
    return Reply.json_text(code, json.dumps(body))


def _meta(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "1",
        "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "labels": labels or {},
    }


def _pod(name: str, namespace: str, labels: dict[str, str], containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, namespace, labels),
        "spec": {"containers": containers, "nodeName": "sandbox-node"},
        "status": {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1"},
    }


# what kubectl asks first: the server's version and the API groups it serves
_DISCOVERY: dict[str, dict[str, object]] = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "serving.kserve.io",
                "versions": [{"groupVersion": "serving.kserve.io/v1beta1", "version": "v1beta1"}],
                "preferredVersion": {"groupVersion": "serving.kserve.io/v1beta1", "version": "v1beta1"},
            },
            {
                "name": "kubeflow.org",
                "versions": [{"groupVersion": "kubeflow.org/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "kubeflow.org/v1", "version": "v1"},
            },
        ],
    },
    # Kubeflow's Profile: a cluster-scoped object per user, named as the user's namespace
    "/apis/kubeflow.org/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "kubeflow.org/v1",
        "resources": [
            {"name": "profiles", "singularName": "profile", "namespaced": False, "kind": "Profile", "verbs": ["get", "list"]}
        ],
    },
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": _RESOURCES},
    "/apis/serving.kserve.io/v1beta1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "serving.kserve.io/v1beta1",
        "resources": [
            {
                "name": "inferenceservices",
                "singularName": "inferenceservice",
                "namespaced": True,
                "kind": "InferenceService",
                "verbs": ["get", "list"],
                "shortNames": ["isvc"],
                "categories": ["all"],
            }
        ],
    },
}

def _profile() -> dict[str, Any]:
    """The demo user's Kubeflow Profile, as the profile controller keeps it (owner → namespace)."""
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "Profile",
        "metadata": {"name": MODEL_NAMESPACE},
        "spec": {"owner": {"kind": "User", "name": DEMO_LOGIN}},
    }


class KubeAPI:
    """The Kubernetes API app; ``open_node_port(to_model[, grpc])`` allocates a NodePort (listening when it reaches the model).

    ``grpc`` is True for the model server's gRPC port (8081), False for its HTTP port (8080).
    """

    def __init__(self, world: World, gateway_port: int, open_node_port: Callable[..., int], model_grpc: bool = True) -> None:
        self.world = world
        self.predictor_pod = f"{world.model_name}-predictor-00001-deployment-5d8f9c7b6-x2x7q"
        self.lock = threading.Lock()
        self.open_node_port = open_node_port
        self.gateway_port = gateway_port
        self.pods: dict[str, dict[str, dict[str, Any]]] = {ISTIO_NAMESPACE: {}, MODEL_NAMESPACE: {}}
        self.services: dict[str, dict[str, dict[str, Any]]] = {ISTIO_NAMESPACE: {}, MODEL_NAMESPACE: {}}
        gateway_pod = _pod(
            "istio-ingressgateway-7f8b9c6d5-abcde",
            ISTIO_NAMESPACE,
            {"app": "istio-ingressgateway", "istio": "ingressgateway", "pod-template-hash": "7f8b9c6d5"},
            [
                {
                    "name": "istio-proxy",
                    "ports": [{"containerPort": 8080, "name": "http2"}, {"containerPort": 15021, "name": "status-port"}],
                }
            ],
        )
        self.pods[ISTIO_NAMESPACE][gateway_pod["metadata"]["name"]] = gateway_pod
        predictor_labels = {
            "app": f"{self.world.model_name}-predictor-00001",
            "component": "predictor",
            "pod-template-hash": "5d8f9c7b6",
            "serving.kserve.io/inferenceservice": self.world.model_name,
            "serving.knative.dev/revision": f"{self.world.model_name}-predictor-00001",
        }
        # queue-proxy first on purpose: the model's port must be found by number, not as port-1
        predictor = _pod(
            self.predictor_pod,
            MODEL_NAMESPACE,
            predictor_labels,
            [
                {
                    "name": "queue-proxy",
                    "ports": [
                        {"containerPort": 8022, "name": "http-queueadm", "protocol": "TCP"},
                        {"containerPort": 9090, "name": "http-autometric", "protocol": "TCP"},
                        {"containerPort": 9091, "name": "http-usermetric", "protocol": "TCP"},
                        {"containerPort": 8012, "name": "queue-port", "protocol": "TCP"},
                    ],
                },
                {
                    "name": "kserve-container",
                    "ports": [
                        {"containerPort": 8080, "name": "user-port", "protocol": "TCP"},
                        # MLServer's gRPC; a model server the sandbox was put in front of serves none through it
                        *([{"containerPort": 8081, "name": "grpc", "protocol": "TCP"}] if model_grpc else []),
                    ],
                },
            ],
        )
        self.pods[MODEL_NAMESPACE][self.predictor_pod] = predictor
        ingress = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("istio-ingressgateway", ISTIO_NAMESPACE, {"istio": "ingressgateway"}),
            "spec": {
                "type": "NodePort",
                "selector": {"istio": "ingressgateway"},
                "ports": [
                    {"name": "status-port", "port": 15021, "targetPort": 15021, "nodePort": 30521, "protocol": "TCP"},
                    {"name": "http2", "port": 80, "targetPort": 8080, "nodePort": gateway_port, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "nodePort": 30443, "protocol": "TCP"},
                ],
            },
            "status": {"loadBalancer": {}},
        }
        self.services[ISTIO_NAMESPACE]["istio-ingressgateway"] = ingress

    def __call__(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        if path in _DISCOVERY:
            return _ok(_DISCOVERY[path])
        if path == "/apis/kubeflow.org/v1/profiles":
            return _ok({"apiVersion": "kubeflow.org/v1", "kind": "ProfileList", "metadata": {}, "items": [_profile()]})
        if path == "/.well-known/openid-configuration":  # the service account issuer, as the API server serves it
            return _ok(self.world.signer.discovery(f"http://{request.headers.get('host', '')}"))
        if path == "/openid/v1/jwks":
            return _ok(self.world.signer.jwks())
        isvc = re.fullmatch(r"/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices(?:/([^/]+))?", path)
        if isvc:
            return self._inference_services(*isvc.groups())
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?(?:/([^/]+))?", path)
        if not match:
            return _status(404, "NotFound", "the server could not find the requested resource")
        namespace, resource, name, sub = match.groups()
        if resource == "pods":
            return self._pods(request, namespace, name)
        if resource == "services":
            return self._services(request, namespace, name)
        if resource == "serviceaccounts":
            return self._service_accounts(request, namespace, name, sub)
        return _status(404, "NotFound", "the server could not find the requested resource")

    def _service_accounts(self, request: Request, namespace: str, name: str | None, sub: str | None) -> Reply:
        if sub == "token" and request.method == "POST":
            return self._token(request, namespace, name)
        if name and request.method == "GET":
            if name not in SERVICE_ACCOUNTS:
                return _status(404, "NotFound", f'serviceaccounts "{name}" not found')
            return _ok({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace)})
        return _status(404, "NotFound", "the server could not find the requested resource")

    # inference services --------------------------------------------------------------

    def _inference_services(self, namespace: str, name: str | None) -> Reply:
        found = [self.inference_service()] if namespace == MODEL_NAMESPACE else []
        if name is None:
            return _ok({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceServiceList", "metadata": {}, "items": found})
        if not found or name != self.world.model_name:
            return _status(404, "NotFound", f'inferenceservices.serving.kserve.io "{name}" not found')
        return _ok(found[0])

    def inference_service(self) -> dict[str, Any]:
        """The sandbox's InferenceService as KServe reports it: status.url by Host, or by path when path routing is on."""
        settings = self.world.settings
        if settings.path_routing:
            url = f"http://127.0.0.1:{self.gateway_port}/serving/{MODEL_NAMESPACE}/{self.world.model_name}"
        else:
            url = f"http://{self.world.model_host}"
        reason = settings.isvc_not_ready
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def condition(kind: str, failing: bool) -> dict[str, str]:
            entry = {"type": kind, "status": "False" if failing else "True", "lastTransitionTime": stamp}
            if failing:
                entry.update(reason=reason, message=f"Revision \"{self.world.model_name}-predictor-00001\" failed: {reason}")
            return entry

        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {**_meta(self.world.model_name, MODEL_NAMESPACE), "uid": "5b1f6c1e-0000-4000-8000-000000000001"},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2", "runtime": "kserve-mlserver"}}},
            "status": {
                "url": url,
                "address": {"url": f"http://{self.world.model_name}.{MODEL_NAMESPACE}.svc.cluster.local"},
                "conditions": [
                    condition("IngressReady", False),
                    condition("PredictorReady", bool(reason)),
                    condition("Ready", bool(reason)),
                ],
            },
        }

    # pods --------------------------------------------------------------------------

    def _pods(self, request: Request, namespace: str, name: str | None) -> Reply:
        pods = self.pods.get(namespace, {})
        if name:
            if name not in pods:
                return _status(404, "NotFound", f'pods "{name}" not found')
            return _ok(pods[name])
        selected = [pod for pod in pods.values() if _matches(request.query.get("labelSelector", ""), pod["metadata"]["labels"])]
        return _ok({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": selected})

    # services ---------------------------------------------------------------------

    def _services(self, request: Request, namespace: str, name: str | None) -> Reply:
        with self.lock:
            services = self.services.setdefault(namespace, {})
            if request.method == "GET" and name:
                if name not in services:
                    return _status(404, "NotFound", f'services "{name}" not found')
                return _ok(services[name])
            if request.method == "GET":
                return _ok(
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceList",
                        "metadata": {"resourceVersion": "1"},
                        "items": list(services.values()),
                    }
                )
            if request.method == "DELETE" and name:
                if services.pop(name, None) is None:
                    return _status(404, "NotFound", f'services "{name}" not found')
                return _ok(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {"name": name, "kind": "services"},
                    }
                )
            if request.method == "POST" and not name:
                return self._create_service(namespace, services, json.loads(request.body or b"{}"))
        return _status(405, "MethodNotAllowed", f"{request.method} is not supported here")

    def _create_service(self, namespace: str, services: dict[str, dict[str, Any]], body: dict[str, Any]) -> Reply:
        name = body.get("metadata", {}).get("name", "")
        if not name:
            return _status(422, "Invalid", "Service is invalid: metadata.name: Required value")
        if name in services:
            return _status(409, "AlreadyExists", f'services "{name}" already exists')
        spec = body.setdefault("spec", {})
        selected = [
            pod
            for pod in self.pods.get(namespace, {}).values()
            if _selector_matches(spec.get("selector") or {}, pod["metadata"]["labels"])
        ]
        reaches_model = any(pod["metadata"]["name"] == self.predictor_pod for pod in selected)
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec.get("type") == "NodePort":
                target = str(port.get("targetPort"))
                wants_model = reaches_model and target in ("8080", "8081")
                port["nodePort"] = self.open_node_port(wants_model, target == "8081")
        spec.setdefault("clusterIP", "10.96.0.42")
        body["metadata"].update({k: v for k, v in _meta(name, namespace).items() if k not in body["metadata"] or k == "uid"})
        body.setdefault("status", {"loadBalancer": {}})
        body["apiVersion"], body["kind"] = "v1", "Service"
        services[name] = body
        return _ok(body, 201)

    # tokens ------------------------------------------------------------------------

    def _token(self, request: Request, namespace: str, name: str | None) -> Reply:
        if name not in SERVICE_ACCOUNTS:
            return _status(404, "NotFound", f'serviceaccounts "{name}" not found')
        if "protobuf" in request.headers.get("content-type", ""):
            spec = token_request_spec(request.body)
        else:
            spec = json.loads(request.body or b"{}").get("spec", {})
        seconds = int(spec.get("expirationSeconds") or 3600)
        audiences = spec.get("audiences") or []
        # a token for another audience (the API server's, by default) is never accepted by the gateway
        token = self.world.issue_token(seconds, audiences or [API_AUDIENCE], subject=name)
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        answer = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"audiences": audiences, "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": expiry},
        }
        return _ok(answer, 201)


def _matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: ``a=b,c==d,e!=f,g`` (what kubectl -l sends)."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def _selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())
