"""The optional extras (``pip install 'kfdex[grpc]'``): which modules each brings, and one check before a task needs them.

A task that needs an extra calls ``require`` before it starts anything, so a
missing extra is one line naming it (exit 2), not an ImportError halfway
through a run or a child process's traceback.  ``find_spec`` only looks for
the modules: nothing heavy is imported here.
"""

from __future__ import annotations

import importlib.util

from .errors import UsageError

# extra -> the top-level modules it installs that the tool imports (pyproject.toml lists the packages)
EXTRAS: dict[str, tuple[str, ...]] = {
    "grpc": ("grpc", "tritonclient", "google.protobuf"),
    "kfp": ("kfp",),
    "load": ("locust", "plotly", "pycurl"),
    "sandbox": ("mlserver", "mlserver_sklearn", "sklearn", "joblib", "h2"),
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be found."""
    absent = []
    for name in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module entry set to None
            found = False
        if not found:
            absent.append(name)
    return absent


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """A UsageError (exit 2) naming the extra when any of its modules (or only ``modules`` of it) is missing."""
    absent = [name for name in missing(extra) if modules is None or name in modules]
    if absent:
        raise UsageError(
            f"{what} needs the optional extra {extra} ({', '.join(absent)} missing): "
            f"pip install 'kfdex[{extra}]' (or '.[{extra}]' in a checkout)"
        )
