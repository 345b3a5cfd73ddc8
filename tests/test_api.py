"""kfdex as a Python library (scripts.api, ``from kfdex import Kubeflow`` once installed), against the sandbox.

The renewal tests shorten the sandbox's session to two seconds and run for a few
session lifetimes: no other waiting.  ``expire_sessions`` ends a session the
clock still counts as valid, so that the gateway's own signal is what renews it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

from sandbox.control import Sandbox
from sandbox.flavors import FLAVORS
from sandbox.httpserve import Reply, Request
from scripts.api import Kubeflow, KubeflowAuth
from scripts.core.errors import ConfigError, ExitCode, SessionError, UsageError
from tests.helpers import NO_BACKOFF, ROOT, Env, Stub, here

PREDICTION = [1, 1]


def _kubeflow(env: Env, **settings: str) -> Kubeflow:
    return Kubeflow.from_env(env.path, environment=here(), **settings)


def _prediction(answer: dict[str, object]) -> object:
    return answer["outputs"][0]["data"]  # type: ignore[index]


def test_login_then_infer_and_model_info_write_the_env_as_the_cli_does(resolved_env: Env) -> None:
    kubeflow = _kubeflow(resolved_env).login()
    assert _prediction(kubeflow.infer("iris")) == PREDICTION
    assert kubeflow.model_info()["name"] == resolved_env.read()["MODEL_NAME"]
    written = resolved_env.read()
    assert written["AUTH_COOKIE"] and written["MODEL_HOST"] and written["AUTH_ORIGIN"] == kubeflow.ingress
    assert os.stat(resolved_env.path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_login_then_infer_on_every_flavor(resolved_env: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    assert _prediction(_kubeflow(resolved_env).login().infer("iris")) == PREDICTION


def test_settings_given_in_code_need_no_env_file_and_leave_none(tmp_path: Path, cluster: Sandbox) -> None:
    settings = {key: value for key, value in cluster.settings().items() if key != "SANDBOX_DIR"}
    missing = tmp_path / "none.env"
    environment = here(variables={**os.environ, "ENV_FILE": str(missing)})
    kubeflow = Kubeflow.from_env(environment=environment, **settings, **NO_BACKOFF).login()
    assert _prediction(kubeflow.infer({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]})) == [1]
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def test_a_setting_missing_in_code_says_to_pass_it_to_from_env(tmp_path: Path, cluster: Sandbox) -> None:
    settings = {key: value for key, value in cluster.settings().items() if key not in ("SANDBOX_DIR", "DEX_LOGIN", "DEX_PASSWORD")}
    environment = here(variables={**os.environ, "ENV_FILE": str(tmp_path / "none.env")})
    kubeflow = Kubeflow.from_env(environment=environment, **settings, **NO_BACKOFF)
    with pytest.raises(ConfigError) as raised:
        kubeflow.login(password=lambda: "x")
    assert raised.value.message == "DEX_LOGIN not set: pass DEX_LOGIN=… to Kubeflow.from_env, or set it in the environment"
    assert list(tmp_path.iterdir()) == []


def test_persist_false_keeps_the_env_file_as_it_was(resolved_env: Env) -> None:
    before = resolved_env.path.read_bytes()
    Kubeflow.from_env(resolved_env.path, persist=False, environment=here()).login()
    assert resolved_env.path.read_bytes() == before


def test_an_unknown_setting_is_refused_before_anything(resolved_env: Env) -> None:
    with pytest.raises(UsageError, match="MODEL_NAM: not a setting"):
        _kubeflow(resolved_env, MODEL_NAM="x")


def test_a_session_over_three_lifetimes_never_fails_and_renews(resolved_env: Env, cluster: Sandbox) -> None:
    cluster.configure(session_seconds=2)  # Expires is to the second: a one-second session may read as over at once
    kubeflow = _kubeflow(resolved_env).login()
    session = kubeflow.session()
    started, answers = time.monotonic(), []
    while time.monotonic() - started < 6.5:  # three lifetimes and a bit
        answers.append(session.get(kubeflow.url("/")).status_code)
        assert _prediction(kubeflow.infer("iris")) == PREDICTION
        time.sleep(0.1)
    assert set(answers) == {200}
    assert kubeflow.renewals >= 2


def test_the_gateways_signal_renews_and_resends_once(resolved_env: Env, cluster: Sandbox) -> None:
    kubeflow = _kubeflow(resolved_env).login()
    session = kubeflow.session()
    assert session.get(kubeflow.url("/")).status_code == 200
    cluster.expire_sessions()  # the clock still says valid: only the gateway knows
    answer = session.post(kubeflow.url("/"), data=b"again")
    assert answer.status_code == 200 and kubeflow.renewals == 1
    assert [hop.status_code in (302, 401, 403) for hop in answer.history] == [True]  # the refusal, then the resend
    cluster.expire_sessions()
    assert _prediction(kubeflow.infer("iris")) == PREDICTION and kubeflow.renewals == 2


@pytest.mark.parametrize("flavor", ["kf15", "kf18"])
def test_renewal_behind_oidc_authservice(resolved_env: Env, cluster: Sandbox, flavor: str) -> None:
    cluster.configure(flavor=flavor)
    kubeflow = _kubeflow(resolved_env).login()
    cluster.expire_sessions()
    assert _prediction(kubeflow.infer("iris")) == PREDICTION and kubeflow.renewals == 1


def test_without_a_password_source_the_end_is_the_log_in_error_and_nothing_prompts(resolved_env: Env, cluster: Sandbox) -> None:
    assert resolved_env.invoke("login").returncode == 0
    resolved_env.set(DEX_PASSWORD=None)
    kubeflow = Kubeflow.from_env(resolved_env.path, environment=here(interactive=True))
    session = kubeflow.session()
    cluster.expire_sessions()
    with mock.patch("getpass.getpass", side_effect=AssertionError("prompted")), mock.patch(
        "builtins.input", side_effect=AssertionError("prompted")
    ), pytest.raises(SessionError, match="no password to renew it") as raised:
        session.get(kubeflow.url("/"))
    assert raised.value.exit_code == ExitCode.SESSION


def test_a_password_callable_is_asked_at_each_login(resolved_env: Env, cluster: Sandbox) -> None:
    password = resolved_env.read()["DEX_PASSWORD"]
    resolved_env.set(DEX_PASSWORD=None)
    asked: list[int] = []
    kubeflow = _kubeflow(resolved_env).login(password=lambda: asked.append(1) or password)
    cluster.expire_sessions()
    assert _prediction(kubeflow.infer("iris")) == PREDICTION
    assert len(asked) == 2 and "DEX_PASSWORD" not in resolved_env.read()


def test_token_login_renews_with_a_fresh_token(resolved_env: Env) -> None:
    kubeflow = _kubeflow(resolved_env).login(token=True)
    first = resolved_env.read()["AUTH_BEARER"]
    resolved_env.set(AUTH_BEARER_EXPIRES="2000-01-01T00:00:00Z")
    kubeflow = _kubeflow(resolved_env)
    assert _prediction(kubeflow.infer("iris")) == PREDICTION and kubeflow.renewals == 1
    assert resolved_env.read()["AUTH_BEARER"] != first


def test_a_request_to_another_origin_is_refused_before_sending(resolved_env: Env, stub: Stub) -> None:
    seen: list[Request] = []
    stub.answer(lambda request: seen.append(request) or Reply(200, b"ok"))
    kubeflow = _kubeflow(resolved_env).login()
    for url in (f"http://localhost:{stub.port}/", "https://example.com/"):
        with pytest.raises(UsageError, match="refusing to send the Kubeflow credential"):
            kubeflow.session().get(url)
    assert seen == []


def test_kubeflow_auth_alone_carries_the_credential(resolved_env: Env) -> None:
    _kubeflow(resolved_env).login()
    import requests

    auth = KubeflowAuth.from_env(resolved_env.path, environment=here())
    assert requests.get(auth.kubeflow.url("/"), auth=auth, timeout=10, allow_redirects=False).status_code == 200


def test_the_installed_package_maps_kfdex_to_the_library_folder(tmp_path: Path) -> None:
    """As pip installs it: kfdex/ from library/, kfdex/scripts from scripts/; importing kfdex stays cheap."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "kfdex" in config["packages"] and config["package-dir"]["kfdex"] == "library"
    top = tmp_path / "kfdex"
    top.mkdir()
    (top / "__init__.py").write_bytes((ROOT / "library" / "__init__.py").read_bytes())
    for name, folder in config["package-dir"].items():
        if name.count(".") == 1:
            (top / name.split(".")[1]).symlink_to(ROOT / folder)
    probe = (
        "import sys, kfdex; cheap = 'requests' not in sys.modules; "
        "from kfdex import Kubeflow, KubeflowAuth, SessionError; "
        "print(cheap, Kubeflow.__module__, KubeflowAuth.__name__, int(SessionError('x').exit_code))"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["True", "kfdex.scripts.api", "KubeflowAuth", "5"]


def test_kfdex_infer_and_kubeflow_infer_send_the_same_bytes(env: Env, stub: Stub) -> None:
    seen: list[Request] = []
    answer = b'{"model_name": "m", "outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 1]}]}'
    stub.answer(lambda request: seen.append(request) or Reply(200, answer, [], "application/json"), env)
    origin = f"http://127.0.0.1:{stub.port}"
    env.set(MODEL_NAME="m", MODEL_HOST="m.ns.example.com", AUTH_COOKIE="authservice_session=abc", AUTH_ORIGIN=origin)
    assert env.invoke("infer", "--payload", "iris").returncode == 0
    assert _prediction(_kubeflow(env).infer("iris")) == PREDICTION
    cli, library = seen
    assert (cli.method, cli.target, list(cli.headers.items()), cli.body) == (
        library.method, library.target, list(library.headers.items()), library.body
    )  # fmt: skip
    assert cli.headers["cookie"] == "authservice_session=abc" and cli.headers["host"] == "m.ns.example.com"


def test_errors_name_the_installed_command_and_send_nothing(env: Env) -> None:
    env.set(MODEL_NAME="m", INGRESS_HOST="127.0.0.1", INGRESS_PORT="1", NODE_PORT="2", AUTH_COOKIE="a=b", AUTH_ORIGIN="http://other:1")
    with pytest.raises(SessionError, match=r"belongs to http://other:1, not http://127.0.0.1:1: run `kfdex login`$") as raised:
        _kubeflow(env).infer("iris")
    assert raised.value.exit_code == ExitCode.SESSION and str(raised.value) == raised.value.message


def test_grpc_infer_and_its_renewal(resolved_env: Env, cluster: Sandbox) -> None:
    pytest.importorskip("grpc")
    kubeflow = _kubeflow(resolved_env).login()
    assert _prediction(kubeflow.infer("iris", protocol="grpc")) == PREDICTION
    cluster.expire_sessions()
    assert _prediction(kubeflow.infer("iris", protocol="grpc")) == PREDICTION and kubeflow.renewals == 1


def test_the_session_keeps_the_credential_on_redirects_within_the_ingress_and_follows_none_elsewhere(env: Env, stub: Stub) -> None:
    seen: list[Request] = []

    def app(request: Request) -> Reply:
        seen.append(request)
        if request.path == "/here":
            return Reply(302, b"", [("Location", "/there")])
        if request.path == "/away":
            return Reply(302, b"", [("Location", f"http://localhost:{stub.port}/there")])
        return Reply(200, b"ok")

    stub.answer(app, env)
    env.set(AUTH_COOKIE="authservice_session=abc", AUTH_ORIGIN=f"http://127.0.0.1:{stub.port}")
    kubeflow = _kubeflow(env)
    session = kubeflow.session()
    assert session.get(kubeflow.url("/here")).text == "ok"
    assert [(request.path, request.headers.get("cookie")) for request in seen] == [
        ("/here", "authservice_session=abc"), ("/there", "authservice_session=abc")
    ]  # fmt: skip
    seen.clear()  # a redirect to another origin is an identity provider elsewhere: a login, never followed
    with pytest.raises(SessionError, match="no password to renew it"):
        session.get(kubeflow.url("/away"))
    assert [request.path for request in seen] == ["/away"]


@pytest.mark.parametrize(
    ("location", "for_the_model", "for_navigation"),
    [
        ("/dex/auth?client_id=x", "to Dex", "to Dex"),
        ("/oauth2/start?rd=%2F", "to Dex", "to Dex"),
        ("/pipeline/", "to a login", None),  # the model's API never redirects; an application does
        ("https://idp.example.com/authorize", "to a login", "to a login"),  # an identity provider elsewhere
    ],
)
def test_a_redirect_is_a_login_for_the_model_and_for_navigation_only_when_it_leaves(
    location: str, for_the_model: str, for_navigation: str | None
) -> None:
    import requests

    from scripts.auth.dexflow import login_signal

    answer = requests.Response()
    answer.status_code, answer.url = 302, "http://127.0.0.1:31380/pipeline"
    answer.headers["Location"] = location
    assert login_signal(answer) == for_the_model
    assert login_signal(answer, navigation=True) == for_navigation


def test_threads_share_one_renewal(resolved_env: Env, cluster: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    kubeflow = _kubeflow(resolved_env).login()
    sessions = [kubeflow.session() for _ in range(4)]
    cluster.expire_sessions()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda session: session.get(kubeflow.url("/")).status_code, sessions * 3))
    assert statuses == [200] * 12 and kubeflow.renewals == 1
