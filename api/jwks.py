"""An identity provider's signing keys (adapter): its JWKS document, fetched and cached by PyJWT.

``HV_API_JWKS_URL`` names the provider's JWKS; tokens whose header algorithm is one of
``HV_API_JWKS_ALGORITHMS`` (asymmetric only) are verified with the key their ``kid`` names,
refetched when an unknown ``kid`` appears (at most once per cool-down) and otherwise cached.
"""

from __future__ import annotations

import jwt

from api.errors import UnauthenticatedError, UnavailableError
from api.tokens import ProviderKey


class ProviderKeys:
    """The keys of one identity provider."""

    def __init__(self, url: str, algorithms: tuple[str, ...], timeout_s: float = 5.0) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=timeout_s)
        self.algorithms = algorithms

    def key_for(self, token: str) -> ProviderKey:
        """The provider key that should have signed `token`.

        Raises:
            UnauthenticatedError: the token names no ``kid`` the provider publishes.
            UnavailableError: the provider's JWKS could not be fetched.
        """
        try:
            signing = self._client.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise UnavailableError("the identity provider's keys could not be fetched") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError, jwt.PyJWKError):
            raise UnauthenticatedError("the token's key is not the identity provider's") from None
        return ProviderKey(signing.key, self.algorithms)
