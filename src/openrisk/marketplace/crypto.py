"""Encryption at rest of connector secrets (Fernet, key derived from settings.secret_key)."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"openrisk.marketplace.secrets"
_INFO = b"fernet-v1"


class SecretsUnreadable(Exception):
    """The stored secrets cannot be decrypted (was OPENRISK_SECRET_KEY changed?)."""


class SecretBox:
    """Seals a dict of secret configuration values into one opaque token, and back."""

    def __init__(self, secret_key: str, *, salt: bytes = _SALT) -> None:
        """``salt`` separates the uses of one secret key (connector secrets by default)."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, values: dict[str, Any]) -> str | None:
        if not values:
            return None
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            values: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError) as error:
            raise SecretsUnreadable("stored secrets cannot be decrypted") from error
        return values

    def __repr__(self) -> str:  # never show key material
        return "SecretBox(<redacted>)"
