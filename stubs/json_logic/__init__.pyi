# Types of panzi-json-logic (pinned in pyproject.toml), which has annotations but no py.typed
# marker, so mypy will not read them. Only what laneway calls, with the library's own types.
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeAlias

JsonValue: TypeAlias = (
    int | float | bool | str | date | datetime | list[JsonValue] | dict[str, JsonValue] | None
)
Operation: TypeAlias = Callable[..., Any]

def jsonLogic(
    logic: JsonValue, data: JsonValue = None, operations: Mapping[str, Operation] = ...
) -> JsonValue: ...
