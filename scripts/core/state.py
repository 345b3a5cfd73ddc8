"""The .env file: the hand-off between steps and the place a person looks while debugging.

Reading uses python-dotenv's parser without interpolation, so ``$``, ``#``,
``=``, quotes and spaces in values come back exactly as written.  Writing keeps
every line it does not own (comments, blank lines, order, unknown keys), is
atomic (a temporary file in the same folder, then ``os.replace``), holds an
exclusive lock on the folder so that two tasks running at once do not lose each
other's keys, and leaves the file 0600.
"""

from __future__ import annotations

import fcntl
import glob
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, DeclarationError, UsageError

if TYPE_CHECKING:  # python-dotenv's parser loads when a file is read, not when tasks are listed
    from dotenv.parser import Binding
from .keys import KEYS, is_secret
from .values import is_text

ENV_FILE_VARIABLE = "ENV_FILE"
PROFILE_VARIABLE = "KFDEX_PROFILE"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # at most 64: a file name, NAME.env, is at most 255

_SAFE_UNQUOTED = re.compile(r"[A-Za-z0-9_./:@,+%=-]+")
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def checkout_folder() -> Path | None:
    """The checkout this code runs from (the folder of tasks.py), or None when installed as a package."""
    folder = Path(__file__).resolve().parents[2]  # scripts/core/state.py -> the checkout
    return folder if (folder / "tasks.py").is_file() and __package__ == "scripts.core" else None


