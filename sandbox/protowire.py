"""Just enough of protobuf's wire format to read the TokenRequest kubectl sends.

kubectl posts built-in types such as ``authentication.k8s.io/v1`` TokenRequest
as ``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\0`` and a
``runtime.Unknown`` envelope whose field 2 holds the object.  This reads
fields by number; it builds nothing.
"""

from __future__ import annotations

MAGIC = b"k8s\x00"


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    found: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            found.append((number, value))
        elif wire_type == 2:
            length, position = _varint(data, position)
            found.append((number, data[position : position + length]))
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return found


def token_request_spec(body: bytes) -> dict[str, object]:
    """``spec`` of a protobuf TokenRequest: audiences (field 1) and expirationSeconds (field 4)."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf message")
    raw = next(value for number, value in fields(body[len(MAGIC) :]) if number == 2)
    assert isinstance(raw, bytes)
    spec = next((value for number, value in fields(raw) if number == 2), b"")
    assert isinstance(spec, bytes)
    audiences = [value.decode() for number, value in fields(spec) if number == 1 and isinstance(value, bytes)]
    seconds = next((value for number, value in fields(spec) if number == 4 and isinstance(value, int)), None)
    return {"audiences": audiences, "expirationSeconds": seconds}
