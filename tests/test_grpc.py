"""``infer --protocol grpc``: the V2 gRPC service through the sandbox's ingress and NodePort, with the REST path's rules.

The sandbox's gateway answers gRPC (h2c) on its HTTP port as Istio does: the
flavor's session check first (an HTTP 302/401/403 with no gRPC status without
a session), then routing by ``:authority``; the gRPC NodePort reaches MLServer's
gRPC port behind the same check.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from unittest import mock

import pytest

from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from scripts.core.errors import ExitCode, UsageError
from scripts.model import grpcv2
from tests.helpers import SPACED, Env

MODEL_HOST = "sklearn-irisv2.kubeflow-user-example-com.example.com"
ALL = sorted(FLAVORS)
TOKENS = [name for name in ALL if FLAVORS[name].accepts_bearer]


@pytest.fixture
def ingress(sandbox_env: Env, cluster: Sandbox) -> Env:
    """A .env that calls the model through the sandbox's ingress (MODEL_HOST as :authority)."""
    sandbox_env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port), MODEL_HOST=MODEL_HOST)
    return sandbox_env


def _login(env: Env, token: bool = False) -> None:
    login = env.invoke("login", *(["--token"] if token else []))
    assert login.returncode == 0, login.stderr


def _grpc(env: Env, *arguments: str) -> subprocess.CompletedProcess[str]:
    return env.invoke("infer", "--protocol", "grpc", *arguments)


@pytest.mark.parametrize("flavor", ALL)
def test_grpc_with_a_cookie_through_the_ingress_and_the_node_port(ingress: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    _login(ingress)
    through_ingress = _grpc(ingress)
    assert through_ingress.returncode == 0, through_ingress.stderr
    assert through_ingress.stdout.strip() == "predict = [1, 1]"
    assert "(v2 over gRPC, ingress, cookie) OK in" in through_ingress.stderr

    expose = ingress.invoke("expose-nodeport")
    assert expose.returncode == 0, expose.stderr
    assert re.search(r"gRPC 8081 → nodePort \d+", expose.stderr)
    assert ingress.read()["NODE_PORT_GRPC"] not in ("", ingress.read()["NODE_PORT"])
    through_node_port = _grpc(ingress)
    assert through_node_port.returncode == 0, through_node_port.stderr
    assert through_node_port.stdout.strip() == "predict = [1, 1]"
    assert "(v2 over gRPC, nodePort, cookie) OK in" in through_node_port.stderr


@pytest.mark.parametrize("flavor", TOKENS)
def test_grpc_with_a_token_through_the_ingress_and_the_node_port(ingress: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    _login(ingress, token=True)
    for route in ("ingress", "nodePort"):
        if route == "nodePort":
            assert ingress.invoke("expose-nodeport").returncode == 0
        called = _grpc(ingress, "--auth", "token")
        assert called.returncode == 0, called.stderr
        assert called.stdout.strip() == "predict = [1, 1]"
        assert f"(v2 over gRPC, {route}, token) OK in" in called.stderr


def test_rest_and_grpc_answer_the_same(ingress: Env) -> None:
    _login(ingress)
    payloads = [
        "iris",
        json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}),
        json.dumps({"inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP32", "data": [[7.7, 3.0, 6.1, 2.3], [5.0, 3.4, 1.5, 0.2], [6.4, 2.9, 4.3, 1.3]]}]}),
    ]
    for payload in payloads:
        rest = ingress.invoke("infer", "--payload", payload, "--json")
        grpc = _grpc(ingress, "--payload", payload, "--json")
        assert rest.returncode == grpc.returncode == 0, rest.stderr + grpc.stderr
        rest_answer, grpc_answer = json.loads(rest.stdout), json.loads(grpc.stdout)
        for answer in (rest_answer, grpc_answer):
            answer.pop("id", None)  # a fresh request id each call
        assert grpc_answer == rest_answer
        assert _grpc(ingress, "--payload", payload).stdout == ingress.invoke("infer", "--payload", payload).stdout


