"""Config sealed at rest: nothing readable without the instance secret."""

from __future__ import annotations

import pytest

from laneway.core.config import ConfigEntry
from laneway.errors import Unavailable
from laneway.store.vault import Vault


def test_sealed_config_reveals_nothing_and_opens_only_with_its_secret():
    vault = Vault(b"a" * 64)
    config = {"API_KEY": ConfigEntry("s3cr3t-value", secret=True), "MODE": ConfigEntry("fast")}
    sealed = vault.seal(config)
    assert "s3cr3t" not in sealed and "fast" not in sealed and "API_KEY" not in sealed
    assert vault.open(sealed) == config
    assert vault.open(vault.seal({})) == {}
    with pytest.raises(Unavailable, match="instance secret"):
        Vault(b"b" * 64).open(sealed)


def test_fingerprints_compare_values_without_showing_them():
    vault = Vault(b"a" * 64)
    assert vault.fingerprint("x") == vault.fingerprint("x") != vault.fingerprint("y")
    assert vault.fingerprint("x") != Vault(b"b" * 64).fingerprint("x")
    assert vault.fingerprint("x").startswith("hmac:") and "x" not in vault.fingerprint("x")[5:]
