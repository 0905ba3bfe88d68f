"""The content-addressed artifact store: a build's tree kept once, unpacked safely anywhere.

`builds.builder` stores what it builds (`put_dir`, `cache_put`); the runtime unpacks a build
into each environment's directory (`unpack`). Writing the deterministic tar is here; reading
one back safely is `builds.unpacking` (which `builds.git` and `builds.builder` also use
directly). Everything lives in files under one root, no database:

    <root>/sha256/<hex>.tar    the artifact: a deterministic, uncompressed tar; <hex> is its sha256
    <root>/sha256/<hex>.json   provenance (commit, ref, app, spec digest, command, created, size...)
    <root>/sha256/<hex>.log    the build log
    <root>/cache/<key>         a build cache entry: the id of the artifact built for <key>
    <root>/trees/<hex>/        the artifact unpacked once, shared read-only (`tree`)
    <root>/tmp/                files being written; renamed into place when complete

An artifact is immutable: the `.tar` appears (by rename) last, so a visible artifact is whole,
and storing the same tree again changes nothing. Unpacking never writes outside its target:
absolute or `..` paths, devices and fifos, links that resolve outside the tree, and members
written through a symlink are refused with `UnsafeArtifact` (`unpacking.extract_tar`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

# `X as X`: names builder and git use from here, re-exported
from laneway.builds.unpacking import EPOCH as EPOCH
from laneway.builds.unpacking import PERMISSIONS, inside
from laneway.builds.unpacking import extract_tar as extract_tar
from laneway.builds.unpacking import remove_tree as remove_tree
from laneway.errors import Conflict, InvalidInput, NotFound, Unavailable, UnsafeArtifact

MARKER = ".laneway-build"
"""File in an unpacked tree's root holding the artifact id; what makes `unpack` idempotent."""

