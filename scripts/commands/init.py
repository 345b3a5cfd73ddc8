"""``invoke init``: write a commented .env for the cluster kubectl points at, with what can be found, asking for the rest.

The file starts from the example that ships inside the package
(``env.example``: every key, explained).  kubectl supplies what it can: the
current context (named in the file's header), the ingress (resolve-ingress's
own rule, run as that step), the user's namespace from Kubeflow's Profiles
(the profile whose owner is the Dex login) and, when that namespace holds
exactly one InferenceService, the model.  The rest is asked for, a line each
from standard input, a terminal or a pipe (Enter, or the end of the input,
keeps the default shown).  The password is written only with
``--save-password``; otherwise ``login`` asks for it.  An existing file is
never overwritten; the new one is created 0600.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from importlib import resources

from ..core.environment import Environment
from ..core.errors import ConfigError, KfDexError, UsageError
from ..core.state import EnvFile, State, profiles_folder
from ..core.step import Command, Option, run_step
from ..core.values import is_kubernetes_name, is_text, shown

# a fresh Kubeflow's own static user and its Profile; a model name comes only from what kubectl finds
DEFAULTS = {"DEX_LOGIN": "user@example.com", "MODEL_NAMESPACE": "kubeflow-user-example-com"}
QUESTIONS = {"DEX_LOGIN": "Dex login (email)", "MODEL_NAMESPACE": "namespace of the model", "MODEL_NAME": "InferenceService name"}


def example_text() -> str:
    """The commented example .env that ships inside the package."""
    return resources.files(__package__).joinpath("env.example").read_text(encoding="utf-8")


def _ask(environment: Environment, question: str, default: str, read: Callable[[], str]) -> str:
    """One answer from standard input; the default for an empty line or the end of the input."""
    environment.stderr.write(f"{question} [{default}]: " if default else f"{question}: ")
    environment.stderr.flush()
    try:
        answer = read().strip()
    except UnicodeDecodeError:
        answer = "\udcff"  # refused below, as bytes from a terminal that decoded them leniently are
    if not is_text(answer) or any(ord(character) < 32 for character in answer):
        raise UsageError(f"{question}: the answer is not one line of UTF-8 text; nothing was written")
    if not environment.interactive:  # a piped answer is not echoed by a terminal: end the prompt's line
        environment.stderr.write("\n")
    return answer or default


def _found(what: Callable[[], str | None]) -> str | None:
    """What kubectl could tell, or None when it could not (no cluster, no CRD, no permission)."""
    try:
        return what()
    except KfDexError:
        return None


def _profile_namespace(state: State, environment: Environment, login: str) -> str | None:
    """The namespace of the Kubeflow Profile owned by ``login`` (the profile's name is its namespace)."""
    from ..transport.kube import kubectl_json

    profiles = kubectl_json(state, "get", "profiles.kubeflow.org", environment=environment).get("items") or []
    owned = [p for p in profiles if (p.get("spec", {}).get("owner", {}).get("name") or "").lower() == login.lower()]
    return str(owned[0]["metadata"]["name"]) if len(owned) == 1 else None


def _only_model(state: State, environment: Environment, namespace: str) -> str | None:
    """The InferenceService's name when ``namespace`` holds exactly one."""
    from ..transport.kube import kubectl_json

    items = kubectl_json(state, "get", "inferenceservices.serving.kserve.io", "-n", namespace, environment=environment).get("items") or []
    return str(items[0]["metadata"]["name"]) if len(items) == 1 else None


def _check_folder(env_file: EnvFile, environment: Environment) -> bool:
    """Whether the file's folder is the profiles' folder, which ``_create`` makes; any other must exist (ConfigError)."""
    if env_file.path.parent == profiles_folder(environment.variables):
        return True
    env_file.check_folder()  # any other folder is the person's to make
    return False


def _create(env_file: EnvFile, environment: Environment, header: str) -> None:
    """The example written to a new file, 0600; refused when anything is at that path already."""
    path = env_file.path
    if _check_folder(env_file, environment):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the profiles' folder, the first time
        env_file.check_folder()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists already: edit it (`invoke status` shows it), or name another file with ENV_FILE") from None
    except OSError as error:
        raise ConfigError(f"cannot create {path}: {error.strerror}") from None
    body = example_text().split("\n", 1)[1]  # the example's first line says how to use the example
    body = body.replace("`invoke ", f"`{environment.program} ")  # the commands as this person runs them
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(f"{header}\n{body}")


def init(
    env_file: EnvFile, environment: Environment, _overrides: Mapping[str, str] | None = None, *, save_password: bool = False
) -> None:
    """Find what kubectl knows, ask for the rest, write the new .env (then resolve the ingress into it)."""
    from ..transport.kube import kubectl

    if env_file.path.exists() or env_file.path.is_symlink():
        raise UsageError(f"{env_file.path} exists already: edit it (`invoke status` shows it), or name another file with ENV_FILE")
    _check_folder(env_file, environment)  # before any question: answers typed for a file that cannot be written are lost
    state = State(env_file.path, {}, exists=False, environment=env_file.environment)
    read = sys.stdin.readline
    context = _found(lambda: kubectl(state, "config", "current-context", environment=environment).strip())
    environment.info(f"init: kubectl context {context}" if context else "init: kubectl has no current context: the ingress is left unset")
    values = {"DEX_LOGIN": _ask(environment, QUESTIONS["DEX_LOGIN"], state.value("DEX_LOGIN") or DEFAULTS["DEX_LOGIN"], read)}
    namespace = context and _found(lambda: _profile_namespace(state, environment, values["DEX_LOGIN"]))
    values["MODEL_NAMESPACE"] = _ask(environment, QUESTIONS["MODEL_NAMESPACE"], namespace or DEFAULTS["MODEL_NAMESPACE"], read)
    model = context and _found(lambda: _only_model(state, environment, values["MODEL_NAMESPACE"]))
    values["MODEL_NAME"] = _ask(environment, QUESTIONS["MODEL_NAME"], model or "", read)
    if not values["MODEL_NAME"]:
        environment.warn("init: MODEL_NAME left empty (kubectl found no single InferenceService): set it before `invoke infer`")
    for key in ("MODEL_NAMESPACE", "MODEL_NAME"):  # checked as every command checks them, before anything is written
        if values[key] and not is_kubernetes_name(values[key]):
            raise UsageError(f"{QUESTIONS[key]} {shown(values[key])} is not a Kubernetes name: use lower-case letters, digits, - and .")
    if save_password:
        password = getpass.getpass(f"Dex password for {values['DEX_LOGIN']}: ") if environment.interactive else read().rstrip("\n")
        if not password or not is_text(password):
            raise UsageError("--save-password: no password given; leave the flag out and `invoke login` will ask for it")
        values["DEX_PASSWORD"] = password
    _create(env_file, environment, f"# kfdex state for the kubectl context {context or '(none)'}, written by `{environment.program} init`")
    try:
        env_file.update(values)
    except BaseException:
        env_file.path.unlink(missing_ok=True)  # this run created it (O_EXCL): no half-written file stays
        raise
    kept = "DEX_PASSWORD saved (0600)" if save_password else "no password saved: `invoke login` asks for it"
    environment.step_ok("init", f"{env_file.path}: {', '.join(f'{key}={value}' for key, value in values.items() if key != 'DEX_PASSWORD')}; {kept}")
    if context:
        _resolve_ingress(env_file, environment)


def _resolve_ingress(env_file: EnvFile, environment: Environment) -> None:
    """The ingress into the new file, as resolve-ingress finds it; a failure is a warning (the file is written)."""
    from ..resolve_ingress import STEP

    try:
        run_step(STEP, env_file, environment)
    except KfDexError as error:
        environment.warn(f"init: the ingress was not resolved ({error.message}); run `invoke resolve-ingress` when kubectl can")


INIT = Command(
    "init",
    init,
    "Write a commented .env for this cluster: what kubectl can find (ingress, your namespace, the model), then asks for the rest.",
    options=(Option("save_password", "also ask for the Dex password and keep it in the file (0600)", kind=bool, default=False),),
)
COMMANDS = (INIT,)
