"""The saved credential in the forms other tools take: a header line, curl arguments, JSON, shell exports, Python.

``kfdex credential --format F`` prints one of these so that the session or
token a login produced can be used by curl, a script, a notebook or the
Kubeflow Pipelines SDK.  Values pass through ``shown`` (the console's masking)
so that nothing secret is printed unless ``--show-secrets`` was given.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass

FORMATS = ("header", "curl", "json", "env", "python")


@dataclass(frozen=True)
class Credential:
    """A session cookie or a bearer token, where it may be sent, and until when."""

    kind: str  # "cookie" or "token"
    value: str  # the Cookie header value, or the bare token
    origin: str  # scheme://host:port of the ingress it belongs to ("" when not recorded)
    expires: str  # ISO 8601 UTC, "" when the gateway gave none
    login: str  # the Dex login or ServiceAccount it was issued to ("" when not recorded)

    @property
    def header_name(self) -> str:
        return "Cookie" if self.kind == "cookie" else "Authorization"

    def header_value(self, shown: Callable[[str], str]) -> str:
        return shown(self.value) if self.kind == "cookie" else f"Bearer {shown(self.value)}"

    @property
    def value_key(self) -> str:
        """The .env key that holds it."""
        return "AUTH_COOKIE" if self.kind == "cookie" else "AUTH_BEARER"

    @property
    def expiry_key(self) -> str:
        return "AUTH_EXPIRES" if self.kind == "cookie" else "AUTH_BEARER_EXPIRES"

    @property
    def origin_key(self) -> str:
        return "AUTH_ORIGIN" if self.kind == "cookie" else "AUTH_BEARER_ORIGIN"


def render(credential: Credential, form: str, shown: Callable[[str], str]) -> str:
    """The credential written in ``form`` (one of FORMATS), with values passed through ``shown``."""
    return _RENDERERS[form](credential, shown)


def _header(credential: Credential, shown: Callable[[str], str]) -> str:
    return f"{credential.header_name}: {credential.header_value(shown)}"


def _curl(credential: Credential, shown: Callable[[str], str]) -> str:
    return f"-H {shlex.quote(_header(credential, shown))}"


def _json(credential: Credential, shown: Callable[[str], str]) -> str:
    return json.dumps(
        {
            "kind": credential.kind,
            "header": credential.header_name,
            "value": shown(credential.value),
            "origin": credential.origin,
            "expires": credential.expires or None,
            "login": credential.login or None,
        },
        indent=2,
    )


def _env(credential: Credential, shown: Callable[[str], str]) -> str:
    pairs = [
        (credential.value_key, shown(credential.value)),
        (credential.expiry_key, credential.expires),
        (credential.origin_key, credential.origin),
    ]
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in pairs if value)


def _python(credential: Credential, shown: Callable[[str], str]) -> str:
    host = credential.origin or "http://INGRESS_HOST:INGRESS_PORT"
    if credential.kind == "cookie":
        kfp_argument = f"cookies={shown(credential.value)!r}"
    else:
        kfp_argument = f"existing_token={shown(credential.value)!r}"
    return "\n".join(
        [
            f"# {credential.kind} for {host}" + (f", valid until {credential.expires}" if credential.expires else ""),
            "import requests",
            "",
            "session = requests.Session()",
            f"session.headers[{credential.header_name!r}] = {credential.header_value(shown)!r}",
            f"# session.post({host + '/v2/models/MODEL/infer'!r}, json=..., headers={{'Host': MODEL_HOST}})",
            "",
            "# Kubeflow Pipelines:",
            "# import kfp",
            f"# client = kfp.Client(host={host + '/pipeline'!r}, {kfp_argument})",
        ]
    )


_RENDERERS: dict[str, Callable[[Credential, Callable[[str], str]], str]] = {
    "header": _header,
    "curl": _curl,
    "json": _json,
    "env": _env,
    "python": _python,
}
