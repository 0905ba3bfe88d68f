"""The errors laneway raises to its users, and nothing else does.

Every message says what is wrong and where. Foreign exceptions (SQLAlchemy, psycopg,
httptools, subprocess) are translated in the module that imports the library.

    LanewayError                 exit 1 / HTTP 500 unless a subclass says otherwise
    ├── InvalidInput             exit 2 / 400  bad argument, payload or file
    │   └── SpecError            exit 2 / 400  laneway.yaml is invalid: file:line:col: field: what
    ├── Unauthorized             exit 1 / 401  no or unknown token
    ├── Forbidden                exit 1 / 403  the token's role may not do this
    ├── NotFound                 exit 1 / 404
    ├── MethodNotAllowed         exit 1 / 405  the path exists, the method does not (`Allow` says which)
    ├── Conflict                 exit 1 / 409  exists already, or another change is under way
    ├── PayloadTooLarge          exit 1 / 413  a request body over its route's limit
    ├── BuildFailed              exit 1 / 422  the build command failed (log tail attached)
    ├── UnsafeArtifact           exit 1 / 422  an artifact member would land outside its target
    └── Unavailable              exit 1 / 503  a dependency (PostgreSQL, git, server) is unreachable
"""

from __future__ import annotations


class LanewayError(Exception):
    status_code = 500
    exit_code = 1
    title = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(LanewayError):
    status_code = 400
    exit_code = 2
    title = "invalid input"


class SpecError(InvalidInput):
    """One or more problems in a spec file; `problems` holds each as `file:line:col: field: what`."""

    title = "invalid spec"

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class Unauthorized(LanewayError):
    status_code = 401
    title = "unauthorized"


class Forbidden(LanewayError):
    status_code = 403
    title = "forbidden"


class NotFound(LanewayError):
    status_code = 404
    title = "not found"


class Conflict(LanewayError):
    status_code = 409
    title = "conflict"


class MethodNotAllowed(LanewayError):
    status_code = 405
    title = "method not allowed"

    def __init__(self, message: str, *, allow: list[str]) -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(LanewayError):
    status_code = 413
    title = "payload too large"


class BuildFailed(LanewayError):
    status_code = 422
    title = "build failed"


class UnsafeArtifact(LanewayError):
    status_code = 422
    title = "unsafe artifact"


class Unavailable(LanewayError):
    status_code = 503
    title = "unavailable"
