"""What the tests share: the test's .env, running tasks in-process or as a real process, and a quiet environment.

``Env.invoke`` runs a task in this process through Invoke's ``Program.run``
with an injected environment (in-memory streams, the test's .env); it answers
like ``subprocess.run`` so that tests read the same either way.
``Env.process`` starts ``invoke`` as a separate process: the end-to-end path
through real kubectl and MLServer that every task keeps at least one test of.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from scripts.app.catalog import COMMANDS
from scripts.app.cli import KfDexProgram, build_collection
from scripts.core.environment import Environment
from scripts.core.state import EnvFile

ROOT = Path(__file__).resolve().parent.parent
NO_BACKOFF = {"RETRY_WAIT_INITIAL": "0", "RETRY_WAIT_MAX": "0", "RETRY_ATTEMPTS": "5", "RETRY_DEADLINE": "30"}
# for a test that retries until something that takes its own time (a model loading, a deadline): 10 ms between
# attempts costs it no time and sends tens of calls instead of hundreds
SPACED = {"RETRY_WAIT_INITIAL": "0.01", "RETRY_WAIT_MAX": "0.01"}
TASK_NAMES = tuple(command.name for command in COMMANDS)


def here(**changes: object) -> Environment:
    """The test's own streams (pytest captures them), no terminal, the process environment."""
    environment = Environment(sys.stdout, sys.stderr, interactive=False, variables=os.environ)
    for name, value in changes.items():
        setattr(environment, name, value)
    return environment


@contextmanager
def _restored_logging() -> Iterator[None]:
    """``invoke --debug`` turns the root logger to DEBUG for the process: put it back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


@dataclass
class Env:
    """A test's .env file and helpers to run tasks against it."""

    file: EnvFile
    extra_path: str = ""  # put first on PATH (a fake kubectl)
    only_path: str = ""  # replace PATH (no kubectl at all)
    sleep: Callable[[float], None] = time.sleep  # how invoke's runs wait between retries
    variables: dict[str, str] = field(default_factory=dict)  # set in the task's environment (any value os.environ takes)
    names_its_file: bool = True  # ENV_FILE names this .env; False: the task finds its state itself (a profile, ./.env)

    @property
    def path(self) -> Path:
        return self.file.path

    def read(self) -> dict[str, str]:
        return dict(self.file.read())

    def set(self, **values: str | None) -> None:
        self.file.update(values)

    def _variables(self) -> dict[str, str]:
        variables = dict(os.environ, ENV_FILE=str(self.path), **self.variables)
        variables.pop("KFDEX_DEBUG", None)
        if not self.names_its_file:
            variables.pop("ENV_FILE")
        if self.only_path:
            variables["PATH"] = self.only_path
        elif self.extra_path:
            variables["PATH"] = f"{self.extra_path}{os.pathsep}{variables.get('PATH', '')}"
        return variables

    def invoke(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run ``invoke ARGS`` in this process (Program.run) against this .env, with in-memory streams."""
        variables = self._variables()
        stdout, stderr = io.StringIO(), io.StringIO()
        collection = build_collection(COMMANDS)
        collection.configure({"kfdex": {"environment": Environment(stdout, stderr, sleep=self.sleep, variables=variables)}})
        code = 0
        with mock.patch.dict(os.environ, variables, clear=True), _restored_logging(), mock.patch.object(
            sys, "stdout", stdout
        ), mock.patch.object(sys, "stderr", stderr), mock.patch.object(sys, "stdin", io.StringIO()):  # stdin: nothing typed, as /dev/null
            try:
                KfDexProgram(namespace=collection, binary="invoke").run(["invoke", *arguments])
            except SystemExit as leaving:
                code = leaving.code if isinstance(leaving.code, int) else 1
        return subprocess.CompletedProcess(["invoke", *arguments], code, stdout.getvalue(), stderr.getvalue())

    def process(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``invoke ARGS`` as a separate process against this .env."""
        invoke = Path(sys.executable).with_name("invoke")
        return subprocess.run(
            [str(invoke), *arguments],
            cwd=ROOT,
            env=self._variables(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


def login_steps(env: Env, until: str = "") -> None:
    """The Dex login's declared steps run one by one against ``env`` (stopping after ``until``)."""
    from scripts.commands.login import DEX_STEPS
    from scripts.core.step import run_step

    for step in DEX_STEPS:
        run_step(step, env.file, here())
        if step.name == until:
            return


class Stub:
    """One listener for the whole run whose answers each test sets: stopping a listener costs half a second."""

    def __init__(self) -> None:
        from sandbox.httpserve import Listener

        self._app: object = None
        self.listener = Listener("stub", lambda request: self._app(request))  # type: ignore[operator]

    @property
    def port(self) -> int:
        return self.listener.port

    def answer(self, app: object, env: Env | None = None) -> None:
        """Answer every request with ``app``; point ``env``'s ingress at this listener."""
        self._app = app
        if env is not None:
            env.set(INGRESS_HOST="127.0.0.1", INGRESS_PORT=str(self.port))


LOCUST_MARKER = "KFDEX_TEST_LOCUST"  # set by the own_locust fixture; Locust processes inherit it


def locust_processes(marker: str) -> list[int]:
    """Pids of processes running this checkout's locustfile that were started by the test holding ``marker``."""
    from scripts.load.locust_run import LOCUSTFILE

    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                mine = marker.encode() in (proc / "environ").read_bytes().split(b"\0")
                if mine and str(LOCUSTFILE).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found
