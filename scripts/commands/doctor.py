"""``invoke doctor``: walk the whole chain, one check per row, and say for each failure how to fix it.

kubectl and its context; the ingress resolved and answering; which login
generation the gateway presents (oidc-authservice or oauth2-proxy, Dex's
``req=`` or ``state=``, approval); the saved session present, unexpired and
accepted by the gateway right now; the token's audience and expiry (read from
the JWT, not verified); the InferenceService ready and where it is routed; the
NodePort Service present and answering; the model answering.  One request per
check, no retries, credentials only to the ingress they belong to (or a
NodePort on its host), and nothing is written to .env.  The exit code is the
first failure's (0 when all pass); ``--json`` prints the rows for scripts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..auth.credentials import Credential, choose, ensure_bound, format_expiry
from ..core.environment import Environment
from ..core.errors import ExitCode, GatewayError, KfDexError, SessionError
from ..core.state import EnvFile, State
from ..core.step import VERBOSE, Command, Option

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
FETCH_REQ = "fetch-req"  # the step whose login walk doctor runs
MARKS = {OK: "✓", FAILED: "✗", SKIPPED: "–"}


@dataclass
class Row:
    """One check's outcome."""

    check: str
    status: str
    saw: str
    fix: str = ""
    code: int = 0


class DoctorFailed(KfDexError):
    """Some check failed: the exit code is the first failure's."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(code)


@dataclass
class Checkup:
    """What the checks share: the state, and what earlier checks found."""

    state: State
    environment: Environment
    found: dict[str, Any] = field(default_factory=dict)

    def gateway(self, **settings: Any) -> Any:
        from ..transport.gateway import Gateway
        from ..transport.settings import gateway_settings

        return Gateway(gateway_settings(self.state, **settings), self.environment)


# how the fix in an error's message starts ("…: run `kfdex login`", "…; check INGRESS_HOST")
_FIX_VERBS = (
    "run ", "rerun ", "set ", "check ", "use ", "give ", "fix ", "start ", "create ", "delete ", "unset ", "put ", "try ", "add ", "ask ",
)  # fmt: skip


def split_fix(message: str) -> tuple[str, str]:
    """(what went wrong, what to do): the message cut before its last clause that names a fix, outside parentheses.

    ``"no current context (kubectl: …): set KUBECONFIG"`` -> ``("no current context (kubectl: …)", "set KUBECONFIG")``;
    a message with no such clause stays whole, with no fix.
    """
    depth, cuts = 0, []
    for index, character in enumerate(message):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth == 0 and message.startswith((": ", "; "), index) and message[index + 2 :].startswith(_FIX_VERBS):
            cuts.append(index)
    return (message[: cuts[-1]], message[cuts[-1] + 2 :]) if cuts else (message, "")


def _failed(error: KfDexError, fix: str = "") -> Row:
    """A failure row from an error: what it said, and the fix it names."""
    saw, named = split_fix(error.message)
    return Row("", FAILED, saw, fix or named, int(error.exit_code))


# the checks ---------------------------------------------------------------------------


def check_kubectl(checkup: Checkup) -> Row:
    from ..transport.kube import kubectl_json

    config = kubectl_json(checkup.state, "config", "view", "--minify", environment=checkup.environment)
    context = config.get("current-context") or "?"
    server = next((entry.get("cluster", {}).get("server") for entry in config.get("clusters") or []), "?")
    # the config alone proves nothing: ask the API server itself, as every kubectl step will
    version = kubectl_json(checkup.state, "version", environment=checkup.environment).get("serverVersion") or {}
    return Row("", OK, f"context {context} ({server}), Kubernetes {version.get('gitVersion') or '?'}")


def check_ingress(checkup: Checkup) -> Row:
    gateway = checkup.gateway()
    response = gateway.send("GET", "/", attempts=1)
    checkup.found["first"] = (gateway, response)
    return Row("", OK, f"{gateway.origin} answered {response.status_code} to GET / without credentials")


def _proxy(response: Any) -> str:
    """Which auth proxy answers a browser without a session, from its first answer."""
    from ..auth.dexflow import login_signal
    from ..transport.redirects import is_redirect, location_of

    if is_redirect(response):
        location = location_of(response)
        if "/oauth2/start" in location:
            return "oauth2-proxy (redirects to /oauth2/start)"
        cookies = [value.split("=", 1)[0] for value in response.raw.headers.getlist("Set-Cookie")]
        state_cookie = next((name for name in cookies if "state" in name or "csrf" in name), "")
        return f"oidc-authservice (state cookie {state_cookie})" if state_cookie else "oidc-authservice (no state cookie)"
    if login_signal(response):
        return "oauth2-proxy (sign-in page)"
    return ""


def check_login(checkup: Checkup) -> Row:
    from ..auth.dexflow import walk_to_dex
    from ..transport.cookies import CookieHeader

    gateway, response = checkup.found["first"]
    proxy = _proxy(response)
    if not proxy:
        raise GatewayError(f"GET / answered {response.status_code} without asking for a login: check INGRESS_HOST/INGRESS_PORT")
    connector = checkup.state.value("DEX_CONNECTOR", "local")
    try:  # fetch-req's own walk: what it says here is what the step would say
        url, _page, seen = walk_to_dex(FETCH_REQ, gateway, CookieHeader(), checkup.environment.now, connector, attempts=1)
    except GatewayError as error:
        raise GatewayError(f"{error.message}: rerun `invoke {FETCH_REQ} --debug`") from None
    query = parse_qs(urlsplit(url).query)
    dex = "Dex login by state=" if "state" in query else "Dex login by req="
    asked = {key: values[0] for seen_url in seen for key, values in parse_qs(urlsplit(seen_url).query).items()}
    approval = {"force": "approval page", "auto": "no approval page"}.get(asked.get("approval_prompt", ""), "")
    approval = approval or ("no approval page" if asked.get("prompt") == "none" else "approval decided by Dex after the password")
    return Row("", OK, f"{proxy}; {dex}; {approval}")


def check_saved(checkup: Checkup) -> Row:
    credential = choose(checkup.state, checkup.environment.now())
    checkup.found["credential"] = credential
    owner = f" of {credential.owner}" if credential.owner else ""
    return Row("", OK, f"{credential.noun}{owner}, {format_expiry(credential.expiry(), checkup.environment.now())}")


def _claims(token: str) -> dict[str, Any] | None:
    """The JWT's payload, decoded, not verified; None when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def check_token(checkup: Checkup) -> Row:
    from ..create_token import AUDIENCE

    token = checkup.state.value("AUTH_BEARER")
    if not token:
        return Row("", SKIPPED, "no token saved (`invoke login --token` makes one)")
    claims = _claims(token)
    if claims is None:
        return Row("", SKIPPED, "the token is not a JWT: nothing to read")
    audiences = claims.get("aud") or []
    audiences = [audiences] if isinstance(audiences, str) else list(audiences)
    expires = datetime.fromtimestamp(claims["exp"], timezone.utc) if isinstance(claims.get("exp"), int | float) else None
    saw = f"audience {', '.join(map(str, audiences)) or '(none)'}; {format_expiry(expires, checkup.environment.now())}"
    if AUDIENCE not in audiences:
        return Row("", FAILED, saw, f"the gateway takes tokens for {AUDIENCE}: run `invoke login --token`", int(ExitCode.SESSION))
    if expires is not None and expires <= checkup.environment.now():
        return Row("", FAILED, saw, "run `invoke login --token`", int(ExitCode.SESSION))
    return Row("", OK, saw)


