"""resolve-model and model-info against the sandbox: the isvc's URL through real kubectl, Istio's Host routing, V2 health."""

from __future__ import annotations

import json

import pytest

from sandbox.control import Sandbox
from scripts import infer, model_info, resolve_model
from scripts.core.errors import ConfigError, ModelError, UsageError
from scripts.core.step import run_step
from tests.helpers import Env, here, login_steps

MODEL_HOST = "sklearn-irisv2.kubeflow-user-example-com.example.com"


def _logged_in(env: Env, cluster: Sandbox) -> None:
    env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port))
    login_steps(env)


def test_resolve_model_writes_the_host_of_the_isvc_url(resolved_env: Env) -> None:
    result = resolved_env.invoke("resolve-model")
    assert result.returncode == 0, result.stderr
    assert f"✓ resolve-model    {MODEL_HOST} (by Host); ready" in result.stderr
    written = resolved_env.read()
    assert written["MODEL_HOST"] == MODEL_HOST and "MODEL_PATH" not in written


def test_resolve_model_reports_why_the_model_is_not_ready(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(isvc_not_ready="RevisionMissing")
    result = run_step(resolve_model.STEP, resolved_env.file, here())
    assert "not ready: RevisionMissing" in result.summary
    assert resolved_env.read()["MODEL_HOST"] == MODEL_HOST  # still routed to: the keys are written


def test_resolve_model_names_a_missing_isvc(resolved_env: Env) -> None:
    resolved_env.set(MODEL_NAME="nope")
    result = resolved_env.invoke("resolve-model")
    assert result.returncode == 8
    assert "error: no InferenceService nope in kubeflow-user-example-com: check MODEL_NAME and MODEL_NAMESPACE" in result.stderr


def test_path_based_routing_writes_the_prefix_and_infer_uses_it(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(path_routing=True)
    _logged_in(resolved_env, cluster)
    run_step(resolve_model.STEP, resolved_env.file, here())
    written = resolved_env.read()
    assert written["MODEL_HOST"] == f"127.0.0.1:{cluster.gateway_port}"
    assert written["MODEL_PATH"] == "/serving/kubeflow-user-example-com/sklearn-irisv2"
    result = run_step(infer.STEP, resolved_env.file, here(), payload="iris")
    assert result.output == "predict = [1, 1]" and "ingress" in result.summary
    resolved_env.set(MODEL_PATH=None)  # without the prefix the ingress host has no route to the model
    with pytest.raises(ModelError, match=r"no route to sklearn-irisv2 for this Host .*run `invoke resolve-model`"):
        run_step(infer.STEP, resolved_env.file, here(), payload="iris")


def test_an_unknown_host_gets_istios_empty_404_and_the_fix(resolved_env: Env, cluster: Sandbox) -> None:
    _logged_in(resolved_env, cluster)
    resolved_env.set(MODEL_HOST="sklearn-irisv2.elsewhere.example.com")
    result = resolved_env.invoke("infer")
    assert result.returncode == 9
    assert "Istio's empty 404): run `invoke resolve-model`" in result.stderr
    run_step(resolve_model.STEP, resolved_env.file, here())
    assert resolved_env.invoke("infer").returncode == 0


def test_login_pages_answer_on_any_host(resolved_env: Env, cluster: Sandbox) -> None:
    """Only the model is routed by Host: the login works whatever MODEL_HOST says."""
    resolved_env.set(MODEL_HOST="not-a-model.example.com")
    _logged_in(resolved_env, cluster)
    assert resolved_env.read()["AUTH_COOKIE"]


def test_infer_without_a_route_suggests_resolve_model(resolved_env: Env, cluster: Sandbox) -> None:
    _logged_in(resolved_env, cluster)
    with pytest.raises(ConfigError, match=r"run `invoke expose-nodeport` first, or `invoke resolve-model`"):
        run_step(infer.STEP, resolved_env.file, here())


@pytest.mark.parametrize("prefix", ["serving/x", "/a/../b", "/a?b=1", "/a b"])
def test_a_model_path_that_is_not_a_path_is_refused(resolved_env: Env, cluster: Sandbox, prefix: str) -> None:
    _logged_in(resolved_env, cluster)
    resolved_env.set(MODEL_HOST=MODEL_HOST, MODEL_PATH=prefix)
    with pytest.raises(UsageError, match=r"MODEL_PATH=.* is not a URL path such as /serving/NAMESPACE/NAME"):
        run_step(infer.STEP, resolved_env.file, here())


def test_model_info_prints_the_metadata_after_empty_health_answers(resolved_env: Env, cluster: Sandbox) -> None:
    _logged_in(resolved_env, cluster)
    run_step(resolve_model.STEP, resolved_env.file, here())
    result = resolved_env.invoke("model-info")
    assert result.returncode == 0, result.stderr
    assert "server live and ready, model ready" in result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["name"] == "sklearn-irisv2"
    assert set(lines) == {"name", "versions", "platform", "inputs", "outputs"}
    raw = resolved_env.invoke("model-info", "--json")
    assert json.loads(raw.stdout)["name"] == "sklearn-irisv2"


def test_model_info_names_an_rbac_denial(resolved_env: Env, cluster: Sandbox) -> None:
    _logged_in(resolved_env, cluster)
    run_step(resolve_model.STEP, resolved_env.file, here())
    cluster.configure(rbac_deny=True)
    with pytest.raises(ModelError, match=r"403 .*RBAC: access denied.* may not call models"):
        run_step(model_info.STEP, resolved_env.file, here())


def test_infer_check_checks_first(resolved_env: Env, cluster: Sandbox) -> None:
    _logged_in(resolved_env, cluster)
    run_step(resolve_model.STEP, resolved_env.file, here())
    result = resolved_env.invoke("infer", "--check")
    assert result.returncode == 0, result.stderr
    assert "check: sklearn-irisv2 (ingress, cookie): server live and ready, model ready" in result.stderr
    assert result.stdout.strip() == "predict = [1, 1]"
    resolved_env.set(MODEL_HOST="unknown.example.com")
    failed = resolved_env.invoke("infer", "--check")
    assert failed.returncode == 9 and "check:" not in failed.stderr
