"""Typed settings read out of the .env state in one place: where the gateway is and how to talk to it.

``gateway_settings`` is the only code that turns ``INGRESS_*``, ``HTTP_TIMEOUT``
and ``RETRY_*`` into a ``GatewaySettings``; the HTTP layer never sees the state.
Every value is checked here before anything is sent: a value that cannot be
used is refused with one line naming the key, its value and the fix
(``UsageError``, exit 2), the same words as for the option that overrides it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import UsageError
from ..core.keys import KEYS
from ..core.state import State
from ..core.values import COUNT, PORT, SECONDS, TIMEOUT, Number, host_problem, is_kubernetes_name, shown, url_host
from .gateway import GatewaySettings, RetryPolicy, origin_of

_TRUE = ("1", "true", "yes", "on")
DEFAULT_HTTP_TIMEOUT = 30.0


def label(state: State, key: str, raw: str) -> str:
    """``KEY='value' in /path/.env`` (or ``in the environment``) for a message (a secret's value is never shown)."""
    where = {"environment": "in the environment", "option": "given as an option"}.get(state.source(key), f"in {state.path}")
    return f"{key}={shown(raw, key)} {where}"


def _fix(state: State, key: str, default: float | None = None) -> str:
    if KEYS[key].source == "step":
        return f"run `{KEYS[key].how_to_produce}` again"
    remove = "unset the variable" if state.source(key) == "environment" else "delete the line"
    return f"{remove} for the default ({default:g})" if default is not None else ""


def number(state: State, key: str, wanted: Number, default: float) -> float:
    """A numeric setting checked against ``wanted`` (the option's own check when an option overrides it)."""
    raw = state.value(key)
    if not raw:
        return default
    return wanted.parse(raw, label(state, key, raw), _fix(state, key, default))


def retry_policy(state: State) -> RetryPolicy:
    """The policy set in .env (``RETRY_*``), with defaults sized for a Knative cold start."""
    default = RetryPolicy()
    return RetryPolicy(  # COUNT and SECONDS also check --attempts and --deadline (scripts.core.step)
        attempts=int(number(state, "RETRY_ATTEMPTS", COUNT, default.attempts)),
        deadline=number(state, "RETRY_DEADLINE", SECONDS, default.deadline),
        wait_initial=number(state, "RETRY_WAIT_INITIAL", SECONDS, default.wait_initial),
        wait_max=number(state, "RETRY_WAIT_MAX", SECONDS, default.wait_max),
    )


def _verify(state: State) -> bool | str:
    if state.value("INGRESS_INSECURE").lower() in _TRUE:
        return False
    bundle = state.value("INGRESS_CA_BUNDLE")
    if bundle:
        path = Path(bundle).expanduser()
        if not path.is_file():
            raise UsageError(f"{label(state, 'INGRESS_CA_BUNDLE', bundle)} is not a file: give the PEM file of your CA")
        return str(path)
    return True


def host(state: State, key: str, port_key: str = "") -> str:
    """A host name or address (``INGRESS_HOST``; ``MODEL_HOST`` may carry a port); its port belongs in ``port_key``."""
    raw = state.require(key)
    problem = host_problem(raw, port_key)
    if problem:
        fix = f", or run `{KEYS[key].how_to_produce}` again" if KEYS[key].source == "step" else ""
        raise UsageError(f"{label(state, key, raw)} {problem}{fix}")
    return raw


_PATH_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~-]+)+")


def path_prefix(state: State, key: str = "MODEL_PATH") -> str:
    """A URL path prefix (``MODEL_PATH``: ``/serving/NAMESPACE/NAME``), "" when unset; no query, no dot segments."""
    raw = state.value(key)
    prefix = raw.rstrip("/")
    if prefix and (not _PATH_PREFIX.fullmatch(prefix) or {".", ".."} & set(prefix.split("/"))):
        raise UsageError(
            f"{label(state, key, raw)} is not a URL path such as /serving/NAMESPACE/NAME: "
            f"run `{KEYS[key].how_to_produce}` again, or empty it for host routing"
        )
    return prefix


def kube_name(state: State, key: str, default: str | None = None) -> str:
    """A Kubernetes name (``MODEL_NAME``, ``MODEL_NAMESPACE``, ``TOKEN_*``); required when there is no default."""
    raw = state.require(key) if default is None else state.value(key)
    if raw and not is_kubernetes_name(raw):
        raise UsageError(f"{label(state, key, raw)} is not a Kubernetes name: use lower-case letters, digits, - and .")
    return raw or default


def kubeconfig(state: State) -> str:
    """``KUBECONFIG`` for kubectl's environment ("" for kubectl's default)."""
    raw = state.value("KUBECONFIG")
    if "\x00" in raw:
        raise UsageError(f"{label(state, 'KUBECONFIG', raw)} holds a NUL character: give the path of your kubeconfig file")
    return raw


def port(state: State, key: str) -> int:
    """A TCP port (``INGRESS_PORT``, ``NODE_PORT``)."""
    raw = state.require(key)
    return int(PORT.parse(raw, label(state, key, raw), _fix(state, key)))


def _base(state: State, port_key: str = "INGRESS_PORT", scheme: str | None = None) -> tuple[str, str]:
    """``scheme://host:port`` of INGRESS_HOST at the port in ``port_key``, and the scheme."""
    address = host(state, "INGRESS_HOST", "INGRESS_PORT")
    number_of_port = port(state, port_key)
    scheme = scheme or state.value("INGRESS_SCHEME") or ("https" if number_of_port == 443 else "http")
    if scheme not in ("http", "https"):
        raise UsageError(f"{label(state, 'INGRESS_SCHEME', scheme)}: use http or https")
    return f"{scheme}://{url_host(address)}:{number_of_port}", scheme


def ingress_origin(state: State) -> str:
    """The origin (``scheme://host:port``) of the ingress the state points at: where credentials belong."""
    return origin_of(_base(state)[0])


def gateway_settings(state: State, port_key: str = "INGRESS_PORT", scheme: str | None = None) -> GatewaySettings:
    """How to reach INGRESS_HOST at the port in ``port_key``; ``scheme`` forces http or https."""
    base, scheme = _base(state, port_key, scheme)
    return GatewaySettings(
        base=base,
        verify=_verify(state) if scheme == "https" else True,
        read_timeout=number(state, "HTTP_TIMEOUT", TIMEOUT, DEFAULT_HTTP_TIMEOUT),
        retry=retry_policy(state),
        address=f"INGRESS_HOST/{port_key} (`{KEYS[port_key].how_to_produce}`)",
    )
