"""Reads the summary that `hey` (the Go HTTP load generator) prints, section by section.

Used by b4_serving.py. A pattern over the whole text is not enough: the response time
histogram prints each bucket's count in brackets (`  0.004 [412]\t|∎∎∎`), which looks like a
status code, and the error distribution does the same with its counts. Only the lines under
"Status code distribution:" are status codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"^(\S[^:\n]*):", re.MULTILINE)
_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses\s*$")
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+?)\s*$")
_LATENCY = re.compile(r"^\s*(\d+)%+ in ([0-9.]+) secs\s*$")
_RATE = re.compile(r"^\s*Requests/sec:\s+([0-9.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class HeyReport:
    statuses: dict[int, int] = field(default_factory=dict)
    """HTTP status code -> responses."""
    errors: dict[str, int] = field(default_factory=dict)
    """Requests that got no answer (connection refused, timeout): message -> count."""
    latency: dict[int, float] = field(default_factory=dict)
    """Percentile -> seconds (10, 25, 50, 75, 90, 95, 99)."""
    requests_per_second: float = 0.0

    def failures(self) -> list[str]:
        """What went wrong, in words; empty when every request was answered 2xx."""
        problems = [
            f"{count} responses with status {code}"
            for code, count in sorted(self.statuses.items())
            if not 200 <= code < 300
        ]
        problems += [
            f"{count} requests failed: {message}" for message, count in self.errors.items()
        ]
        if not self.statuses:
            problems.append("no responses at all")
        return problems

    def latency_ms(self, percentile: int) -> float:
        if percentile not in self.latency:
            raise ValueError(f"hey printed no {percentile}% latency")
        return self.latency[percentile] * 1000


def sections(text: str) -> dict[str, list[str]]:
    """Each titled section ("Summary", "Status code distribution", ...) and its lines."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        head = _SECTION.match(line)
        if head:
            current = found.setdefault(head.group(1), [])
        elif current is not None and line.strip():
            current.append(line)
    return found


def parse(text: str) -> HeyReport:
    parts = sections(text)
    statuses: dict[int, int] = {}
    for line in parts.get("Status code distribution", []):
        status = _STATUS.match(line)
        if status:
            code = int(status.group(1))
            statuses[code] = statuses.get(code, 0) + int(status.group(2))
    errors = {}
    for line in parts.get("Error distribution", []):
        error = _ERROR.match(line)
        if error:
            errors[error.group(2)] = int(error.group(1))
    latency = {}
    for line in parts.get("Latency distribution", []):
        point = _LATENCY.match(line)
        if point:
            latency[int(point.group(1))] = float(point.group(2))
    rate = _RATE.search(text)
    return HeyReport(
        statuses=statuses,
        errors=errors,
        latency=latency,
        requests_per_second=float(rate.group(1)) if rate else 0.0,
    )
