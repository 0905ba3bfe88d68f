"""Finding the app a command works on: --app, else laneway.yaml's `app:`, read without the
spec's models; a spec whose name is not plainly there is explained by the spec loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from laneway.cli import options
from laneway.errors import InvalidInput, SpecError
from laneway.spec import model
from laneway.testing import git

GOOD = "app: shop\nservices:\n  web: {command: python -m shop.web}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def test_the_name_pattern_is_the_specs() -> None:
    assert options.APP_NAME.pattern == model.DNS_LABEL


def test_the_app_of_the_repository_here(repo: Path) -> None:
    (repo / "laneway.yaml").write_text(GOOD)
    (repo / "sub").mkdir()
    assert options.app_of(repo / "sub", None) == ("shop", repo)
    assert options.which_app(repo, None) == "shop"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "# comment\napp: 'shop'\n",
        "services: {}\napp: shop  # after the services\n",
        "app: shop\nservices:\n  web:\n    comand: x\n",  # the rest is for `spec check`
    ],
)
def test_the_name_alone_is_read(tmp_path: Path, text: str) -> None:
    (tmp_path / "laneway.yaml").write_text(text)
    assert options.app_in_spec(tmp_path / "laneway.yaml") == "shop"


@pytest.mark.parametrize(
    "text",
    [
        "services: {}\n",
        "app: 42\n",
        "app: Shop\n",
        "app: [shop]\n",
        "app: shop\napp: other\n",
        "- app: shop\n",
        "app: shop\n---\napp: other\n",
        "app: 'shop\n",
    ],
)
def test_anything_else_is_left_to_the_spec_loader(tmp_path: Path, text: str) -> None:
    (tmp_path / "laneway.yaml").write_text(text)
    assert options.app_in_spec(tmp_path / "laneway.yaml") is None


@pytest.mark.parametrize(
    "text",
    [
        "app: shop\nservices:\n  web: [\n",
        "# the app\napp: 'shop'  # ours\nservices: {web: {command: x}\n",
        'services:\n  web: {command: "x}\napp: "shop"\n',
    ],
)
def test_a_spec_that_is_not_yaml_still_names_its_app(tmp_path: Path, text: str) -> None:
    """`env list` and the other reading commands need only the name: a work tree whose
    laneway.yaml is broken mid-edit does not keep them from the server."""
    (tmp_path / "laneway.yaml").write_text(text)
    assert options.app_in_spec(tmp_path / "laneway.yaml") == "shop"


def test_a_spec_naming_no_app_says_to_pass_app(repo: Path) -> None:
    (repo / "laneway.yaml").write_text("services:\n  web: [\n")
    with pytest.raises(SpecError, match="invalid YAML") as raised:
        options.app_of(repo, None)
    assert raised.value.hint is not None and "pass --app NAME" in raised.value.hint


def test_a_bad_name_is_explained_with_its_line(repo: Path) -> None:
    (repo / "laneway.yaml").write_text("services:\n  web: {command: x}\napp: Shop\n")
    with pytest.raises(SpecError, match=r"laneway.yaml:3:\d+: app"):
        options.app_of(repo, None)


def test_given_an_app_no_repository_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert options.which_app(None, "shop") == "shop"
    assert options.app_of(None, "shop") == ("shop", tmp_path)
    with pytest.raises(InvalidInput, match="not inside a git repository"):
        options.app_of(tmp_path, None)
