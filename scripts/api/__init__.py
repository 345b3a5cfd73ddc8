"""kfdex as a Python library: ``Kubeflow`` (log in, call the model, a renewing ``requests.Session``) and ``KubeflowAuth``.

A thin face over the documented steps: ``login`` is ``scripts.commands.login.login``, ``infer``
is ``scripts.infer.answer`` (the bytes ``kfdex infer`` sends), ``model_info`` is
``scripts.model.modelcheck.check``; the session's end is the one signal of
``scripts.auth.dexflow.login_signal`` (or a credential past its expiry, ``credentials.choose``).
The state is the CLI's: settings given in code, then the process environment, then
the .env file, then the defaults.  The steps read and write an in-memory copy of
the .env (``state.MemoryEnvFile``), written through to the file only when the
object was made from one and ``persist`` is true.

Renewal: when the clock or the gateway says the session is over, the object logs
in again once (a Dex login with the password given to ``login``, or DEX_PASSWORD
from the environment or the .env; a fresh token through kubectl after a token
login) and the request is sent again once.  Renewal never prompts.  Threads share
one renewal: a request that saw the old credential waits for it and is resent with
the new one.  See docs/python.md.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import partial, wraps
from pathlib import Path
from typing import Any, TypeVar

import requests
import requests.auth

from .. import infer as infer_step
from .. import resolve_ingress, resolve_model
from ..auth.credentials import COOKIE_KEYS, TOKEN_KEYS, Credential, choose, ensure_bound, renew_before, same_cluster, saved
from ..auth.dexflow import login_signal
from ..commands import login as login_command
from ..core.environment import Environment, verbose_requested
from ..core.errors import GatewayError, KfDexError, SessionError, SessionOver, UsageError
from ..core.extras import require
from ..core.keys import KEYS
from ..core.state import IN_CODE, EnvFile, MemoryEnvFile, State, default_env_path
from ..core.step import run_step
from ..model import grpcv2, modelcheck
from ..transport.gateway import Gateway, GatewaySettings, origin_of
from ..transport.settings import gateway_settings, ingress_origin

Password = str | Callable[[], str]
T = TypeVar("T")


def _settings(given: dict[str, Any]) -> dict[str, str]:
    """Settings given in code as option values: known keys only, as text."""
    unknown = sorted(name for name in given if name not in KEYS)
    if unknown:
        raise UsageError(f"{', '.join(unknown)}: not a setting kfdex knows (the keys of .env.example, such as MODEL_NAME)")
    return {name: str(value) for name, value in given.items() if value is not None and str(value) != ""}


def _worded(method: Callable[..., T]) -> Callable[..., T]:
    """A public method whose errors name the next command as the installed tool does (`kfdex login`)."""

    @wraps(method)
    def worded(self: Any, *arguments: Any, **keywords: Any) -> T:
        try:
            return method(self, *arguments, **keywords)
        except KfDexError as error:
            environment = self.environment if isinstance(self, Kubeflow) else self.kubeflow.environment
            error.message = environment.in_own_words(error.message)
            error.args = (error.message,)
            raise

    return worded


class Kubeflow:
    """One Kubeflow behind Dex: its settings and session, the model, and requests that renew the session by themselves."""

    def __init__(self, env_file: MemoryEnvFile, environment: Environment, settings: dict[str, str], *, renew: bool = True) -> None:
        self.file = env_file
        self.environment = environment
        self._overrides = dict(settings)
        self.renew_enabled = renew
        self.renewals = 0  # how many times the session was renewed by this object
        self._generation = 0  # changes with every login: a request remembers the one it was sent with
        self._lock = threading.Lock()
        self._password: Password | None = None
        self._token: bool | None = None  # how the last login here was made (None: none yet)
        self._gateways: dict[GatewaySettings, Gateway] = {}
        self._issued: dict[int, datetime] = {}  # when each login here was made: how long its credential lasts

    @classmethod
    def from_env(
        cls,
        env_file: str | os.PathLike[str] | None = None,
        *,
        persist: bool = True,
        renew: bool = True,
        environment: Environment | None = None,
        **settings: Any,
    ) -> Kubeflow:
        """The settings and state as the CLI sees them: ``settings`` (MODEL_NAME=…) > environment > .env > defaults.

        ``env_file`` defaults to the CLI's choice (``$ENV_FILE``, ``$KFDEX_PROFILE``, ``./.env``);
        when that file does not exist the object works from ``settings`` and the
        environment alone.  Logins are written to the file only when it was given or
        exists, and ``persist`` is true.  ``renew=False`` turns renewal off.
        """
        environment = environment or Environment.from_process()
        if environment.program == "invoke":
            environment = replace(environment, program="kfdex", verbose=environment.verbose or verbose_requested(environment.variables))
        path = Path(env_file) if env_file is not None else default_env_path(environment.variables)
        real = EnvFile(path, environment.variables)
        found = real.read()
        from_file = env_file is not None or found.exists
        memory = MemoryEnvFile(
            path if from_file else IN_CODE,
            dict(found),
            real.environment,
            exists=found.exists or not from_file,
            backing=real if from_file and persist else None,
        )
        return cls(memory, environment, _settings(settings), renew=renew)

    @classmethod
    def for_command(cls, env_file: EnvFile, environment: Environment, overrides: Mapping[str, str] | None) -> Kubeflow:
        """The object a command works through when it renews (``kfdex load --renew``): its .env, its options."""
        found = env_file.read()
        memory = MemoryEnvFile(env_file.path, dict(found), env_file.environment, exists=found.exists, backing=env_file)
        return cls(memory, environment, dict(overrides or {}))

    def __repr__(self) -> str:
        return f"Kubeflow(env_file={str(self.file.path)!r}, persist={self.file.backing is not None}, renewals={self.renewals})"

    # the state ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """What a command would see now: settings given in code over the environment over the .env."""
        return self.file.read().with_overrides(self._overrides)

    @property
    def ingress(self) -> str:
        """The ingress's base URL (``http://host:port``): where the credential may go."""
        return ingress_origin(self.state)

    def url(self, path: str) -> str:
        """An absolute URL on the ingress: ``kf.url("/pipeline/apis/v2beta1/healthz")``."""
        return self.ingress + "/" + path.lstrip("/")

    def _took(self, keys: tuple[str, ...]) -> None:
        """Keys a step has just written: what was given in code or the environment for them is stale now."""
        # replaced whole, never changed in place: other threads read them meanwhile
        self._overrides = {key: value for key, value in self._overrides.items() if key not in keys}
        self.file.environment = {key: value for key, value in self.file.environment.items() if key not in keys}

    # logging in ---------------------------------------------------------------------------

    @_worded
    def login(self, password: Password | None = None, token: bool = False, force: bool = False) -> Kubeflow:
        """``kfdex login``: reuse a valid session (unless ``force``), else the Dex login (or, ``token``, kubectl's token).

        ``password`` is a string or a callable returning one, kept (in memory) for renewals;
        without it DEX_PASSWORD is used, and at a terminal the password is asked for.
        Failures raise the CLI's errors (``error.exit_code``).  Returns ``self``.
        """
        if password is not None:
            self._password = password
        self._token = token
        self._login(self.environment, force=force)
        return self

    def _login(self, environment: Environment, force: bool) -> None:
        overrides = dict(self._overrides)
        source = self._password
        if source is not None and not self._token:
            overrides["DEX_PASSWORD"] = source() if callable(source) else source
        login_command.login(self.file, environment, overrides, force=force, token=bool(self._token))
        self._took((*login_command.LOGIN_KEYS, *resolve_ingress.STEP.writes))
        self._generation += 1
        self._issued[self._generation] = environment.now()  # a credential reused from the .env counts from here

    def _renews_with_token(self, state: State) -> bool:
        if self._token is not None:
            return self._token
        return saved(state, COOKIE_KEYS) is None and saved(state, TOKEN_KEYS) is not None

    def can_renew(self) -> bool:
        """Whether a renewal would find what it needs: a token login, or DEX_LOGIN with a password."""
        state = self.state
        token = self._renews_with_token(state)
        return token or bool(state.value("DEX_LOGIN") and (self._password is not None or state.value("DEX_PASSWORD")))

    def renew(self, seen: int | None = None) -> None:
        """Log in again without asking anyone (``seen``: the login a failed request used; skipped if already renewed)."""
        with self._lock:
            if seen is not None and seen != self._generation:
                return  # another request renewed it meanwhile
            if not self.renew_enabled:
                raise SessionOver("the session is over and renewal is off (renew=False): call .login() again")
            state = self.state
            if self._token is None:
                self._token = self._renews_with_token(state)
            if not self.can_renew():
                raise SessionError(
                    "the session is over and kfdex has no password to renew it: call .login(password=...) "
                    "(a string or a callable), or set DEX_LOGIN and DEX_PASSWORD in the environment or the .env"
                )
            self.environment.info(f"kfdex: the session is over; renewing it ({'token' if self._token else 'Dex login'})")
            self._login(replace(self.environment, interactive=False), force=True)
            self.renewals += 1

    def current(self) -> tuple[int, Credential]:
        """The login's number and its credential, renewed first when it is missing or past its expiry."""
        seen = self._generation
        try:
            return seen, choose(self.state, self.environment.now())
        except SessionOver:
            self.renew(seen)
            return self._generation, choose(self.state, self.environment.now())

    def fresh(self) -> Credential:
        """The credential, renewed first when it is over or near its end (``credentials.renew_before``): for kfp's hook."""
        seen, credential = self.current()
        expiry, issued = credential.expiry(), self._issued.get(seen)
        if expiry is None or issued is None:
            return credential
        if (expiry - self.environment.now()).total_seconds() < renew_before((expiry - issued).total_seconds()):
            self.renew(seen)
            credential = self.current()[1]
        return credential

    def remaining(self) -> float | None:
        """Seconds until the credential in use ends (None when the gateway gave no end); renewed first if over."""
        expiry = self.current()[1].expiry()
        return None if expiry is None else (expiry - self.environment.now()).total_seconds()

    def with_renewal(self, call: Callable[[State], T]) -> T:
        """``call(state)``, and once more after a renewal when the session turned out to be over."""
        seen = self._generation
        try:
            return call(self.state)
        except SessionOver:
            self.renew(seen)
            return call(self.state)

    # the model ------------------------------------------------------------------------------

    def _routed(self) -> None:
        """The model's route: resolve-model's MODEL_HOST when neither it nor NODE_PORT is known yet."""
        state = self.state
        if not (state.value("NODE_PORT") or state.value("MODEL_HOST")):
            run_step(resolve_model.STEP, self.file, self.environment, self._overrides)
            self._took(resolve_model.STEP.writes)

    def _gateway(self, settings: GatewaySettings, environment: Environment) -> Gateway:
        """One Gateway (one keep-alive connection pool) per destination, kept between calls."""
        if settings not in self._gateways:
            self._gateways[settings] = Gateway(settings, environment)
        return self._gateways[settings]

    @_worded
    def infer(self, payload: str | dict[str, Any] = "iris", protocol: str = "rest", auth: str = "auto") -> Any:
        """The model's answer to ``payload`` (a payload name, a file, JSON text, or a dict) as parsed JSON: ``kfdex infer --json``."""
        grpc = infer_step.grpc_asked(protocol)
        source = payload if isinstance(payload, str) else json.dumps(payload)
        self._routed()
        if grpc:
            return self.with_renewal(lambda state: grpcv2.infer(state, self.environment, source, auth)[0])
        return self.with_renewal(lambda state: infer_step.answer(state, self.environment, source, auth, self._gateway).answer)

    @_worded
    def model_info(self, protocol: str = "rest", auth: str = "auto") -> dict[str, Any]:
        """``kfdex model-info --json``: the server and the model checked ready, and the model's V2 metadata."""
        check = modelcheck.check_grpc if infer_step.grpc_asked(protocol) else modelcheck.check
        self._routed()
        return self.with_renewal(lambda state: check(state, self.environment, auth).metadata)

    # any request --------------------------------------------------------------------------------

    def auth(self) -> KubeflowAuth:
        """A ``requests`` auth carrying this object's credential, renewed as the object renews it."""
        return KubeflowAuth(self)

    @property
    def verify(self) -> bool | str:
        """TLS verification for the ingress, as the CLI does it: True, a CA bundle's path, or False (INGRESS_INSECURE)."""
        return gateway_settings(self.state).verify

    @_worded
    def kfp_client(self, **kwargs: Any) -> Any:
        """A ``kfp.Client`` for the Pipelines API behind the same gateway (``<ingress>/pipeline``): the ``kfp`` extra.

        The credential reaches kfp through its ``credentials`` hook before every call, renewed
        ahead of its end (tokens and cookies alike: see ``scripts.api.pipelines``).  ``kwargs``
        go to ``kfp.Client`` (``namespace``, ``ui_host``…).
        """
        require("kfp", "Kubeflow.kfp_client()", modules=("kfp",))
        from .pipelines import client

        return client(self, **kwargs)

    def session(self) -> KubeflowSession:
        """A ``requests.Session`` for the ingress (and the model's NodePort on its host), renewing the session by itself."""
        session = KubeflowSession()
        session.auth = self.auth()
        session.trust_env = False  # no .netrc credentials or proxies slipped in from the environment
        session.verify = self.verify
        return session


