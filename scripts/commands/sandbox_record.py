"""What ``sandbox-up`` keeps in the .env itself so that ``sandbox-down`` can put the file back exactly.

The sandbox never holds the only copy of anything: every line of the .env that
``sandbox-up`` takes over is kept in place as a comment holding that line's
exact text, and one marker line records the sandbox's random id and whether
the .env existed before.  A person opening the .env sees::

    HTTP_TIMEOUT=60                      (a setting sandbox-up does not take over: untouched)
    #kfdex-saved "KUBECONFIG=/home/me/.kube/config\\n"
    #kfdex-sandbox id=3f9c… created=no joined=no: `kfdex sandbox-down` removes the sandbox's settings and restores each #kfdex-saved line
    KUBECONFIG=/tmp/kfdex-sandbox-…/kubeconfig
    …

``restore`` removes every line of a key the sandbox owns (those it wrote and
those the steps wrote meanwhile), turns each ``#kfdex-saved`` line back into
the text it holds, and drops the marker, so that without other edits the file
is byte-identical to what it was before ``sandbox-up`` (or gone again, if
``sandbox-up`` created it), whatever happened to the temporary folder.

The marker also holds a short fingerprint of each setting ``sandbox-up``
wrote (never the value), so that ``edited`` can tell which of them a person
changed afterwards: ``sandbox-down`` names those, as their edits go with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ..core.state import appended, encode_value, leading_whitespace, line_ending

SAVED = "#kfdex-saved "
_MARKER = re.compile(
    r"#kfdex-sandbox id=(?P<id>[0-9a-f]+) created=(?P<created>yes|no) joined=(?P<joined>yes|no)"
    r"(?: wrote=(?P<wrote>[A-Z0-9_]+:[0-9a-f]+(?:,[A-Z0-9_]+:[0-9a-f]+)*))?\b"  # absent from markers written before it named edits
)
_EXPLANATION = "`kfdex sandbox-down` removes the sandbox's settings and restores each #kfdex-saved line"


@dataclass(frozen=True)
class Record:
    """The marker line: which sandbox took the .env over, and how the file stood before."""

    id: str
    created: bool  # sandbox-up created the .env (sandbox-down removes it again when nothing else is left)
    joined: bool  # the file's last line had no line ending: sandbox-up added one before the marker
    wrote: tuple[tuple[str, str], ...] = ()  # (key, fingerprint of the value) of each setting sandbox-up wrote

    def line(self, newline: str) -> str:
        yes = {True: "yes", False: "no"}
        wrote = f" wrote={','.join(f'{key}:{print_}' for key, print_ in self.wrote)}" if self.wrote else ""
        return f"#kfdex-sandbox id={self.id} created={yes[self.created]} joined={yes[self.joined]}{wrote}: {_EXPLANATION}{newline}"


def _fingerprint(value: str) -> str:
    """Eight hex digits that tell a changed value from the one written, and say nothing of it."""
    return hashlib.blake2s(value.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()


def _lines(text: str) -> list[tuple[str | None, str, str]]:
    """(key, leading blank lines, the rest) for each line or binding of a .env text."""
    from dotenv.parser import parse_stream

    found = []
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        lead = leading_whitespace(original)
        found.append((binding.key, lead, original[len(lead) :]))
    return found


def _marker(key: str | None, line: str) -> Record | None:
    matched = _MARKER.match(line) if key is None else None
    if matched is None:
        return None
    wrote = tuple(tuple(pair.split(":")) for pair in matched["wrote"].split(",")) if matched["wrote"] else ()
    return Record(matched["id"], matched["created"] == "yes", matched["joined"] == "yes", wrote)  # type: ignore[arg-type]


def find(text: str | None) -> Record | None:
    """The sandbox marker in a .env text, if there is one."""
    return next(filter(None, (_marker(key, rest) for key, _, rest in _lines(text or ""))), None)


def claimed(text: str | None) -> bool:
    """True when a .env text records a sandbox: its marker, or a SANDBOX_DIR with a value (from before markers existed).

    The example's empty ``SANDBOX_DIR=`` (what ``init`` writes) records nothing.
    """
    return any((key == "SANDBOX_DIR" and _value(rest)) or _marker(key, rest) for key, _, rest in _lines(text or ""))


def _value(line: str) -> str:
    """The value of one ``KEY=VALUE`` line, as the .env parser reads it."""
    from dotenv.parser import parse_stream

    return next((binding.value or "" for binding in parse_stream(io.StringIO(line)) if binding.key), "")


def keep(text: str | None, owned: Collection[str], settings: Mapping[str, str], sandbox_id: str) -> str:
    """The .env text with each line of an ``owned`` key kept as a comment, then the marker and ``settings``."""
    newline = line_ending(text or "")
    out = []
    for key, lead, rest in _lines(text or ""):
        out.append(f"{lead}{SAVED}{json.dumps(rest)}{newline}" if key in owned else lead + rest)
    body = "".join(out)
    wrote = tuple((key, _fingerprint(value)) for key, value in settings.items())
    record = Record(sandbox_id, created=text is None, joined=bool(body) and not body.endswith(("\n", "\r")), wrote=wrote)
    added = record.line(newline) + "".join(f"{key}={encode_value(value)}{newline}" for key, value in settings.items())
    return appended(body, added, newline)


def edited(text: str) -> list[str]:
    """The settings ``sandbox-up`` wrote that now hold another value (changed by hand since), in file order."""
    record = find(text)
    written = dict(record.wrote) if record else {}
    changed = [key for key, _, rest in _lines(text) if key in written and _fingerprint(_value(rest)) != written[key]]
    return list(dict.fromkeys(changed))


def restore(text: str, owned: Collection[str]) -> str | None:
    """The text as it was before ``keep`` (other edits kept); None when ``keep`` created the file and nothing else is left."""
    newline = line_ending(text)
    restored = ""
    record = None
    for key, lead, rest in _lines(text):
        if key in owned:
            piece = lead
        elif key is None and rest.startswith(SAVED):
            piece = lead + json.loads(rest[len(SAVED) :].strip())
        elif marker := _marker(key, rest):
            record = marker
            if marker.joined:
                restored = restored.removesuffix(newline)
            piece = lead
        else:
            piece = lead + rest
        restored = appended(restored, piece, newline)
    if record is not None and record.created and not restored:
        return None
    return restored
