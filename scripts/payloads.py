"""Request bodies for infer: by name from ``payloads/``, by path, from stdin or inline, and checked before sending.

A body with ``inputs`` is a V2 (Open Inference Protocol) request; one with
``instances`` is a V1 request.  Checks catch what the model server would
reject anyway, so that bad input sends nothing: tensors whose shape does not
match their data, unknown datatypes, V1 bodies without ``instances``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import UsageError

# beside this package: payloads/ in a checkout, kfdex/payloads when installed
PAYLOAD_DIR = Path(__file__).resolve().parent.parent / "payloads"
V2_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"}
)


@dataclass(frozen=True)
class Payload:
    """A checked request body and the protocol it speaks."""

    name: str
    body: dict[str, Any]
    protocol: str  # "v1" or "v2"


def known_names() -> list[str]:
    """Names of the payloads shipped in ``payloads/``."""
    return sorted(path.stem for path in PAYLOAD_DIR.glob("*.json"))


def find(name_or_path: str) -> Path:
    """The file for a payload name (``iris``) or a path; UsageError listing the known names."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    if "/" not in name_or_path:
        named = PAYLOAD_DIR / (name_or_path if name_or_path.endswith(".json") else f"{name_or_path}.json")
        if named.is_file():
            return named
    raise UsageError(f"no payload {name_or_path!r}: give a file path or one of {', '.join(known_names()) or '(none)'}")


def load(source: str, stdin: TextIO | None = None) -> Payload:
    """Read and check a payload; UsageError says what is wrong with it.

    ``source`` is a name from ``payloads/``, a file path, ``-`` for standard
    input, or the JSON itself when it starts with ``{``.
    """
    if source == "-":
        where, name = "<stdin>", "stdin"
        try:
            text = (stdin or sys.stdin).read()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read the payload from standard input: {error}") from None
    elif source.lstrip().startswith("{"):
        text, where, name = source, "(inline)", "inline"
    else:
        path = find(source)
        where, name = str(path), path.stem
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read payload {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"payload {where} is not JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    return Payload(name, body, check(body, where))


def check(body: Any, where: str) -> str:
    """The protocol of a body ("v1" or "v2"), or a UsageError naming the problem."""
    if not isinstance(body, dict):
        raise UsageError(f"payload {where} must be a JSON object with 'inputs' (V2) or 'instances' (V1)")
    if "inputs" in body:
        _check_v2(body["inputs"], where)
        return "v2"
    if "instances" in body:
        if not isinstance(body["instances"], list):
            raise UsageError(f"payload {where}: 'instances' must be a list")
        return "v1"
    raise UsageError(f"payload {where} has neither 'inputs' (V2) nor 'instances' (V1)")


def _check_v2(inputs: Any, where: str) -> None:
    if not isinstance(inputs, list) or not inputs:
        raise UsageError(f"payload {where}: 'inputs' must be a non-empty list of tensors")
    for index, tensor in enumerate(inputs):
        label = f"payload {where}: input {index}"
        if not isinstance(tensor, dict):
            raise UsageError(f"{label} must be an object with name, shape, datatype and data")
        missing = [key for key in ("name", "shape", "datatype", "data") if key not in tensor]
        if missing:
            raise UsageError(f"{label} lacks {', '.join(missing)}")
        label = f"payload {where}: input {tensor['name']!r}"
        if tensor["datatype"] not in V2_DATATYPES:
            raise UsageError(f"{label} has unknown datatype {tensor['datatype']!r}: use one of {', '.join(sorted(V2_DATATYPES))}")
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise UsageError(f"{label}: shape must be a list of whole numbers ≥ 0")
        count = _element_count(tensor["data"])
        expected = math.prod(shape)
        if count != expected:
            raise UsageError(f"{label}: shape {shape} holds {expected} elements but data has {count}")


def _element_count(data: Any) -> int:
    if isinstance(data, list):
        return sum(_element_count(item) for item in data)
    return 1
