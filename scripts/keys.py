"""Every .env key the tool knows: who provides it, and whether it is a secret.

This table is the single source for three things: whether a key is a user
setting or produced state, which values are masked when shown, and
``.env.example`` (a test checks that both agree).  Which step produces a key
is not written here: it comes from the steps' declarations (``scripts.catalog``),
so the error for a missing key names the step to run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One .env key."""

    name: str
    source: str  # "setting" (the user sets it), "step" (a step writes it) or "sandbox" (sandbox-up writes it)
    secret: bool = False
    # a secret a person chose (a password): shown with no character of it, where a cookie or token keeps its ends
    chosen: bool = False
    help: str = ""
    # a non-empty process environment variable of this name wins over the .env file; not for the
    # state of a login in progress, nor for KUBECONFIG (kubectl reads the environment's by itself,
    # so one written in .env, as sandbox-up does, is the tool's own choice)
    from_environment: bool = True
    user_may_set: bool = False  # a step's key the user may also set by hand (MODEL_HOST when kubectl cannot read the isvc)

    @property
    def how_to_set(self) -> str:
        """The next action that gives this key a value, for error messages."""
        if self.source == "setting":
            return f"set {self.name} in the .env file (`invoke init` writes a commented one)"
        if self.source == "sandbox":
            return "run `invoke sandbox-up` first"
        from .catalog import how_to_produce  # the declarations import this module: look them up only when needed

        by_hand = f", or set {self.name} in the .env file" if self.user_may_set else ""
        return f"run `{how_to_produce(self.name)}` first{by_hand}"


_KEYS = [
    # user settings
    Key("KUBECONFIG", "setting", help="kubeconfig for kubectl; empty means kubectl's default", from_environment=False),
    Key("DEX_LOGIN", "setting", help="Dex user (email address or username)"),
    Key("DEX_PASSWORD", "setting", secret=True, chosen=True, help="Dex password"),
    Key("DEX_CONNECTOR", "setting", help="Dex connector to use when Dex offers several (default local)"),
    Key("MODEL_NAME", "setting", help="InferenceService name"),
    Key("MODEL_NAMESPACE", "setting", help="namespace of the InferenceService"),
    Key("TOKEN_SERVICE_ACCOUNT", "setting", help="ServiceAccount for token login (default default-editor)"),
    Key("TOKEN_NAMESPACE", "setting", help="its namespace (default MODEL_NAMESPACE)"),
    Key("TOKEN_DURATION", "setting", help="how long a token login lasts, as kubectl takes it (default 24h)"),
    Key("TOKEN_AUDIENCE", "setting", help="the audience the gateway checks (default the ingress gateway's)"),
    Key("INGRESS_SCHEME", "setting", help="http or https (default http, https on port 443)"),
    Key("INGRESS_CA_BUNDLE", "setting", help="PEM file of a private CA that signed the ingress certificate"),
    Key("INGRESS_INSECURE", "setting", help="1 turns TLS verification off (warns every time)"),
    Key("HTTP_TIMEOUT", "setting", help="seconds to wait for one HTTP answer (default 30)"),
    Key("RETRY_ATTEMPTS", "setting", help="most attempts for one call when the gateway times out (default 30)"),
    Key("RETRY_DEADLINE", "setting", help="most seconds spent retrying one call (default 300)"),
    Key("RETRY_WAIT_INITIAL", "setting", help="first backoff wait in seconds (default 1)"),
    Key("RETRY_WAIT_MAX", "setting", help="longest backoff wait in seconds (default 15)"),
    # produced by the steps
    Key("INGRESS_HOST", "step", help="address of the Istio ingress gateway"),
    Key("INGRESS_PORT", "step", help="its http2 port (nodePort or load-balancer port)"),
    Key("INGRESS_KIND", "step", help="NodePort or LoadBalancer"),
    Key("DEX_REQ", "step", secret=True, help="the Dex auth request id (req= or state=), a one-time code", from_environment=False),
    Key("DEX_LOGIN_URL", "step", help="absolute URL of Dex's password form", from_environment=False),
    Key("LOGIN_COOKIES", "step", secret=True, help="cookies the gateway set during login (CSRF/state)", from_environment=False),
    Key("DEX_NEXT_URL", "step", help="where Dex sent us after the password was accepted", from_environment=False),
    Key("DEX_CALLBACK_URL", "step", help="the gateway's OIDC callback with code and state", from_environment=False),
    Key("AUTH_COOKIE", "step", secret=True, help="Cookie header value of the session"),
    Key("AUTH_EXPIRES", "step", help="when the session ends (ISO 8601, UTC)"),
    Key("AUTH_ORIGIN", "step", help="the ingress (scheme://host:port) the session belongs to: it is sent nowhere else"),
    Key("AUTH_LOGIN", "step", help="the Dex login the session belongs to"),
    Key("AUTH_BEARER", "step", secret=True, help="ServiceAccount token sent as Authorization: Bearer"),
    Key("AUTH_BEARER_EXPIRES", "step", help="when the token ends (ISO 8601, UTC)"),
    Key("AUTH_BEARER_ORIGIN", "step", help="the ingress (scheme://host:port) the token is for: it is sent nowhere else"),
    Key("AUTH_BEARER_SUBJECT", "step", help="the ServiceAccount the token belongs to (namespace/name)"),
    Key("MODEL_HOST", "step", help="Host header for calls through the ingress (the isvc URL's host)", user_may_set=True),
    Key("MODEL_PATH", "step", help="path prefix of the isvc URL (KServe's path-based routing), empty for host routing", user_may_set=True),
    Key("NODE_PORT", "step", help="nodePort that reaches the predictor's port 8080"),
    Key("NODE_PORT_GRPC", "step", help="nodePort that reaches the predictor's gRPC port 8081 (infer --protocol grpc)"),
    Key("NODE_PORT_SERVICE", "step", help="name of the NodePort Service we created"),
    # the sandbox
    Key("SANDBOX_DIR", "sandbox", help="folder of the running sandbox (pids, logs, kubeconfig)", from_environment=False),
]

KEYS: dict[str, Key] = {key.name: key for key in _KEYS}


def is_secret(name: str) -> bool:
    """True for keys whose values must be masked when shown."""
    key = KEYS.get(name)
    return bool(key and key.secret)


def is_chosen_secret(name: str) -> bool:
    """True for secrets a person chose (a password): masked with no character shown."""
    key = KEYS.get(name)
    return bool(key and key.chosen)


def produced() -> tuple[str, ...]:
    """The keys the steps write: they describe one cluster."""
    return tuple(name for name, key in KEYS.items() if key.source == "step")
