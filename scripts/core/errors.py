"""The project's exceptions and the exit codes they map to.

Every failure a person can act on is raised as a ``KfDexError`` subclass that
carries a one-line message (what went wrong and what to do next).  The single
error boundary in ``scripts.core.boundary`` turns it into that line on stderr and the
exit code below; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (listed in the README)."""

    OK = 0
    BUG = 1  # an unexpected error: please report it (run with --debug)
    USAGE = 2  # bad input: payload, option or setting value
    CONFIG = 3  # .env missing, unreadable or malformed; a required key missing
    CREDENTIALS = 4  # Dex rejected the login / password
    SESSION = 5  # session cookie or token missing/expired: run `invoke login`
    LOGIN_RESTART = 6  # a Dex request was consumed or expired: start again from fetch-req
    GATEWAY = 7  # ingress unreachable, timed out after retries, or answered unexpectedly
    KUBECTL = 8  # kubectl missing or a kubectl command failed
    MODEL = 9  # the model server answered with an error (404 model, 403 RBAC, 4xx/5xx)
    SANDBOX = 10  # the local sandbox could not start or stop
    # a signal ends a command with 128 + its number (scripts.core.boundary)
    HANGUP = 129  # SIGHUP
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    OUTPUT_CLOSED = 141  # SIGPIPE: the reader of the output left (`| head`) before the end
    TERMINATED = 143  # SIGTERM


class KfDexError(Exception):
    """Root of every error this tool reports to a person."""

    exit_code: ExitCode = ExitCode.BUG

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DeclarationError(KfDexError):
    """The code broke a declaration (a step wrote a key it does not list, or read an unknown key): a bug, exit 1."""

    exit_code = ExitCode.BUG


class UsageError(KfDexError):
    """The user gave input that cannot be used (payload, option, setting value)."""

    exit_code = ExitCode.USAGE


class ConfigError(KfDexError):
    """The .env state is missing, unreadable, malformed, or lacks a key."""

    exit_code = ExitCode.CONFIG


class CredentialsError(KfDexError):
    """Dex rejected the credentials. Never retried."""

    exit_code = ExitCode.CREDENTIALS


class SessionError(KfDexError):
    """No valid session cookie or token: the user must log in again."""

    exit_code = ExitCode.SESSION


class SessionOver(SessionError):
    """No session the gateway or the clock accepts any more (expired, missing, or turned away): a login renews it.

    Raised where the session's end is seen: a credential missing or past its expiry
    before sending, or an answer that sends the call to a login.  The library
    (``scripts.api``) renews on this error and nothing else; the CLI shows it as any
    SessionError (exit 5).
    """


class LoginRestartError(KfDexError):
    """A Dex request (req/state/code/csrf) was consumed or expired: start again.

    ``reason`` is the short "what the gateway said" part, for the line ``login``
    prints when it starts again by itself.
    """

    exit_code = ExitCode.LOGIN_RESTART

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class GatewayError(KfDexError):
    """The ingress could not be reached or answered in a way we cannot use."""

    exit_code = ExitCode.GATEWAY


class KubectlError(KfDexError):
    """kubectl is missing or one of its commands failed."""

    exit_code = ExitCode.KUBECTL


class ModelError(KfDexError):
    """The model server (or the mesh in front of it) answered with an error."""

    exit_code = ExitCode.MODEL


class SandboxError(KfDexError):
    """The local sandbox could not start or stop."""

    exit_code = ExitCode.SANDBOX