class KubeflowAuth(requests.auth.AuthBase):
    """The Kubeflow credential on a request (``requests.get(url, auth=KubeflowAuth.from_env())``), renewed when over.

    A request to any origin other than the ingress (or a port on its host: the model's
    NodePort) is refused before it is sent (UsageError).  When the answer says the
    session is over, the session is renewed once and the request is sent again once;
    a request with a streamed body (a file or generator) is not resent.
    """

    def __init__(self, kubeflow: Kubeflow) -> None:
        self.kubeflow = kubeflow

    @classmethod
    def from_env(cls, env_file: str | os.PathLike[str] | None = None, **settings: Any) -> KubeflowAuth:
        """An auth over ``Kubeflow.from_env(env_file, **settings)``."""
        return cls(Kubeflow.from_env(env_file, **settings))

    @_worded
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        cookies = request.headers.get("Cookie")  # the request's own, before the credential joins them
        seen, _credential = self.attach(request)
        request.register_hook("response", partial(self._answered, seen, cookies))
        return request

    def attach(self, request: requests.PreparedRequest, cookies: str | None = None) -> tuple[int, Credential]:
        """Put the credential on ``request`` (after the cookies it already carries) once its origin is checked."""
        destination = origin_of(request.url or "")
        ingress = self.kubeflow.ingress
        if not same_cluster(ingress, destination, ingress):
            raise UsageError(f"refusing to send the Kubeflow credential to {destination}: it goes only to {ingress} or a port on its host")
        seen, credential = self.kubeflow.current()
        ensure_bound(credential, destination, ingress)
        if credential.kind == "cookie":
            cookies = request.headers.get("Cookie") if cookies is None else cookies
            request.headers["Cookie"] = f"{cookies}; {credential.value}" if cookies else credential.value
        else:
            request.headers["Authorization"] = credential.header_value()
        return seen, credential

    @_worded
    def _answered(self, seen: int, cookies: str | None, response: requests.Response, **sending: Any) -> requests.Response:
        """A response hook: an answer that sends the call to a login is answered by a renewal and one resend."""
        if login_signal(response, navigation=True) is None:
            return response
        sent = response.request
        if sent.body is not None and not isinstance(sent.body, (bytes, str)):
            raise SessionOver("the session is over and the request's streamed body cannot be sent again: send it again")
        self.kubeflow.renew(seen)
        again = sent.copy()
        again.headers.pop("Authorization", None)
        self.attach(again, cookies or "")
        _ = response.content  # read to the end, so that the connection can carry the resend
        response.close()
        resent = response.connection.send(again, **sending)
        resent.history.append(response)
        resent.request = again
        if login_signal(resent, navigation=True) is not None:
            raise SessionOver("the gateway sent the request to a login again right after the session was renewed: call .login()")
        return resent


class KubeflowSession(requests.Session):
    """A ``requests.Session`` whose redirects keep the Kubeflow credential on the ingress and never leave it."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        if isinstance(self.auth, KubeflowAuth):
            ingress = self.auth.kubeflow.ingress
            destination = origin_of(prepared_request.url or "")
            if not same_cluster(ingress, destination, ingress):
                raise GatewayError(f"the gateway redirected to {destination}, not {ingress}: refusing to follow with the credential")
            self.auth.attach(prepared_request)


__all__ = ["Kubeflow", "KubeflowAuth", "KubeflowSession", "Password"]
