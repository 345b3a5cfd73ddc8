"""What a step is, declared once: its name, its function, the keys it reads and writes, its options.

A step module ends with one ``STEP = Step(...)``.  Everything else is derived
from that declaration: the Invoke task (``scripts.app.cli``), the
``python -m scripts.<step>`` entry (``scripts.core.standalone``), the login chain,
the "run X first" hints for missing keys, and the tests' lists of tasks.

``run_step`` is the protocol: read the .env state (with options that override
settings for one run), call the step, refuse keys it did not declare, write
the rest back and print the step's line.  This module imports nothing heavy,
so that listing tasks stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .boundary import raise_lost_interrupt
from .environment import Environment
from .errors import DeclarationError, UsageError
from .state import EnvFile, State
from .values import COUNT, SECONDS, Number, is_text, shown


@dataclass(frozen=True)
class Option:
    """One command-line option; ``None`` means "not given" (the step or a setting decides)."""

    name: str  # the Python name; --name-with-dashes on the command line
    help: str
    kind: type = str  # str, int, float or bool
    default: Any = None
    setting: str = ""  # a .env setting this option overrides for one run (RETRY_ATTEMPTS)
    number: Number | None = None  # what a numeric value must be: checked the same way as its setting
    short: str = ""  # a one-letter flag; a letter means one thing in every task (tests/test_declarations.py)
    path: bool = False  # the value may be a file path (any bytes a file name may hold)
    choices: tuple[str, ...] = ()  # the only values it takes, refused before anything is read or sent

    @property
    def flag(self) -> str:
        """``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> None:
        """A UsageError for a number out of bounds (``--attempts 0: give 1 or more``) or text that is not UTF-8."""
        if self.number is not None and value is not None:
            self.number.check(value, f"{self.flag} {value:g}")
        if isinstance(value, str) and not self.path and not is_text(value):
            raise UsageError(f"{self.flag} holds bytes that are not UTF-8 text: give UTF-8 text")
        if self.choices and value is not None and value not in self.choices:
            raise UsageError(f"{self.flag} {shown(str(value))}: use one of {', '.join(self.choices)}")


@dataclass
class StepResult:
    """What a step produced: keys to write (None removes one) and a line for the person."""

    updates: Mapping[str, str | None] = field(default_factory=dict)
    summary: str = ""
    skipped: bool = False
    output: str | None = None  # data for stdout (infer's answer)


@dataclass(frozen=True)
class Step:
    """The one declaration of a step."""

    name: str  # the task name: fetch-req
    run: Callable[..., StepResult]  # run(state, environment, **options)
    summary: str  # what it does, in one line; `invoke --list` adds the keys it writes
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()  # keys it sets (and may remove)
    clears: tuple[str, ...] = ()  # keys of other steps it only removes
    options: tuple[Option, ...] = ()
    hint: str = ""  # how a person gets the keys it writes, when not `invoke <name>`
    curl: Callable[..., str] | None = None  # curl(state, environment, **options): its bash commands, for --curl

    @property
    def help(self) -> str:
        """The ``invoke --list`` line: the summary and the keys it writes."""
        return f"{self.summary.rstrip('.')} ({', '.join(self.writes)})." if self.writes else self.summary

    @property
    def how_to_run(self) -> str:
        """``invoke fetch-req`` (or the declared hint)."""
        return f"invoke {self.hint or self.name}"

    def execute(self, env_file: EnvFile, environment: Environment, given: Mapping[str, Any]) -> None:
        """Run as a command: options checked and split, then the step protocol (or, with --curl, its commands printed)."""
        overrides, arguments = split_options(self.options, given)
        warn_if_exposed(env_file, environment)
        if arguments.pop(CURL.name, None):
            if self.curl is None:
                raise DeclarationError(f"step {self.name} takes --curl but declares no curl commands")
            environment.data(self.curl(env_file.read().with_overrides(overrides), environment, **arguments))
            return
        run_step(self, env_file, environment, overrides, **arguments)


