"""resolve-ingress and expose-nodeport through the real kubectl against the sandbox's API."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from scripts import expose_nodeport, resolve_ingress
from scripts.core.errors import KubectlError
from scripts.core.step import run_step
from tests.helpers import Env, here


def test_resolve_ingress_uses_the_http2_node_port(sandbox_env: Env, cluster: Sandbox) -> None:
    result = run_step(resolve_ingress.STEP, sandbox_env.file, here())
    state = sandbox_env.read()
    assert (state["INGRESS_HOST"], state["INGRESS_PORT"], state["INGRESS_KIND"]) == (
        "127.0.0.1",
        str(cluster.gateway_port),
        "NodePort",
    )
    assert result.summary == f"127.0.0.1:{cluster.gateway_port} (NodePort)"


@pytest.mark.usefixtures("cluster")
def test_expose_nodeport_finds_port_8080_reuses_and_deletes(sandbox_env: Env) -> None:
    run_step(expose_nodeport.STEP, sandbox_env.file, here(), delete=True)  # whatever other tests left
    first = run_step(expose_nodeport.STEP, sandbox_env.file, here())
    port = sandbox_env.read()["NODE_PORT"]
    assert "exposed" in first.summary and "8080" in first.summary
    second = run_step(expose_nodeport.STEP, sandbox_env.file, here())
    assert sandbox_env.read()["NODE_PORT"] == port
    assert "reused" in second.summary
    gone = run_step(expose_nodeport.STEP, sandbox_env.file, here(), delete=True)
    assert "deleted" in gone.summary
    assert "NODE_PORT" not in sandbox_env.read()
    again = run_step(expose_nodeport.STEP, sandbox_env.file, here(), delete=True)
    assert again.skipped


def test_unknown_model_is_explained(sandbox_env: Env) -> None:
    sandbox_env.set(MODEL_NAME="nope")
    with pytest.raises(
        KubectlError, match=r"no pod labelled serving.kserve.io/inferenceservice=nope in kubeflow-user-example-com"
    ):
        run_step(expose_nodeport.STEP, sandbox_env.file, here())


def test_kubectl_missing_is_explained(sandbox_env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KubectlError, match=r"kubectl is not on PATH: install it"):
        run_step(resolve_ingress.STEP, sandbox_env.file, here())


def test_kubeconfig_without_a_context_is_explained(sandbox_env: Env, tmp_path: Path) -> None:
    empty = tmp_path / "kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    sandbox_env.set(KUBECONFIG=str(empty))
    with pytest.raises(
        KubectlError,
        match=r"failed: The connection to the server localhost:8080 was refused.* \(kubectl has no cluster configured",
    ):
        run_step(resolve_ingress.STEP, sandbox_env.file, here())


def test_a_hung_kubectl_and_its_children_end_at_the_time_limit(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A kubectl (or an auth plugin it started) that never ends: its whole process group goes at the limit."""
    from scripts.core.state import State
    from scripts.transport import kube

    child_pid = tmp_path / "child.pid"
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {child_pid}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setattr(kube, "KUBECTL_TIMEOUT_SECONDS", 1)
    with pytest.raises(KubectlError, match=r"did not finish in 1s"):
        kube.kubectl(State(env.path, {}), "get", "pods")
    child = int(child_pid.read_text())
    for _ in range(100):  # a killed child is reaped by init soon after; give it that moment
        if not _running(child):
            break
        time.sleep(0.05)
    assert not _running(child), "kubectl's child outlived its time limit"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("audience", ["a\x00b", "a\x07b", "two audiences", "a,b"])
def test_a_token_audience_kubectl_cannot_take_is_bad_input(tmp_path: Path, audience: str) -> None:
    """A NUL in TOKEN_AUDIENCE once reached kubectl's argv and crashed the call (exit 1): it is refused first."""
    from scripts.core.errors import UsageError
    from scripts.core.state import State
    from scripts.create_token import _request

    with pytest.raises(UsageError, match="must be one audience"):
        _request(State(tmp_path / ".env", {"MODEL_NAMESPACE": "ns", "TOKEN_AUDIENCE": audience}), None, None)
