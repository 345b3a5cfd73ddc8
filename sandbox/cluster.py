"""The sandbox's stand-in cluster process: gateway, Kubernetes API and NodePorts on 127.0.0.1.

Run as ``python -m sandbox.cluster FOLDER MODEL_PORT FLAVOR GRPC_PORT MODEL_NAME`` (GRPC_PORT 0: none).  When every
listener is up it writes ``FOLDER/cluster.json`` (its ports) and
``FOLDER/kubeconfig``; it stops on SIGTERM.  The Kubernetes API port also
answers ``/sandbox/...`` control calls that tests use to switch flavor or
inject faults at run time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from .faults import BadSetting, Faulty
from .gateway import MODEL_NAME, Settings, StandInGateway, World, check_settings
from .grpcfront import GrpcFront
from .httpserve import App, Listener, Reply, Request
from .kubeapi import KubeAPI
from .realrun import Plan, load

DRAIN_SECONDS = 5.0  # how long a reset waits for calls still being answered before it returns
KUBECONFIG_TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- name: kfdex-sandbox
  cluster:
    server: http://127.0.0.1:{port}
contexts:
- name: kfdex-sandbox
  context:
    cluster: kfdex-sandbox
    user: kfdex-sandbox
    namespace: kubeflow-user-example-com
current-context: kfdex-sandbox
users:
- name: kfdex-sandbox
  user: {{}}
"""


def free_ports(count: int) -> list[int]:
    """``count`` different ports nobody listens on right now (for servers that bind them by number).

    The probes stay bound until all are chosen: closed one by one, the kernel may hand out the same port twice.
    """
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    """A port nobody listens on right now (for a server that binds it by number)."""
    return free_ports(1)[0]


class Sidecar:
    """What a NodePort to the predictor pod reaches: the model, behind the same auth as the gateway."""

    def __init__(self, gateway: StandInGateway) -> None:
        self.gateway = gateway

    def __call__(self, request: Request) -> Reply:
        if self.gateway.world.authenticated(request):
            return self.gateway.protected(request)
        return self.gateway.unauthenticated(request)


class Control:
    """The test's handle on the sandbox: ``/sandbox/config`` (GET, POST), ``/sandbox/<name>`` (POST); all else to the API."""

    def __init__(self, world: World, api: KubeAPI, switch_gateway: Callable[[bool], None], drain: Callable[[], None]) -> None:
        self.world = world
        self.api = api
        self.switch_gateway = switch_gateway
        self.drain = drain  # waits for the calls still being answered (a slow model's, a client's that left)
        self.posts: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "config": self._config,
            "reset": self._reset,
            "expire-sessions": lambda _asked: _json({"expired": self.world.expire_sessions()}),
            "token": self._token,
            "gateway": self._gateway,
            "drain": self._drain,
        }

    def __call__(self, request: Request) -> Reply:
        if not request.path.startswith("/sandbox/"):
            return self.api(request)
        name = request.path.removeprefix("/sandbox/")
        if name == "config" and request.method == "GET":
            return self._settings()
        handler = self.posts.get(name) if request.method == "POST" else None
        if handler is None:
            return Reply.json_text(404, json.dumps({"error": "no such control"}))
        return handler(json.loads(request.body or b"{}"))

    def _settings(self) -> Reply:
        return _json(asdict(self.world.settings))

    def _config(self, changes: dict[str, Any]) -> Reply:
        try:
            check_settings(changes)
        except BadSetting as error:
            return Reply.json_text(400, json.dumps({"error": str(error)}))
        if "model_not_ready_seconds" in changes:
            changes["model_not_ready_until"] = time.time() + float(changes.pop("model_not_ready_seconds"))
        with self.world.lock:
            settings = asdict(self.world.settings)
            settings.update(changes)
            self.world.settings = Settings(**settings)
        return self._settings()

    def _reset(self, asked: dict[str, Any]) -> Reply:
        with self.world.lock:
            self.world.settings = Settings(flavor=asked.get("flavor", self.world.settings.flavor))
        self.switch_gateway(True)
        self.drain()  # after a reset, the log holds every call made before it
        return self._settings()

    def _token(self, asked: dict[str, Any]) -> Reply:
        audiences = [str(asked["audience"])] if asked.get("audience") else None
        return _json({"token": self.world.issue_token(int(asked.get("seconds") or 3600), audiences)})

    def _gateway(self, asked: dict[str, Any]) -> Reply:
        up = bool(asked.get("up", True))
        self.switch_gateway(up)
        return _json({"up": up})

    def _drain(self, _asked: dict[str, Any]) -> Reply:
        self.drain()  # every call made before this one has its line in the log
        return _json({"drained": True})