@dataclass(frozen=True)
class Command:
    """The declaration of a task that is not one step (login, status, the sandbox, the demo)."""

    name: str
    action: Callable[..., None]  # action(env_file, environment, overrides, **options)
    summary: str
    options: tuple[Option, ...] = ()

    @property
    def help(self) -> str:
        """The ``invoke --list`` line."""
        return self.summary

    def execute(self, env_file: EnvFile, environment: Environment, given: Mapping[str, Any]) -> None:
        """Run as a command: options checked and split, then the action."""
        overrides, arguments = split_options(self.options, given)
        warn_if_exposed(env_file, environment)
        self.action(env_file, environment, overrides, **arguments)


Declaration = Step | Command


PAYLOAD = Option(
    "payload",
    "a name from payloads/ (iris, iris-v1), a JSON file, - for standard input, or inline JSON",
    default="iris",
    short="p",
    path=True,
)
AUTH_METHODS = ("auto", "cookie", "token")
ROUTES = ("nodeport", "ingress")  # how a model call travels: the NodePort, or the ingress with MODEL_HOST
PROTOCOLS = ("rest", "grpc")
AUTH = Option(
    "auth",
    "send the Dex session cookie, the ServiceAccount token, or auto (cookie while valid, else token)",
    default="auto",
    choices=AUTH_METHODS,
)
ATTEMPTS = Option(
    "attempts",
    "most attempts per call while the gateway times out (default RETRY_ATTEMPTS, else 30)",
    kind=int,
    setting="RETRY_ATTEMPTS",
    number=COUNT,
    short="a",
)
DEADLINE = Option(
    "deadline",
    "most seconds spent retrying one call (default RETRY_DEADLINE, else 300)",
    kind=float,
    setting="RETRY_DEADLINE",
    number=SECONDS,
    short="d",
)
SHOW_SECRETS = Option("show_secrets", "print cookies and tokens unmasked", kind=bool, default=False, short="s")
VERBOSE = Option(
    "verbose",
    "show every HTTP hop and kubectl command on stderr, secrets masked (also KFDEX_VERBOSE=1)",
    kind=bool,
    default=False,
    short="v",
)
CURL = Option(
    "curl",
    "print the equivalent bash commands (curl) from the current .env, send nothing, write nothing (secrets masked unless --show-secrets)",
    kind=bool,
    default=False,
)
# options that shape the environment (how things are shown), not the step: the task applies them
ENVIRONMENT_OPTIONS = (SHOW_SECRETS, VERBOSE)


def warn_if_exposed(env_file: EnvFile, environment: Environment) -> None:
    """A warning, never a refusal, when the .env holds a secret that others may read."""
    warning = env_file.exposed_secrets()
    if warning:
        environment.warn(warning)


def split_options(options: tuple[Option, ...], given: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Checked option values split into .env overrides for this run and arguments for the step."""
    overrides: dict[str, str] = {}
    arguments: dict[str, Any] = {}
    for option in options:
        value = given.get(option.name)
        option.check(value)
        if option.setting:
            if value is not None:
                overrides[option.setting] = str(value)
        elif option not in ENVIRONMENT_OPTIONS:
            arguments[option.name] = value
    return overrides, arguments


def run_step(
    step: Step,
    env_file: EnvFile,
    environment: Environment,
    overrides: Mapping[str, str] | None = None,
    **arguments: Any,
) -> StepResult:
    """Read the state, run one step, write what it produced, print its line."""
    raise_lost_interrupt()  # a signal that a finalizer swallowed stops the command here, before the step
    state: State = env_file.read().with_overrides(overrides)
    result = step.run(state, environment, **arguments)
    removable = {*step.writes, *step.clears}
    undeclared = sorted(key for key, value in result.updates.items() if key not in (step.writes if value is not None else removable))
    if undeclared:
        raise DeclarationError(f"step {step.name} wrote {', '.join(undeclared)}, which its declaration does not list")
    env_file.update(result.updates)
    (environment.step_skipped if result.skipped else environment.step_ok)(step.name, result.summary)
    if result.output is not None:
        environment.data(result.output)
    return result
