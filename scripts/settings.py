"""Typed settings read out of the .env state in one place: where the gateway is and how to talk to it.

``gateway_settings`` is the only code that turns ``INGRESS_*``, ``HTTP_TIMEOUT``
and ``RETRY_*`` into a ``GatewaySettings``; the HTTP layer never sees the state.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .gateway import GatewaySettings, RetryPolicy, origin_of
from .state import State

_TRUE = ("1", "true", "yes", "on")


def retry_policy(state: State) -> RetryPolicy:
    """The policy set in .env (``RETRY_*``), with defaults sized for a Knative cold start."""
    default = RetryPolicy()
    return RetryPolicy(
        attempts=max(1, int(state.number("RETRY_ATTEMPTS", default.attempts))),
        deadline=state.number("RETRY_DEADLINE", default.deadline),
        wait_initial=state.number("RETRY_WAIT_INITIAL", default.wait_initial),
        wait_max=state.number("RETRY_WAIT_MAX", default.wait_max),
    )


def _verify(state: State) -> bool | str:
    if state.value("INGRESS_INSECURE").lower() in _TRUE:
        return False
    bundle = state.value("INGRESS_CA_BUNDLE")
    if bundle:
        path = Path(bundle).expanduser()
        if not path.is_file():
            raise ConfigError(f"INGRESS_CA_BUNDLE={bundle} in {state.path} is not a file: give the PEM file of your CA")
        return str(path)
    return True


def _base(state: State, port_key: str = "INGRESS_PORT", scheme: str | None = None) -> tuple[str, str]:
    """``scheme://host:port`` of INGRESS_HOST at the port in ``port_key``, and the scheme."""
    host = state.require("INGRESS_HOST")
    port = state.require(port_key)
    scheme = scheme or state.value("INGRESS_SCHEME") or ("https" if port == "443" else "http")
    if scheme not in ("http", "https"):
        raise ConfigError(f"INGRESS_SCHEME={scheme!r} in {state.path}: use http or https")
    return f"{scheme}://{host}:{port}", scheme


def ingress_origin(state: State) -> str:
    """The origin (``scheme://host:port``) of the ingress the state points at: where credentials belong."""
    return origin_of(_base(state)[0])


def gateway_settings(state: State, port_key: str = "INGRESS_PORT", scheme: str | None = None) -> GatewaySettings:
    """How to reach INGRESS_HOST at the port in ``port_key``; ``scheme`` forces http or https."""
    base, scheme = _base(state, port_key, scheme)
    return GatewaySettings(
        base=base,
        verify=_verify(state) if scheme == "https" else True,
        read_timeout=state.number("HTTP_TIMEOUT", 30.0),
        retry=retry_policy(state),
    )
