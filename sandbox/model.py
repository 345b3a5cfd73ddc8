"""The sandbox's real model server: trains an iris classifier, then becomes ``mlserver start``.

Run as ``python -m sandbox.model FOLDER HTTP_PORT GRPC_PORT``.  The model is
trained from scikit-learn's bundled iris data (no download) once per
scikit-learn version and kept in the user's cache (``$XDG_CACHE_HOME/kfdex/
models``), so a sandbox's start does not import scikit-learn twice; it is
copied with its ``model-settings.json``; then this process replaces itself with MLServer
(same pid, so the sandbox stops it by that pid), listening on 127.0.0.1 only,
with metrics off and models served in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

from .realbuild import user_cache

MODEL_NAME = "sklearn-irisv2"


def trained() -> Path:
    """The iris classifier for this scikit-learn version: trained and saved on first use, then reused."""
    cached = user_cache() / "models" / f"{MODEL_NAME}-sklearn-{version('scikit-learn')}" / "model.joblib"
    if cached.is_file():
        return cached
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.name}.{os.getpid()}")  # two sandboxes starting at once: the last one wins whole
    joblib.dump(model, partial)
    os.replace(partial, cached)
    return cached


def train(folder: Path) -> Path:
    """Write ``<folder>/<MODEL_NAME>/model.joblib`` and its settings; returns the model folder.

    ``folder``'s parent (the sandbox's folder) must exist: a model process whose sandbox was already stopped
    and removed ends here (FileNotFoundError) instead of making the folder again.
    """
    target = folder / MODEL_NAME
    folder.mkdir(exist_ok=True)
    target.mkdir(exist_ok=True)
    shutil.copyfile(trained(), target / "model.joblib")
    settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (target / "model-settings.json").write_text(json.dumps(settings, indent=2))
    return target


def environment(http_port: int, grpc_port: int) -> dict[str, str]:
    """MLServer's settings: loopback only, our ports, no metrics server, no worker pool."""
    env = dict(os.environ)
    env.update(
        {
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_HTTP_PORT": str(http_port),
            "MLSERVER_GRPC_PORT": str(grpc_port),
            "MLSERVER_METRICS_ENDPOINT": "",
            "MLSERVER_METRICS_PORT": "0",
            "MLSERVER_PARALLEL_WORKERS": "0",
        }
    )
    return env


def main(arguments: list[str]) -> None:
    folder, http_port, grpc_port = Path(arguments[0]), int(arguments[1]), int(arguments[2])
    train(folder)
    mlserver = shutil.which("mlserver") or str(Path(sys.executable).with_name("mlserver"))
    if not Path(mlserver).exists():
        sys.exit("mlserver is not installed: pip install '.[sandbox]'")
    os.chdir(folder)
    os.execve(mlserver, [mlserver, "start", str(folder)], environment(http_port, grpc_port))


if __name__ == "__main__":
    main(sys.argv[1:])
