"""Every bad input gets one line, a documented exit code, and changes nothing: the .env stays byte for byte.

Each case prepares a .env (and files) against the sandbox, runs one task
in-process, and checks the last line of stderr, the exit code, that no traceback
was printed and that the .env file is exactly as before.  Cases about the
payload or a setting's value also check that nothing reached the sandbox's
gateway or nodePort.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from scripts.core.errors import ExitCode
from scripts.core.state import EnvFile
from tests.helpers import Env

Setup = Callable[[Env, Sandbox, Path], list[str]]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Setup
    code: ExitCode
    message: str  # a regex the "error: ..." line must match
    sends_nothing: bool = False


def _logged_in(env: Env) -> None:
    env.set(MODEL_HOST="sklearn-irisv2.kubeflow-user-example-com.example.com")
    assert env.invoke("login").returncode == 0


def _payload(text: str, *task: str) -> Setup:
    def setup(env: Env, _cluster: Sandbox, tmp: Path) -> list[str]:
        _logged_in(env)
        path = tmp / "payload.json"
        path.write_text(text)
        return [*(task or ["infer"]), "--payload", str(path)]

    return setup


def _tensor(data: str, datatype: str = '"FP32"', shape: str = "[1]") -> str:
    return f'{{"inputs": [{{"name": "x", "shape": {shape}, "datatype": {datatype}, "data": {data}}}]}}'


DEEP = _tensor("[" * 70 + "1" + "]" * 70)  # 70 levels of data (and 4 around it): beyond payloads.MAX_DEPTH
LOAD = ("load", "--requests", "5")


def _nodeport_then_other_ingress(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
    """Logged in and exposed, then the .env points at another ingress on the same host: infer would go to the NodePort."""
    _logged_in(env)
    assert env.invoke("expose-nodeport").returncode == 0
    env.set(INGRESS_PORT="1")
    return ["infer"]


def _env_text(text: bytes, task: str = "fetch-req") -> Setup:
    def setup(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
        env.path.write_bytes(text)
        return [task]

    return setup


def _logged_in_then(args: list[str], **values: str | None) -> Setup:
    def setup(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
        _logged_in(env)
        env.set(**values)
        return args

    return setup


def _with(args: list[str], **values: str | None) -> Setup:
    def setup(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
        env.set(**values)
        return args

    return setup


def _at_gateway(args: list[str], **values: str) -> Setup:
    """The sandbox's ingress in .env (as resolve-ingress finds it), then ``values``."""

    def setup(env: Env, cluster: Sandbox, _tmp: Path) -> list[str]:
        env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(cluster.gateway_port))
        env.set(**values)
        return args

    return setup


def _login_page_then_authenticate(**values: str) -> Setup:
    """fetch-req done against the sandbox (it writes the login in progress), then ``values``: authenticate posts them."""

    def setup(env: Env, cluster: Sandbox, tmp: Path) -> list[str]:
        _at_gateway([], **values)(env, cluster, tmp)
        assert env.invoke("fetch-req").returncode == 0
        return ["authenticate"]

    return setup


SECRET_BYTES = b"s3cr\xffet\xfe"  # Latin-1 typed into a UTF-8 terminal: not UTF-8


def _environment_bytes(task: str, key: str) -> Setup:
    """The sandbox's ingress in .env, and ``key`` set in the process environment to bytes that are not UTF-8."""

    def setup(env: Env, cluster: Sandbox, tmp: Path) -> list[str]:
        _at_gateway([])(env, cluster, tmp)
        env.variables[key] = os.fsdecode(SECRET_BYTES)  # how Python hands such bytes over (surrogateescape)
        return [task]

    return setup


