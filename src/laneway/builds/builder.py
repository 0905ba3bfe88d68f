"""Builds a commit once: its tree plus whatever the spec's `build.command` makes of it.

Called by the build controller (and `laneway build`) with a repository and a ref; returns a
`BuildResult` whose `id` the runtime unpacks into each environment. The command runs in a
fresh export of the commit (never the work tree) under `workdir`, with a clean environment;
its output is streamed and kept as the build log. A commit already built (same build command,
same builder format) comes from the cache without running anything. This module runs the
command and nothing else: git goes through `builds.git`, storage through `ArtifactStore`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import laneway
from laneway.builds import artifacts, git, unpacking
from laneway.errors import BuildFailed, InvalidInput
from laneway.spec import loader
from laneway.spec.model import Spec

SPEC_FILE = "laneway.yaml"
FORMAT_VERSION = 1
"""Bumped whenever the same inputs would produce a different artifact; part of the cache key."""
DEFAULT_TIMEOUT = 15 * 60.0
LOG_TAIL_LINES = 20
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_MAX_LINE = 64 * 1024  # output without a newline is passed on in pieces this long
_EXIT_GRACE = 5.0  # seconds to drain output after the command has exited


@dataclass(frozen=True)
class BuildResult:
    id: str
    commit: str
    ref: str
    cached: bool
    spec: Spec
    spec_digest: str
    log_tail: str


def build(
    repo: Path,
    ref: str,
    *,
    store: artifacts.ArtifactStore,
    workdir: Path,
    on_output: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> BuildResult:
    """Build `ref` of `repo` into `store`, or return the build already made for its commit.

    Raises `InvalidInput` for an unknown ref or a commit without `laneway.yaml`, `SpecError`
    for an invalid one, and `BuildFailed` (log tail as hint, nothing stored) when the command
    exits non-zero, is killed, or runs past `timeout` seconds.
    """
    repo = Path(repo)
    source = _resolve(repo, ref)
    cached_id = store.cache_get(source.key)
    if cached_id is not None:
        return source.result(cached_id, cached=True, lines=store.log(cached_id).splitlines())

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"build-{source.commit[:12]}-", dir=workdir))
    try:
        tree, home, tmp = scratch / "tree", scratch / "home", scratch / "tmp"
        home.mkdir()
        tmp.mkdir()
        git.export_tree(repo, source.commit, tree)
        started = time.monotonic()
        lines: list[str] = []
        command = source.spec.build.command
        if command:
            environment = _environment(source, tree=tree, home=home, tmp=tmp, extra=env or {})
            lines = _run_command(
                command, source, cwd=tree, env=environment, timeout=timeout, on_output=on_output
            )
        artifact_id = store.put_dir(
            tree,
            metadata=_provenance(source, duration=time.monotonic() - started),
            log="".join(f"{line}\n" for line in lines),
        )
        store.cache_put(source.key, artifact_id)
        return source.result(artifact_id, cached=False, lines=lines)
    finally:
        unpacking.remove_tree(scratch)


@dataclass(frozen=True)
class _Source:
    """What a build is of: the commit a ref resolved to, its spec, and the cache key."""

    commit: str
    ref: str
    spec: Spec
    spec_digest: str
    key: str

    def result(self, artifact_id: str, *, cached: bool, lines: list[str]) -> BuildResult:
        return BuildResult(
            id=artifact_id,
            commit=self.commit,
            ref=self.ref,
            cached=cached,
            spec=self.spec,
            spec_digest=self.spec_digest,
            log_tail=_tail(lines),
        )


def _resolve(repo: Path, ref: str) -> _Source:
    """Resolve `ref` and read, validate and digest the commit's `laneway.yaml`."""
    commit = git.resolve(repo, ref)
    text = git.show_file(repo, commit, SPEC_FILE)
    if text is None:
        raise InvalidInput(
            f"commit {commit[:12]} ({ref}) of {repo} has no {SPEC_FILE} at the repository root",
            hint=f"commit a {SPEC_FILE} describing the app, then build again",
        )
    spec = loader.load_spec_text(text, filename=f"{SPEC_FILE}@{commit[:12]}")
    return _Source(
        commit=commit,
        ref=ref,
        spec=spec,
        spec_digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        key=cache_key(commit, spec.build.command),
    )


