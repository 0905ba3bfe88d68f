"""The matcher that hides secrets: each encoding, overlapping secrets, short values, and
streams read in chunks of every size."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from laneway.core.config import MIN_SECRET
from laneway.core.redaction import MIN_LENGTH, Redactor, StreamRedactor, forms, redact, secrets_of

SECRET = "s3cr3t/t0k+en=v&lue ü"
RAW = SECRET.encode()


def b64_inside(prefix: bytes, suffix: bytes = b"!", encode=base64.b64encode) -> bytes:
    return encode(prefix + RAW + suffix)


ENCODED = [
    ("plain", RAW),
    ("base64", base64.b64encode(RAW)),
    ("base64, no padding", base64.b64encode(RAW).rstrip(b"=")),
    ("urlsafe base64", base64.urlsafe_b64encode(RAW)),
    ("urlsafe base64, no padding", base64.urlsafe_b64encode(RAW).rstrip(b"=")),
    ("base64 inside, offset 0", b64_inside(b"abc")),
    ("base64 inside, offset 1", b64_inside(b"a")),
    ("base64 inside, offset 2", b64_inside(b"ab")),
    ("urlsafe inside, offset 1", b64_inside(b"a", encode=base64.urlsafe_b64encode)),
    ("urlsafe inside, offset 2", b64_inside(b"k=", encode=base64.urlsafe_b64encode)),
    ("hex", RAW.hex().encode()),
    ("HEX", RAW.hex().upper().encode()),
    ("hex inside", (b"\x00" + RAW + b"\xff").hex().encode()),
    ("quote", quote(SECRET, safe="").encode()),
    ("quote, / kept", quote(SECRET).encode()),
    ("quote_plus", quote_plus(SECRET).encode()),
    ("JSON string", json.dumps(SECRET).encode()),
    ("JSON string, not ASCII-escaped", json.dumps(SECRET, ensure_ascii=False).encode()),
]


@pytest.mark.parametrize("name,encoded", ENCODED, ids=[n for n, _ in ENCODED])
def test_each_encoding_is_masked(name: str, encoded: bytes):
    line = b"before " + encoded + b" after\n"
    out = Redactor([SECRET]).redact(line)
    assert out.startswith(b"before ") and out.endswith(b" after\n") and b"***" in out
    left = out[len(b"before ") : -len(b" after\n")].replace(b"***", b" ")
    # at most the few characters that also depend on the neighbouring bytes remain
    assert all(len(piece) <= 4 for piece in left.split()), (name, out)
    assert RAW not in out


@pytest.mark.parametrize(
    "values,text,expected",
    [
        ([SECRET], "no secret here", "no secret here"),
        (["abcdef"], "x abcdef y abcdef", "x *** y ***"),
        (["abcde"], "x abcde y", "x abcde y"),  # shorter than MIN_LENGTH: not hidden
        (["", "abc"], "abc", "abc"),
        # overlapping secrets: the union of both is masked, not one and the rest of the other
        (["abcdefgh", "efghijkl"], "-abcdefghijkl-", "-***-"),
        (["abcdefgh", "cdef12"], "abcdefgh cdef12", "*** ***"),
        # one secret inside another
        (["password123", "word12"], "password1234", "***4"),
        # adjacent occurrences
        (["abcdef"], "abcdefabcdef", "***"),
        # a resource address and the password in it, as written and percent-decoded
        (
            ["postgresql://u:p%40ssw0rd@localhost/db"],
            "url postgresql://u:p%40ssw0rd@localhost/db pw p%40ssw0rd raw p@ssw0rd",
            "url *** pw *** raw ***",
        ),
    ],
)
def test_redact_table(values: list[str], text: str, expected: str):
    assert redact(text, values) == expected


def test_short_values_are_not_secrets():
    assert MIN_LENGTH == 6
    assert secrets_of(["12345", "123456", "postgresql://u:pw@h/db"]) == {
        "123456",
        "postgresql://u:pw@h/db",
    }
    assert all(len(f) >= MIN_LENGTH for f in forms("abcdef"))


def test_a_secret_with_nothing_to_encode_has_few_forms():
    found = forms("abcdefgh")
    assert b"abcdefgh" in found and b"6162636465666768" in found
    assert base64.b64encode(b"abcdefgh") in found and b"YWJjZGVmZ2g" in found


def test_no_secrets_changes_nothing():
    redactor = Redactor([])
    assert not redactor and redactor.redact(b"abc***") == b"abc***"
    assert redactor.text("ü") == "ü"


def test_text_keeps_what_is_not_utf8():
    assert Redactor(["abcdef"]).text("\udcff \ud800 abcdef") == "\udcff \ud800 ***"


def test_the_shortest_secret_is_the_shortest_that_may_be_set():
    assert MIN_LENGTH == MIN_SECRET


STREAM = (
    b"starting\n"
    + b"token "
    + RAW
    + b" again "
    + base64.b64encode(RAW)
    + b"\nhex "
    + RAW.hex().encode()
    + b"\ntwo secrets overlap: abcdefghijkl and a prompt without newline "
)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64, 10_000])
def test_a_stream_read_in_chunks_of_any_size_is_masked_as_a_whole(size: int):
    redactor = Redactor([SECRET, "abcdefgh", "efghijkl"])
    stream = StreamRedactor(redactor)
    out = b"".join(stream.feed(chunk) for chunk in chunked(STREAM, size)) + stream.close()
    assert out == redactor.redact(STREAM)
    assert RAW not in out and b"abcdefgh" not in out and b"ijkl" not in out


def test_a_stream_holds_back_only_what_may_begin_a_secret():
    stream = StreamRedactor(Redactor(["abcdefgh"]))
    assert stream.feed(b"line one\n") == b"line one\n"
    assert stream.feed(b"prompt> ") == b"prompt> "
    assert stream.feed(b"x abc") == b"x "  # "abc" may be the start of the secret
    assert stream.feed(b"d") == b""
    assert stream.feed(b"efgh\n") == b"***\n"
    assert stream.feed(b"abc") == b""
    assert stream.feed(b"xyz") == b"abcxyz"  # it was not
    assert stream.feed(b"ab") == b""
    assert stream.close() == b"ab"


def test_a_stream_holds_a_match_that_may_grow_into_a_longer_one():
    stream = StreamRedactor(Redactor(["abcdefgh", "abcdefgh-longer"]))
    assert stream.feed(b"abcdefgh-lon") == b""
    assert stream.feed(b"ger!") == b"***!"
    assert stream.feed(b"abcdefgh") == b""
    assert stream.close() == b"***"


def test_a_stream_without_secrets_passes_everything_at_once():
    stream = StreamRedactor(Redactor(["abc"]))  # too short to hide
    assert stream.feed(b"abc") == b"abc"
    assert stream.close() == b""
