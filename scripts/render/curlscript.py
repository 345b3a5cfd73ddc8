"""``--curl``: the bash commands that do what a step would do, printed instead of sent.

Nothing is sent and nothing is written.  The commands use the current .env
state; for ``login`` the whole chain is printed as bash functions driven by
each answer, as the steps are (redirects, oauth2-proxy's sign-in page, Dex's
connector choice, password form, approval page), with the values each step
would extract passed in shell variables and the cookies kept in a ``mktemp``
jar.  It ends with the session in ``AUTH_COOKIE`` (the ``Cookie:`` header
value) and the ingress it belongs to in ``AUTH_ORIGIN``, or the token in
``AUTH_BEARER`` and ``AUTH_BEARER_ORIGIN`` for ``login --token`` (the names of
the .env keys); the commands of ``infer --curl`` use those variables only when
their origin is the ingress the .env points at (as ``infer`` itself checks),
falling back to the .env values when they are unset.  Secrets (password,
cookies, token, one-time codes in URLs) are masked unless ``--show-secrets``
is given, a password with no character shown; a masked script says it cannot
run, and if eval'd it sends nothing (one line on stderr, a failure status).
Secrets are never put in a command's argv (curl reads them from
``<(printf ...)``), and the password's shell variable is unset once used.
Each script's last status says whether it worked, so ``eval "$(...)" && next``
stops after a failure (never ``exit``: the script runs in the user's shell).
"""

from __future__ import annotations

import json
import re
import shlex

from ..core.environment import Environment
from ..core.errors import ConfigError, UsageError
from ..core.state import State

MAX_HOPS = 12

_MASKED = (
    "# secrets are masked: these commands cannot log in or call the model as printed; "
    "add --show-secrets to get commands that run (and keep them private)"
)

# every script sets kfdex_masked (a previous eval may have left it set): a masked script sends nothing
_UNMASKED = (
    'kfdex_unmasked() { [ -z "$kfdex_masked" ] || '
    '{ echo "kfdex: these commands are masked: print them again with --show-secrets to run them" >&2; return 1; }; }'
)

# kfdex_hop METHOD URL [curl options]: one request within the ingress origin, cookies in the jar;
# sets kfdex_status (the HTTP status) and kfdex_next (the absolute redirect target, or empty).
_LIBRARY = r"""kfdex_jar=$(mktemp) kfdex_body=$(mktemp)
kfdex_hop() {
  local method=$1 url=$2 out
  shift 2
  kfdex_unmasked || return 1
  case "$url" in
    "$kfdex_base"/*) ;;
    *) echo "kfdex: refusing to send to ${url%%\?*}: not $kfdex_base" >&2; return 1 ;;
  esac
  out=$(curl -sS "${kfdex_tls[@]}" -X "$method" -b "$kfdex_jar" -c "$kfdex_jar" -o "$kfdex_body" -w '%{http_code} %{redirect_url}' "$@" "$url") || return 1
  kfdex_status=${out%% *} kfdex_next=${out#* }
  case "$kfdex_status" in 3??) ;; *) kfdex_next= ;; esac
}
kfdex_html() { tr '\n' ' ' < "$kfdex_body"; }
kfdex_input() { kfdex_html | grep -o "<input[^>]*name=\"$1\"[^>]*>" | head -n1 | sed -n 's/.*value="\([^"]*\)".*/\1/p' | sed 's/&amp;/\&/g'; }
kfdex_quote() {
  local s=$1 out= c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in [a-zA-Z0-9.~_-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}
kfdex_absolute() { case "$1" in /*) printf '%s' "$kfdex_base$1" ;; *) printf '%s' "$1" ;; esac; }
kfdex_fail() { echo "kfdex: $1" >&2; return 1; }
"""

# fetch-req: walk from / to Dex's password form (kfdex_login_url)
_FETCH_REQ = r"""kfdex_fetch_req() {
  local url="$kfdex_base/" hop link
  for ((hop = 0; hop < MAX_HOPS; hop++)); do
    kfdex_hop GET "$url" || return 1
    if [ -n "$kfdex_next" ]; then url=$kfdex_next; continue; fi
    if [ "$kfdex_status" = 200 ] && kfdex_html | grep -q 'name="password"'; then
      link=$(kfdex_html | grep -io '<form[^>]*>' | grep -i 'post' | head -n1 | sed -n 's/.*action="\([^"]*\)".*/\1/p' | sed 's/&amp;/\&/g')
      kfdex_login_url=$(kfdex_absolute "${link:-$url}")
      return 0
    fi
    if [ "$kfdex_status" = 403 ] && kfdex_html | grep -q 'action="[^"]*/oauth2/start"'; then
      url="$kfdex_base/oauth2/start?rd=$(kfdex_quote "$(kfdex_input rd)")"; continue
    fi
    if [ "$kfdex_status" = 401 ] && [ "$(tr -d ' \n' < "$kfdex_body")" = '{}' ]; then
      link=${url#"$kfdex_base"}; url="$kfdex_base/oauth2/start?rd=$(kfdex_quote "${link%%\?*}")"; continue
    fi
    link=$(kfdex_html | grep -o 'href="[^"]*/auth/CONNECTOR[?"][^"]*' | head -n1 | sed 's/^href="//; s/&amp;/\&/g')
    if [ "$kfdex_status" = 200 ] && [ -n "$link" ]; then url=$(kfdex_absolute "$link"); continue; fi
    kfdex_fail "fetch-req: unexpected answer $kfdex_status from ${url%%\?*}"; return 1
  done
  kfdex_fail "fetch-req: more than MAX_HOPS redirects without reaching Dex's login page"
}
""".replace("MAX_HOPS", str(MAX_HOPS))