@pytest.mark.parametrize("flavor", ALL)
def test_without_a_session_or_with_an_expired_one_it_says_to_log_in(ingress: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    _login(ingress)
    cluster.expire_sessions()  # the gateway no longer knows it: its HTTP/2 answer is a login (302, 401 or 403)
    called = _grpc(ingress)
    assert called.returncode == ExitCode.SESSION, called.stderr
    assert called.stderr.strip().splitlines() == [
        "error: the gateway sent the call to a login: the session is expired or not valid here; run `invoke login`"
    ]
    ingress.set(AUTH_COOKIE=None)
    none = _grpc(ingress)
    assert none.returncode == ExitCode.SESSION and "run `invoke login`" in none.stderr and "Traceback" not in none.stderr


def test_an_unknown_authority_is_a_404_naming_model_host(ingress: Env) -> None:
    _login(ingress)
    ingress.set(MODEL_HOST="other.kubeflow-user-example-com.example.com")
    called = _grpc(ingress)
    assert called.returncode == ExitCode.MODEL
    assert ":authority other.kubeflow-user-example-com.example.com (MODEL_HOST)" in called.stderr
    assert "HTTP 404" in called.stderr


def test_a_model_not_ready_is_retried_visibly_until_it_loads(ingress: Env, cluster: Sandbox) -> None:
    ingress.set(RETRY_ATTEMPTS="100000", RETRY_DEADLINE="30", **SPACED)
    _login(ingress)
    cluster.configure(model_not_ready_seconds=0.5)
    called = _grpc(ingress)
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip() == "predict = [1, 1]"
    assert "retry: gRPC ModelInfer → UNAVAILABLE: Model sklearn-irisv2 is not ready yet.; attempt 2 of 100000" in called.stderr
    assert re.search(r"OK in \d+ ms with \d+ retr", called.stderr)


def test_a_model_not_ready_gives_up_at_the_deadline(ingress: Env, cluster: Sandbox) -> None:
    ingress.set(**SPACED)
    _login(ingress)
    cluster.configure(model_not_ready_seconds=60)
    called = _grpc(ingress, "--attempts", "1000000", "--deadline", "0.5")
    assert called.returncode == ExitCode.GATEWAY
    assert called.stderr.strip().splitlines()[-1].startswith("error: gRPC ModelInfer still failing after ")
    assert "raise RETRY_ATTEMPTS / RETRY_DEADLINE" in called.stderr


def test_the_credential_is_not_sent_to_another_ingress(ingress: Env) -> None:
    _login(ingress)
    ingress.set(INGRESS_HOST="localhost")
    called = _grpc(ingress)
    assert called.returncode == ExitCode.SESSION
    assert "belongs to http://127.0.0.1:" in called.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "NODE_PORT_GRPC is not set in {path}: run `invoke expose-nodeport` first, or `invoke resolve-model`"),
        ({"NODE_PORT": "30080"}, "NODE_PORT_GRPC is not set in {path}: expose-nodeport found no gRPC port on the predictor"),
    ],
)
def test_a_missing_grpc_node_port_says_whether_expose_nodeport_ran(tmp_path, settings: dict[str, str], message: str) -> None:
    """A predictor without a gRPC port (a model server the sandbox was put in front of) gets no NODE_PORT_GRPC."""
    from scripts.core.errors import ConfigError
    from scripts.core.state import EnvFile
    from scripts.model.routing import route

    env_file = EnvFile(tmp_path / ".env")
    env_file.update({"INGRESS_HOST": "127.0.0.1", "INGRESS_PORT": "31380", **settings})
    with pytest.raises(ConfigError) as refused:
        route(env_file.read(), port_key="NODE_PORT_GRPC")
    assert str(refused.value.message).startswith(message.format(path=env_file.path))


def test_a_v1_payload_or_unknown_protocol_is_refused(ingress: Env) -> None:
    _login(ingress)
    v1 = _grpc(ingress, "--payload", "iris-v1")
    assert v1.returncode == ExitCode.USAGE and "V2 payloads only" in v1.stderr
    other = ingress.invoke("infer", "--protocol", "soap")
    assert other.returncode == ExitCode.USAGE and "--protocol 'soap': use one of rest, grpc" in other.stderr


