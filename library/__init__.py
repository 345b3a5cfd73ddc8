"""kfdex, imported from Python: ``from kfdex import Kubeflow, KubeflowAuth`` (see docs/python.md).

This folder is the top of the installed ``kfdex`` package (pyproject maps it there;
it is not named ``kfdex`` so that it cannot shadow the installed package in a
checkout).  The names load on first use, so that ``kfdex --list``, which imports
this package first, stays as cheap as before.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scripts.api import Kubeflow, KubeflowAuth, KubeflowSession
    from .scripts.core.errors import (
        ConfigError,
        CredentialsError,
        ExitCode,
        GatewayError,
        KfDexError,
        KubectlError,
        LoginRestartError,
        ModelError,
        SessionError,
        SessionOver,
        UsageError,
    )

_FROM = {
    **dict.fromkeys(("Kubeflow", "KubeflowAuth", "KubeflowSession"), ".scripts.api"),
    **dict.fromkeys(
        (
            "ConfigError", "CredentialsError", "ExitCode", "GatewayError", "KfDexError", "KubectlError",
            "LoginRestartError", "ModelError", "SessionError", "SessionOver", "UsageError",
        ),
        ".scripts.core.errors",
    ),
}  # fmt: skip
__all__ = [
    "ConfigError", "CredentialsError", "ExitCode", "GatewayError", "KfDexError", "KubectlError", "Kubeflow",
    "KubeflowAuth", "KubeflowSession", "LoginRestartError", "ModelError", "SessionError", "SessionOver", "UsageError",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'kfdex' has no attribute {name!r}")
    return getattr(import_module(_FROM[name], __name__), name)
