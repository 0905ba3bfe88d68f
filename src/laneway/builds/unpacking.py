"""Reading a tar back safely: nothing lands outside the target, nothing special is created.

`builds.artifacts` unpacks artifacts with `extract_tar` (`ArtifactStore.unpack`), and
`builds.git` extracts commit trees with it; `remove_tree` removes such a tree, read-only
directories included (also `builds.builder`'s scratch directory). `EPOCH` and `PERMISSIONS`
are the mtime and mode bits of a laneway tree, used alike when `builds.artifacts` writes a
tar. Must not write outside the directory it is given, follow a symlink it has not checked,
or set ownership.

What a link may point at and which member types are refused is the standard library's
policy: each link and special member goes through `tarfile.data_filter` (PEP 706), and its
refusal becomes laneway's `UnsafeArtifact`. Members are not written by `TarFile.extract`,
though; laneway's writer keeps what the filter does not give:

- It never writes through a symlink. Each path is created with `O_EXCL | O_NOFOLLOW`, and a
  member whose parent is a symlink or a file is refused by name, so safety does not rest on
  `os.path.realpath` at extraction time. The filter's checks do, and Pythons before 3.11.13
  let crafted links get past them (CVE-2025-4517 and its siblings, python/cpython#135034);
  the floor, 3.11.4, is the first with the filter at all.
- It refuses more: absolute names (the filter strips the `/`) and `..` components, names
  laneway reserves, duplicates, and hardlinks to anything but a regular file already
  extracted: an artifact laneway wrote has none of these, so one means tampering.
- Symlinks are checked again once the whole tree exists: the filter judges each link when
  it is extracted, so a chain through a link that comes later would get past it.
- Modes keep all their permission bits (the filter drops group and other write, and the
  modes of directories), so re-storing an unpacked tree gives back the artifact's id;
  directory modes are set last, so a read-only directory still gets its contents.
- File contents are copied inside the kernel from the tar file's descriptor when the caller
  has one (`copy_file_range`).

Regular files and directories skip the filter: after the name checks above, the filter
could only accept them, and its two `realpath` walks per member would make unpacking a
tree of a few thousand files take twice as long.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tarfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from laneway.errors import UnsafeArtifact

EPOCH = 946684800
"""The mtime of every member (2000-01-01 UTC): a fixed time keeps ids reproducible, and one
after 1980 keeps zip-based tools working on unpacked trees."""
PERMISSIONS = 0o777
"""Mode bits kept; setuid, setgid and sticky bits are dropped on the way in and out."""

_CHUNK = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def extract_tar(
    tar: tarfile.TarFile,
    root: Path,
    *,
    source: str,
    reserved: Collection[str] = (),
    source_fd: int | None = None,
) -> None:
    """Extract every member of `tar` under `root`, an empty directory only this process writes.

    Works on streamed tars too (`mode="r|"`). Refuses, with `UnsafeArtifact` naming the member
    and `source`: absolute paths, `..` components, names in `reserved`, devices, fifos and
    other special members, duplicates, members that would be written through a symlink,
    hardlinks to anything but a regular file extracted before, and symlinks that are absolute
    or resolve outside `root`. On refusal `root` holds a partial tree: the caller removes it.
    Modes keep their permission bits only; ownership is never set. `source_fd`, an open
    descriptor of the (uncompressed, seekable) tar file itself, lets file contents be copied
    inside the kernel instead of through Python.
    """
    kinds: dict[str, str] = {"": "dir"}  # what each path under root is: dir, file or symlink
    dir_modes: dict[str, tuple[int, int]] = {}
    symlinks: list[str] = []
    real_root = os.path.realpath(root)

    def refuse(name: str, why: str) -> UnsafeArtifact:
        return UnsafeArtifact(f"{source}: member {name!r} {why}; nothing was unpacked")

    def ensure_parents(rel: str, name: str) -> None:
        parent = ""
        for part in rel.split("/")[:-1]:
            parent = f"{parent}/{part}" if parent else part
            kind = kinds.get(parent)
            if kind is None:
                os.mkdir(os.path.join(root, parent), 0o700)
                kinds[parent] = "dir"
                dir_modes[parent] = (0o755, EPOCH)
            elif kind == "symlink":
                raise refuse(name, f"would be written through the symlink {parent!r}")
            elif kind != "dir":
                raise refuse(name, f"would be written inside the file {parent!r}")

    for member in tar:
        name = member.name
        rel = _relative(name)
        if rel is None:
            raise refuse(name, "has an absolute path or a '..' component")
        if rel == "":
            if member.isdir():
                continue
            raise refuse(name, "names the root of the tree but is not a directory")
        if rel in reserved:
            raise refuse(name, "uses a name laneway reserves")
        ensure_parents(rel, name)
        if rel in kinds:
            if member.isdir() and kinds[rel] == "dir":
                dir_modes[rel] = (member.mode & PERMISSIONS, int(member.mtime))
                continue
            raise refuse(name, "appears twice")
        dest = os.path.join(root, rel)
        mode = member.mode & PERMISSIONS
        if member.isreg():
            # O_EXCL and O_NOFOLLOW: never open an existing path (a symlink above all)
            fd = os.open(dest, _CREATE, 0o600)
            with os.fdopen(fd, "wb") as out:
                if source_fd is not None and member.sparse is None:
                    _copy_range(source_fd, out.fileno(), member.offset_data, member.size)
                else:
                    data = tar.extractfile(member)
                    assert data is not None
                    with data:
                        shutil.copyfileobj(data, out, _CHUNK)
                os.fchmod(out.fileno(), mode)
                os.utime(out.fileno(), (member.mtime, member.mtime))
            kinds[rel] = "file"
        elif member.isdir():
            os.mkdir(dest, 0o700)
            kinds[rel] = "dir"
            dir_modes[rel] = (mode, int(member.mtime))
        else:
            _check(member, real_root, refuse)  # links and special members: the data filter
            if member.issym():
                if not member.linkname:
                    raise refuse(name, "is a symlink to nothing (an empty target)")
                os.symlink(member.linkname, dest)
                kinds[rel] = "symlink"
                symlinks.append(rel)
            else:  # a hardlink: the filter refused every other type
                linked = _relative(member.linkname)
                if not linked or kinds.get(linked) != "file":
                    raise refuse(
                        name,
                        f"is a hardlink to {member.linkname!r}, not a file earlier in the tree",
                    )
                os.link(os.path.join(root, linked), dest, follow_symlinks=False)
                kinds[rel] = "file"

    # Resolved once the whole tree exists, so chains through other symlinks are followed.
    for rel in symlinks:
        if not inside(os.path.realpath(os.path.join(root, rel)), real_root):
            link = os.readlink(os.path.join(root, rel))
            raise refuse(rel, f"is a symlink to {link!r}, which resolves outside the tree")
    # Deepest first, so a read-only directory is made read-only after its contents exist.
    for rel in sorted(dir_modes, key=lambda r: r.count("/"), reverse=True):
        path = os.path.join(root, rel)
        os.chmod(path, dir_modes[rel][0])
        os.utime(path, (dir_modes[rel][1], dir_modes[rel][1]))


def _check(
    member: tarfile.TarInfo, real_root: str, refuse: Callable[[str, str], UnsafeArtifact]
) -> None:
    """`tarfile.data_filter`'s verdict on a link or special member, in laneway's words."""
    try:
        tarfile.data_filter(member, real_root)
    except tarfile.FilterError as exc:
        name = member.name
        kind = "symlink" if member.issym() else "hardlink"
        if isinstance(exc, tarfile.SpecialFileError):
            if member.ischr() or member.isblk():
                why = "is a device"
            elif member.isfifo():
                why = "is a fifo"
            else:
                why = f"has an unsupported type {member.type!r}"
        elif isinstance(exc, tarfile.AbsoluteLinkError):
            why = f"is a {kind} to {member.linkname!r}, outside the tree"
        elif isinstance(exc, tarfile.LinkOutsideDestinationError):
            why = f"is a {kind} to {member.linkname!r}, which resolves outside the tree"
        else:
            why = f"is refused by the tar data filter ({exc})"
        raise refuse(name, why) from None


def _copy_range(source: int, target: int, offset: int, size: int) -> None:
    """Copy `size` bytes at `offset` of `source` to `target`, in the kernel where it can."""
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(source, target, size - done, offset + done)
            if copied == 0:
                break
            done += copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while done < size:
        chunk = os.pread(source, min(_CHUNK, size - done), offset + done)
        if not chunk:
            raise tarfile.ReadError(f"unexpected end of data at byte {offset + done}")
        done += os.write(target, chunk)


def remove_tree(path: Path) -> None:
    """Remove `path` and everything below it, read-only directories included."""

    def make_writable(function: Any, failed: str, _exc: Any) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
            function(failed)

    if not os.path.lexists(path):
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable)
    else:
        shutil.rmtree(path, onerror=make_writable)


def _relative(name: str) -> str | None:
    """A member name as a clean relative posix path; None if absolute or with `..`."""
    if name.startswith("/") or "\x00" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it (both resolved already, as by `realpath`)."""
    return path == root or path.startswith(root + os.sep)
