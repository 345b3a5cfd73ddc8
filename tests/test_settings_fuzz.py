"""Any value a person can put in a user-set key, option, environment variable or payload ends in one line and a
documented exit code, never a traceback nor a hang.

Hypothesis writes arbitrary text (control characters, any script, very long)
into one or more of the keys a person sets (``scripts.core.keys`` settings, plus the
ingress address and NODE_PORT) through the project's ``EnvFile``, and runs the
first step that reads the first of them in-process, against a closed port and
a kubectl that fails at once: nothing is slow and nothing is reached.

It also drives every declared task (the catalog: a new task is covered by
itself) with arbitrary option values, kfdex's own options and arbitrary bytes
in the environment, with or without a session in the .env (bound to the
closed port, so every call is refused at once), no sandbox and a Locust that
ends at once; each run is bounded by an alarm.  And it feeds arbitrary payload text (NaN, deep nesting, wrong types)
to the payload checks and the gRPC encoder: refused, or fit to be sent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scripts import authenticate, create_token, fetch_req, infer
from scripts.app.catalog import COMMANDS, STEPS
from scripts.core.errors import ConfigError, ExitCode, UsageError
from scripts.core.extras import missing
from scripts.core.keys import KEYS
from scripts.core.state import EnvFile
from scripts.core.step import SHOW_SECRETS, Declaration, Option
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
    # very long: any characters, repeated to 1,000-5,000 of them (drawing each of 5,000 characters costs more than the run)
    st.tuples(st.text(st.characters(codec="utf-8"), min_size=1, max_size=40), st.integers(1000, 5000)).map(
        lambda drawn: (drawn[0] * (drawn[1] // len(drawn[0]) + 1))[: drawn[1]]
    ),
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


# every task, any option values, any bytes in the environment ----------------------------------------------------

DOCUMENTED = {code for code in ExitCode if code not in (ExitCode.BUG, ExitCode.INTERRUPTED)}
ENVIRONMENT_KEYS = (*(name for name, key in KEYS.items() if key.from_environment), "KFDEX_VERBOSE")
# tasks whose purpose is to write the .env: when they succeed it may change (a failing task never changes it)
WRITERS = {*(step.name for step in STEPS if step.writes or step.clears), "init", "login", "logout", "sandbox-up", "sandbox-down"}
SESSIONLESS = {key: value for key, value in BASE.items() if not key.startswith("AUTH_")}
WITH_SESSION = {**BASE, "AUTH_ORIGIN": f"http://127.0.0.1:{CLOSED}"}  # a session bound to the closed port: calls are refused at once
RUN_LENGTH = frozenset({"requests", "duration", "warmup", "run_time"})  # with a session, how long a load runs stays the default
EXAMPLES_PER_RUN = 20  # seconds one task may take here before the test calls it a hang
NO_NUL = st.characters(codec="utf-8", blacklist_characters="\x00")  # argv and the environment: text, no NUL
option_values = st.one_of(
    st.text(NO_NUL, max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "0", "-1", "1e999", "", " ", "0x10", "1_000", "30s", "-5s", "5%", "101%", "iris", "-"]),
    st.sampled_from(["grpc", "rest", "nodeport", "ingress", "cookie", "token", "json", "env", "kf15", "iris-v1", "2", "1"]),  # valid words
    st.binary(min_size=1, max_size=12).filter(lambda raw: b"\x00" not in raw).map(os.fsdecode),
)
environment_bytes = st.one_of(
    st.text(NO_NUL, min_size=1, max_size=30),
    st.binary(min_size=1, max_size=40).filter(lambda raw: b"\x00" not in raw).map(os.fsdecode),  # as Python decodes any bytes
)


def _arguments(declaration: Declaration, leave_out: frozenset[str] = frozenset()) -> st.SearchStrategy[list[str]]:
    """The task's name, then some of its declared options (--show-secrets included, ``leave_out`` not), each with any value."""
    options = [
        option
        for option in (*declaration.options, *(() if SHOW_SECRETS in declaration.options else (SHOW_SECRETS,)))
        if option.name not in leave_out
    ]

    def given(chosen: list[Option], values: list[str]) -> list[str]:
        words = [declaration.name]
        for option, value in zip(chosen, values, strict=False):
            words += [option.flag] if option.kind is bool else [option.flag, value]
        return words

    picked = st.lists(st.sampled_from(options), max_size=4, unique_by=lambda option: option.name) if options else st.just([])
    return picked.flatmap(lambda chosen: st.lists(option_values, min_size=len(chosen), max_size=len(chosen)).map(lambda values: given(chosen, values)))


