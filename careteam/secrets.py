"""Secrets at rest: webhook signing secrets sealed with AES-256-GCM (adapter over `cryptography`).

A database dump alone cannot sign webhooks: the record keeps ``hvs1:<key id>:<base64url(nonce
|| ciphertext || tag)>``, and the key lives in the settings of the processes that need it
(``HV_SECRETS_KEYS``), never in the database. The row's identity (the endpoint id) is the
associated data, so a sealed secret copied onto another endpoint's row does not open.

Keys rotate: the setting lists ``id:base64url(32 bytes)`` entries separated by commas, the first
one seals, all of them open; `reseal` moves a value to the first key. Generate a key with
``homevitals secrets new-key``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from careteam.errors import SecretsError

PREFIX: Final = "hvs1"
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
KEY_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,16}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_entry(key_id: str = "k1") -> str:
    """A fresh ``id:key`` entry for ``HV_SECRETS_KEYS``."""
    if not KEY_ID.fullmatch(key_id):
        raise SecretsError("key id: 1 to 16 letters, digits, '_' or '-'")
    return f"{key_id}:{_b64(secrets.token_bytes(KEY_BYTES))}"


def is_sealed(value: str) -> bool:
    """True when `value` is in the sealed form (not a secret in clear)."""
    return value.startswith(PREFIX + ":")


class SecretBox:
    """Seals and opens secrets with the configured keys (the first one seals)."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise SecretsError(f"the sealing key {current!r} is not among the keys")
        for key_id, key in keys.items():
            if not KEY_ID.fullmatch(key_id) or len(key) != KEY_BYTES:
                raise SecretsError(f"key {key_id!r}: needs an id and {KEY_BYTES} bytes")
        self._keys = dict(keys)
        self._current = current

    @classmethod
    def from_setting(cls, text: str) -> SecretBox:
        """Keys from ``HV_SECRETS_KEYS`` (``id:base64url-key[,id:key...]``; first one seals).

        Raises:
            SecretsError: empty, malformed, a key that is not 32 bytes, a repeated id.
        """
        keys: dict[str, bytes] = {}
        first: str | None = None
        for entry in (e.strip() for e in text.split(",")):
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise SecretsError("HV_SECRETS_KEYS: each entry is id:base64url-key")
            try:
                key = _unb64(encoded)
            except (binascii.Error, ValueError) as exc:
                raise SecretsError(f"HV_SECRETS_KEYS: key {key_id!r} is not base64url") from exc
            if key_id in keys:
                raise SecretsError(f"HV_SECRETS_KEYS: key id {key_id!r} is repeated")
            keys[key_id] = key
            first = first or key_id
        if first is None:
            raise SecretsError("HV_SECRETS_KEYS: no key")
        return cls(keys, first)

    def seal(self, plaintext: str, context: str) -> str:
        """Seal `plaintext`, bound to `context` (the row's identity)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self._keys[self._current]).encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        return f"{PREFIX}:{self._current}:{_b64(nonce + sealed)}"

    def open(self, sealed: str, context: str) -> str:
        """The secret in `sealed`, if it was sealed for `context` with one of the keys.

        Raises:
            SecretsError: not sealed, an unknown key id, or the text or context do not match.
        """
        prefix, _, rest = sealed.partition(":")
        key_id, _, body = rest.partition(":")
        if prefix != PREFIX or not body:
            raise SecretsError("not a sealed secret")
        key = self._keys.get(key_id)
        if key is None:
            raise SecretsError(f"sealed with key {key_id!r}, which is not configured")
        try:
            data = _unb64(body)
            plain = AESGCM(key).decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], context.encode("utf-8")
            )
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SecretsError(
                "the sealed secret does not open (tampered, or another row's)"
            ) from exc
        return plain.decode("utf-8")

    def reseal(self, sealed: str, context: str) -> str:
        """`sealed` under the current key (unchanged when it already is).

        Raises:
            SecretsError: see `open`.
        """
        if sealed.startswith(f"{PREFIX}:{self._current}:"):
            self.open(sealed, context)
            return sealed
        return self.seal(self.open(sealed, context), context)
