"""Every .env key the tool knows: who provides it, and whether it is a secret.

This table is the single source for three things: whether a key is a user
setting or produced state, which values are masked when shown, and
``.env.example`` (a test checks that both agree).  A produced key names the
command that writes it, so the error for a missing key says what to run; a test
checks that the steps' declarations agree (this table sits below the steps and
cannot ask them).
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
    producer: str = ""  # a step's key: the task that writes it, as a person types it (fetch-req, login --token)

    @property
    def how_to_produce(self) -> str:
        """``invoke fetch-req``: the command that writes a produced key."""
        return f"invoke {self.producer}" if self.producer else f"set {self.name} in the .env file"

    @property
    def how_to_set(self) -> str:
        """The next action that gives this key a value, for error messages."""
        if self.source == "setting":
            return f"set {self.name} in the .env file (`invoke init` writes a commented one)"
        if self.source == "sandbox":
            return "run `invoke sandbox-up` first"
        by_hand = f", or set {self.name} in the .env file" if self.user_may_set else ""
        return f"run `{self.how_to_produce}` first{by_hand}"


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
    Key("INGRESS_HOST", "step", producer="resolve-ingress", help="address of the Istio ingress gateway"),
    Key("INGRESS_PORT", "step", producer="resolve-ingress", help="its http2 port (nodePort or load-balancer port)"),
    Key("INGRESS_KIND", "step", producer="resolve-ingress", help="NodePort or LoadBalancer"),
    Key("DEX_REQ", "step", producer="fetch-req", secret=True, help="the Dex auth request id (req= or state=), a one-time code", from_environment=False),
    Key("DEX_LOGIN_URL", "step", producer="fetch-req", help="absolute URL of Dex's password form", from_environment=False),
    Key("LOGIN_COOKIES", "step", producer="fetch-req", secret=True, help="cookies the gateway set during login (CSRF/state)", from_environment=False),
    Key("DEX_NEXT_URL", "step", producer="authenticate", help="where Dex sent us after the password was accepted", from_environment=False),
    Key("DEX_CALLBACK_URL", "step", producer="approve", help="the gateway's OIDC callback with code and state", from_environment=False),
    Key("AUTH_COOKIE", "step", producer="extract-cookie", secret=True, help="Cookie header value of the session"),
    Key("AUTH_EXPIRES", "step", producer="extract-cookie", help="when the session ends (ISO 8601, UTC)"),
    Key("AUTH_ORIGIN", "step", producer="extract-cookie", help="the ingress (scheme://host:port) the session belongs to: it is sent nowhere else"),
    Key("AUTH_LOGIN", "step", producer="extract-cookie", help="the Dex login the session belongs to"),
    Key("AUTH_BEARER", "step", producer="login --token", secret=True, help="ServiceAccount token sent as Authorization: Bearer"),
    Key("AUTH_BEARER_EXPIRES", "step", producer="login --token", help="when the token ends (ISO 8601, UTC)"),
    Key("AUTH_BEARER_ORIGIN", "step", producer="login --token", help="the ingress (scheme://host:port) the token is for: it is sent nowhere else"),
    Key("AUTH_BEARER_SUBJECT", "step", producer="login --token", help="the ServiceAccount the token belongs to (namespace/name)"),
    Key("MODEL_HOST", "step", producer="resolve-model", help="Host header for calls through the ingress (the isvc URL's host)", user_may_set=True),
    Key("MODEL_PATH", "step", producer="resolve-model", help="path prefix of the isvc URL (KServe's path-based routing), empty for host routing", user_may_set=True),
    Key("NODE_PORT", "step", producer="expose-nodeport", help="nodePort that reaches the predictor's port 8080"),
    Key("NODE_PORT_GRPC", "step", producer="expose-nodeport", help="nodePort that reaches the predictor's gRPC port 8081 (infer --protocol grpc)"),
    Key("NODE_PORT_SERVICE", "step", producer="expose-nodeport", help="name of the NodePort Service we created"),
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