# authenticate: the password goes in the body, read from a file descriptor, never in argv
_AUTHENTICATE = r"""kfdex_authenticate() {
  kfdex_hop POST "$kfdex_login_url" --data-urlencode "login=$kfdex_user" --data-urlencode "password@"<(printf '%s' "$kfdex_password") || return 1
  [ -n "$kfdex_next" ] || { kfdex_fail "authenticate: Dex answered $kfdex_status, not a redirect (wrong DEX_LOGIN / DEX_PASSWORD?)"; return 1; }
  kfdex_next_url=$kfdex_next
}
"""

# approve: Dex's approval step, when there is one (a redirect, or the Grant Access page to post back)
_APPROVE = r"""kfdex_approve() {
  local action
  case "${kfdex_next_url%%\?*}" in
    */approval | */approval/) ;;
    *) kfdex_callback_url=$kfdex_next_url; return 0 ;;
  esac
  kfdex_hop GET "$kfdex_next_url" || return 1
  if [ -n "$kfdex_next" ]; then kfdex_callback_url=$kfdex_next; return 0; fi
  [ "$kfdex_status" = 200 ] && [ -n "$(kfdex_input req)" ] || { kfdex_fail "approve: unexpected answer $kfdex_status"; return 1; }
  action=$(kfdex_html | grep -io '<form[^>]*>' | head -n1 | sed -n 's/.*action="\([^"]*\)".*/\1/p' | sed 's/&amp;/\&/g')
  kfdex_hop POST "$(kfdex_absolute "${action:-$kfdex_next_url}")" --data-urlencode "req=$(kfdex_input req)" --data-urlencode approval=approve || return 1
  [ -n "$kfdex_next" ] || { kfdex_fail "approve: Dex answered $kfdex_status to the approval"; return 1; }
  kfdex_callback_url=$kfdex_next
}
"""

# extract-cookie: the callback sets the session; every cookie still in the jar (the session, or its _0, _1 parts)
_EXTRACT_COOKIE = r"""kfdex_extract_cookie() {
  kfdex_hop GET "$kfdex_callback_url" || return 1
  [ -n "$kfdex_next" ] || { kfdex_fail "extract-cookie: the callback answered $kfdex_status, not a redirect"; return 1; }
  AUTH_COOKIE=$(awk -F '\t' 'NF >= 7 && ($1 !~ /^#/ || $1 ~ /^#HttpOnly_/) { print $6 "=" $7 }' "$kfdex_jar" | sort | paste -sd ';' - | sed 's/;/; /g')
  AUTH_ORIGIN=$kfdex_origin  # the session goes nowhere else: infer --curl checks it
  [ -n "$AUTH_COOKIE" ] || kfdex_fail "extract-cookie: the callback set no session cookie"
}
"""


def _assign(name: str, value: str) -> str:
    return f"{name}={shlex.quote(value)}"


def _header(environment: Environment, what: str, state: State) -> list[str]:
    task, _, detail = what.partition(" ")
    lines = [f"# `{environment.program} {task} --curl`{' ' + detail if detail else ''}: generated from {state.path}; nothing was sent"]
    if not environment.show_secrets:
        lines.append(_MASKED)
    return [*lines, f"kfdex_masked={'' if environment.show_secrets else 1}", _UNMASKED]


def _result(command: str, *after: str) -> list[str]:
    """Run ``command``, then ``after`` whatever happened; the script's last status is ``command``'s (never ``exit``: it is eval'd)."""
    return ["kfdex_rc=0", f"{command} || kfdex_rc=$?", *after, '(exit "$kfdex_rc")']


def _base(state: State) -> str:
    from ..transport.settings import gateway_settings

    if not (state.value("INGRESS_HOST") and state.value("INGRESS_PORT")):
        raise ConfigError(
            f"INGRESS_HOST/INGRESS_PORT are not set in {state.path}: run `invoke resolve-ingress` first, then --curl again"
        )
    return gateway_settings(state).base


