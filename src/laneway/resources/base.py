"""The resource provider interface: give an environment its own instance of a backing service.

Providers sit beside this file (`postgres.py`, `sqlite.py`, `directory.py`). Every name a
provider creates derives from the owner and environment id, so `ensure` after a crash adopts
what exists and `destroy` finds everything without a record of it.
"""

from __future__ import annotations

from typing import Protocol


class ResourceProvider(Protocol):
    type: str

    def ensure(self, environment_id: str, name: str) -> str:
        """Create the instance if it is missing; return the value of its env var (URL or path)."""
        ...

    def destroy(self, environment_id: str, name: str) -> None:
        """Remove the instance and its data; no error if it is gone."""
        ...

    def owned_environments(self) -> set[str]:
        """Ids of environments that have an instance here, for garbage collection."""
        ...

    def destroy_all(self, environment_id: str) -> None:
        """Remove every instance this provider holds for the environment."""
        ...

    def version(self) -> str:
        """What an instance runs, such as `postgres 15.4`, for `laneway diff`."""
        ...
