"""An in-memory resource provider for controller tests: instances are names in a set.

`failing` makes `ensure` raise the way an unreachable server does (a `laneway.errors`
type that retrying may fix), so tests can drive the retry path.
"""

from __future__ import annotations

from laneway import errors


class FakeProvider:
    def __init__(self, type_: str) -> None:
        self.type = type_
        self.instances: set[tuple[str, str]] = set()
        self.ensured: list[tuple[str, str]] = []
        self.failing: str | None = None

    def ensure(self, environment_id: str, name: str) -> str:
        if self.failing is not None:
            raise errors.Unavailable(self.failing)
        self.instances.add((environment_id, name))
        self.ensured.append((environment_id, name))
        return f"{self.type}://fake/{environment_id}/{name}"

    def destroy(self, environment_id: str, name: str) -> None:
        self.instances.discard((environment_id, name))

    def owned_environments(self) -> set[str]:
        return {environment_id for environment_id, _ in self.instances}

    def destroy_all(self, environment_id: str) -> None:
        self.instances = {i for i in self.instances if i[0] != environment_id}

    def version(self) -> str:
        return f"{self.type} (fake)"