def _transport(state: State) -> list[str]:
    """curl's options for what the tool's HTTP layer does: the timeout and TLS (a private CA, or no verification)."""
    from ..transport.settings import gateway_settings

    settings = gateway_settings(state)
    options = ["--max-time", f"{settings.read_timeout:g}"]
    if settings.base.startswith("https://"):
        options += ["-k"] if settings.verify is False else ["--cacert", settings.verify] if isinstance(settings.verify, str) else []
    return options


def _connector(state: State) -> str:
    """DEX_CONNECTOR as the printed script matches it in Dex's links (a connector id: letters, digits, ``._-``)."""
    connector = state.value("DEX_CONNECTOR", "local")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", connector):
        raise UsageError(f"DEX_CONNECTOR={connector!r} is not a connector id --curl can print: use letters, digits, . _ -")
    return connector.replace(".", r"\.")


def _origin(state: State) -> str:
    """The ingress origin a credential printed here belongs to (checked by the printed infer)."""
    from ..transport.settings import ingress_origin

    _base(state)
    return ingress_origin(state)


def _preamble(state: State, environment: Environment, what: str) -> list[str]:
    tls = " ".join(shlex.quote(option) for option in _transport(state))
    return [
        *_header(environment, what, state),
        _assign("kfdex_base", _base(state)),
        _assign("kfdex_origin", _origin(state)),
        f"kfdex_tls=({tls})",
        _LIBRARY.rstrip("\n"),
    ]


def dex_login(state: State, environment: Environment, login: str, password: str) -> str:
    """The whole Dex login chain, ending with ``AUTH_COOKIE`` set in the shell."""
    connector = _connector(state)
    lines = _preamble(state, environment, "login (fetch-req, authenticate, approve, extract-cookie)")
    lines += [
        _assign("kfdex_user", login),
        _assign("kfdex_password", environment.mask_password(password)),
        _FETCH_REQ.replace("CONNECTOR", connector).rstrip("\n"),
        _AUTHENTICATE.rstrip("\n"),
        _APPROVE.rstrip("\n"),
        _EXTRACT_COOKIE.rstrip("\n"),
        *_result(
            "kfdex_fetch_req && kfdex_authenticate && kfdex_approve && kfdex_extract_cookie &&\n"
            '  echo "kfdex: logged in; the Cookie header is in \\$AUTH_COOKIE, for \\$AUTH_ORIGIN" >&2',
            'rm -f "$kfdex_jar" "$kfdex_body"; unset kfdex_password',
        ),
    ]
    return "\n".join(lines)


def token_login(state: State, environment: Environment, command: str) -> str:
    """``AUTH_BEARER=$(kubectl create token ...)``, bound in ``AUTH_BEARER_ORIGIN`` to the ingress."""
    origin = _origin(state)
    lines = [f"# `{environment.program} login --token --curl`: generated from {state.path}; nothing was run"]
    return "\n".join([*lines, f"AUTH_BEARER=$({command}) && {_assign('AUTH_BEARER_ORIGIN', origin)}"])


def fetch_req(state: State, environment: Environment) -> str:
    """The walk to Dex's password page, ending with its URL in ``DEX_LOGIN_URL``."""
    connector = _connector(state)
    lines = _preamble(state, environment, "fetch-req")
    lines += [
        _FETCH_REQ.replace("CONNECTOR", connector).rstrip("\n"),
        *_result(
            'kfdex_fetch_req && DEX_LOGIN_URL=$kfdex_login_url && echo "DEX_LOGIN_URL=$DEX_LOGIN_URL"',
            'echo "cookies set on the way:" >&2; cat "$kfdex_jar" >&2; rm -f "$kfdex_jar" "$kfdex_body"',
        ),
    ]
    return "\n".join(lines)


def _one_hop(state: State, environment: Environment, what: str, url_key: str, extra: list[str], password: str | None = None) -> str:
    """One curl with the login's cookies, its answer's headers shown; an HTTP error answer is a failure (curl's 22)."""
    from ..transport.gateway import refuse_foreign

    url = state.require(url_key)
    refuse_foreign(url, _origin(state), f"{url_key} in {state.path} names it: run `invoke fetch-req` again")
    cookies = state.value("LOGIN_COOKIES")
    shown_cookies = environment.mask_cookie_header(cookies)
    lines = _header(environment, what, state)
    command = ["kfdex_unmasked && curl -sS -i --fail-with-body", *(shlex.quote(option) for option in _transport(state))]
    if cookies:
        lines.append(_assign("LOGIN_COOKIES", shown_cookies))
        command.append('-H @<(printf "Cookie: %s\\n" "$LOGIN_COOKIES")')
    if password is not None:  # read by curl from a file descriptor, and unset whatever the request did
        lines.append(_assign("kfdex_password", environment.mask_password(password)))
    command += extra
    command.append(shlex.quote(environment.mask_url(url)))
    return "\n".join([*lines, *_result(" ".join(command), *(["unset kfdex_password"] if password is not None else []))])