def _core_options() -> st.SearchStrategy[list[str]]:
    """kfdex's own options before the task (Invoke's others are unknown to it): a profile of any name, help, listing."""
    some = st.one_of(
        option_values.map(lambda value: ["--profile", value]),
        st.sampled_from([["-V"], ["-h"], ["--list"], ["--complete"], ["-v"], ["-s"], ["-f", "/etc/passwd"], ["-T", "5"], ["-e"]]),
    )
    return st.lists(some, max_size=1).map(lambda chosen: chosen[0] if chosen else [])  # mostly none: the task is what matters


def _invoke_configuration(folder: Path) -> st.SearchStrategy[dict[str, str]]:
    """Sometimes INVOKE_RUNTIME_CONFIG, naming a file Invoke cannot load."""
    files = ["/etc/passwd", "/dev/null", str(folder / "missing.yaml"), str(folder / "bad.yaml"), str(folder / "bad.json"), str(folder / "raises.py")]
    named = st.sampled_from(files).map(lambda path: {"INVOKE_RUNTIME_CONFIG": path})
    return st.lists(named, max_size=1).map(lambda chosen: chosen[0] if chosen else {})


class _Hang(Exception):
    """A task ran longer than any task may here."""


def _hang(_signal: int, _frame: object) -> None:
    raise _Hang(f"a task ran for more than {EXAMPLES_PER_RUN} s")


@pytest.fixture(scope="module")
def fuzz_folder(folder: Path) -> Path:
    """The fake kubectl's folder, with Invoke configuration files that cannot be loaded."""
    (folder / "bad.yaml").write_text("a: [\n")
    (folder / "bad.json").write_text("{not json")
    (folder / "raises.py").write_text("raise RuntimeError('a configuration that raises')\n")
    return folder


