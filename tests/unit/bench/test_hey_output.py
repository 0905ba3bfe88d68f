"""bench/hey_output.py: reading hey's summary by section, so that a histogram bucket that
counts 400-599 requests is not taken for an error status."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
_spec = importlib.util.spec_from_file_location("hey_output", BENCH / "hey_output.py")
assert _spec is not None and _spec.loader is not None
hey_output = importlib.util.module_from_spec(_spec)
sys.modules["hey_output"] = hey_output  # dataclasses look the module up by name
_spec.loader.exec_module(hey_output)

# hey -z 5s -c 3 -q 100 at 300 requests/s: three histogram buckets count 4xx/5xx-looking
# numbers ([412], [503], [455]) although every response was a 200
ALL_OK = """
Summary:
  Total:\t5.0073 secs
  Slowest:\t0.0311 secs
  Fastest:\t0.0009 secs
  Average:\t0.0031 secs
  Requests/sec:\t299.5625
\x20\x20
  Total data:\t81000 bytes
  Size/request:\t54 bytes

Response time histogram:
  0.001 [1]\t|
  0.004 [412]\t|\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e
  0.007 [503]\t|\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e
  0.010 [455]\t|\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e
  0.013 [60]\t|\u220e\u220e\u220e\u220e\u220e
  0.016 [38]\t|\u220e\u220e\u220e
  0.019 [15]\t|\u220e
  0.022 [9]\t|\u220e
  0.025 [4]\t|
  0.028 [2]\t|
  0.031 [1]\t|


Latency distribution:
  10% in 0.0015 secs
  25% in 0.0022 secs
  50% in 0.0029 secs
  75% in 0.0036 secs
  90% in 0.0047 secs
  95% in 0.0061 secs
  99% in 0.0122 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0000 secs, 0.0009 secs, 0.0311 secs
  DNS-lookup:\t0.0000 secs, 0.0000 secs, 0.0000 secs
  req write:\t0.0000 secs, 0.0000 secs, 0.0004 secs
  resp wait:\t0.0030 secs, 0.0008 secs, 0.0309 secs
  resp read:\t0.0000 secs, 0.0000 secs, 0.0003 secs

Status code distribution:
  [200]\t1500 responses



"""

FAILED = """
Summary:
  Total:\t5.0102 secs
  Slowest:\t0.0208 secs
  Fastest:\t0.0010 secs
  Average:\t0.0026 secs
  Requests/sec:\t99.7964

Response time histogram:
  0.001 [1]\t|
  0.003 [480]\t|\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e\u220e
  0.005 [16]\t|\u220e
  0.021 [2]\t|


Latency distribution:
  10% in 0.0017 secs
  50% in 0.0022 secs
  99% in 0.0094 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0000 secs, 0.0010 secs, 0.0208 secs
  resp read:\t0.0000 secs, 0.0000 secs, 0.0002 secs

Status code distribution:
  [200]\t488 responses
  [503]\t11 responses

Error distribution:
  [1]\tPost "http://127.0.0.1:7071/ofrep/v1/evaluate/flags/rollout": EOF

"""


def test_a_histogram_bucket_that_looks_like_a_status_is_not_one() -> None:
    report = hey_output.parse(ALL_OK)
    assert report.statuses == {200: 1500}
    assert report.errors == {}
    assert report.failures() == []


def test_latency_and_rate_are_read() -> None:
    report = hey_output.parse(ALL_OK)
    assert report.latency_ms(50) == pytest.approx(2.9)
    assert report.latency_ms(99) == pytest.approx(12.2)
    assert report.requests_per_second == 299.5625
    assert sorted(report.latency) == [10, 25, 50, 75, 90, 95, 99]


def test_error_statuses_and_failed_requests_are_failures() -> None:
    report = hey_output.parse(FAILED)
    assert report.statuses == {200: 488, 503: 11}
    assert report.failures() == [
        "11 responses with status 503",
        '1 requests failed: Post "http://127.0.0.1:7071/ofrep/v1/evaluate/flags/rollout": EOF',
    ]


def test_no_answers_at_all_is_a_failure() -> None:
    report = hey_output.parse("\nError distribution:\n  [300]\tdial tcp: connection refused\n")
    assert report.statuses == {}
    assert report.failures() == [
        "300 requests failed: dial tcp: connection refused",
        "no responses at all",
    ]
    with pytest.raises(ValueError, match="no 50% latency"):
        report.latency_ms(50)
