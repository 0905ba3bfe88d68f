"""spec/limits.py through the loader: a spec over a limit of size, count or nesting is refused
at once, the message naming the file, the place, the limit and the actual figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from laneway.errors import SpecError
from laneway.spec import limits
from laneway.spec.loader import load_spec_text
from laneway.workspace import read_spec_text

HEAD = "app: shop\nservices:\n  web: {command: run}\n"


def problems(text: str, filename: str = "laneway.yaml") -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_spec_text(text, filename=filename)
    return raised.value.problems


def test_a_spec_over_the_size_limit_is_refused_before_it_is_read() -> None:
    text = "app: shop\nservices:\n" + "".join(f"  s{i}: {{command: run}}\n" for i in range(200_000))
    size = len(text.encode())
    assert problems(text, "laneway.yaml@0123456789ab") == [
        f"laneway.yaml@0123456789ab:1:1: the file is {size:,} bytes "
        f"({size / 1024 / 1024:.1f} MiB), over the limit of 262,144 bytes (256 KiB)"
    ]


def test_the_size_is_counted_in_utf8_bytes() -> None:
    padding = "é" * ((limits.MAX_BYTES - len(HEAD)) // 2 + 1)  # 2 bytes each
    text = HEAD + "#" + padding + "\n"
    assert len(text) < limits.MAX_BYTES < len(text.encode())
    assert "over the limit of 262,144 bytes" in problems(text)[0]


def test_a_spec_at_the_size_limit_is_read() -> None:
    text = HEAD + "#" * (limits.MAX_BYTES - len(HEAD) - 1) + "\n"
    assert len(text.encode()) == limits.MAX_BYTES
    assert load_spec_text(text).app == "shop"


def _services(count: int) -> str:
    return "app: shop\nservices:\n" + "".join(f"  s{i}: {{command: run}}\n" for i in range(count))


def test_services_are_capped() -> None:
    assert len(load_spec_text(_services(100)).services) == 100
    assert problems(_services(101)) == [
        "laneway.yaml:3:3: services: 101 services, over the limit of 100"
    ]


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            "resources:\n" + "".join(f"  r{i}: {{type: directory}}\n" for i in range(51)),
            "laneway.yaml:5:3: resources: 51 resources, over the limit of 50",
        ),
        (
            "env:\n" + "".join(f"  K{i}: v\n" for i in range(501)),
            "laneway.yaml:5:3: env: 501 variables, over the limit of 500",
        ),
        (
            "environments:\n  staging:\n    env:\n"
            + "".join(f"      K{i}: v\n" for i in range(501)),
            "laneway.yaml:7:7: environments.staging.env: 501 variables, over the limit of 500",
        ),
        (
            "pipeline: [" + ", ".join(f"e{i}" for i in range(21)) + "]\n",
            "laneway.yaml:4:11: pipeline: 21 environments, over the limit of 20",
        ),
        (
            "parity:\n  config: [" + ", ".join(f"K{i}" for i in range(501)) + "]\n",
            "laneway.yaml:5:11: parity.config: 501 config keys, over the limit of 500",
        ),
        (
            "environments:\n  preview:\n    data:\n      db:\n        from: staging\n"
            "        mask: [" + ", ".join(f"t.c{i}" for i in range(501)) + "]\n",
            "laneway.yaml:9:15: environments.preview.data.db.mask: 501 columns, "
            "over the limit of 500",
        ),
        (
            "environments:\n" + "".join(f"  k{i}: {{}}\n" for i in range(1001)),
            "laneway.yaml:5:3: environments: 1,001 entries, over the limit of 1,000",
        ),
    ],
)
def test_counts_are_capped(tail: str, expected: str) -> None:
    assert expected in problems(HEAD + tail)


def test_a_merge_that_brings_too_many_entries_is_caught() -> None:
    half = "".join(f"  K{i}: v\n" for i in range(300))
    other = "".join(f"  L{i}: v\n" for i in range(300))
    text = f"x: &a\n{half}y: &b\n{other}" + HEAD + "env:\n  <<: [*a, *b]\n"
    assert "env: 600 variables, over the limit of 500" in problems(text)[-1]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (40, "laneway.yaml:1:38: app[0][0]: nested deeper than the limit of 32 levels"),
        # the scan stops at the 65th bracket (PyYAML alone would take minutes)
        (200, "laneway.yaml:1:70: nested deeper than the limit of 32 levels"),
        (130_000, "laneway.yaml:1:70: nested deeper than the limit of 32 levels"),
    ],
)
def test_deep_nesting_is_refused(depth: int, expected: str) -> None:
    assert expected in problems("app: " + "[" * depth + "]" * depth + "\n")


def test_deep_block_nesting_is_refused() -> None:
    text = HEAD + "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 80))
    assert problems(text)[-1].endswith("nested deeper than the limit of 32 levels")


def test_many_values_without_aliases_do_not_blame_aliases() -> None:
    row = "[" + ",".join("0" for _ in range(400)) + "]"
    text = HEAD + "x:\n" + "".join(f"  - {row}\n" for _ in range(260))
    assert len(text.encode()) < limits.MAX_BYTES
    assert problems(text) == ["laneway.yaml:1:1: more than 100,000 values, over the limit"]


def test_a_large_file_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "laneway.yaml"
    with path.open("wb") as file:
        file.truncate(1 << 30)  # 1 GiB, sparse
    with pytest.raises(SpecError) as raised:
        read_spec_text(path)
    assert raised.value.problems == [
        f"{path}:1:1: the file is 1,073,741,824 bytes (1024.0 MiB), "
        "over the limit of 262,144 bytes (256 KiB)"
    ]
