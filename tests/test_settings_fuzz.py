"""Any value a person can put in a user-set key ends in one line and a documented exit code, never a traceback.

Hypothesis writes arbitrary text (control characters, any script, very long)
into one or more of the keys a person sets (``scripts.keys`` settings, plus the
ingress address and NODE_PORT) through the project's ``EnvFile``, and runs the
first step that reads the first of them in-process, against a closed port and
a kubectl that fails at once: nothing is slow and nothing is reached.
"""

from __future__ import annotations

import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scripts import authenticate, create_token, fetch_req, infer
from scripts.errors import ConfigError, ExitCode
from scripts.keys import KEYS
from scripts.state import EnvFile
from tests.helpers import NO_BACKOFF, Env

CLOSED = "1"  # nothing listens on port 1: the connection is refused at once
USER_SET = (*(name for name, key in KEYS.items() if key.source == "setting" or key.user_may_set), "INGRESS_HOST", "INGRESS_PORT", "NODE_PORT")
READERS = (fetch_req.STEP, authenticate.STEP, infer.STEP, create_token.STEP)
EXPECTED = {ExitCode.USAGE, ExitCode.CONFIG, ExitCode.SESSION, ExitCode.GATEWAY, ExitCode.KUBECTL}
BASE = {
    **NO_BACKOFF,
    "INGRESS_HOST": "127.0.0.1",
    "INGRESS_PORT": CLOSED,
    "NODE_PORT": CLOSED,
    "DEX_LOGIN_URL": f"http://127.0.0.1:{CLOSED}/dex/auth/local/login?state=x",
    "DEX_LOGIN": "user@example.com",
    "DEX_PASSWORD": "password",
    "MODEL_NAME": "sklearn-iris",
    "MODEL_NAMESPACE": "kubeflow-user-example-com",
    "AUTH_COOKIE": "session=x",
    "AUTH_EXPIRES": "2999-01-01T00:00:00Z",
}

values = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8"), min_size=1000, max_size=5000),
    st.sampled_from(["0", "-1", "1e400", "nan", "inf", "65536", "127.0.0.1:1", "http://h", "h/p", "a b", "[::1]", "::1", "~", "\\"]),
)


def _task_for(key: str) -> str:
    """The first declared step that reads ``key``; fetch-req for the gateway settings every HTTP step reads."""
    return next((step.name for step in READERS if key in step.reads), fetch_req.STEP.name)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name)
        kubectl = path / "bin" / "kubectl"
        kubectl.parent.mkdir()
        kubectl.write_text("#!/bin/sh\necho 'error: no cluster here' >&2\nexit 1\n")
        kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
        yield path


_getaddrinfo = socket.getaddrinfo


def _numeric_only(host: str, port: object, family: int = 0, kind: int = 0, proto: int = 0, flags: int = 0) -> list:  # type: ignore[type-arg]
    """Name lookups answer at once (as unknown) instead of asking a resolver that may be slow."""
    return _getaddrinfo(host, port, family, kind, proto, flags | socket.AI_NUMERICHOST)  # type: ignore[arg-type]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(USER_SET), values), min_size=1, max_size=3, unique_by=lambda pair: pair[0]))
def test_any_value_of_a_user_set_key_fails_cleanly(folder: Path, changes: list[tuple[str, str]]) -> None:
    env = Env(EnvFile(folder / ".env"), extra_path=str(folder / "bin"), sleep=lambda _seconds: None)
    env.path.write_bytes(b"")
    try:
        env.file.update({**BASE, **dict(changes)})
    except ConfigError:
        assume(False)  # a value python-dotenv cannot read back: EnvFile refuses to write it
    before = env.path.read_bytes()
    with mock.patch.object(socket, "getaddrinfo", _numeric_only):
        ran = env.invoke(_task_for(changes[0][0]))
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode in EXPECTED, ran.stderr
    assert ran.stderr.strip().splitlines()[-1].startswith("error: "), ran.stderr
    assert env.path.read_bytes() == before
