"""Webhook signatures (core/signing.py): what a receiver can check."""

from __future__ import annotations

import hashlib
import hmac

from laneway.core import signing

BODY = b'{"event":"pre-step","step":1}'


def test_a_signature_is_the_hmac_of_the_timestamp_and_the_body() -> None:
    expected = hmac.new(b"s3cret-value", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signing.sign("s3cret-value", 1_700_000_000, BODY) == "sha256=" + expected


def test_a_receiver_accepts_only_the_same_secret_body_and_a_recent_time() -> None:
    signature = signing.sign("s3cret-value", 1_700_000_000, BODY)
    assert signing.verify("s3cret-value", "1700000000", BODY, signature, now=1_700_000_100)
    assert not signing.verify("other-value", "1700000000", BODY, signature, now=1_700_000_100)
    assert not signing.verify(
        "s3cret-value", "1700000000", BODY + b" ", signature, now=1_700_000_100
    )
    assert not signing.verify("s3cret-value", "1700000001", BODY, signature, now=1_700_000_100)
    assert not signing.verify(
        "s3cret-value", "1700000000", BODY, signature, now=1_700_000_000 + 301
    ), "replayed after the tolerance"
    assert not signing.verify("s3cret-value", "17e8", BODY, signature, now=1_700_000_000)
