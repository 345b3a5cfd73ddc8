"""The saved credential in the forms other tools take: a header line, curl arguments, JSON, shell exports, Python.

``kfdex credential --format F`` (``scripts.commands.credential``) prints one of these so that the session or
token a login produced can be used by curl, a script, a notebook or the
Kubeflow Pipelines SDK.  Values pass through ``shown`` (the console's masking)
so that nothing secret is printed unless ``--show-secrets`` was given.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

from ..auth.credentials import Credential

FORMATS = ("header", "curl", "json", "env", "python")


def render(credential: Credential, form: str, shown: Callable[[str], str], source: str = "") -> str:
    """The credential written in ``form`` (one of FORMATS), with values passed through ``shown``.

    ``source``: the .env it was read from, which the Python form opens with the library.
    """
    if form == "python":
        return _python(credential, shown, source)
    return _RENDERERS[form](credential, shown)


def _header(credential: Credential, shown: Callable[[str], str]) -> str:
    return f"{credential.header_name}: {credential.header_value(shown)}"


def _curl(credential: Credential, shown: Callable[[str], str]) -> str:
    # the header reaches curl through a file descriptor, so the secret is never in curl's argv (ps shows argv)
    return f"-H @<(printf '%s\\n' {shlex.quote(_header(credential, shown))})"


def _json(credential: Credential, shown: Callable[[str], str]) -> str:
    return json.dumps(
        {
            "kind": credential.kind,
            "header": credential.header_name,
            "value": shown(credential.value),
            "origin": credential.origin,
            "expires": credential.expires or None,
            "owner": credential.owner or None,
        },
        indent=2,
    )


def _env(credential: Credential, shown: Callable[[str], str]) -> str:
    pairs = [
        (credential.keys.value, shown(credential.value)),
        (credential.keys.expires, credential.expires),
        (credential.keys.origin, credential.origin),
    ]
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in pairs if value)


def _python(credential: Credential, shown: Callable[[str], str], source: str = "") -> str:
    """The library form (a session that renews itself), then the frozen credential for Python without kfdex."""
    host = credential.origin or "http://INGRESS_HOST:INGRESS_PORT"
    if credential.kind == "cookie":
        kfp_argument = f"cookies={shown(credential.value)!r}"
    else:
        kfp_argument = f"existing_token={shown(credential.value)!r}"
    until = f" (it stops working at {credential.expires})" if credential.expires else ""
    return "\n".join(
        [
            f"# {credential.kind} for {host}" + (f", valid until {credential.expires}" if credential.expires else ""),
            "# kfdex as a library: the session renews itself when it ends (docs/python.md)",
            "from kfdex import Kubeflow",
            "",
            f"kf = Kubeflow.from_env({source!r})" if source else "kf = Kubeflow.from_env()",
            f"kf.login({'token=True' if credential.kind == 'token' else ''})  # reuses the saved {credential.noun} while it is valid",
            f"session = kf.session()  # a requests.Session for {host}, renewed when the session ends",
            "# kf.infer('iris'); kf.model_info()",
            "",
            f"# Or the frozen {credential.noun}, without kfdex{until}:",
            "# import requests",
            "# session = requests.Session()",
            f"# session.headers[{credential.header_name!r}] = {credential.header_value(shown)!r}",
            f"# session.post({host + '/v2/models/MODEL/infer'!r}, json=..., headers={{'Host': MODEL_HOST}})",
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
