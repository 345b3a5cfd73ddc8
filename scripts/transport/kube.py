"""Calling the real kubectl, with the user's kubeconfig, contexts and auth plugins.

``KUBECONFIG`` from the .env (if set) is passed to kubectl in its environment;
otherwise kubectl's own default applies.  Nothing secret is ever put in argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

from ..core.errors import KubectlError
from ..core.keys import is_secret
from ..core.state import State
from . import settings

if TYPE_CHECKING:
    from ..core.environment import Environment

KUBECTL_TIMEOUT_SECONDS = 60
_KLOG = re.compile(r"^[IWEF]\d{4} ")


class NotFound(KubectlError):
    """The object asked for does not exist."""


def _environment(state: State) -> dict[str, str]:
    """The process environment for kubectl (and its auth plugins), without the tool's secrets."""
    env = {name: value for name, value in os.environ.items() if not is_secret(name)}
    kubeconfig = settings.kubeconfig(state)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return env


def command_line(state: State, *args: str) -> str:
    """``KUBECONFIG=… kubectl --request-timeout=30s ARGS`` as a shell line: what ``kubectl`` runs (argv holds no secret)."""
    import shlex

    kubeconfig = settings.kubeconfig(state)
    prefix = f"KUBECONFIG={shlex.quote(kubeconfig)} " if kubeconfig else ""
    return prefix + shlex.join(("kubectl", "--request-timeout=30s", *args))


def kubectl_binary() -> str:
    """Where kubectl is; a KubectlError when it is not on PATH (checked before a run that will need it starts)."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise KubectlError("kubectl is not on PATH: install it and configure it for your cluster")
    return binary


def kubectl(state: State, *args: str, environment: Environment | None = None) -> str:
    """Run ``kubectl ARGS`` and return its stdout, or raise a KubectlError with its reason.

    Given an ``environment``, the command line is reported to it (shown with --verbose).
    """
    binary = kubectl_binary()
    command = " ".join(("kubectl", *args))
    started = time.monotonic()
    try:
        finished = _run([binary, "--request-timeout=30s", *args], _environment(state))
    except subprocess.TimeoutExpired:
        if environment is not None:
            environment.hop("$", command_line(state, *args), f"no end in {KUBECTL_TIMEOUT_SECONDS}s")
        raise KubectlError(
            f"`{command}` did not finish in {KUBECTL_TIMEOUT_SECONDS}s: check that the cluster is reachable"
        ) from None
    if environment is not None:
        took = (time.monotonic() - started) * 1000
        environment.hop("$", command_line(state, *args), f"exit {finished.returncode}", milliseconds=took)
    if finished.returncode != 0:
        reason = _reason(finished.stderr)
        if "NotFound" in finished.stderr or "not found" in reason:
            raise NotFound(f"`{command}` failed: {reason}")
        hint = _hint(finished.stderr)
        raise KubectlError(f"`{command}` failed: {reason}{hint}")
    return finished.stdout


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """kubectl in a session of its own: on timeout (or Ctrl-C) its whole process group is killed, auth plugins included."""
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=KUBECTL_TIMEOUT_SECONDS)
        except BaseException:  # TimeoutExpired, KeyboardInterrupt: nothing it started may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def kubectl_json(state: State, *args: str, environment: Environment | None = None) -> Any:
    """Run ``kubectl ARGS -o json`` and return the parsed answer."""
    output = kubectl(state, *args, "-o", "json", environment=environment)
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        raise KubectlError(f"`kubectl {' '.join(args)} -o json` did not print JSON") from None


def _reason(stderr: str) -> str:
    # kubectl prints klog noise ("E1128 15:24:41.44 ...") and warnings first, and the reason last
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not _KLOG.match(line)]
    errors = [line for line in lines if line.lower().startswith("error")]
    reason = (errors or lines or ["no message"])[-1]
    return reason.removeprefix("error: ").removeprefix("Error from server ")


def _hint(stderr: str) -> str:
    lowered = stderr.lower()
    if "localhost:8080" in lowered:
        return "; kubectl has no cluster configured: set KUBECONFIG in .env or run `kubectl config use-context`"
    if "current-context" in lowered or "no configuration has been provided" in lowered:
        return "; no current context: set KUBECONFIG in .env or run `kubectl config use-context`"
    if "connection refused" in lowered or "no such host" in lowered or "i/o timeout" in lowered:
        return "; the cluster's API server is not reachable: check KUBECONFIG and the network"
    if "forbidden" in lowered:
        return "; your kubeconfig user lacks the permission: ask the cluster's admin for it"
    return ""