def _environment(
    source: _Source, *, tree: Path, home: Path, tmp: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """The build command's whole environment: nothing else of the server's is passed on."""
    front = [str(tree / p) for p in source.spec.build.path]
    return {
        # package-index settings of the server's environment (mirrors, proxies)
        **{k: v for k, v in os.environ.items() if k.upper().startswith(_PASSED_PREFIXES)},
        # the spec's own variables, as every service of the build will see them
        **source.spec.env,
        "PATH": ":".join([*front, os.environ.get("PATH", _DEFAULT_PATH)]),
        "HOME": str(home),
        # package caches of the server's user: downloads are reused across builds
        # (what a build outputs does not depend on them)
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip"),
        "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE") or str(Path.home() / ".npm"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMPDIR": str(tmp),
        # Tools that honour it (pip, compileall, ...) then produce reproducible output.
        "SOURCE_DATE_EPOCH": str(unpacking.EPOCH),
        **extra,
        "LANEWAY_BUILD_COMMIT": source.commit,
        "LANEWAY_BUILD_REF": source.ref,
    }


def _run_command(
    command: str,
    source: _Source,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    on_output: Callable[[str], None] | None,
) -> list[str]:
    """Run the build command, passing each output line to `on_output`; returns the lines.

    Raises `BuildFailed`, with the log's tail as hint, when the command does not succeed.
    """
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if on_output is not None:
            on_output(line)

    outcome = _run(command, cwd=cwd, env=env, timeout=timeout, emit=emit)
    if outcome is not None:
        raise BuildFailed(f"build of {_named(source)} failed: {outcome}", hint=_tail(lines) or None)
    return lines


def _named(source: _Source) -> str:
    """`main (commit 1a2b3c4d5e6f)`, or `commit 1a2b3c4d5e6f` for a ref that is the commit."""
    commit = f"commit {source.commit[:12]}"
    if not source.ref or source.commit.startswith(source.ref):
        return commit
    return f"{source.ref} ({commit})"


def _provenance(source: _Source, *, duration: float) -> dict[str, object]:
    """The metadata stored beside the artifact: where it came from and how it was made."""
    return {
        "commit": source.commit,
        "ref": source.ref,
        "app": source.spec.app,
        "spec_digest": source.spec_digest,
        "build_command": source.spec.build.command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(duration, 3),
        "builder_version": laneway.__version__,
        "format": FORMAT_VERSION,
        "cache_key": source.key,
    }


_PASSED_PREFIXES = ("PIP_", "NPM_CONFIG_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "UV_")


def cache_key(commit: str, command: str | None) -> str:
    """What identifies a build: the commit, its build command and the builder's format.

    Neither the ref nor `env` is part of it: a commit is built once, whichever branch points
    at it and whichever environment it is promoted to. `env` is for what must not change the
    output (credentials, proxies, package indexes); settings that do belong in the commit.
    """
    material = json.dumps(
        {"format": FORMAT_VERSION, "commit": commit, "command": command}, sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _run(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    emit: Callable[[str], None],
) -> str | None:
    """Run `command` with `/bin/sh -c`, passing each output line to `emit`.

    Returns None on success, else what went wrong. The command gets its own process group,
    killed when it exits (no daemons outlive a build), times out, or we are interrupted.
    """
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return f"cannot start /bin/sh: {exc.strerror or exc}"
    try:
        finished = _pump(proc, deadline=time.monotonic() + timeout, emit=emit)
    finally:
        _kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        returncode = proc.wait()
    if not finished:
        return f"command timed out after {timeout:g}s"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"command was killed by {name}"
    if returncode != 0:
        return f"command exited {returncode}"
    return None


def _pump(proc: subprocess.Popen[bytes], *, deadline: float, emit: Callable[[str], None]) -> bool:
    """Stream `proc`'s output to `emit` line by line; False if `deadline` passed first."""
    assert proc.stdout is not None
    out = proc.stdout.fileno()
    os.set_blocking(out, False)
    pending = b""
    with contextlib.ExitStack() as stack:
        selector = stack.enter_context(selectors.DefaultSelector())
        selector.register(out, selectors.EVENT_READ, "output")
        # A pidfd says when the shell exits even if a background child keeps the pipe open.
        try:
            pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = None
        if pidfd is not None:
            stack.callback(os.close, pidfd)
            selector.register(pidfd, selectors.EVENT_READ, "exit")
        exited = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if pending:
                    emit(_decode(pending))
                return exited  # after the exit, a pipe held open by strays is not a timeout
            for event, _ in selector.select(remaining):
                if event.data == "exit":
                    selector.unregister(event.fd)
                    exited = True
                    deadline = min(deadline, time.monotonic() + _EXIT_GRACE)
                    _kill_group(proc)
                    continue
                try:
                    chunk = os.read(out, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    if pending:
                        emit(_decode(pending))
                    return True
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    emit(_decode(line))
                while len(pending) >= _MAX_LINE:
                    emit(_decode(pending[:_MAX_LINE]))
                    pending = pending[_MAX_LINE:]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Called before the shell is reaped, so its pid (the group id) cannot have been reused.
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace").removesuffix("\r")


def _tail(lines: list[str]) -> str:
    return "\n".join(lines[-LOG_TAIL_LINES:])
