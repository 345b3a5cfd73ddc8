"""The Kubernetes stand-in's ServiceAccount token issuer: a real RS256 key, its JWKS and discovery document.

Tokens are signed as the API server signs them (RS256, a ``kid``), so that a
real verifier (oauth2-proxy's extra JWT issuers, the Envoy stand-in's
jwt_authn) checks them against ``/openid/v1/jwks``, which the discovery
document at ``/.well-known/openid-configuration`` names.
"""

from __future__ import annotations

import json
import threading
from typing import Any

KEY_ID = "sandbox-serviceaccount-key"


class TokenIssuer:
    """One signing key, made on first use; ``issuer`` is the ``iss`` of every token (and the discovery's)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._key: Any = None
        self._lock = threading.Lock()

    def _private(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric import rsa

        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT of ``claims`` (with ``iss``) signed by the key."""
        import jwt

        return jwt.encode({**claims, "iss": self.issuer}, self._private(), algorithm="RS256", headers={"kid": KEY_ID})

    def jwks(self) -> dict[str, Any]:
        """The public key as the API server's ``/openid/v1/jwks`` serves it."""
        from jwt.algorithms import RSAAlgorithm

        key = json.loads(RSAAlgorithm.to_jwk(self._private().public_key()))
        return {"keys": [{**key, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def discovery(self, base_url: str) -> dict[str, Any]:
        """``/.well-known/openid-configuration`` of the API server's service account issuer."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base_url}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
