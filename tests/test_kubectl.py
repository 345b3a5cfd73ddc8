"""resolve-ingress and expose-nodeport through the real kubectl against the sandbox's API."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.control import Sandbox
from scripts import expose_nodeport, resolve_ingress
from scripts.errors import KubectlError
from scripts.step import run_step
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