def _grpc_port_refusing(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
    """Logged in, and NODE_PORT_GRPC a closed five-digit port: the whole address must survive in the message."""
    from sandbox.cluster import free_port

    _logged_in(env)
    port = next(port for port in iter(free_port, None) if port >= 10000)
    env.set(NODE_PORT_GRPC=str(port))
    return ["infer", "--protocol", "grpc"]


def _rbac(env: Env, cluster: Sandbox, _tmp: Path) -> list[str]:
    _logged_in(env)
    cluster.configure(rbac_deny=True)
    return ["infer"]


def _fake_kubectl(env: Env, _cluster: Sandbox, tmp: Path) -> list[str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text("#!/bin/sh\necho 'Error from server (NotFound): services \"istio-ingressgateway\" not found' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env.extra_path = str(bin_dir)
    return ["resolve-ingress"]


def _no_kubectl(env: Env, _cluster: Sandbox, tmp: Path) -> list[str]:
    env.only_path = str(tmp)
    return ["resolve-ingress"]


def _no_context(env: Env, _cluster: Sandbox, tmp: Path) -> list[str]:
    empty = tmp / "kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env.set(KUBECONFIG=str(empty))
    return ["resolve-ingress"]


def _env_is_a_folder(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
    env.path.unlink()
    env.path.mkdir()
    return ["fetch-req"]


def _no_env_file(env: Env, _cluster: Sandbox, _tmp: Path) -> list[str]:
    env.path.unlink()
    return ["infer"]


INGRESS = {"INGRESS_HOST": "127.0.0.1"}
CASES = [
    Case(
        "payload not JSON",
        _payload('{"inputs": ['),
        ExitCode.USAGE,
        r"payload .*payload\.json is not JSON \(line 1, column \d+",
        True,
    ),
    Case(
        "payload name unknown",
        _logged_in_then(["infer", "--payload", "iris-v3"]),
        ExitCode.USAGE,
        r"no payload 'iris-v3': give a file path or one of iris, iris-v1",
        True,
    ),
    Case(
        "V2 shape does not match data",
        _payload('{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2]}]}'),
        ExitCode.USAGE,
        r"input 'x': shape \[2, 4\] holds 8 elements but data has 2",
        True,
    ),
    Case(
        "V2 unknown datatype",
        _payload('{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT32", "data": [1]}]}'),
        ExitCode.USAGE,
        r"input 'x' has unknown datatype 'FLOAT32'",
        True,
    ),
    Case("V2 datatype a list", _payload(_tensor("[1]", '["FP32"]')), ExitCode.USAGE, r"input 'x' has unknown datatype .*not a string", True),
    Case("NaN in the data", _payload(_tensor("[NaN]")), ExitCode.USAGE, r"holds the number 'NaN', which JSON cannot carry", True),
    Case("1e999 in the data", _payload(_tensor("[1e999]")), ExitCode.USAGE, r"holds the number '1e999', which JSON cannot carry", True),
    Case("-Infinity in V1", _payload('{"instances": [[-Infinity]]}'), ExitCode.USAGE, r"'-Infinity', which JSON cannot carry", True),
    Case("nested 74 levels", _payload(DEEP), ExitCode.USAGE, r"is nested more than 64 levels deep", True),
    Case("NaN under load", _payload(_tensor("[NaN]"), *LOAD), ExitCode.USAGE, r"'NaN', which JSON cannot carry", True),
    Case("nested under load", _payload(DEEP, *LOAD), ExitCode.USAGE, r"is nested more than 64 levels deep", True),
    Case(
        "datatype a list under load",
        _payload(_tensor("[1]", '["FP32"]'), *LOAD),
        ExitCode.USAGE,
        r"unknown datatype .*not a string",
        True,
    ),
    Case(
        "V1 body without instances",
        _payload('{"signature_name": "x", "data": [[1, 2]]}'),
        ExitCode.USAGE,
        r"has neither 'inputs' \(V2\) nor 'instances' \(V1\)",
        True,
    ),
    Case(
        ".env missing",
        _no_env_file,
        ExitCode.CONFIG,
        r"MODEL_NAME is needed, but there is no .*\.env and none of the tool's settings are in the environment: "
        r"run `invoke init` to write one",
    ),
    Case(".env is a folder", _env_is_a_folder, ExitCode.CONFIG, r"\.env is a folder, not a \.env file: point ENV_FILE at a regular file"),
    Case(
        ".env not UTF-8",
        _env_text(b"A=1\nB=\xff\xfe\n"),
        ExitCode.CONFIG,
        r"\.env line 2 is not UTF-8 text: fix or delete that line",
    ),
    Case(
        ".env malformed line",
        _env_text(b"# settings\nINGRESS_HOST=127.0.0.1\nINGRESS_PORT 8080\n"),
        ExitCode.CONFIG,
        r"\.env line 3 is not KEY=VALUE: fix or delete that line",
    ),
    Case(
        "required key empty",
        _with(["fetch-req"], INGRESS_HOST="", INGRESS_PORT="80"),
        ExitCode.CONFIG,
        r"INGRESS_HOST is empty in .*: run `invoke resolve-ingress` first",
    ),
    Case(
        "setting not a number",
        _with(["fetch-req"], INGRESS_HOST="127.0.0.1", INGRESS_PORT="80", RETRY_ATTEMPTS="many"),
        ExitCode.USAGE,
        r"RETRY_ATTEMPTS='many' in .* is not a whole number: give 1 or more, or delete the line for the default \(30\)$",
    ),
    *(
        Case(f"bad {key}={value}", _at_gateway(["fetch-req"], **{key: value}), ExitCode.USAGE, message, True)
        for key, value, message in (
            ("RETRY_ATTEMPTS", "0", r"RETRY_ATTEMPTS='0' in .*\.env: give 1 or more, or delete the line for the default \(30\)$"),
            ("RETRY_DEADLINE", "-1", r"RETRY_DEADLINE='-1' in .*: give 0 seconds or more, or delete the line for the default"),
            ("HTTP_TIMEOUT", "abc", r"HTTP_TIMEOUT='abc' in .* is not a number: give more than 0 seconds, or delete the line"),
            ("HTTP_TIMEOUT", "0", r"HTTP_TIMEOUT='0' in .*: give more than 0 seconds"),
            ("RETRY_WAIT_MAX", "nan", r"RETRY_WAIT_MAX='nan' in .*: give 0 seconds or more"),
            ("INGRESS_HOST", "127.0.0.1:1", r"INGRESS_HOST='127\.0\.0\.1:1' in .* has a port: give the host alone \(127\.0\.0\.1\) and "
             r"the port \(1\) in INGRESS_PORT, or run `invoke resolve-ingress` again$"),
            ("INGRESS_HOST", "http://127.0.0.1", r"INGRESS_HOST='http://127\.0\.0\.1' in .* has a scheme: give the host alone "
             r"\(127\.0\.0\.1\), and the scheme in INGRESS_SCHEME"),
            ("INGRESS_HOST", "kubeflow.example.com/login", r"INGRESS_HOST='kubeflow\.example\.com/login' in .* has a path: "
             r"give the host alone \(kubeflow\.example\.com\)"),
            ("INGRESS_HOST", "my ingress", r"INGRESS_HOST='my ingress' in .* is not a host name or IP address, or run `invoke resolve-ingress`"),
            ("INGRESS_PORT", "0", r"INGRESS_PORT='0' in .*: give from 1 to 65535, or run `invoke resolve-ingress` again$"),
            ("INGRESS_PORT", "99999", r"INGRESS_PORT='99999' in .*: give from 1 to 65535, or run `invoke resolve-ingress` again$"),
            ("INGRESS_PORT", "1" + "0" * 400, r"INGRESS_PORT='10+'… in .*: give from 1 to 65535, or run `invoke resolve-ingress` again$"),
            ("INGRESS_SCHEME", "ftp", r"INGRESS_SCHEME='ftp' in .*: use http or https"),
        )
    ),
    *(
        Case(f"bad NODE_PORT={value}", _logged_in_then(["infer"], NODE_PORT=value), ExitCode.USAGE, message, True)
        for value, message in (
            ("99999", r"NODE_PORT='99999' in .*: give from 1 to 65535, or run `invoke expose-nodeport` again$"),
            ("abc", r"NODE_PORT='abc' in .* is not a whole number: give from 1 to 65535, or run `invoke expose-nodeport` again$"),
        )
    ),
    Case(
        "bad MODEL_HOST",
        _logged_in_then(["infer"], MODEL_HOST="https://sklearn-iris.example.com"),
        ExitCode.USAGE,
        r"MODEL_HOST='https://sklearn-iris\.example\.com' in .* has a scheme: give the host alone \(sklearn-iris\.example\.com\)",
        True,
    ),
    *(
        Case(
            f"{key} not UTF-8 in the environment",
            _environment_bytes(task, key),
            ExitCode.USAGE,
            rf"^error: {key} in the environment holds bytes that are not UTF-8 text: set it to UTF-8 text, or unset it$",
            True,
        )
        for task, key in (("login", "DEX_PASSWORD"), ("login", "DEX_LOGIN"), ("infer", "MODEL_NAME"))
    ),
    Case(
        "credentials missing",
        _with(["login"], DEX_LOGIN=None, DEX_PASSWORD=None),
        ExitCode.CONFIG,
        r"DEX_LOGIN and DEX_PASSWORD not set: put them in .* or the environment",
    ),
    Case(
        "host refusing",
        _with(["fetch-req"], INGRESS_HOST="127.0.0.1", INGRESS_PORT="1"),
        ExitCode.GATEWAY,
        r"cannot connect to http://127\.0\.0\.1:1: connection refused after 4 attempt\(s\)",
    ),
    Case(
        "host unknown",
        _with(["fetch-req"], INGRESS_HOST="no-such-host.invalid", INGRESS_PORT="80"),
        ExitCode.GATEWAY,
        r"cannot connect to http://no-such-host\.invalid:80: name or service not known after 4 attempt\(s\)",
    ),
    Case(
        "TLS to a plain HTTP port",
        _at_gateway(["fetch-req"], INGRESS_SCHEME="https"),
        ExitCode.GATEWAY,
        r"TLS failed for https://127\.0\.0\.1:\d+ \(SSLError\(SSLError\(1, '\[SSL: WRONG_VERSION_NUMBER\] wrong version number "
        r"\(_ssl\.c:\d+\)'\)\)\): set INGRESS_CA_BUNDLE",
    ),
    Case(
        "gRPC port refusing",
        _grpc_port_refusing,
        ExitCode.GATEWAY,
        r"ipv4:127\.0\.0\.1:\d{5}: Failed to connect to remote host: Connection refused after 4 attempt\(s\)",
        True,
    ),
    Case(
        "kubectl missing", _no_kubectl, ExitCode.KUBECTL, r"kubectl is not on PATH: install it and configure it for your cluster"
    ),
    Case("no current context", _no_context, ExitCode.KUBECTL, r"; kubectl has no cluster configured: set KUBECONFIG in \.env"),
    Case(
        "ingress service not found",
        _fake_kubectl,
        ExitCode.KUBECTL,
        r"service istio-ingressgateway not found in istio-system: is Istio installed, and is this the right cluster\?",
    ),
    Case(
        "predictor pod not found",
        _with(["expose-nodeport"], MODEL_NAME="no-such-model"),
        ExitCode.KUBECTL,
        r"no pod labelled serving\.kserve\.io/inferenceservice=no-such-model in kubeflow-user-example-com",
    ),
    Case(
        "model not found",
        _logged_in_then(["infer"], MODEL_NAME="no-such-model"),
        ExitCode.MODEL,
        r'model no-such-model not found \(404 Not Found "Model no-such-model not found"\): check MODEL_NAME',
    ),
    Case(
        "RBAC denial",
        _rbac,
        ExitCode.MODEL,
        r'403 Forbidden "RBAC: access denied" calling sklearn-irisv2: your user may not call models',
    ),
    Case(
        "session cookie expired",
        _logged_in_then(["infer"], AUTH_EXPIRES="2026-01-01T00:00:00Z"),
        ExitCode.SESSION,
        r"the session cookie expired at 2026-01-01 00:00 UTC .*: run `invoke login`",
    ),
    Case(
        "session expiry not a date",
        _logged_in_then(["infer"], AUTH_EXPIRES="garbage"),
        ExitCode.SESSION,
        r"the session cookie has an expiry that is not a date .*, so it counts as expired: run `invoke login`",
        True,
    ),
    Case(
        "wrong password not ASCII",
        _login_page_then_authenticate(DEX_PASSWORD="pässwörd-ünïcode"),
        ExitCode.CREDENTIALS,
        r"Dex rejected the login for user@example\.com: Invalid Email Address and password",
    ),
    Case(
        "session of another ingress, on the way to its NodePort",
        _nodeport_then_other_ingress,
        ExitCode.SESSION,
        r"the session cookie in the state belongs to http://127\.0\.0\.1:\d+, not http://127\.0\.0\.1:1: run `invoke login`",
        True,
    ),
    Case(
        "no session at all",
        _with(["infer"], INGRESS_HOST="127.0.0.1", NODE_PORT="1"),
        ExitCode.SESSION,
        r"no session in .*: run `invoke login` \(or `invoke login --token`\) first",
    ),
    Case("unknown auth option", _logged_in_then(["infer", "--auth", "magic"]), ExitCode.USAGE, r"--auth 'magic': use one of auto, cookie, token"),
    Case(
        "zero attempts option",
        _logged_in_then(["infer", "--attempts", "0"]),
        ExitCode.USAGE,
        r"--attempts 0: give 1 or more",
    ),
    Case(
        "negative deadline option",
        _logged_in_then(["infer", "--deadline", "-2.5"]),
        ExitCode.USAGE,
        r"--deadline -2\.5: give 0 seconds or more",
    ),
    Case(
        "bad token duration",
        _with(["login", "--token", "--force"], TOKEN_DURATION="a day", **INGRESS, INGRESS_PORT="80"),
        ExitCode.USAGE,
        r"token duration 'a day' is not a duration such as 24h",
    ),
    Case(
        "CA bundle missing",
        _with(["fetch-req"], INGRESS_HOST="127.0.0.1", INGRESS_PORT="443", INGRESS_CA_BUNDLE="/no/such/ca.pem"),
        ExitCode.USAGE,
        r"INGRESS_CA_BUNDLE='/no/such/ca\.pem' in .* is not a file",
    ),
]


def _sent(cluster: Sandbox) -> int:
    """Requests the sandbox's gateway and nodePort have answered so far, each one's log line written (``drain``)."""
    cluster.drain()
    return len(re.findall(r"\b(?:gateway|nodeport) [A-Z]+ /", (cluster.folder / "cluster.log").read_text()))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, resolved_env: Env, cluster: Sandbox, tmp_path: Path) -> None:
    """Each case starts from the sandbox's .env after resolve-ingress (a case sets the ingress keys itself to test them)."""
    args = case.setup(resolved_env, cluster, tmp_path)
    before = resolved_env.path.read_bytes() if resolved_env.path.is_file() else None
    sent_before = _sent(cluster)
    ran = resolved_env.invoke(*args)
    assert ran.returncode == case.code, ran.stderr
    assert "Traceback" not in ran.stderr
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == errors[0]
    assert re.search(case.message, errors[0]), errors[0]
    after = resolved_env.path.read_bytes() if resolved_env.path.is_file() else None
    assert after == before
    assert "s3cr" not in ran.stderr + ran.stdout  # a value that is not text is named, never shown
    if case.sends_nothing:
        assert _sent(cluster) == sent_before


@pytest.mark.parametrize("task", ["demo", "sandbox-up"])
def test_an_unknown_flavor_is_refused_before_anything_starts(env: Env, task: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox import control

    def must_not_start(*_: object) -> None:
        raise AssertionError("a sandbox was started for an unknown flavor")

    monkeypatch.setattr(control, "start", must_not_start)
    before = env.path.read_bytes()
    ran = env.invoke(task, "--flavor", "kf99")
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert ran.stderr.strip() == "error: --flavor 'kf99': no such sandbox flavor; use one of kf15, kf17, kf18, kf190, kf191, kf111, kfnext"
    assert env.path.read_bytes() == before


OPTION_CASES = [
    (["load", "--requests", "0"], r"--requests 0: give 1 or more"),
    (["load", "--duration", "nan"], r"--duration nan: give more than 0 seconds"),
    (["load", "--duration", "inf"], r"--duration inf: give more than 0 seconds"),
    (["load", "--duration", "0"], r"--duration 0: give more than 0 seconds"),
    (["load", "--duration", "-1"], r"--duration -1: give more than 0 seconds"),
    (["load", "--concurrency", "0"], r"--concurrency 0: give from 1 to 1024"),
    (["load", "--warmup", "-1"], r"--warmup -1: give 0 or more"),
    (["load", "--max-errors", "5x"], r"--max-errors '5x': give a number of requests \(10\) or a percentage of them \(2\.5%\)"),
    (["load", "--max-errors", "101%"], r"--max-errors '101%'"),
    (["locust", "--run-time", "bogus"], r"--run-time 'bogus': give a time span such as 30s, 5m, 1h or 1h30m"),
    (["locust", "--run-time", "-5s"], r"--run-time '-5s': give a time span"),
    (["locust", "--run-time", "0"], r"--run-time '0': give more than 0 seconds"),
    (["locust", "--spawn-rate", "nan"], r"--spawn-rate nan: give more than 0 per second"),
    (["locust", "--users", "0"], r"--users 0: give 1 or more"),
    (["load", "--html", "/no/such/folder/report.html"], r"--html '/no/such/folder/report\.html': its folder does not exist"),
    (["load", "--html", "/tmp"], r"--html '/tmp' is not a file name: give one \(its folder must exist\)"),
    (["locust", "--run-time", "99999999999h"], r"--run-time '99999999999h': give at most 720h \(30 days\)$"),
    (["load", "--html", ""], r"--html '' is not a file name: give one"),
    (["locust", "--csv", "/no/such/folder/"], r"--csv '/no/such/folder/' is not a file name: give one"),
    (["locust", "--csv", "/no/such/folder/run"], r"--csv '/no/such/folder/run': its folder does not exist"),
    (["locust", "--bind-host", "not a host"], r"--bind-host 'not a host': give a host name or IP address"),
    (["locust", "--worker", "--master-host", "http://10.0.0.5"], r"--master-host 'http://10\.0\.0\.5': give a host name"),
    (["locust", "--workers", "-2"], r"--workers -2: give from 1 to 1024"),
    (["infer", "--auth", os.fsdecode(b"\xff")], r"--auth holds bytes that are not UTF-8 text"),
    # a control character in a value is shown escaped: the error stays one line (and kubectl is never run with it)
    (["create-token", "--service-account", "\r"], r"--service-account '\\r' is not a Kubernetes name"),
    (["sandbox-up", "--flavor", "kf\n99"], r"--flavor 'kf\\n99': no such sandbox flavor"),
    (["sandbox-up", "--model-server", "https://127.0.0.1:8080"], r"--model-server 'https://127\.0\.0\.1:8080': give the V2 server's address on this machine, as http://127\.0\.0\.1:PORT$"),
    (["demo", "--model-server", "http://10.0.0.5:8080"], r"--model-server 'http://10\.0\.0\.5:8080': give the V2 server's address on this machine"),
    (["sandbox-up", "--model-server", "http://127.0.0.1:99999"], r"--model-server 'http://127\.0\.0\.1:99999': give"),
    (["sandbox-up", "--model-server", "http://localhost:8080/v2"], r"--model-server 'http://localhost:8080/v2': give"),
    (["sandbox-up", "--model-server", "127.0.0.1:8080"], r"--model-server '127\.0\.0\.1:8080': give"),
    (["sandbox-up", "--model-server", "http://127.0.0.1:8080", "--model-name", "Iris_V2"], r"--model-name 'Iris_V2': give an InferenceService name"),
    (["sandbox-up", "--components", ""], r"--components '': use stand-in or real$"),
    (["sandbox-up", "--settings", "/nonexistent/faults.json"], r"--settings '/nonexistent/faults\.json': cannot read it \(No such file or directory\): give a JSON file"),
    (["--profile", "", "status"], r"profile '': a profile's name is up to 64 letters"),
    (["sandbox-up", "--model-server", "http://127.0.0.1:0"], r"--model-server 'http://127\.0\.0\.1:0': give"),
    (["demo", "--model-server", "http://127.0.0.1:8080", "--model-name", "a" * 64], r"--model-name 'a+'…?: give an InferenceService name \(at most 63 "),
    (["demo", "--model-name", "iris"], r"--model-name: give it with --model-server \(the sandbox's own MLServer serves sklearn-irisv2\)$"),
    (["infer", "--protocol", "grpc\r"], r"--protocol 'grpc\\r': use one of rest, grpc"),
    (["load", "--via", "\nnodeport"], r"--via '\\nnodeport': use one of nodeport, ingress"),
    (["credential", "--format", "env\n"], r"--format 'env\\n': use one of"),
    (["infer", "--auth", "magic"], r"--auth 'magic': use one of auto, cookie, token"),
    (["load", "--rate", "1e300", "--duration", "1e10"], r"--rate 1e\+300: give more than 0 and at most 1000000 per second"),
    (["load", "--sweep", "1e308,1.7e308", "--slo-p99", "5", "--duration", "10"], r"--sweep: the rate 1e\+308: give more than 0"),
    (["load", "--sweep", "10,20", "--slo-p99", "100"], r"--sweep needs --duration S"),
    (["locust", "--via", "bus"], r"--via 'bus': use one of nodeport, ingress"),
    (["model-info", "--protocol", "soap"], r"--protocol 'soap': use one of rest, grpc"),
    (["-f", "/etc/passwd", "status"], r"No idea what '-f' is! \(`kfdex --list` shows the tasks"),  # Invoke's -f is not kfdex's
    (["-T", "abc", "status"], r"No idea what '-T' is!"),
    (["--profile", "../x", "status"], r"profile '\.\./x': a profile's name is up to 64 letters"),
    (["--profile", "p" * 65, "init"], r"a profile's name is up to 64 letters"),
    (["no-such-task"], r"No idea what 'no-such-task' is!"),
    (["load", "--requests"], r"^error: --requests needs a value \(`kfdex --list` shows the tasks"),
    (["locust", "--run-time"], r"^error: --run-time needs a value"),
]


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A load run, a Locust process or a sandbox started by the test fails it."""
    from sandbox import control
    from scripts.load import engine, locust_run

    def must_not_start(*_: object, **__: object) -> None:
        raise AssertionError("something was started for bad input")

    for module, name in ((engine, "run_load"), (locust_run, "_spawn"), (control, "start")):
        monkeypatch.setattr(module, name, must_not_start)


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize(("arguments", "message"), OPTION_CASES, ids=[" ".join(case[0]) for case in OPTION_CASES])
def test_a_bad_option_value_is_refused_before_anything_starts(env: Env, arguments: list[str], message: str) -> None:
    env.set(MODEL_NAME="sklearn-irisv2", MODEL_NAMESPACE="kubeflow-user-example-com", INGRESS_HOST="127.0.0.1", INGRESS_PORT="1")
    before = env.path.read_bytes()
    ran = env.invoke(*arguments)
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stderr.strip().splitlines() == [ran.stderr.strip().splitlines()[-1]], ran.stderr  # one line
    assert ran.stderr.startswith("error: ") and re.search(message, ran.stderr), ran.stderr
    assert env.path.read_bytes() == before


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize(("arguments", "message"), OPTION_CASES, ids=[" ".join(case[0]) for case in OPTION_CASES])
def test_a_bad_option_value_is_named_before_a_missing_env(tmp_path: Path, arguments: list[str], message: str) -> None:
    """With no .env at all, the bad option is still what the one line names: the first thing to fix."""
    env = Env(EnvFile(tmp_path / "missing.env"))
    ran = env.invoke(*arguments)
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert re.search(message, ran.stderr), ran.stderr
    assert not env.path.exists()


NEEDS_EXTRA = {  # every task that needs an extra (or one module of it: the load extra's two serve two tasks)
    "grpc": (["model-info", "--protocol", "grpc"], ["infer", "--protocol", "grpc"], ["load", "--protocol", "grpc"]),
    "locust": (["locust"],),
    "plotly": (["load", "--html", "report.html"],),
    "pycurl": (["load", "--client", "curl"],),
    "sandbox": (["sandbox-up"], ["demo"]),
}


def _extra_cases() -> list[tuple[str, str, list[str]]]:
    from scripts.core.extras import EXTRAS

    return [
        (extra, module, task)
        for extra, modules in EXTRAS.items()
        for module in modules
        for task in NEEDS_EXTRA.get(extra, NEEDS_EXTRA.get(module, ()))
    ]


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize(("extra", "module", "arguments"), _extra_cases(), ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_a_missing_extra_is_one_line_naming_it(
    env: Env, monkeypatch: pytest.MonkeyPatch, extra: str, module: str, arguments: list[str]
) -> None:
    import sys

    from scripts.core.extras import EXTRAS

    assert module in EXTRAS[extra]
    monkeypatch.setitem(sys.modules, module, None)  # `import module` fails, find_spec finds nothing: as if not installed
    env.set(MODEL_NAME="sklearn-irisv2", MODEL_NAMESPACE="kubeflow-user-example-com", INGRESS_HOST="127.0.0.1", INGRESS_PORT="1")
    before = env.path.read_bytes()
    ran = env.invoke(*arguments)
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stderr.strip().splitlines() == [
        f"error: {ran.stderr.split('error: ', 1)[1].strip()}"
    ], ran.stderr  # the one line
    assert f"needs the optional extra {extra} ({module} missing): pip install 'kfdex[{extra}]'" in ran.stderr
    assert env.path.read_bytes() == before


def test_an_error_is_one_line_whatever_it_quotes() -> None:
    """A value a message quotes raw (a path, a server's words) cannot break the error's one line: breaks are escaped."""
    import io

    from scripts.core.environment import Environment

    stderr = io.StringIO()
    Environment(io.StringIO(), stderr).error("cannot read a\nb\rc\x1ed\u2028e: no such file")
    assert stderr.getvalue() == "error: cannot read a\\nb\\rc\\x1ed\\u2028e: no such file\n"
    assert len(stderr.getvalue().splitlines()) == 1


@pytest.mark.parametrize(("content", "reason"), [(None, r"it reads only \.yaml, \.yml, \.json and \.py files"), ("a: [\n", "ParserError")])
def test_an_invoke_configuration_it_cannot_load_is_bad_input(env: Env, tmp_path: Path, content: str | None, reason: str) -> None:
    named = tmp_path / ("passwd" if content is None else "bad.yaml")
    named.write_text(content or "root:x:0:0:root:/root:/bin/bash\n")
    env.variables["INVOKE_RUNTIME_CONFIG"] = str(named)
    before = env.path.read_bytes()
    ran = env.invoke("status")
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert ran.stderr.strip().splitlines() == [ran.stderr.strip()], ran.stderr
    assert re.match(rf"error: INVOKE_RUNTIME_CONFIG: Invoke cannot load it as configuration \({reason}", ran.stderr), ran.stderr
    assert env.path.read_bytes() == before
