"""Request bodies for infer: by name from ``payloads/``, by path, from stdin or inline, and checked before sending.

A body with ``inputs`` is a V2 (Open Inference Protocol) request; one with
``instances`` is a V1 request.  Checks catch what the model server would
reject anyway, so that bad input sends nothing: tensors whose shape does not
match their data, unknown datatypes, V1 bodies without ``instances``, numbers
JSON cannot carry (``NaN``, ``Infinity``, ``1e999``), and documents nested more
than ``MAX_DEPTH`` levels deep (a tensor of rank 60 still fits).
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..core.errors import UsageError
from ..core.values import shown

# beside this package: payloads/ in a checkout, kfdex/payloads when installed
PAYLOAD_DIR = Path(__file__).resolve().parents[2] / "payloads"
MAX_DEPTH = 64  # levels of nested lists and objects in a whole payload (README, "Payloads")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)  # a JSON string, escapes included
_BRACKET = re.compile(r"[\[\]{}]")
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
            text = _bounded(stdin or sys.stdin, "standard input")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read the payload from standard input: {error}") from None
    elif source.lstrip().startswith("{"):
        text, where, name = source, "(inline)", "inline"
    else:
        try:
            path = find(source)
        except UsageError:
            _refuse_inline_non_object(source)
            raise
        where, name = str(path), path.stem
        try:
            with path.open(encoding="utf-8") as opened:
                text = _bounded(opened, str(path))
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read payload {path}: {getattr(error, 'strerror', None) or error}") from None
    return Payload(name, (body := parse(text, where)), check(body, where))


MAX_PAYLOAD_CHARACTERS = 256 * 1024 * 1024  # a model call's body this large is a mistake (`-p - < /dev/zero`), not a payload
_CHUNK = 1024 * 1024  # read in pieces: a signal is handled between them, and memory stops at the bound


def _bounded(stream: TextIO, where: str) -> str:
    """All of ``stream``'s text, or a UsageError once it passes MAX_PAYLOAD_CHARACTERS."""
    pieces: list[str] = []
    total = 0
    while piece := stream.read(_CHUNK):
        total += len(piece)
        if total > MAX_PAYLOAD_CHARACTERS:
            raise UsageError(f"the payload from {where} is larger than {MAX_PAYLOAD_CHARACTERS // 2**20} MiB: give a smaller one")
        pieces.append(piece)
    return "".join(pieces)


_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number", type(None): "null"}


def _refuse_inline_non_object(source: str) -> None:
    """A UsageError for inline JSON that is not an object (``[]``, ``null``): a payload is always an object."""
    try:
        value = json.loads(source)
    except ValueError:
        return
    raise UsageError(
        f"payload (inline) is {_JSON_KINDS.get(type(value), 'not an object')}: "
        'give a JSON object, {"inputs": [...]} (V2) or {"instances": [...]} (V1)'
    )


class _NotFinite(ValueError):
    """A number JSON cannot carry (NaN, Infinity, or too large for a float)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(text: str) -> float:
    raise _NotFinite(text)


def parse(text: str, where: str) -> Any:
    """The JSON document in ``text``: finite numbers only, at most ``MAX_DEPTH`` levels deep; else a UsageError."""
    too_deep = f"payload {where} is nested more than {MAX_DEPTH} levels deep: flatten it (a V2 tensor's data may be one flat list)"
    if _depth_of_text(text) > MAX_DEPTH:
        raise UsageError(too_deep)
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise UsageError(f"payload {where} is not JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    except _NotFinite as error:
        raise UsageError(f"payload {where} holds the number {shown(str(error))}, which JSON cannot carry: give finite numbers") from None
    except ValueError as error:  # an integer of thousands of digits
        raise UsageError(f"payload {where} cannot be read: {error}") from None
    except RecursionError:
        raise UsageError(too_deep) from None


def _depth_of_text(text: str) -> int:
    """How deep brackets nest in a JSON text, outside strings (checked before parsing, which recurses)."""
    deepest = depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def check(body: Any, where: str) -> str:
    """The protocol of a body ("v1" or "v2"), or a UsageError naming the problem."""
    if not isinstance(body, dict):
        raise UsageError(f"payload {where} must be a JSON object with 'inputs' (V2) or 'instances' (V1)")
    if "inputs" in body:
        _check_v2(body, where)
        return "v2"
    if "instances" in body:
        if not isinstance(body["instances"], list):
            raise UsageError(f"payload {where}: 'instances' must be a list")
        return "v1"
    raise UsageError(f"payload {where} has neither 'inputs' (V2) nor 'instances' (V1)")


def _check_v2(body: dict[str, Any], where: str) -> None:
    inputs = body["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise UsageError(f"payload {where}: 'inputs' must be a non-empty list of tensors")
    _check_parameters(body, f"payload {where}")
    for index, tensor in enumerate(inputs):
        _check_tensor(tensor, f"payload {where}: input {index}")
    outputs = body.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(out, dict) and isinstance(out.get("name"), str) for out in outputs):
        raise UsageError(f"payload {where}: 'outputs' must be a list of objects with a name")
    for output in outputs:
        _check_parameters(output, f"payload {where}: output {output['name']!r}")


def _check_parameters(holder: dict[str, Any], label: str) -> None:
    if not isinstance(holder.get("parameters", {}), dict):
        raise UsageError(f"{label}: 'parameters' must be an object")


def _check_tensor(tensor: Any, label: str) -> None:
    if not isinstance(tensor, dict):
        raise UsageError(f"{label} must be an object with name, shape, datatype and data")
    missing = [key for key in ("name", "shape", "datatype", "data") if key not in tensor]
    if missing:
        raise UsageError(f"{label} lacks {', '.join(missing)}")
    if not isinstance(tensor["name"], str):
        raise UsageError(f"{label}: name must be a string")
    label = label.rsplit(": ", 1)[0] + f": input {tensor['name']!r}"
    datatype = tensor["datatype"]
    if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
        given = shown(datatype) if isinstance(datatype, str) else f"{shown(json.dumps(datatype))} (not a string)"
        raise UsageError(f"{label} has unknown datatype {given}: use one of {', '.join(sorted(V2_DATATYPES))}")
    _check_parameters(tensor, label)
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise UsageError(f"{label}: shape must be a list of whole numbers ≥ 0")
    count = _element_count(tensor["data"])
    expected = math.prod(shape)
    if count != expected:
        raise UsageError(f"{label}: shape {shape} holds {expected} elements but data has {count}")


def _element_count(data: Any) -> int:
    """Scalars in nested lists, counted without recursion (a document built in code may nest deeper than JSON text)."""
    count, waiting = 0, [data]
    while waiting:
        item = waiting.pop()
        if isinstance(item, list):
            waiting.extend(item)
        else:
            count += 1
    return count
