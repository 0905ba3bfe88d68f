"""Secrets at rest: a release's variables and each resource's details (its address with the
database password) sealed with Fernet (AES-128-CBC + HMAC-SHA256).

The key derives (HKDF) from the instance secret, which lives in a 0600 file beside the store
and never in it, so a copy of the store alone reveals no value. Fingerprints are HMACs under
another derived key: equal values give equal fingerprints across environments (so `laneway
diff` compares secrets), but a fingerprint cannot be checked against guesses without the
secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from laneway.core.config import ConfigEntry
from laneway.errors import Unavailable

SEALED = "sealed"
"""The key of a sealed resource's details in `resources.details_json`."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Vault:
    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"laneway config v1")))
        self._fingerprint_key = _derive(secret, b"laneway config fingerprint v1")

    def fingerprint(self, value: str) -> str:
        digest = hmac.new(self._fingerprint_key, value.encode(), hashlib.sha256).hexdigest()
        return f"hmac:{digest[:16]}"

    def seal(self, config: dict[str, ConfigEntry]) -> str:
        if not config:
            return ""
        plain = json.dumps(
            {key: [entry.value, entry.secret] for key, entry in sorted(config.items())}
        )
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> dict[str, ConfigEntry]:
        if not sealed:
            return {}
        plain = self._decrypt(sealed, "a release's config")
        return {
            key: ConfigEntry(value, secret) for key, (value, secret) in json.loads(plain).items()
        }

    def seal_details(self, details: dict[str, str]) -> str:
        """A resource's details as the store keeps them: JSON with the sealed details."""
        token = self._fernet.encrypt(json.dumps(details, sort_keys=True).encode()).decode()
        return json.dumps({SEALED: token})

    def open_details(self, stored: str) -> dict[str, str]:
        token = json.loads(stored).get(SEALED)
        if not isinstance(token, str):
            raise Unavailable("a resource's details are not sealed: the store was not migrated")
        details = json.loads(self._decrypt(token, "a resource's details"))
        return {str(k): str(v) for k, v in details.items()}

    def _decrypt(self, token: str, what: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise Unavailable(
                f"{what} cannot be decrypted: the instance secret "
                "($LANEWAY_HOME/state/secret) is not the one it was sealed with"
            ) from None
