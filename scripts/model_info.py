"""Step: ask the model server whether it is live and ready, whether the model is ready, and what it takes.

Over the same route and credential as ``infer`` (``routing.connect``): GET
``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/<MODEL_NAME>/ready``
(MLServer answers these 200 with an empty body: the status is the answer), then
``/v2/models/<MODEL_NAME>`` for the V2 metadata: inputs, outputs, versions and
platform, printed readably on stdout, or the raw JSON with ``--json``.
The check itself is ``modelcheck``'s, which ``infer --check`` and ``doctor`` run too.
"""

from __future__ import annotations

from json import dumps
from typing import Any

from .core.environment import Environment
from .core.standalone import main
from .core.state import State
from .core.step import ATTEMPTS, AUTH, DEADLINE, PROTOCOLS, VERBOSE, Option, Step, StepResult
from .model.modelcheck import check, check_grpc
from .model.routing import grpc_asked


def _tensors(entries: Any) -> str:
    """``input-0 FP32 [-1, 4]; ...``, or ``(not declared)``."""
    shown = [f"{entry.get('name', '?')} {entry.get('datatype', '?')} {dumps(entry.get('shape'))}" for entry in entries or []]
    return "; ".join(shown) or "(not declared)"


def format_metadata(metadata: dict[str, Any]) -> str:
    """The V2 metadata, one aligned line per field."""
    rows = (
        ("name", metadata.get("name") or "?"),
        ("versions", ", ".join(map(str, metadata.get("versions") or [])) or "(none)"),
        ("platform", metadata.get("platform") or "(not given)"),
        ("inputs", _tensors(metadata.get("inputs"))),
        ("outputs", _tensors(metadata.get("outputs"))),
    )
    return "\n".join(f"{label:<9} {value}" for label, value in rows)


def run(state: State, environment: Environment, json: bool = False, auth: str = "auto", protocol: str = "rest") -> StepResult:
    """Check the model and print its metadata (nothing is written to .env)."""
    info = check_grpc(state, environment, auth) if grpc_asked(protocol) else check(state, environment, auth)
    output = dumps(info.metadata, indent=2) if json else format_metadata(info.metadata)
    return StepResult({}, info.summary, output=output)


STEP = Step(
    "model-info",
    run,
    "Check that the model server and the model are ready, and print the model's V2 metadata.",
    reads=(
        "MODEL_NAME", "MODEL_NAMESPACE", "MODEL_HOST", "MODEL_PATH", "INGRESS_HOST", "INGRESS_PORT", "NODE_PORT",
        "AUTH_COOKIE", "AUTH_ORIGIN", "AUTH_BEARER", "AUTH_BEARER_ORIGIN", "NODE_PORT_GRPC",
    ),
    options=(
        Option("json", "print the raw V2 metadata JSON", kind=bool, default=False, short="j"),
        AUTH,
        Option("protocol", "rest (HTTP/JSON) or grpc (ServerLive, ServerReady, ModelReady, ModelMetadata; the grpc extra)", default="rest", choices=PROTOCOLS),
        ATTEMPTS,
        DEADLINE,
        VERBOSE,
    ),
)

if __name__ == "__main__":
    main(STEP)
