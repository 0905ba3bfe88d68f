"""spec/loader.py: how problems are reported together, and that nothing else escapes.

Every problem of a spec is reported at once, sorted by position; cross-field checks report
all they find, alongside the field problems, but only once the fields they read are valid;
a merged value is reported where it is written; recursive aliases and alias bombs are
problems, not hangs; a SpecError carries a hint and the filename it was given; and mangled
input never lets a traceback or a pydantic message through.
"""

from __future__ import annotations

import random
import textwrap

import pytest
from tests.unit.spec.loader_support import FULL, problems, web

from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec


def test_every_problem_is_reported_sorted_by_position() -> None:
    text = textwrap.dedent(
        """\
        app: Shop
        services:
          web:
            comand: run
            replicas: two
          Worker: {command: 1}
        resources:
          db: {type: postgress}
        environments:
          prod: {}
          preview: {ttl: 3 days}
        """
    )
    assert problems(text) == [
        "laneway.yaml:1:6: app: expected a lowercase DNS label like `web` (a-z, 0-9 and '-', "
        "starting with a letter, at most 40 characters), got 'Shop'",
        "laneway.yaml:3:3: services.web.command: missing required field",
        "laneway.yaml:4:5: services.web.comand: unknown key; did you mean 'command'? "
        "(allowed: command, env, health, port, replicas)",
        "laneway.yaml:5:15: services.web.replicas: expected an integer, got 'two'",
        "laneway.yaml:6:3: services.Worker: invalid name 'Worker'; expected a lowercase DNS "
        "label like `web` (a-z, 0-9 and '-', starting with a letter, at most 40 characters)",
        "laneway.yaml:6:21: services.Worker.command: expected a string, got 1",
        "laneway.yaml:8:14: resources.db.type: expected 'postgres', 'sqlite' or 'directory', "
        "got 'postgress'; did you mean 'postgres'?",
        "laneway.yaml:10:3: environments.prod: unknown environment kind; did you mean "
        "'production'? (allowed: development, preview, staging, production)",
        "laneway.yaml:11:18: environments.preview.ttl: expected a duration like `30m` or `72h` "
        "(a whole number and s, m, h or d), got '3 days'",
    ]


def test_cross_field_problems_are_all_reported() -> None:
    text = (
        "app: shop\nservices:\n  web: {command: run, env: {PORT: '1'}}\n"
        "environments:\n  production: {replicas: {wbe: 2, wrk: 1}}\n"
    )
    assert problems(text) == [
        "laneway.yaml:3:29: services.web.env.PORT: laneway sets PORT itself; choose another name",
        "laneway.yaml:5:27: environments.production.replicas.wbe: no such service; "
        "did you mean 'web'? (services: web)",
        "laneway.yaml:5:35: environments.production.replicas.wrk: no such service (services: web)",
    ]


def test_cross_field_problems_come_with_the_field_problems() -> None:
    text = (
        "app: Shop\nservices:\n  web: {command: run}\n"
        "resources:\n  db: {type: postgres}\n"
        "environments:\n  production: {replicas: {wbe: 2}}\n"
        "  preview: {data: {bd: {from: staging}}}\n"
    )
    assert problems(text) == [
        "laneway.yaml:1:6: app: expected a lowercase DNS label like `web` (a-z, 0-9 and '-', "
        "starting with a letter, at most 40 characters), got 'Shop'",
        "laneway.yaml:7:27: environments.production.replicas.wbe: no such service; "
        "did you mean 'web'? (services: web)",
        "laneway.yaml:8:20: environments.preview.data.bd: no such resource (resources: db)",
    ]


def test_a_cross_field_check_waits_for_its_fields() -> None:
    # `services` is invalid, so whether `wbe` names a service is not asked yet
    text = (
        "app: shop\nservices:\n  web: {command: 1}\n"
        "environments:\n  production: {replicas: {wbe: 2}}\n"
    )
    assert problems(text) == ["laneway.yaml:3:18: services.web.command: expected a string, got 1"]


def test_unknown_key_missing_the_space_after_the_colon() -> None:
    assert problems(web("health: {path:/healthz}")) == [
        "laneway.yaml:5:5: services.web.health.path: missing required field",
        "laneway.yaml:5:14: services.web.health.path:/healthz: unknown key; write a space after "
        "':' (`path: /healthz`) (allowed: grace, interval, path, timeout)",
    ]


def test_a_merged_value_is_reported_where_it_is_written() -> None:
    text = "app: shop\nservices:\n  web: &w {command: run, replicas: x}\n  api: {<<: *w}\n"
    assert problems(text) == [
        "laneway.yaml:3:36: services.api.replicas: expected an integer, got 'x'",
        "laneway.yaml:3:36: services.web.replicas: expected an integer, got 'x'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "app: &a [*a]\nservices: {web: {command: run}}\n",
            "laneway.yaml:1:6: app[0]: an alias refers to a value that contains it",
        ),
        (
            "app: shop\nservices:\n  web: &w {command: run, <<: *w}\n",
            "laneway.yaml:3:8: services.web: an alias refers to a value that contains it",
        ),
    ],
)
def test_recursive_alias_is_a_problem_not_a_hang(text: str, expected: str) -> None:
    assert expected in problems(text)


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        below = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([below] * 10)}]")
    assert problems("\n".join(lines) + "\n") == [
        "laneway.yaml:1:1: aliases expand to more than 100,000 values, over the limit"
    ]


def test_errors_carry_a_hint_and_the_given_filename() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec_text("app: shop\n", filename="apps/shop/laneway.yaml")
    assert raised.value.problems == ["apps/shop/laneway.yaml:1:1: services: missing required field"]
    assert raised.value.hint
    assert str(raised.value) == raised.value.problems[0]


def test_no_traceback_escapes_on_mangled_input() -> None:
    generator = random.Random(20240601)
    alphabet = list(":-[]{}&*!|>'\"#%@`,? \n\t\\x") + ["<<", "!!int", "\x00", "\ufeff"]
    for _ in range(400):
        chars = list(FULL)
        for _ in range(generator.randint(1, 6)):
            at = generator.randrange(len(chars))
            if generator.random() < 0.5:
                del chars[at]
            else:
                chars.insert(at, generator.choice(alphabet))
        try:
            assert isinstance(load_spec_text("".join(chars)), Spec)
        except SpecError as error:
            assert error.problems
            assert all(problem.startswith("laneway.yaml:") for problem in error.problems)
            assert not any("Input should" in problem for problem in error.problems)