def check_accepted(checkup: Checkup) -> Row:
    from ..auth.dexflow import describe, login_signal
    from ..transport.redirects import is_redirect
    from ..transport.settings import ingress_origin

    credential: Credential = checkup.found["credential"]
    gateway = checkup.gateway()
    ensure_bound(credential, gateway.origin, ingress_origin(checkup.state))
    response = gateway.send("GET", "/", headers=credential.headers(), attempts=1)
    if login_signal(response):
        said = "sent it to a login" if is_redirect(response) else f"answered {describe(response)}"
        raise SessionError(
            f"the gateway {said}: it no longer takes the {credential.noun} (ended early, revoked, or wrong audience): "
            f"run {credential.keys.login_hint}"
        )
    return Row("", OK, f"GET / with the {credential.noun} answered {response.status_code}")


def check_isvc(checkup: Checkup) -> Row:
    from ..resolve_model import read_inference_service, readiness, url_parts

    isvc = read_inference_service(checkup.state, checkup.environment)
    host, prefix = url_parts(isvc)
    ready, said = readiness(isvc)
    saw = f"{host}{prefix}: {said}"
    name, namespace = checkup.state.value("MODEL_NAME"), checkup.state.value("MODEL_NAMESPACE")
    if not ready:
        return Row("", FAILED, saw, f"see `kubectl describe inferenceservice {name} -n {namespace}`", int(ExitCode.MODEL))
    saved = (checkup.state.value("MODEL_HOST"), checkup.state.value("MODEL_PATH").rstrip("/"))
    if saved[0] and saved != (host, prefix):
        was = f"MODEL_HOST={saved[0]}" + (f" MODEL_PATH={saved[1]}" if saved[1] else "")
        return Row("", FAILED, f"{saw}; but .env has {was}", "run `invoke resolve-model`", int(ExitCode.CONFIG))
    return Row("", OK, saw)


