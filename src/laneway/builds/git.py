"""Reads an app's repository through the `git` command: refs, files and trees at a commit.

Called by `builds.builder` (and by controllers that need a branch's commit). Every git
subprocess laneway runs lives here, and git's failures leave as laneway errors carrying
git's own message. Read-only: it never changes the repository, its index or its work tree,
and it always reads a commit, never the (possibly dirty) work tree.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from laneway.builds import unpacking
from laneway.errors import InvalidInput, LanewayError, Unavailable

_SYMLINK_MODE = "120000"


def is_repo(repo: Path) -> bool:
    """Whether `repo` is inside a git repository (a work tree or a bare one)."""
    try:
        if not Path(repo).is_dir():
            return False
    except OSError:  # a name too long, a loop of links: not a repository either way
        return False
    return _run(repo, "rev-parse", "--git-dir").returncode == 0


def resolve(repo: Path, ref: str) -> str:
    """The full commit id `ref` (branch, tag, short or full sha, HEAD~1, ...) names."""
    _check_ref(ref)
    proc = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    commit = proc.stdout.decode("ascii", "replace").strip()
    if proc.returncode != 0 or not commit:
        if not is_repo(repo):
            raise InvalidInput(f"{repo} is not a git repository")
        raise InvalidInput(f"no such branch or commit {ref!r} in {repo}")
    return commit


def show_file(repo: Path, commit: str, path: str) -> str | None:
    """The text of `path` (relative to the repository root) at `commit`; None if absent."""
    _check_ref(commit)
    listing = _git(repo, "ls-tree", "-z", "--full-tree", commit, "--", path)
    if not listing:
        return None
    meta, _, _ = listing.partition(b"\t")
    mode, kind, oid = meta.decode("ascii").split(" ")
    if kind != "blob":
        raise InvalidInput(f"{path} at {commit[:12]} in {repo} is a {kind}, not a file")
    if mode == _SYMLINK_MODE:
        raise InvalidInput(f"{path} at {commit[:12]} in {repo} is a symlink, not a file")
    data = _git(repo, "cat-file", "blob", oid)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path} at {commit[:12]} in {repo} is not UTF-8 text (byte {exc.start})"
        ) from None


def export_tree(repo: Path, commit: str, target: Path) -> None:
    """Write `commit`'s tree into `target` (created; must be empty), as `git archive` sees it.

    `.gitattributes` in the commit apply: `export-ignore` paths are left out. Submodule
    contents are not included. Members go through `unpacking.extract_tar`, so a tree
    whose symlinks point outside itself is refused with `UnsafeArtifact`.
    """
    _check_ref(commit)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise InvalidInput(f"cannot export {commit[:12]} into {target}: directory is not empty")
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                ["git", "-C", str(repo), "archive", "--format=tar", commit],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_environment(),
            )
        except FileNotFoundError:
            raise _no_git() from None
        assert proc.stdout is not None
        unreadable: tarfile.TarError | None = None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                unpacking.extract_tar(tar, target, source=f"commit {commit[:12]} of {repo}")
        except tarfile.TarError as exc:
            unreadable = exc  # usually git failed and wrote nothing; its message says why
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            returncode = proc.wait()
        if returncode != 0:
            stderr.seek(0)
            raise _failure(repo, "archive", stderr.read())
        if unreadable is not None:
            raise Unavailable(
                f"git archive of {commit[:12]} in {repo} gave an unreadable tar: {unreadable}"
            )


def current_branch(repo: Path) -> str | None:
    """The branch checked out in `repo`'s work tree; None when HEAD is detached."""
    proc = _run(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    if proc.returncode == 0:
        return proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode == 1:
        return None
    raise _failure(repo, "symbolic-ref", proc.stderr)


def branches_containing(repo: Path, commit: str) -> list[str]:
    """Local branches whose history contains `commit`, sorted by name."""
    _check_ref(commit)
    out = _git(
        repo, "for-each-ref", "--format=%(refname:short)", "--contains", commit, "refs/heads/"
    )
    return sorted(line for line in out.decode("utf-8", "replace").splitlines() if line)


def _check_ref(ref: str) -> None:
    # A leading dash would be read as an option; whitespace and control characters are
    # never part of a ref name, so they signal a garbled argument.
    if not ref or ref.startswith("-") or any(c.isspace() or ord(c) < 32 for c in ref):
        raise InvalidInput(f"invalid branch or commit {ref!r}")


def _git(repo: Path, *args: str) -> bytes:
    proc = _run(repo, *args)
    if proc.returncode != 0:
        raise _failure(repo, args[0], proc.stderr)
    return proc.stdout


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=_environment(),
            check=False,
        )
    except FileNotFoundError:
        raise _no_git() from None


def _environment() -> dict[str, str]:
    # GIT_DIR, GIT_INDEX_FILE and friends (set when laneway runs inside a git hook) would
    # point git at another repository; LC_ALL=C keeps messages in the language we quote.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    environment.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return environment


def _failure(repo: Path, command: str, stderr: bytes) -> LanewayError:
    message = stderr.decode("utf-8", "replace").strip() or "no message"
    if "not a git repository" in message:
        return InvalidInput(f"{repo} is not a git repository")
    lines = message.splitlines()
    # git's own verdict is its "fatal:" line; warnings and hints may surround it
    verdict = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[-1])
    return Unavailable(f"git {command} in {repo} failed: {verdict}", hint=message)


def _no_git() -> Unavailable:
    return Unavailable("git is not installed: no `git` command on PATH")