def authenticate(state: State, environment: Environment, login: str, password: str) -> str:
    """The POST of the password form."""
    return _one_hop(
        state,
        environment,
        "authenticate",
        "DEX_LOGIN_URL",
        ["-X POST", f"--data-urlencode {shlex.quote('login=' + login)}", '--data-urlencode "password@"<(printf %s "$kfdex_password")'],
        password,
    )


def approve(state: State, environment: Environment) -> str:
    """The GET of Dex's approval step (a Grant Access page is then posted back with approval=approve)."""
    return _one_hop(state, environment, "approve (a Grant Access page is then posted back with req=<its req>&approval=approve)", "DEX_NEXT_URL", [])


def extract_cookie(state: State, environment: Environment) -> str:
    """The GET of the gateway's callback."""
    return _one_hop(state, environment, "extract-cookie (the session cookie is in the Set-Cookie headers)", "DEX_CALLBACK_URL", [])


# the shell variables a printed login leaves (named as the .env keys), per kind of credential
_SHELL_CREDENTIALS = {
    "cookie": ("AUTH_COOKIE", "AUTH_ORIGIN", "kfdex_cookie", 'kfdex_auth="Cookie: $kfdex_cookie"'),
    "token": ("AUTH_BEARER", "AUTH_BEARER_ORIGIN", "kfdex_bearer", 'kfdex_auth="Authorization: Bearer $kfdex_bearer"'),
}


def _credential_lines(environment: Environment, kind: str, saved: str) -> list[str]:
    """Take the shell's credential only when it belongs to ``$kfdex_origin``; else, when it is unset, the .env's."""
    value, origin, local, _ = _SHELL_CREDENTIALS[kind]
    shown = environment.mask_cookie_header(saved) if kind == "cookie" else environment.mask(saved)
    return [
        f'if [ -z "${{{value}+set}}" ]; then {local}={shlex.quote(shown)}',
        f'elif [ "${{{origin}-}}" = "$kfdex_origin" ]; then {local}=${value}',
        f'else echo "kfdex: \\${value} belongs to ${{{origin}:-no recorded ingress}}, not $kfdex_origin:'
        f' eval this ingress\'s login --curl, or unset {value}" >&2; kfdex_rc=5',
        "fi",
    ]


def infer(
    state: State, environment: Environment, url: str, host: str, body: object, auth: str, saved: dict[str, str], origin: str
) -> str:
    """The model call, with ``$AUTH_COOKIE`` / ``$AUTH_BEARER`` when set for ``origin``, else the ``saved`` ones; prints the raw JSON answer.

    ``origin`` is the ingress the state points at: a shell credential bound elsewhere is refused, nothing sent.
    ``saved`` holds only the .env credentials that are valid and belong where ``url`` goes (the caller checks).
    """
    kinds = [kind for kind in ("cookie", "token") if auth in ("auto", kind)]
    lines = [*_header(environment, "infer", state), _assign("kfdex_origin", origin), "kfdex_auth= kfdex_rc=0 kfdex_cookie= kfdex_bearer="]
    for kind in kinds:
        lines += _credential_lines(environment, kind, saved.get(kind, ""))
    choices = [f'[ -n "${_SHELL_CREDENTIALS[kind][2]}" ]; then {_SHELL_CREDENTIALS[kind][3]}' for kind in kinds]
    lines.append("if " + "\nelif ".join(choices) + "\nfi")
    transport = _transport(state) if url.startswith("https://") else _transport(state)[:2]  # a NodePort is plain HTTP
    command = ["kfdex_unmasked && curl -sS --fail-with-body", *(shlex.quote(option) for option in transport)]
    command.append('-H @<(printf "%s\\n" "$kfdex_auth")')
    command.append("-H 'Content-Type: application/json'")
    if host:
        command.append("-H " + shlex.quote(f"Host: {host}"))
    command += ["--data-binary @-", shlex.quote(url), "<<'KFDEX_PAYLOAD'"]
    lines += [  # the last status: 5 (as infer's) for a refused or missing credential, else curl's (22 for an HTTP error)
        'if [ "$kfdex_rc" != 0 ]; then :',
        'elif [ -z "$kfdex_auth" ]; then echo "kfdex: no session or token: eval the output of login --curl first" >&2; kfdex_rc=5',
        "else",
        " ".join(command),
        json.dumps(body),
        "KFDEX_PAYLOAD",
        "kfdex_rc=$?; echo",
        "fi",
        '(exit "$kfdex_rc")',
    ]
    return "\n".join(lines)