_ID = re.compile(r"sha256:([0-9a-f]{64})")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ArtifactStore:
    """Artifacts, their metadata and build logs, and the build cache, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._objects = self.root / "sha256"
        self._cache = self.root / "cache"
        self._tmp = self.root / "tmp"

    # -- writing -----------------------------------------------------------------------

    def put_dir(self, source: Path, *, metadata: Mapping[str, Any], log: str = "") -> str:
        """Store the tree under `source`; returns its id, `sha256:<hex>` of the tar's bytes.

        The same tree always yields the same id. If that artifact exists already, nothing
        changes (its first metadata and log stay). A top-level `.laneway-build` marker is left
        out, so re-storing an unpacked tree gives back the id it came from.
        """
        source = Path(source)
        if not source.is_dir():
            raise InvalidInput(f"cannot store {source}: not a directory")
        self._make_dirs()
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-", suffix=".tar")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as raw:
                out = _HashingWriter(raw)
                stream = cast(IO[bytes], out)  # tarfile's stream mode only calls write()
                with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for rel, path, info in _walk(source):
                        _add_member(tar, source, rel, path, info)
                raw.flush()
                os.fsync(raw.fileno())
            artifact_id = f"sha256:{out.hexdigest()}"
            tar_path = self._object(artifact_id, ".tar")
            if tar_path.exists():
                return artifact_id
            record = {**metadata, "id": artifact_id, "size": out.size}
            record.setdefault("created", _now())
            text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
            self._write(self._object(artifact_id, ".json"), text.encode())
            self._write(self._object(artifact_id, ".log"), log.encode("utf-8", "replace"))
            os.chmod(tmp, 0o444)
            os.replace(tmp, tar_path)
            _sync_dir(self._objects)
            return artifact_id
        except OSError as exc:
            raise Unavailable(f"cannot write to the artifact store {self.root}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def cache_put(self, key: str, artifact_id: str) -> None:
        """Record that the build identified by `key` produced `artifact_id`."""
        path = self._cache / _check_key(key)
        if not self.has(artifact_id):
            raise NotFound(f"no artifact {artifact_id} in {self.root}")
        self._make_dirs()
        try:
            self._write(path, f"{artifact_id}\n".encode())
        except OSError as exc:
            raise Unavailable(f"cannot write to the artifact store {self.root}: {exc}") from exc

    # -- reading -----------------------------------------------------------------------

    def cache_get(self, key: str) -> str | None:
        """The artifact id recorded for `key`, if that artifact is still in the store."""
        try:
            text = (self._cache / _check_key(key)).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if _ID.fullmatch(text) is None or not self.has(text):
            return None
        return text

    def has(self, artifact_id: str) -> bool:
        return self._object(artifact_id, ".tar").is_file()

    def metadata(self, artifact_id: str) -> dict[str, Any]:
        """The provenance recorded when the artifact was stored (plus `id` and `size`)."""
        if not self.has(artifact_id):
            raise NotFound(f"no artifact {artifact_id} in {self.root}")
        try:
            record: dict[str, Any] = json.loads(self._object(artifact_id, ".json").read_text())
        except FileNotFoundError:
            record = {}
        record.setdefault("id", artifact_id)
        return record

    def log(self, artifact_id: str) -> str:
        """The build log stored with the artifact ("" if the build printed nothing)."""
        if not self.has(artifact_id):
            raise NotFound(f"no artifact {artifact_id} in {self.root}")
        try:
            return self._object(artifact_id, ".log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def list(self) -> list[dict[str, Any]]:
        """Metadata of every artifact, oldest first."""
        if not self._objects.is_dir():
            return []
        ids = [
            f"sha256:{path.stem}"
            for path in self._objects.glob("*.tar")
            if _ID.fullmatch(f"sha256:{path.stem}")
        ]
        records = [self.metadata(artifact_id) for artifact_id in ids]
        return sorted(records, key=lambda r: (str(r.get("created", "")), r["id"]))

    def path(self, artifact_id: str) -> Path:
        """The artifact's tar file, for shipping it elsewhere (read-only)."""
        if not self.has(artifact_id):
            raise NotFound(f"no artifact {artifact_id} in {self.root}")
        return self._object(artifact_id, ".tar")

    # -- unpacking ---------------------------------------------------------------------

    def unpack(self, artifact_id: str, target: Path, *, verify: bool = True) -> None:
        """Make `target` hold the artifact's tree, all at once or not at all.

        The tree is extracted into a hidden sibling of `target` and renamed into place, so
        a half-unpacked tree is never seen. Returns at once if `target` already holds this
        artifact; refuses (`Conflict`) a `target` that holds anything else. With `verify`,
        the tar's bytes are checked against the id first.
        """
        tar_path = self._object(artifact_id, ".tar")
        if not tar_path.is_file():
            raise NotFound(f"no artifact {artifact_id} in {self.root}")
        target = Path(target)
        if _holds(target, artifact_id):
            return
        if target.is_symlink() or (target.exists() and not _is_empty_dir(target)):
            raise Conflict(
                f"cannot unpack {artifact_id} into {target}: it already holds other files"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp: Path | None = Path(
                tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.unpack-")
            )
        except OSError as exc:
            raise Unavailable(f"cannot unpack {artifact_id} into {target}: {exc}") from exc
        assert tmp is not None
        try:
            with open(tar_path, "rb") as f:
                if verify and _sha256(f) != tar_path.stem:
                    raise UnsafeArtifact(
                        f"artifact {artifact_id} in {self.root} is damaged: "
                        "its bytes no longer match its id"
                    )
                f.seek(0)
                with tarfile.open(fileobj=f, mode="r:") as tar:
                    extract_tar(
                        tar,
                        tmp,
                        source=f"artifact {artifact_id}",
                        reserved={MARKER},
                        source_fd=f.fileno(),
                    )
            marker = os.open(tmp / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            with os.fdopen(marker, "w") as f:
                f.write(f"{artifact_id}\n")
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, target)
            except OSError:
                if _holds(target, artifact_id):  # another unpack of the same artifact won
                    return
                raise Conflict(
                    f"cannot unpack {artifact_id} into {target}: it already holds other files"
                ) from None
            tmp = None
        except tarfile.TarError as exc:
            raise UnsafeArtifact(f"artifact {artifact_id} is not a readable tar: {exc}") from exc
        except OSError as exc:
            raise Unavailable(f"cannot unpack {artifact_id} into {target}: {exc}") from exc
        finally:
            if tmp is not None:
                remove_tree(tmp)

    def tree(self, artifact_id: str) -> Path:
        """The artifact unpacked once under `<root>/trees/<hex>`, shared by every caller.

        Creating files is what unpacking costs (on a slow disk, most of a second for a
        thousand files); environments that run a build without changing it can share this
        tree and pay that once per build. Callers must not write into it.
        """
        path = self.root / "trees" / self._object(artifact_id, "").name
        self.unpack(artifact_id, path)
        return path

    # -- helpers -----------------------------------------------------------------------

    def _object(self, artifact_id: str, suffix: str) -> Path:
        match = _ID.fullmatch(artifact_id) if isinstance(artifact_id, str) else None
        if match is None:
            raise InvalidInput(
                f"invalid build id {artifact_id!r}: expected 'sha256:' and 64 lowercase hex digits"
            )
        return self._objects / f"{match.group(1)}{suffix}"

    def _make_dirs(self) -> None:
        for directory in (self._objects, self._cache, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="write-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def _walk(source: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative posix path, path, lstat) of everything under `source`, parents first, by name."""

    def walk(directory: str, prefix: str) -> Iterator[tuple[str, str, os.stat_result]]:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise InvalidInput(f"cannot store {directory}: {exc.strerror}") from exc
        for entry in entries:
            if not prefix and entry.name == MARKER:
                continue
            rel = f"{prefix}{entry.name}"
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise InvalidInput(f"cannot store {entry.path}: {exc.strerror}") from exc
            yield rel, entry.path, info
            if stat.S_ISDIR(info.st_mode):
                yield from walk(entry.path, f"{rel}/")

    return walk(os.fspath(source), "")


def _add_member(
    tar: tarfile.TarFile, source: Path, rel: str, path: str, info: os.stat_result
) -> None:
    member = tarfile.TarInfo(rel)
    member.mtime = EPOCH
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mode = info.st_mode & PERMISSIONS
    if stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
        tar.addfile(member)
    elif stat.S_ISREG(info.st_mode):
        member.type = tarfile.REGTYPE
        member.size = info.st_size
        try:
            with open(path, "rb") as f:
                tar.addfile(member, f)
        except OSError as exc:
            raise InvalidInput(f"cannot store {path}: {exc.strerror or exc}") from exc
    elif stat.S_ISLNK(info.st_mode):
        link = os.readlink(path)
        real_source = os.path.realpath(source)
        if link.startswith("/") or not inside(os.path.realpath(path), real_source):
            raise UnsafeArtifact(
                f"cannot store {source}: {rel!r} is a symlink to {link!r}, outside the tree "
                "(an artifact's symlinks must be relative and stay inside it)"
            )
        member.type = tarfile.SYMTYPE
        member.linkname = link
        member.mode = 0o777
        tar.addfile(member)
    else:
        raise UnsafeArtifact(
            f"cannot store {source}: {rel!r} is a {_kind(info.st_mode)}; an artifact holds "
            "only files, directories and symlinks"
        )


def _holds(target: Path, artifact_id: str) -> bool:
    try:
        return (target / MARKER).read_text().strip() == artifact_id and not target.is_symlink()
    except OSError:
        return False


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _check_key(key: str) -> str:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise InvalidInput(
            f"invalid build cache key {key!r}: expected up to 128 letters, digits, '.', '_' or '-'"
        )
    return key


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _sha256(f: io.BufferedReader) -> str:
    return hashlib.file_digest(f, "sha256").hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
