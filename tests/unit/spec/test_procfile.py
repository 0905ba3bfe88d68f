"""spec/procfile.py: Heroku Procfile -> services and the release command."""

from __future__ import annotations

import pytest

from laneway.errors import SpecError
from laneway.spec.procfile import Procfile, parse_procfile


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: celery -A app worker\n",
            Procfile(
                services={
                    "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
                    "worker": "celery -A app worker",
                }
            ),
            id="two processes, colons in the command",
        ),
        pytest.param(
            "release: python manage.py migrate\nweb: python manage.py runserver 0:$PORT\n",
            Procfile(
                services={"web": "python manage.py runserver 0:$PORT"},
                release="python manage.py migrate",
            ),
            id="release is a hook, not a service",
        ),
        pytest.param(
            "# processes\n\n  web:npm start  \n\n# end\n",
            Procfile(services={"web": "npm start"}),
            id="comments, blank lines, no space after the colon",
        ),
        pytest.param(
            "web: run\r\nclock_1: python clock.py # every minute\r\n",
            Procfile(services={"web": "run", "clock_1": "python clock.py # every minute"}),
            id="CRLF, underscore, shell comment kept",
        ),
        pytest.param("\ufeffweb: run\n", Procfile(services={"web": "run"}), id="BOM"),
        pytest.param("", Procfile(), id="empty"),
    ],
)
def test_parse(text: str, expected: Procfile) -> None:
    assert parse_procfile(text) == expected


def test_order_is_kept() -> None:
    parsed = parse_procfile("worker: a\nweb: b\nclock: c\n")
    assert list(parsed.services) == ["worker", "web", "clock"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "web: run\ngunicorn app\n",
            ["Procfile:2: expected `name: command`, got 'gunicorn app'"],
            id="no colon",
        ),
        pytest.param(
            "web run: x\n",
            ["Procfile:1: invalid process name 'web run'; use letters, digits, '_' and '-'"],
            id="space in name",
        ),
        pytest.param(
            ": run\n",
            ["Procfile:1: invalid process name ''; use letters, digits, '_' and '-'"],
            id="no name",
        ),
        pytest.param("web:   \n", ["Procfile:1: web: the command is empty"], id="no command"),
        pytest.param(
            "web: a\n\nweb: b\n",
            ["Procfile:3: web: defined twice (first at line 1)"],
            id="duplicate",
        ),
        pytest.param(
            "release: a\nrelease: b\n",
            ["Procfile:2: release: defined twice (first at line 1)"],
            id="two release lines",
        ),
        pytest.param(
            "# header\nweb\nworker: ok\nw@rker: x\nclock:\n",
            [
                "Procfile:2: expected `name: command`, got 'web'",
                "Procfile:4: invalid process name 'w@rker'; use letters, digits, '_' and '-'",
                "Procfile:5: clock: the command is empty",
            ],
            id="every problem at once",
        ),
    ],
)
def test_malformed(text: str, expected: list[str]) -> None:
    with pytest.raises(SpecError) as raised:
        parse_procfile(text)
    assert raised.value.problems == expected
    assert raised.value.hint


def test_filename_is_used() -> None:
    with pytest.raises(SpecError) as raised:
        parse_procfile("oops\n", filename="repo/Procfile")
    assert raised.value.problems == ["repo/Procfile:1: expected `name: command`, got 'oops'"]
