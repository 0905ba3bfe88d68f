"""Client keys: derived from the instance secret and the environment id, checked in constant time."""

from __future__ import annotations

import pytest

from laneway.flags.keys import client_key, looks_like_client_key, verify_client_key

SECRET = b"0123456789abcdef" * 4


def test_a_key_names_its_environment_and_nothing_else():
    key = client_key(SECRET, "a1b2c3d4")
    assert key.startswith("lwf_a1b2c3d4_") and looks_like_client_key(key)
    assert verify_client_key(SECRET, key) == "a1b2c3d4"
    assert verify_client_key(SECRET, f"  {key}\n") == "a1b2c3d4"
    assert client_key(SECRET, "a1b2c3d4") == key  # derived: the same every time
    assert client_key(SECRET, "e5f6a7b8") != key


def test_forged_and_foreign_keys_are_refused():
    key = client_key(SECRET, "a1b2c3d4")
    mac = key.rsplit("_", 1)[1]
    other_mac = client_key(SECRET, "e5f6a7b8").rsplit("_", 1)[1]
    for forged in (
        f"lwf_e5f6a7b8_{mac}",  # another environment's id with this one's MAC
        f"lwf_a1b2c3d4_{other_mac}",
        key[:-1] + ("A" if key[-1] != "A" else "B"),
        key[:-1],
        key + "x",
        "lwf_a1b2c3d4_",
        "lwf__" + mac,
        "lw_" + key[4:],
        "",
        "Bearer " + key,
    ):
        assert verify_client_key(SECRET, forged) is None, forged
    assert verify_client_key(b"another instance's secret", key) is None


def test_environment_ids_are_checked():
    for bad in ("", "a_b", "x" * 17, "a b", "é"):
        with pytest.raises(ValueError, match="environment id"):
            client_key(SECRET, bad)