@pytest.fixture
def nothing_long_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sandbox, and every Locust process one that ends at once with an error: nothing runs long or listens."""
    from sandbox import control
    from scripts.load import locust_run

    def no_sandbox(*_: object, **__: object) -> None:
        raise control.SandboxFailure("no sandbox in this test")

    def failing_locust(
        role: str, _arguments: list[str], _environment: dict[str, str], folder: Path, _pass_fds: tuple[int, ...] = ()
    ) -> locust_run.LocustProcess:
        log = folder / f"locust-{role}.log"
        log.write_text("no Locust in this test\n")
        return locust_run.LocustProcess(role, subprocess.Popen(["false"], start_new_session=True), log)

    monkeypatch.setattr(control, "start", no_sandbox)
    monkeypatch.setattr(locust_run, "_spawn", failing_locust)


@pytest.mark.usefixtures("nothing_long_starts")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_task_with_any_option_values_and_environment_bytes(fuzz_folder: Path, data: st.DataObject) -> None:
    """Every declared task: one line and a documented exit code, bounded, and the .env unchanged unless it is a writer."""
    declaration = data.draw(st.sampled_from(COMMANDS), label="task")
    session = data.draw(st.booleans(), label="session")
    leave_out = RUN_LENGTH if session else frozenset()
    arguments = [*data.draw(_core_options(), label="core"), *data.draw(_arguments(declaration, leave_out), label="arguments")]
    variables = data.draw(st.dictionaries(st.sampled_from(ENVIRONMENT_KEYS), environment_bytes, max_size=2), label="environment")
    variables.update(data.draw(_invoke_configuration(fuzz_folder), label="Invoke's configuration"))
    variables["XDG_CONFIG_HOME"] = str(fuzz_folder / "config")  # profiles (--profile NAME) live in the test's folder
    env = Env(EnvFile(fuzz_folder / ".env"), extra_path=str(fuzz_folder / "bin"), sleep=lambda _seconds: None, variables=variables)
    env.path.write_bytes(b"")
    env.file.update(WITH_SESSION if session else SESSIONLESS)
    before = env.path.read_bytes()
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(EXAMPLES_PER_RUN)
    try:
        with mock.patch.object(socket, "getaddrinfo", _numeric_only), mock.patch.object(sys, "stdin", io.StringIO("")):
            ran = env.invoke(*arguments)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode in DOCUMENTED, ran.stderr
    if ran.returncode:
        assert ran.stderr.strip().splitlines()[-1].startswith("error: "), ran.stderr
    if ran.returncode or declaration.name not in WRITERS:
        assert env.path.read_bytes() == before, arguments


# the hidden signal: a value that used to be taken silently -------------------------------------------------------

NUMERIC_OPTIONS = [
    (declaration.name, option) for declaration in COMMANDS for option in declaration.options if option.kind in (int, float)
]


@pytest.mark.usefixtures("nothing_long_starts")
@pytest.mark.parametrize(("task", "option"), NUMERIC_OPTIONS, ids=[f"{task} {option.flag}" for task, option in NUMERIC_OPTIONS])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e999"])
def test_every_numeric_option_refuses_what_no_run_can_use(fuzz_folder: Path, task: str, option: Option, value: str) -> None:
    """NaN, infinities and negatives were once taken silently (`load --duration nan` ran forever): every option, new ones too.

    Each is refused as bad input with the option's name (a whole-number option refuses them as not whole
    numbers), before anything is read, sent or started.
    """
    env = Env(EnvFile(fuzz_folder / ".env"), extra_path=str(fuzz_folder / "bin"), sleep=lambda _seconds: None)
    env.path.write_bytes(b"")
    env.file.update(BASE)  # a session and a closed port: a value taken silently would go on to send
    before = env.path.read_bytes()
    ran = env.invoke(task, f"{option.flag}={value}")
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert ran.stderr.strip().splitlines() == [ran.stderr.strip()], ran.stderr
    assert ran.stderr.startswith(f"error: {option.flag}"), ran.stderr
    assert env.path.read_bytes() == before


# any payload ------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)
_DATATYPES = st.sampled_from(["FP32", "INT64", "BYTES", "BOOL", "UINT8", "FP16"])
tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=6), json_values),
        "shape": st.one_of(st.lists(st.integers(-1, 5), max_size=3), json_values),
        "datatype": st.one_of(_DATATYPES, json_values),
        "data": json_values,
        "parameters": json_values,
    },
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"inputs": st.one_of(st.lists(tensors, max_size=3), json_values), "outputs": json_values, "parameters": json_values}
    ),
    st.fixed_dictionaries({"instances": json_values}),
)
texts = st.one_of(
    bodies.map(json.dumps),  # NaN and Infinity written as Python's json writes them
    st.integers(1, 3000).map(lambda depth: '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ' + "[" * depth + "1" + "]" * depth + "}]}"),
    st.text(max_size=60),
)


@settings(max_examples=200, deadline=None)
@given(texts)
def test_any_payload_text_is_checked_or_refused(text: str) -> None:
    """Whatever the text, a payload is refused (UsageError) or is one a server can be sent, over REST and gRPC alike."""
    from scripts.model import payloads

    try:
        body = payloads.parse(text, "(fuzz)")
        protocol = payloads.check(body, "(fuzz)")
    except UsageError:
        return
    json.dumps(body, allow_nan=False)  # only finite numbers go out
    if protocol == "v2" and not missing("grpc"):
        from scripts.model import grpcv2

        with contextlib.suppress(UsageError):
            grpcv2.to_request("m", body, grpcv2.protos()[1])
