"""spec/loader.py: laneway.yaml text -> Spec, for documents it accepts.

DESIGN.md's sketch, a full spec and the complete example in docs/spec.md load with what they
say; env values are kept as the text that was typed (no YAML 1.1 booleans or numbers); byte
order marks, CRLF, merge keys and quoting are read as YAML says; and `load_spec` reads a file,
with a problem for a file that is missing or not UTF-8. What the loader refuses, and how it
says so, is in test_loader_values.py, test_loader_structure.py and test_loader_reporting.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.spec.loader_support import FULL

from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec
from laneway.workspace import load_spec

SKETCH = (Path(__file__).parent / "design_sketch.yaml").read_text()  # DESIGN.md's sketch


# --- valid documents -----------------------------------------------------------------------


def test_design_sketch_loads() -> None:
    spec = load_spec_text(SKETCH)
    assert spec.app == "shop"
    assert spec.routed_service() == "web"
    assert spec.services["web"].health is not None
    assert spec.services["web"].health.path == "/healthz"
    assert not spec.services["worker"].has_port("worker")
    assert spec.replicas_for("web", "production") == 2
    assert spec.replicas_for("web", "preview") == 1
    assert spec.env_for("staging") == {"LOG_LEVEL": "debug"}
    assert spec.resource_env_names() == {"db": "DATABASE_URL"}
    assert spec.hooks.release == "python -m shop.migrate"
    assert spec.environments["preview"].data["db"].from_ == "staging"


def test_full_spec_loads() -> None:
    spec = load_spec_text(FULL)
    assert list(spec.services) == ["web", "worker", "admin"]
    assert spec.services["web"].health is not None
    assert spec.services["web"].health.grace == 120
    assert spec.services["admin"].has_port("admin")
    assert spec.env == {"PYTHONPATH": ".deps", "WORKERS": "4"}
    assert spec.resource_env_names() == {
        "db": "DATABASE_URL",
        "analytics": "ANALYTICS_URL",
        "cache": "CACHE_URL",
        "uploads": "MEDIA_ROOT",
    }
    assert spec.pipeline == ["staging", "canary", "production"]
    assert spec.replicas_for("worker", "production") == 2
    assert spec.environments["production"].protected is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.10", "1.10"),
        ("yes", "yes"),
        ("on", "on"),
        ("true", "true"),
        ("4", "4"),
        ("0x10", "0x10"),
        ("1e3", "1e3"),
        ("2024-01-01", "2024-01-01"),
        ("'quoted: yes'", "quoted: yes"),
        ('""', ""),
        ("!!str 7", "7"),
    ],
)
def test_env_values_are_the_text_that_was_typed(value: str, expected: str) -> None:
    spec = load_spec_text(f"app: shop\nenv:\n  X: {value}\nservices: {{web: {{command: run}}}}\n")
    assert spec.env == {"X": expected}


@pytest.mark.parametrize(
    ("text", "check"),
    [
        pytest.param(
            "\ufeffapp: shop\nservices: {web: {command: run}}\n",
            lambda s: s.app == "shop",
            id="byte-order mark",
        ),
        pytest.param(
            "app: shop\r\nservices:\r\n  web: {command: run}\r\n",
            lambda s: s.services["web"].command == "run",
            id="CRLF",
        ),
        pytest.param(
            "app: shop\nservices:\n  web: &w {command: run, replicas: 2}\n"
            "  api:\n    <<: *w\n    replicas: 3\n",
            lambda s: (s.services["api"].command, s.services["api"].replicas) == ("run", 3),
            id="merge key, written key wins",
        ),
        pytest.param(
            "app: shop\nservices:\n  web: {command: run}\n  api:\n"
            "    <<: [{command: first}, {command: second, replicas: 2}]\n",
            lambda s: (s.services["api"].command, s.services["api"].replicas) == ("first", 2),
            id="merge list, first wins",
        ),
        pytest.param(
            "app: shop\nservices:\n  on: {command: run}\n",
            lambda s: list(s.services) == ["on"],
            id="keys are text, not YAML 1.1 booleans",
        ),
        pytest.param(
            'app: shop\nservices: {"web": {command: "a: b # c"}}\n',
            lambda s: s.services["web"].command == "a: b # c",
            id="quoted",
        ),
        pytest.param(
            "app: shop\nservices:\n  worker: {command: run, health: /up}\n",
            lambda s: s.routed_service() == "worker",
            id="health implies a port",
        ),
        pytest.param(
            "app: shop\nservices:\n  web: {command: run, port: none}\n",
            lambda s: s.routed_service() is None,
            id="no port, no route",
        ),
    ],
)
def test_valid_variants(text: str, check: Callable[[Spec], bool]) -> None:
    assert check(load_spec_text(text))


def test_the_complete_example_in_the_docs_loads() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "spec.md").read_text()
    section = docs.split("## A complete example", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = load_spec_text(example, filename="docs/spec.md")
    assert spec.resource_env_names() == {"db": "DATABASE_URL", "uploads": "UPLOADS_DIR"}


# --- load_spec -----------------------------------------------------------------------------


def test_load_spec_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "laneway.yaml"
    path.write_text(SKETCH)
    assert load_spec(path).app == "shop"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "{path}: cannot read: No such file or directory", id="missing"),
        pytest.param(b"app: shop\nservices: \xff\n", "{path}:2:11: not UTF-8 text", id="bytes"),
        pytest.param(b"app: shop\n", "{path}:1:1: services: missing required field", id="spec"),
    ],
)
def test_load_spec_problems(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "laneway.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert raised.value.problems == [expected.format(path=path)]
