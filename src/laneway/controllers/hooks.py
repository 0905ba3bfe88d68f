"""The release hook as a job: its wrapped command, its exit file, its output kept per release.

The hook runs as a labelled process of the runtime, not a child the reconciler waits on. It
writes its exit status to `environments/<id>/hooks/v<N>.exit`, so a control plane that was
killed while it ran learns how it ended when it comes back. Its output goes through
`runtime.redacting` into `logs/<id>/release.log`, and each release's part is kept, redacted
again, as `environments/<id>/hooks/v<N>.log`.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from laneway.controllers.context import Context
from laneway.core import redaction
from laneway.core.environments import HOOK_SERVICE
from laneway.runtime import redacting
from laneway.runtime.base import ProcessSpec

KEPT_LINES = 2000


def exit_file(ctx: Context, environment_id: str, release: int) -> Path:
    return ctx.settings.environments_dir / environment_id / "hooks" / f"v{release}.exit"


def output_file(ctx: Context, environment_id: str, release: int) -> Path:
    return ctx.settings.environments_dir / environment_id / "hooks" / f"v{release}.log"


def log_file(ctx: Context, environment_id: str) -> Path:
    return ctx.log_dir(environment_id) / "release.log"


def read_exit(ctx: Context, environment_id: str, release: int) -> int | None:
    """The exit status the hook of `release` left, or None if it has not ended."""
    try:
        text = exit_file(ctx, environment_id, release).read_text().strip()
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def wrap(command: str, release: int, exit_path: Path) -> str:
    """The shell line that runs `command`, filters its output and records its exit status."""
    target = shlex.quote(str(exit_path))
    return (
        f"echo '--- release v{release}'; "
        f"{{ ( {command}\n) 2>&1; echo $? > {target}.tmp; }}"
        f" | {redacting.command()}; "
        f"code=$(cat {target}.tmp 2>/dev/null || echo 1); "
        f"/bin/mv {target}.tmp {target}; exit $code"
    )


def start(
    ctx: Context,
    environment_id: str,
    release: int,
    command: str,
    *,
    env: dict[str, str],
    hidden_keys: set[str],
) -> None:
    """Start the hook of `release`; `hidden_keys` name the variables whose values its output
    must not show (read by the filter from the environment it shares with the hook)."""
    path = exit_file(ctx, environment_id, release)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    ctx.runtime.start_process(
        ProcessSpec(
            environment_id=environment_id,
            service=HOOK_SERVICE,
            index=release,
            release=f"v{release}",
            command=wrap(command, release, path),
            cwd=ctx.release_dir(environment_id, release),
            env={**env, redacting.KEYS: ",".join(sorted(hidden_keys))},
            log_path=log_file(ctx, environment_id),
        )
    )


def read_output(ctx: Context, environment_id: str, release: int, *, lines: int) -> str | None:
    """The last `lines` of the output kept for `release` (redacted when kept), None if none."""
    try:
        text = output_file(ctx, environment_id, release).read_text(errors="replace")
    except OSError:
        return None
    return "\n".join(text.splitlines()[-lines:])


def keep_output(
    ctx: Context, environment_id: str, release: int, redactor: redaction.Redactor
) -> str:
    """Copy this release's part of release.log beside the release (redacted); return it."""
    try:
        lines = log_file(ctx, environment_id).read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    marker = f"--- release v{release}"
    starts = [i for i, line in enumerate(lines) if line.strip() == marker]
    section = lines[starts[-1] + 1 :] if starts else lines[-200:]
    text = redactor.text("\n".join(section[-KEPT_LINES:]))
    target = output_file(ctx, environment_id, release)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n" if text else "")
    return text
