"""doctor walks the chain against the sandbox and names each failure the sandbox injects, with its fix and exit code."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from sandbox.control import Sandbox
from sandbox.gateway import API_AUDIENCE
from scripts import expose_nodeport, resolve_model
from scripts.core.step import run_step
from scripts.transport.kube import kubectl
from tests.helpers import Env, here, login_steps

CHECKS = [
    "kubectl", "ingress", "login generation", "session saved", "token claims",
    "session accepted", "InferenceService", "NodePort", "model",
]


def _ready(env: Env, cluster: Sandbox, node_port: bool = False) -> None:
    """Logged in with the Dex session, the model resolved (and exposed when asked)."""
    env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port))
    login_steps(env)
    run_step(resolve_model.STEP, env.file, here())
    if node_port:
        run_step(expose_nodeport.STEP, env.file, here())


def _rows(env: Env) -> tuple[int, dict[str, dict[str, str]], str]:
    result = env.invoke("doctor", "--json")
    rows = json.loads(result.stdout)
    assert [row["check"] for row in rows] == CHECKS
    return result.returncode, {row["check"]: row for row in rows}, result.stderr


def test_a_healthy_chain_passes_every_check(resolved_env: Env, cluster: Sandbox) -> None:
    _ready(resolved_env, cluster, node_port=True)
    assert resolved_env.invoke("login", "--token").returncode == 0
    before = resolved_env.read()
    result = resolved_env.invoke("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0][2:] for line in lines] == CHECKS
    assert all(line.startswith("✓") for line in lines), result.stdout
    assert "oauth2-proxy (sign-in page); Dex login by state=" in result.stdout
    assert "audience istio-ingressgateway.istio-system.svc.cluster.local" in result.stdout
    assert resolved_env.read() == before  # doctor never writes the .env


@pytest.mark.parametrize(
    ("flavor", "saw"),
    [
        ("kf15", "oidc-authservice (no state cookie); Dex login by req="),
        ("kf17", "oidc-authservice (state cookie oidc_state_csrf); Dex login by state="),
    ],
)
def test_the_login_generation_is_named(resolved_env: Env, cluster: Sandbox, flavor: str, saw: str) -> None:
    cluster.configure(flavor=flavor)
    resolved_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port))
    code, rows, _stderr = _rows(resolved_env)
    assert rows["login generation"]["status"] == "ok"
    assert rows["login generation"]["saw"].startswith(saw)
    assert code == 5 and rows["session saved"]["fix"].startswith("run `invoke login`")  # nothing saved yet


def _rbac(_env: Env, cluster: Sandbox) -> None:
    cluster.configure(rbac_deny=True)


def _expired(_env: Env, cluster: Sandbox) -> None:
    cluster.expire_sessions()


def _wrong_audience(env: Env, cluster: Sandbox) -> None:
    env.set(
        AUTH_COOKIE=None,
        AUTH_BEARER=cluster.mint_token(audience=API_AUDIENCE),
        AUTH_BEARER_ORIGIN=f"http://127.0.0.1:{cluster.gateway_port}",
    )


def _not_ready(_env: Env, cluster: Sandbox) -> None:
    cluster.configure(isvc_not_ready="RevisionMissing")


def _node_port_deleted(env: Env, _cluster: Sandbox) -> None:
    state = env.file.read()
    kubectl(state, "delete", "service", state.value("NODE_PORT_SERVICE"), "-n", state.value("MODEL_NAMESPACE"))


def _unknown_host(_env: Env, cluster: Sandbox) -> None:
    cluster.configure(model_domain="example.org")  # the cluster's domain changed: the saved MODEL_HOST is routed nowhere


def _model_server_down(_env: Env, cluster: Sandbox) -> None:
    cluster.configure(faults=[{"path": "/v2/health/live", "status": 503, "count": 1000}])  # Envoy: no healthy upstream


def _no_kubectl_context(env: Env, _cluster: Sandbox) -> None:
    empty = env.path.parent / "empty-kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    env.set(KUBECONFIG=str(empty))


FAULTS: list[tuple[str, Callable[[Env, Sandbox], None], bool, str, str, str, int]] = [
    # name, injection, NodePort exposed, failing check, what it saw, its fix, exit code
    ("rbac", _rbac, False, "model", "may not call models", "ask its owner to add you as a contributor", 9),
    ("expired session", _expired, False, "session accepted", "no longer takes the session cookie", "run `invoke login`", 5),
    ("wrong audience", _wrong_audience, False, "token claims", f"audience {API_AUDIENCE}", "run `invoke login --token`", 5),
    ("model not ready", _not_ready, False, "InferenceService", "not ready: RevisionMissing", "kubectl describe inferenceservice", 9),
    ("node port deleted", _node_port_deleted, True, "NodePort", "sklearn-irisv2-nodeport not found", "run `invoke expose-nodeport`", 8),
    ("unknown host", _unknown_host, False, "InferenceService", "but .env has MODEL_HOST=sklearn-irisv2.", "run `invoke resolve-model`", 3),
    ("no kubectl context", _no_kubectl_context, False, "kubectl", "kubectl config view", "kubectl config use-context", 8),
    # one attempt, not the retry policy's minutes: doctor reports what it finds now, model-info waits
    ("model server down", _model_server_down, False, "model", "failing after 1 attempt(s) in 0s: 503", "try again later", 7),
]


@pytest.mark.parametrize(("name", "inject", "node_port", "check", "saw", "fix", "code"), FAULTS, ids=[fault[0] for fault in FAULTS])
def test_doctor_names_each_injected_failure(
    resolved_env: Env, cluster: Sandbox, name: str, inject: Callable[[Env, Sandbox], None], node_port: bool,
    check: str, saw: str, fix: str, code: int,
) -> None:
    _ready(resolved_env, cluster, node_port)
    inject(resolved_env, cluster)
    returned, rows, stderr = _rows(resolved_env)
    failed = [row["check"] for row in rows.values() if row["status"] == "failed"]
    assert failed and failed[0] == check, (name, rows)
    assert saw in rows[check]["saw"] and fix in rows[check]["fix"], rows[check]
    assert returned == code
    assert stderr.strip().splitlines()[-1].startswith(f"error: {len(failed)} of {len(CHECKS)} checks failed; first {check}: ")


def test_an_unknown_host_is_named_by_the_model_check_too(resolved_env: Env, cluster: Sandbox) -> None:
    _ready(resolved_env, cluster)
    _unknown_host(resolved_env, cluster)
    _code, rows, _stderr = _rows(resolved_env)
    assert rows["model"]["status"] == "failed"
    assert "no route to sklearn-irisv2 for this Host" in rows["model"]["saw"]
    assert "resolve-model" in rows["model"]["fix"]


def test_a_credential_of_another_ingress_is_not_sent(resolved_env: Env, cluster: Sandbox) -> None:
    _ready(resolved_env, cluster)
    resolved_env.set(AUTH_ORIGIN="http://127.0.0.1:1")
    _code, rows, _stderr = _rows(resolved_env)
    assert rows["session accepted"]["status"] == "failed"
    assert "belongs to http://127.0.0.1:1" in rows["session accepted"]["saw"]


@pytest.mark.parametrize(
    ("message", "saw", "fix"),
    [
        ("no session in x: run `invoke login` first", "no session in x", "run `invoke login` first"),
        (  # the cause stays with what went wrong; the fix is the clause that says what to do
            "GET / failed: connection refused after 1 attempt(s) in 0s; check INGRESS_HOST (`invoke resolve-ingress`)",
            "GET / failed: connection refused after 1 attempt(s) in 0s",
            "check INGRESS_HOST (`invoke resolve-ingress`)",
        ),
        ("minify (no current context: set KUBECONFIG)", "minify (no current context: set KUBECONFIG)", ""),  # never inside (…)
        ("the model answered 500: internal error", "the model answered 500: internal error", ""),
    ],
)
def test_a_failure_is_cut_into_what_went_wrong_and_what_to_do(message: str, saw: str, fix: str) -> None:
    from scripts.commands.doctor import split_fix

    assert split_fix(message) == (saw, fix)
