"""The variables a process of an environment gets, layered. Pure."""

from __future__ import annotations

from laneway.core.types import Environment, Kind
from laneway.spec.model import Spec

KIND_DEFAULTS: dict[Kind, dict[str, str]] = {
    Kind.DEVELOPMENT: {"PYTHONUNBUFFERED": "1"},
}
"""Below the spec's env: a development environment's output is followed as it is written
(`laneway up` prints it), so Python does not buffer it."""


def compose_env(
    environment: Environment,
    spec: Spec,
    *,
    service: str | None,
    port: int | None,
    resources: dict[str, str],
    base: dict[str, str],
    app_dir: str | None = None,
    config: dict[str, str] | None = None,
    release: int | None = None,
    build: tuple[str, str] | None = None,
    flags: tuple[str, str] | None = None,
    flags_sync: str | None = None,
) -> dict[str, str]:
    """A process's environment: base < the kind's defaults (`KIND_DEFAULTS`) < spec env <
    kind overrides < service env < the environment's config < laneway's own.

    `build.path` entries, resolved in `app_dir`, go in front of the base PATH. `release` and
    `build` (id, commit) name the generation the process belongs to; by default the
    environment's newest release. `flags` is (URL, client key) of the environment's flags,
    given as LANEWAY_FLAGS_URL and LANEWAY_FLAGS_KEY; `flags_sync` is HOST:PORT of flagd
    sync, for in-process providers (LANEWAY_FLAGS_SYNC; the key is their selector).
    """
    env = dict(base)
    env.update(KIND_DEFAULTS.get(environment.kind, {}))
    if app_dir is not None and spec.build.path:
        front = [f"{app_dir.rstrip('/')}/{p.strip('/')}" for p in spec.build.path]
        env["PATH"] = ":".join([*front, env["PATH"]] if env.get("PATH") else front)
    env.update(spec.env_for(str(environment.kind)))
    if service is not None:
        env.update(spec.services[service].env)
    env.update(config or {})
    names = spec.resource_env_names()
    for name, value in resources.items():
        if name in names:
            env[names[name]] = value
    build_id, commit = build or (environment.build_id or "", environment.commit or "")
    env.update(
        {
            "LANEWAY_APP": environment.app,
            "LANEWAY_ENV": environment.name,
            "LANEWAY_ENV_KIND": str(environment.kind),
            "LANEWAY_RELEASE": f"v{release or environment.release}",
            "LANEWAY_BUILD": build_id,
            "LANEWAY_COMMIT": commit,
            "LANEWAY_BRANCH": environment.branch or "",
        }
    )
    if flags is not None:
        env["LANEWAY_FLAGS_URL"], env["LANEWAY_FLAGS_KEY"] = flags
    if flags_sync is not None:
        env["LANEWAY_FLAGS_SYNC"] = flags_sync
    if port is not None:
        env["PORT"] = str(port)
    return env
