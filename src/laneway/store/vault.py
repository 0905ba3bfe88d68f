"""Secrets at rest: a release's variables and each resource's details (its address with the
database password) sealed with Fernet (AES-128-CBC + HMAC-SHA256).

The first sealing key derives (HKDF) from the instance secret, which lives in a 0600 file
beside the store and never in it, so a copy of the store alone reveals no value. `laneway
secrets rotate` replaces it: the keys then come from the seal keyring beside it
(`store/keyring.py`), newest first. A value opens with any key of the ring and is sealed
with the newest (`reseal`), so values sealed before a rotation keep opening while it
re-seals them. Fingerprints are HMACs under another key derived from the instance secret
(rotation leaves them as they were): equal values give equal fingerprints across
environments (so `laneway diff` compares secrets), but a fingerprint cannot be checked
against guesses without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from laneway.core.config import ConfigEntry
from laneway.errors import Unavailable

SEALED = "sealed"
"""The key of a sealed resource's details in `resources.details_json`."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def first_key(secret: bytes) -> bytes:
    """The sealing key of an instance that never rotated: derived from its secret."""
    return base64.urlsafe_b64encode(_derive(secret, b"laneway config v1"))


class Vault:
    def __init__(self, secret: bytes, keys: list[bytes] | None = None) -> None:
        self._fingerprint_key = _derive(secret, b"laneway config fingerprint v1")
        self.keys: list[bytes] = []
        self._fernet = MultiFernet([Fernet(first_key(secret))])
        self.use(keys or [first_key(secret)])

    def use(self, keys: list[bytes]) -> None:
        """Seal with `keys[0]` from now on; open with any of them. Swapped whole, so a
        seal or an open under way in another thread uses the old ring or the new one."""
        if not keys:
            raise ValueError("a vault needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.keys = list(keys)

    def reseal(self, token: str) -> str:
        """A sealed value sealed again with the newest key (the same text if it was)."""
        if self.sealed_with_newest(token):
            return token
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise Unavailable(
                "a sealed value opens with none of the seal keys: the keyring "
                "($LANEWAY_HOME/state/seal-keys) lost a key it still needs"
            ) from None

    def sealed_with_newest(self, token: str) -> bool:
        try:
            Fernet(self.keys[0]).decrypt(token.encode())
        except InvalidToken:
            return False
        return True

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