def check_node_port(checkup: Checkup) -> Row:
    from ..expose_nodeport import service_name
    from ..transport.kube import NotFound, kubectl_json

    state = checkup.state
    if not state.value("NODE_PORT") and not state.value("NODE_PORT_SERVICE"):
        return Row("", SKIPPED, "no NodePort exposed: calls go through the ingress")
    name = state.value("NODE_PORT_SERVICE") or service_name(state.value("MODEL_NAME"))
    namespace = state.value("MODEL_NAMESPACE")
    try:
        kubectl_json(state, "get", "service", name, "-n", namespace, environment=checkup.environment)
    except NotFound:
        return Row("", FAILED, f"service {namespace}/{name} not found", "run `invoke expose-nodeport`", int(ExitCode.KUBECTL))
    response = checkup.gateway(port_key="NODE_PORT", scheme="http").send("GET", "/v2/health/live", attempts=1)
    return Row(
        "", OK, f"service {namespace}/{name}; nodePort {state.value('NODE_PORT')} reachable (answered {response.status_code} to a call without credentials)"
    )


def check_model(checkup: Checkup) -> Row:
    from ..model.modelcheck import check

    # model-info's own check, word for word, each call tried once: doctor reports what it finds now
    return Row("", OK, check(checkup.state, checkup.environment, attempts=1).summary)


CHECKS: tuple[tuple[str, Callable[[Checkup], Row], tuple[str, ...], str], ...] = (
    # name, check, the checks it needs, the fix when it raises without naming one
    ("kubectl", check_kubectl, (), "set KUBECONFIG in .env, or `kubectl config use-context NAME`"),
    ("ingress", check_ingress, (), "run `invoke resolve-ingress`; check that the gateway is up"),
    ("login generation", check_login, ("ingress",), "run `invoke fetch-req --debug`"),
    ("session saved", check_saved, (), "run `invoke login`"),
    ("token claims", check_token, (), "run `invoke login --token`"),
    ("session accepted", check_accepted, ("ingress", "session saved"), "run `invoke login`"),
    ("InferenceService", check_isvc, ("kubectl",), "check MODEL_NAME and MODEL_NAMESPACE"),
    ("NodePort", check_node_port, ("kubectl",), "run `invoke expose-nodeport`"),
    ("model", check_model, ("session accepted",), "run `invoke model-info`, which waits for a model that is still starting"),
)


def examine(state: State, environment: Environment) -> list[Row]:
    """Every check, in order; a check whose prerequisite failed is skipped."""
    rows: list[Row] = []
    passed: set[str] = set()
    checkup = Checkup(state, environment)
    for name, check, needs, fix in CHECKS:
        missing = [need for need in needs if need not in passed]
        if missing:
            row = Row(name, SKIPPED, f"needs {' and '.join(missing)}")
        else:
            try:
                row = check(checkup)
            except KfDexError as error:
                row = _failed(error, "" if ": " in error.message else fix)
            row.check = name
        if row.status == OK:
            passed.add(name)
        rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    """``✓ check  saw`` rows, and ``fix:`` under each failure, aligned."""
    width = max(len(row.check) for row in rows)
    lines = []
    for row in rows:
        lines.append(f"{MARKS[row.status]} {row.check:<{width}}  {row.saw}")
        if row.status == FAILED and row.fix:
            lines.append(f"  {'':<{width}}  fix: {row.fix}")
    return "\n".join(lines)


def doctor(env_file: EnvFile, environment: Environment, overrides: Mapping[str, str] | None = None, json: bool = False) -> None:
    """Run every check and print the table (or JSON); exit with the first failure's code."""
    rows = examine(env_file.read().with_overrides(overrides), environment)
    if json:
        environment.data(_json_dumps([{key: value for key, value in asdict(row).items() if key != "code"} for row in rows]))
    else:
        environment.data(table(rows))
    failures = [row for row in rows if row.status == FAILED]
    if failures:
        first = failures[0]
        raise DoctorFailed(f"{len(failures)} of {len(rows)} checks failed; first {first.check}: {first.fix or first.saw}", first.code)


def _json_dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


DOCTOR = Command(
    "doctor",
    doctor,
    "Check the whole chain (kubectl, ingress, login, session, token, model) and say how to fix what fails.",
    options=(Option("json", "print the checks as JSON: check, status, saw, fix", kind=bool, default=False, short="j"), VERBOSE),
)
COMMANDS = (DOCTOR,)