def profiles_folder(variables: Mapping[str, str]) -> Path:
    """Where named profiles live: ``$XDG_CONFIG_HOME/kfdex/profiles``, by default ``~/.config/kfdex/profiles``."""
    base = variables.get("XDG_CONFIG_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".config") / "kfdex" / "profiles"


def profile_path(name: str, variables: Mapping[str, str]) -> Path:
    """The .env file of the profile ``name`` (letters, digits, ``._-``); a UsageError for any other name."""
    if not _PROFILE_NAME.fullmatch(name):
        raise UsageError(f"profile {name!r}: a profile's name is up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit")
    return profiles_folder(variables) / f"{name}.env"


def default_env_path(variables: Mapping[str, str] | None = None, folder: Path | None = None) -> Path:
    """The state file, in this order: the file ``$ENV_FILE`` names; the profile ``$KFDEX_PROFILE`` names
    (``--profile`` sets it); ``.env`` in ``folder`` (beside tasks.py in a checkout), else in the current folder."""
    variables = os.environ if variables is None else variables
    named = variables.get(ENV_FILE_VARIABLE)
    if named:
        return Path(named).expanduser()
    profile = variables.get(PROFILE_VARIABLE)
    if profile:
        return profile_path(profile, variables)
    return (folder or Path.cwd()) / ".env"


# a line that python-dotenv could not read although it starts KEY=" or KEY=': the quote is never closed
_OPENS_A_QUOTE = re.compile(r"\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<quote>['\"])")
_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def checked_state_path(path: Path) -> Path:
    """``path`` when it names a regular file (through any symlink) or nothing yet; else a ConfigError (exit 3).

    Checked with ``os.stat`` before anything opens it: a FIFO would block the reader,
    and a device or folder would be replaced by the atomic rewrite.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (it will be created), or unreachable: reading it says why
        return path
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ConfigError(f"{path} is {kind}, not a .env file: point ENV_FILE at a regular file (or at none yet)")
    return path


def from_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """The tool's keys set (non-empty) in the process environment, for those that may come from there.

    A value holding bytes that are not UTF-8 is refused (UsageError naming the key, never the value).
    """
    found = {name: variables[name] for name, key in KEYS.items() if key.from_environment and variables.get(name)}
    for name, value in found.items():
        if not is_text(value):
            raise UsageError(f"{name} in the environment holds bytes that are not UTF-8 text: set it to UTF-8 text, or unset it")
    return found


IN_CODE = Path("<the settings given to Kubeflow.from_env>")  # the library's state when no .env backs it (messages name it)


class State(Mapping[str, str]):
    """What one command sees: the .env file's values under the environment's and the command line's.

    As a mapping it holds the file's own values (what a step may rewrite); ``value``
    answers with the precedence the README states: a command-line option, then a
    (non-empty) process environment variable, then the .env file, then the default.
    """

    def __init__(
        self,
        path: Path,
        values: Mapping[str, str],
        exists: bool = True,
        environment: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self._values = dict(values)
        self.exists = exists
        self._environment = dict(environment or {})
        self._overrides = dict(overrides or {})

    def where_to_set(self, keys: list[str]) -> str:
        """Where a person puts missing ``keys``: the .env (or the environment), or, in code, ``Kubeflow.from_env``'s arguments."""
        them = "them" if len(keys) > 1 else "it"
        if self.path == IN_CODE:
            return f"pass {', '.join(f'{key}=…' for key in keys)} to Kubeflow.from_env, or set {them} in the environment"
        return f"put {them} in {self.path} (`invoke init` writes a commented one) or the environment"

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def with_overrides(self, overrides: Mapping[str, str] | None) -> State:
        """This state with some values replaced for one run (command-line options); nothing is written."""
        if not overrides:
            return self
        return State(self.path, self._values, self.exists, self._environment, {**self._overrides, **overrides})

    def source(self, key: str) -> str:
        """Where ``value(key)`` comes from: "option", "environment", "file", or "" when unset."""
        for name, layer in (("option", self._overrides), ("environment", self._environment), ("file", self._values)):
            if layer.get(key):
                return name
        return ""

    def value(self, key: str, default: str = "") -> str:
        """The value of ``key``: option > environment > .env > ``default``.

        A name missing from ``scripts.core.keys`` is a bug (a typo would otherwise read as an empty value).
        """
        if key not in KEYS:
            raise DeclarationError(f"{key} is not a .env key this tool knows: add it to scripts/core/keys.py or fix the name")
        return self._overrides.get(key) or self._environment.get(key) or self._values.get(key) or default

    def require(self, key: str) -> str:
        """The value of ``key``, or a ConfigError naming what provides it."""
        found = self.value(key)
        if found:
            return found
        spec = KEYS[key]
        if not self.exists and not self._environment and spec.source == "setting":
            raise ConfigError(
                f"{key} is needed, but there is no {self.path} and none of the tool's settings are in the environment: "
                f"run `invoke init` to write one (or set {key} in the environment)"
            )
        if not self.exists:
            raise ConfigError(f"{key} is needed but {self.path} does not exist: {spec.how_to_set}")
        state = "is empty" if key in self._values else "is not set"
        raise ConfigError(f"{key} {state} in {self.path}: {spec.how_to_set}")


class EnvFile:
    """Reads and updates one .env file safely."""

    def __init__(self, path: Path | str | None = None, variables: Mapping[str, str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_env_path(variables)  # its kind is checked on first use
        self.environment = from_environment(variables or {})  # what the process environment sets over the file

    @classmethod
    def for_variables(cls, variables: Mapping[str, str], folder: Path | None = None) -> EnvFile:
        """The file named by ``ENV_FILE`` in ``variables``, else ``.env`` in ``folder`` or the current folder.

        Its states carry the tool's keys that ``variables`` (the process environment) set.
        """
        return cls(default_env_path(variables, folder), variables)

    def exposed_secrets(self) -> str | None:
        """A warning when the file holds a secret and others may read it (mode beyond 0600); None otherwise."""
        import stat

        try:
            status = self.path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(status.st_mode) or not status.st_mode & 0o077:
            return None
        try:
            secrets = [name for name, value in self.read().items() if value and is_secret(name)]
        except ConfigError:
            return None  # the command itself will say what is wrong with the file
        if not secrets:
            return None
        mode = f"{stat.S_IMODE(status.st_mode):04o}"
        return f"{self.path} holds {', '.join(secrets)} and others may read it (mode {mode}): chmod 600 {self.path}"

    # reading -----------------------------------------------------------------

    def text(self) -> str | None:
        """The file's text, or None when it does not exist (a ConfigError when it cannot be read as UTF-8)."""
        checked_state_path(self.path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError:
            raise ConfigError(f"cannot read {self.path}: permission denied (check its owner, then chmod 600 it)") from None
        except OSError as error:
            raise ConfigError(f"cannot read {self.path}: {error.strerror}") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise ConfigError(f"{self.path} line {line} is not UTF-8 text: fix or delete that line") from None

    def _bindings(self, text: str) -> list[Binding]:
        from dotenv.parser import parse_stream

        bindings = list(parse_stream(io.StringIO(text)))
        for binding in bindings:
            if binding.error:
                line = binding.original.line + _leading_blank_lines(binding.original.string)
                if opened := _OPENS_A_QUOTE.match(binding.original.string):
                    raise ConfigError(
                        f"{self.path} line {line}: the value of {opened['key']} opens a {opened['quote']} quote that is never "
                        "closed: close it, or fix or delete that line"
                    )
                raise ConfigError(f"{self.path} line {line} is not KEY=VALUE: fix or delete that line")
        return bindings

    def read(self) -> State:
        """The current state; a missing file is an empty state."""
        text = self.text()
        if text is None:
            return State(self.path, {}, exists=False, environment=self.environment)
        values: dict[str, str] = {}
        for binding in self._bindings(text):
            if binding.key is not None:
                values[binding.key] = binding.value or ""
        return State(self.path, values, environment=self.environment)

    # writing -----------------------------------------------------------------

    def update(self, changes: Mapping[str, str | None]) -> None:
        """Set (or, for None, remove) keys in one atomic, locked rewrite."""
        if not changes:
            return
        for key in changes:
            if not _KEY_NAME.fullmatch(key):
                raise ConfigError(f"{key!r} cannot be a .env key: use letters, digits and _")
        with self._locked():
            bindings = self._bindings(self.text() or "")
            new_text = _rewrite(bindings, changes)
            expected = {binding.key: binding.value or "" for binding in bindings if binding.key is not None}
            for key, value in changes.items():
                if value is None:
                    expected.pop(key, None)
                else:
                    expected[key] = value
            self._verify(new_text, expected)
            self._replace(new_text)

    def rewrite(self, change: Callable[[str | None], str | None]) -> None:
        """Replace the file's text (None: it does not exist) with ``change(text)`` under the lock; None removes the file."""
        with self._locked():
            text = self.text()
            new_text = change(text)
            if new_text == text:
                return
            if new_text is None:
                self._target().unlink(missing_ok=True)
                return
            self._bindings(new_text)  # what we write must read back as KEY=VALUE lines
            self._replace(new_text)

    def _target(self) -> Path:
        """The file written: the symlink's target when the path is a symlink (the link itself is kept)."""
        return self.path.resolve() if self.path.is_symlink() else self.path

    def _verify(self, new_text: str, expected: Mapping[str, str]) -> None:
        """Parse what we are about to write: every key must read back exactly as intended."""
        from dotenv.parser import parse_stream

        written = {b.key: b.value or "" for b in parse_stream(io.StringIO(new_text)) if b.key is not None and not b.error}
        if written != expected:
            bad = sorted(k for k in set(expected) | set(written) if expected.get(k) != written.get(k))
            raise ConfigError(f"refusing to write {self.path}: {', '.join(bad)} would not read back exactly")

    def _replace(self, text: str) -> None:
        target = self._target()
        folder = target.parent
        prefix = f".{target.name}.kfdex-"
        # our temporary files exist only under the lock we hold: one found now was left by a killed writer (it may
        # hold a secret). Only a regular file of ours, named exactly as mkstemp names them here, is ever removed.
        ours = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}\.tmp")
        for stale in folder.glob(f"{glob.escape(prefix)}*.tmp"):
            with suppress(OSError):
                found = stale.lstat()
                if ours.fullmatch(stale.name) and stat.S_ISREG(found.st_mode) and found.st_uid == os.geteuid():
                    stale.unlink()
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        with suppress(OSError):
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def check_folder(self) -> Path:
        """The file's folder; a ConfigError when it does not exist (a folder made here would be left behind), or when the
        file is not a regular one."""
        checked_state_path(self.path)
        target = self._target()
        folder = target.parent
        if not folder.is_dir():
            raise ConfigError(f"cannot write {self.path}: the folder {folder} does not exist; create it, or name another file")
        with suppress(OSError):
            if not target.stat().st_mode & stat.S_IWUSR:  # root could replace it anyway: the mode says whether to
                raise ConfigError(f"cannot write {self.path}: it is read-only: make it writable (chmod u+w) to let kfdex change it")
        return folder

    @contextmanager
    def _locked(self) -> Iterator[None]:
        folder = self.check_folder()
        try:
            descriptor = os.open(folder, os.O_RDONLY)
        except OSError as error:
            raise ConfigError(f"cannot write {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        except PermissionError:
            raise ConfigError(f"cannot write {self.path}: permission denied") from None
        finally:
            os.close(descriptor)


def _rewrite(bindings: list[Binding], changes: Mapping[str, str | None]) -> str:
    """The file's text with ``changes`` applied in place; new keys are appended at the end, in the file's line ending."""
    newline = line_ending("".join(binding.original.string for binding in bindings))
    pending = dict(changes)
    out: list[str] = []
    for binding in bindings:
        key = binding.key
        if key is None or key not in changes:
            out.append(binding.original.string)
            continue
        value = changes[key]
        pending.pop(key, None)
        if value is None:
            out.append(leading_whitespace(binding.original.string))
            continue
        out.append(_replace_value(binding.original.string, key, encode_value(value), newline))
    additions = [f"{key}={encode_value(value)}{newline}" for key, value in pending.items() if value is not None]
    return appended("".join(out), "".join(additions), newline)


def line_ending(text: str) -> str:
    """The file's line ending: CRLF when its first line ends so, else LF."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def appended(text: str, addition: str, newline: str) -> str:
    """``addition`` after ``text``, on a line of its own."""
    if addition and text and not text.endswith(("\n", "\r")):
        text += newline
    return text + addition


def encode_value(value: str) -> str:
    """A .env value that python-dotenv reads back as exactly ``value``."""
    if _SAFE_UNQUOTED.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def leading_whitespace(original: str) -> str:
    match = re.match(r"\s*", original)
    text = match.group(0) if match else ""
    # keep only whole blank lines, not the indentation of the removed line
    return text[: text.rfind("\n") + 1] if "\n" in text else ""


def _leading_blank_lines(original: str) -> int:
    return leading_whitespace(original).count("\n")


def _replace_value(original: str, key: str, encoded: str, newline: str) -> str:
    """Rewrite one binding's value, keeping what stood before the key and any trailing comment."""
    from dotenv import parser as dotenv_parser

    reader = dotenv_parser.Reader(io.StringIO(original))
    reader.read_regex(dotenv_parser._multiline_whitespace)
    reader.read_regex(dotenv_parser._export)
    head = original[: reader.position.chars]
    dotenv_parser.parse_key(reader)
    reader.read_regex(dotenv_parser._whitespace)
    value_start = reader.position.chars
    if reader.peek(1) == "=":
        (equal_sign,) = reader.read_regex(dotenv_parser._equal_sign)
        value_start = reader.position.chars
        if not (len(equal_sign) > 1 and reader.peek(1) == "#"):
            dotenv_parser.parse_value(reader)
    value_text = original[value_start : reader.position.chars]
    comment = ""
    if value_text[:1] not in ("'", '"'):
        # an unquoted value swallows its inline comment when read: keep the comment
        found = re.search(r"[^\S\r\n]+#.*", value_text)
        comment = found.group(0) if found else ""
    tail = comment + original[reader.position.chars :]
    if not tail.endswith(("\n", "\r")):
        tail += newline
    return f"{head}{key}={encoded}{tail}"


class MemoryEnvFile(EnvFile):
    """A .env held in memory, for the library (``scripts.api``): the steps read and write it as they do a file.

    It starts from ``values`` (a file's, when the library was made from one); with a
    ``backing`` file, every update is also written there (the same locked, atomic
    rewrite), so a notebook's login shows in the .env as the CLI's would.  Reading
    never touches the disk.  ``path`` names the file, or where the settings came
    from, in messages.
    """

    def __init__(
        self,
        path: Path,
        values: Mapping[str, str],
        environment: Mapping[str, str],
        exists: bool = True,
        backing: EnvFile | None = None,
    ) -> None:
        self.path = path
        self.environment = dict(environment)
        self.values = dict(values)
        self.exists = exists
        self.backing = backing

    def exposed_secrets(self) -> str | None:
        return self.backing.exposed_secrets() if self.backing is not None else None

    def read(self) -> State:
        return State(self.path, self.values, exists=self.exists, environment=self.environment)

    def update(self, changes: Mapping[str, str | None]) -> None:
        if self.backing is not None:
            self.backing.update(changes)
        values = dict(self.values)
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        self.values = values  # swapped whole: a thread reading the state meanwhile sees the old or the new, never half
