"""What a model's answer means for a person: the error for one that is not a prediction, and the outputs shown.

REST (``infer``, ``model-info``, ``doctor``) and gRPC (``grpcv2``) say the same
words for a call the gateway sent to a login (``sent_to_login``), and print
outputs the same way (``format_outputs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..auth.dexflow import describe, login_signal
from ..core.errors import ModelError, SessionOver

if TYPE_CHECKING:  # only for annotations: requests loads when a request is sent
    import requests


def sent_to_login(credential: str, where: str = "to a login") -> SessionOver:
    """The error for a call the gateway sent to a login instead of the model (REST and gRPC alike)."""
    if credential == "token":
        return SessionOver(
            f"the gateway sent the call {where}: it did not accept the ServiceAccount token "
            "(expired, wrong audience, or a Kubeflow that takes no bearer tokens); use `invoke login` instead"
        )
    return SessionOver(f"the gateway sent the call {where}: the session is expired or not valid here; run `invoke login`")


def refusal(response: requests.Response, model: str, namespace: str, path: str, credential: str) -> Exception | None:
    """The error for an answer that is not a prediction, or None when it is one."""
    status = response.status_code
    where = login_signal(response)
    if where:
        return sent_to_login(credential, where)
    if status == 403:
        return ModelError(
            f"{describe(response)} calling {model}: your user may not call models in {namespace or 'this namespace'}"
        )
    if status == 404 and not response.content and response.headers.get("server") == "istio-envoy":
        return ModelError(
            f"the gateway has no route to {model} for this Host (Istio's empty 404): "
            "run `invoke resolve-model` to take MODEL_HOST (and MODEL_PATH) from the InferenceService"
        )
    if status == 404:
        hint = "check MODEL_NAME (and MODEL_HOST)"
        if "/v1/" in path:
            hint += "; a V2-only server such as MLServer answers 404 to V1 calls: use a V2 payload"
        return ModelError(f"model {model} not found ({describe(response)}): {hint}")
    if status >= 400:
        return ModelError(f"the model answered {describe(response)}")
    return None


SHOWN_VALUES = 20  # per output, by default: a 50 MB answer is not a screenful
SHOWN_OUTPUTS = 20


def _leaves(data: Any) -> Iterator[Any]:
    """The values of a (nested) list in order, depth first."""
    if isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    else:
        yield data


def _shown_data(data: Any, full: bool) -> str:
    """An output's data as JSON; past SHOWN_VALUES values, the first ones and how many were left out."""
    if full or not isinstance(data, list):
        return json.dumps(data)
    first = list(islice(_leaves(data), SHOWN_VALUES + 1))
    if len(first) <= SHOWN_VALUES:
        return json.dumps(data)
    total = sum(1 for _ in _leaves(data))
    return f"{json.dumps(first[:SHOWN_VALUES])[:-1]}, …] (the first {SHOWN_VALUES} of {total} values; --full or --json prints all)"


def format_outputs(answer: dict[str, Any], full: bool = False) -> str:
    """``predict = [1, 1]`` per V2 output, or ``predictions = [...]`` for V1; long ones cut to a screenful unless ``full``."""
    if "outputs" in answer:
        outputs = answer.get("outputs") or []
        shown = outputs if full else outputs[:SHOWN_OUTPUTS]
        lines = [f"{output.get('name') or f'output-{index}'} = {_shown_data(output.get('data'), full)}" for index, output in enumerate(shown)]
        if len(shown) < len(outputs):
            lines.append(f"… and {len(outputs) - len(shown)} more outputs (--full or --json prints all)")
        return "\n".join(lines) or "(no outputs)"
    if "predictions" in answer:
        return f"predictions = {_shown_data(answer['predictions'], full)}"
    return json.dumps(answer)