def test_without_the_extra_the_message_names_it(ingress: Env) -> None:
    _login(ingress)
    with mock.patch.dict(sys.modules, {"tritonclient.grpc": None}):
        with pytest.raises(UsageError, match=r"needs the optional extra grpc .*kfdex\[grpc\]"):
            grpcv2.protos()
        called = _grpc(ingress)
    assert called.returncode == ExitCode.USAGE
    assert "kfdex[grpc]" in called.stderr


def test_payload_and_answer_conversions() -> None:
    _grpc_module, pb, _stubs = grpcv2.protos()
    body = {
        "parameters": {"content_type": "np", "flag": True, "n": 3, "x": 0.5},
        "inputs": [
            {"name": "a", "shape": [2, 2], "datatype": "INT64", "data": [[1, 2], [3, 4]]},
            {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["hé"]},
        ],
    }
    request = grpcv2.to_request("m", body, pb)
    assert request.model_name == "m"
    assert list(request.inputs[0].contents.int64_contents) == [1, 2, 3, 4]
    assert list(request.inputs[1].contents.bytes_contents) == ["hé".encode()]
    assert request.parameters["flag"].bool_param is True and request.parameters["n"].int64_param == 3
    assert request.parameters["x"].double_param == 0.5 and request.parameters["content_type"].string_param == "np"
    with pytest.raises(UsageError, match="FP16"):
        grpcv2.to_request("m", {"inputs": [{"name": "h", "shape": [1], "datatype": "FP16", "data": [1.0]}]}, pb)

    response = pb.ModelInferResponse(model_name="m", id="1")
    response.outputs.add(name="p", datatype="INT64", shape=[2, 1]).contents.int64_contents.extend([1, 1])
    response.outputs.add(name="s", datatype="FP32", shape=[2])
    response.raw_output_contents.extend([b"", b"\x00\x00\x80\x3f\x00\x00\x00\x40"])  # raw wins when given: 1.0, 2.0
    answer = grpcv2.to_json(response)
    assert answer["outputs"][1]["data"] == [1.0, 2.0]
    assert answer["model_name"] == "m" and answer["outputs"][1]["shape"] == [2]


def test_model_info_over_grpc_through_the_ingress_and_the_node_port(ingress: Env) -> None:
    _login(ingress)
    rest = ingress.invoke("model-info", "--json")
    assert rest.returncode == 0, rest.stderr
    through_ingress = ingress.invoke("model-info", "--protocol", "grpc", "--json")
    assert through_ingress.returncode == 0, through_ingress.stderr
    assert "(gRPC, ingress, cookie): server live and ready, model ready" in through_ingress.stderr
    assert json.loads(through_ingress.stdout)["name"] == json.loads(rest.stdout)["name"] == "sklearn-irisv2"
    assert ingress.invoke("expose-nodeport").returncode == 0
    through_node_port = ingress.invoke("model-info", "--protocol", "grpc")
    assert through_node_port.returncode == 0, through_node_port.stderr
    assert "(gRPC, nodePort, cookie)" in through_node_port.stderr and "sklearn-irisv2" in through_node_port.stdout


def test_model_info_over_grpc_without_a_session_says_to_log_in(ingress: Env, cluster: Sandbox) -> None:
    _login(ingress)
    cluster.expire_sessions()
    ran = ingress.invoke("model-info", "--protocol", "grpc")
    assert ran.returncode == ExitCode.SESSION and "run `invoke login`" in ran.stderr and "Traceback" not in ran.stderr


def test_load_over_grpc_reports_like_rest_and_stops_when_the_session_ends(ingress: Env, cluster: Sandbox) -> None:
    _login(ingress)
    ran = ingress.invoke("load", "--protocol", "grpc", "--requests", "200", "--concurrency", "4", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["requests"] == 200 and summary["errors"] == {}
    assert summary["latency_ms"]["min"] <= summary["latency_ms"]["p50"] <= summary["latency_ms"]["max"]
    cluster.expire_sessions()
    refused = ingress.invoke("load", "--protocol", "grpc", "--requests", "50", "--json")
    assert refused.returncode == ExitCode.SESSION and "run `invoke login`" in refused.stderr
    assert set(json.loads(refused.stdout)["errors"]) <= {"HTTP 302", "HTTP 401", "HTTP 403"}