def _json(value: object) -> Reply:
    return Reply.json_text(200, json.dumps(value))


def _real_apps(world: World, plan: Plan) -> tuple[App, App, Callable[[Request], Reply | None]]:
    """--components real: the Envoy stand-in as the gateway, its filter chain on the NodePorts and the gRPC side."""
    from .envoy import EnvoyGateway

    stand_in = StandInGateway(world)
    world.signer.issuer = plan.api_url  # the real verifiers fetch discovery and JWKS from it
    envoy = EnvoyGateway(world.flavor, plan, stand_in.routed, stand_in.protected)
    if world.flavor.proxy != "oauth2-proxy":  # no oidc-authservice is built: its stand-in answers the check
        from .authservice import AuthserviceStandIn

        Listener("authservice", AuthserviceStandIn(world, plan), port=plan.proxy_port)
    return envoy, envoy.sidecar, envoy.denial


def _drain(listeners: list[Listener], lock: threading.Lock, control: Listener) -> None:
    """Wait (DRAIN_SECONDS at most) until every listener answers nothing but the control call that asks for this."""
    with lock:
        serving = list(listeners)
    deadline = time.monotonic() + DRAIN_SECONDS
    for listener in serving:
        listener.wait_idle(max(0.0, deadline - time.monotonic()), still_answering=1 if listener is control else 0)


def serve(folder: Path, model_port: int, flavor: str, grpc_port: int = 0, model_name: str = MODEL_NAME) -> None:
    """Start every listener, write cluster.json and the kubeconfig, wait for SIGTERM."""
    log: IO[str] = open(folder / "cluster.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    world = World(model_port, Settings(flavor=flavor), model_name)
    plan = load(folder)
    gateway_app, sidecar_app, denial = (StandInGateway(world), Sidecar(StandInGateway(world)), None)
    if plan is not None:
        gateway_app, sidecar_app, denial = _real_apps(world, plan)
    gateway = Faulty(world, gateway_app)
    sidecar = Faulty(world, sidecar_app)
    listeners: list[Listener] = []
    lock = threading.Lock()

    def open_node_port(to_model: bool, grpc: bool = False) -> int:
        if not to_model or (grpc and not grpc_port):
            return free_port()
        # MLServer's gRPC port (8081) behind the same session check; no routing by :authority there
        h2 = GrpcFront(world, grpc_port, route=False, log=log_line, denial=denial) if grpc else None
        listener = Listener("nodeport-grpc" if grpc else "nodeport", sidecar, log, h2=h2)
        with lock:
            listeners.append(listener)
        return listener.port

    def log_line(line: str) -> None:
        with lock:
            log.write(line + "\n")
            log.flush()

    # Istio serves gRPC (h2c) on the same port as HTTP, routed by :authority
    ingress_h2 = GrpcFront(world, grpc_port, route=True, log=log_line, denial=denial) if grpc_port else None
    gateway_listener = Listener("gateway", gateway, log, envoy=True, h2=ingress_h2)
    gateway_port = gateway_listener.port

    def switch_gateway(up: bool) -> None:
        """Take the gateway off its port (connections refused) or put it back on the same port."""
        nonlocal gateway_listener
        with lock:
            running = gateway_listener in listeners
            if running and not up:
                gateway_listener.stop()
                listeners.remove(gateway_listener)
            elif up and not running:
                gateway_listener = Listener("gateway", gateway, log, port=gateway_port, envoy=True, h2=ingress_h2)
                listeners.append(gateway_listener)

    api = KubeAPI(world, gateway_port, open_node_port, model_grpc=bool(grpc_port))
    drain = lambda: _drain(listeners, lock, api_listener)  # noqa: E731 - the API's own listener is bound below
    api_listener = Listener("kube-api", Control(world, api, switch_gateway, drain), log, port=plan.api_port if plan else 0)
    listeners += [gateway_listener, api_listener]
    (folder / "kubeconfig").write_text(KUBECONFIG_TEMPLATE.format(port=api_listener.port))
    info = {
        "pid": os.getpid(),
        "gateway_port": gateway_listener.port,
        "api_port": api_listener.port,
        "model_port": model_port,
        "grpc_port": grpc_port,
        "flavor": flavor,
    }
    temporary = folder / "cluster.json.tmp"
    temporary.write_text(json.dumps(info))
    os.replace(temporary, folder / "cluster.json")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    with lock:
        for listener in listeners:
            listener.stop()
    log.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
