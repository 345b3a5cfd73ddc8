"""The credential written for other tools: every format, masked unless asked."""

from __future__ import annotations

import json
import subprocess

import pytest

from scripts.auth.credentials import Credential
from scripts.render.credential_formats import FORMATS, render
from tests.helpers import Env

COOKIE = Credential("cookie", "authservice_session=MTY0secretvalue", "2026-11-30T07:00:00Z", "http://127.0.0.1:31380", "user@example.com")
TOKEN = Credential("token", "eyJhbGciOiJSUzI1NiJ9.secretpayload.sig", "", "https://kf.example.com:443", "")


def masked(value: str) -> str:
    return f"{value[:3]}…"


def shown(value: str) -> str:
    return value


def test_header_lines() -> None:
    assert render(COOKIE, "header", shown) == "Cookie: authservice_session=MTY0secretvalue"
    assert render(TOKEN, "header", shown) == "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.secretpayload.sig"


def test_curl_arguments_hand_the_header_over_a_file_descriptor() -> None:
    printed = render(COOKIE, "curl", shown)
    assert printed.startswith("-H @<(printf ")
    header = subprocess.run(["bash", "-c", f"cat {printed.removeprefix('-H @')}"], capture_output=True, text=True, check=True)
    assert header.stdout == "Cookie: authservice_session=MTY0secretvalue\n"


def test_json_object() -> None:
    assert json.loads(render(TOKEN, "json", shown)) == {
        "kind": "token",
        "header": "Authorization",
        "value": "eyJhbGciOiJSUzI1NiJ9.secretpayload.sig",
        "origin": "https://kf.example.com:443",
        "expires": None,
        "owner": None,
    }


def test_env_exports_use_the_env_keys() -> None:
    assert render(COOKIE, "env", shown).splitlines() == [
        "export AUTH_COOKIE=authservice_session=MTY0secretvalue",
        "export AUTH_EXPIRES=2026-11-30T07:00:00Z",
        "export AUTH_ORIGIN=http://127.0.0.1:31380",
    ]


def test_python_snippet_compiles_and_names_kfp() -> None:
    for credential in (COOKIE, TOKEN):
        snippet = render(credential, "python", shown)
        compile(snippet, "<snippet>", "exec")
        assert ("cookies=" if credential.kind == "cookie" else "existing_token=") in snippet


def test_python_is_the_library_form_over_the_same_env() -> None:
    snippet = render(COOKIE, "python", shown, "/work/.env")
    assert "from kfdex import Kubeflow" in snippet and "kf = Kubeflow.from_env('/work/.env')" in snippet
    assert "kf.login()" in snippet and "kf.session()" in snippet
    assert "kf.login(token=True)" in render(TOKEN, "python", shown, "/work/.env")


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("credential", [COOKIE, TOKEN])
def test_no_format_shows_a_secret_when_masked(form: str, credential: Credential) -> None:
    assert "secret" not in render(credential, form, masked)


def test_masked_env_lines_are_comments_that_an_eval_cannot_take(env: Env) -> None:
    env.set(AUTH_COOKIE="authservice_session=0123456789abcdefghij", AUTH_ORIGIN="http://127.0.0.1:1")
    masked = env.invoke("credential", "--format", "env")
    assert masked.returncode == 0 and masked.stdout.strip() and all(line.startswith("# export ") for line in masked.stdout.splitlines())
    whole = env.invoke("credential", "--format", "env", "--show-secrets")
    assert whole.stdout.startswith("export AUTH_COOKIE=")
