"""Hiding an environment's secrets in what laneway stores and serves (logs, events, hook
output). Pure: the I/O sits where logs are written and read.

A secret is hidden as written and in its common encodings (`forms`): base64 (standard and
URL-safe, padded or not, and the part of it that does not depend on neighbouring bytes when
the secret is encoded in the middle of a longer text, at each of the three byte alignments),
percent-encoding (`quote`, `quote_plus`), hex (lower and upper case) and JSON string escaping.
A value shorter than `MIN_LENGTH` is not hidden: masking every "abc" would hide nothing and
garble the rest. What a process does to a secret beyond these (encrypts, splits, reverses
it) is not recognised.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus, unquote, urlsplit

MIN_LENGTH = 6
"""As short as a secret config value may be (`core.config.MIN_SECRET`)."""
MASK = b"***"
_HEAD = 8
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def secrets_of(values: Iterable[str]) -> frozenset[str]:
    """The values to hide: each value of at least `MIN_LENGTH` characters, and the password
    of each URL among them (a resource address), as written and percent-decoded."""
    found = set()
    for value in values:
        found.add(value)
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found |= {password, unquote(password)}
    return frozenset(v for v in found if len(v) >= MIN_LENGTH)


def _base64_cores(raw: bytes) -> set[bytes]:
    """The characters of base64(… + raw + …) that depend on `raw` alone, for `raw` starting
    at each of the three offsets modulo 3 in the encoded text."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        first = (8 * offset + 5) // 6  # characters holding bits of the filler
        last = 8 * (offset + len(raw)) // 6  # characters holding no bits of what follows
        cores.add(encoded[first:last])
    return cores


def forms(secret: str) -> frozenset[bytes]:
    """`secret` as written and in its common encodings, each at least `MIN_LENGTH` bytes."""
    raw = secret.encode()
    found = {raw, *(json.dumps(secret, ensure_ascii=a)[1:-1].encode() for a in (True, False))}
    standard = {base64.b64encode(raw), *_base64_cores(raw)}
    standard |= {b.rstrip(b"=") for b in standard}
    found |= standard | {b.translate(_URLSAFE) for b in standard}
    found |= {raw.hex().encode(), raw.hex().upper().encode()}
    found |= {quote(secret, safe="").encode(), quote(secret).encode(), quote_plus(secret).encode()}
    return frozenset(f for f in found if len(f) >= MIN_LENGTH)


class Redactor:
    """Finds every form of a set of secrets in bytes and masks them. Matches may overlap (two
    secrets sharing characters): the union of all of them is masked."""

    def __init__(self, values: Iterable[str]) -> None:
        patterns: set[bytes] = set()
        for secret in secrets_of(values):
            patterns |= forms(secret)
        self.patterns = tuple(sorted(patterns))
        self.longest = max((len(p) for p in self.patterns), default=0)
        self._heads = frozenset(
            p[:k] for p in self.patterns for k in range(1, min(len(p), _HEAD) + 1)
        )

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Every (start, end) where a form occurs, overlapping ones merged, in order."""
        found = []
        for pattern in self.patterns:
            start = data.find(pattern)
            while start >= 0:
                found.append((start, start + len(pattern)))
                start = data.find(pattern, start + 1)
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def redact(self, data: bytes) -> bytes:
        return _masked(data, self.spans(data))

    def text(self, text: str) -> str:
        if not self.patterns:
            return text
        return self.redact(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")

    def partial(self, data: bytes) -> int:
        """The length of the longest end of `data` that is the beginning of a form (and not
        all of it): what a stream must hold back until it knows what follows."""
        for i in range(max(0, len(data) - self.longest + 1), len(data)):
            if data[i : i + _HEAD] not in self._heads:
                continue  # most places are ruled out by their first bytes alone
            tail = data[i:]
            after = bisect.bisect_right(self.patterns, tail)
            if after < len(self.patterns) and self.patterns[after].startswith(tail):
                return len(data) - i
        return 0


def _masked(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    if not spans:
        return data
    parts = []
    position = 0
    for start, end in spans:
        parts += [data[position:start], MASK]
        position = end
    parts.append(data[position:])
    return b"".join(parts)


@lru_cache(maxsize=256)
def redactor(values: frozenset[str]) -> Redactor:
    """A Redactor for `values`, built once per distinct set."""
    return Redactor(values)


class StreamRedactor:
    """Redacts a byte stream read in chunks of any size: the end of a chunk that may be the
    beginning of a secret is held back until the next chunk (or `close`) says what it is, so
    a secret split across reads is still found. Nothing else is held back."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        if not self.redactor:
            self._held = b""
            return data
        spans = self.redactor.spans(data)
        cut = len(data) - self.redactor.partial(data)
        for start, end in spans:
            if start < cut < end:
                cut = start  # a match that may grow with what follows: hold it whole
        self._held = data[cut:]
        return _masked(data[:cut], [(s, e) for s, e in spans if e <= cut])

    def close(self) -> bytes:
        data, self._held = self._held, b""
        return self.redactor.redact(data)


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with every form of each of `values` (and of the password in a URL) masked."""
    return redactor(frozenset(values)).text(text)
