"""ArtifactStore: content addressing, metadata, safe unpacking, crafted tars and ids."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from laneway.builds import artifacts
from laneway.builds.artifacts import ArtifactStore
from laneway.errors import Conflict, InvalidInput, NotFound, UnsafeArtifact

META = {"commit": "c" * 40, "ref": "main", "app": "shop"}


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def make_tree(root: Path) -> Path:
    (root / "src" / "shop").mkdir(parents=True)
    (root / "src" / "shop" / "app.py").write_text("print('hello')\n")
    (root / "bin").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (root / "bin" / "run").chmod(0o755)
    (root / "secret.txt").write_text("only me\n")
    (root / "secret.txt").chmod(0o600)
    (root / "empty").mkdir()
    (root / "current").symlink_to("src/shop")
    (root / "bin" / "app").symlink_to("../src/shop/app.py")
    (root / "dangling").symlink_to("not-there")
    return root


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under root: (kind, permission bits, content or link target)."""
    result: dict[str, tuple[str, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            result[rel] = ("symlink", 0, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            result[rel] = ("dir", stat.S_IMODE(info.st_mode), "")
        else:
            result[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_text())
    return result


def listing(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")} if path.exists() else set()


# -- content addressing -------------------------------------------------------------------


def test_same_tree_twice_gives_the_same_id(store: ArtifactStore, tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a")
    first = store.put_dir(a, metadata=META)
    second = store.put_dir(a, metadata={**META, "ref": "other"})
    assert first == second
    assert first.startswith("sha256:") and len(first) == 71
    # the artifact is immutable: the first provenance stays
    assert store.metadata(first)["ref"] == "main"


def test_identical_trees_made_apart_and_at_other_times_share_an_id(
    store: ArtifactStore, tmp_path: Path
) -> None:
    a = make_tree(tmp_path / "a")
    b = make_tree(tmp_path / "b")
    os.utime(b / "src" / "shop" / "app.py", (1, 1))
    assert store.put_dir(a, metadata=META) == store.put_dir(b, metadata=META)


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "src" / "shop" / "app.py").write_text("print('bye')\n"),
        lambda root: (root / "bin" / "run").chmod(0o644),
        lambda root: (root / "new-empty-dir").mkdir(),
        lambda root: ((root / "current").unlink(), (root / "current").symlink_to("bin")),
        lambda root: (root / "secret.txt").rename(root / "secret2.txt"),
    ],
    ids=["content", "mode", "empty-dir", "symlink-target", "name"],
)
def test_any_change_gives_another_id(store: ArtifactStore, tmp_path: Path, change) -> None:
    tree = make_tree(tmp_path / "a")
    before = store.put_dir(tree, metadata=META)
    change(tree)
    assert store.put_dir(tree, metadata=META) != before


def test_tar_is_deterministic_and_anonymous(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = store.put_dir(make_tree(tmp_path / "a"), metadata=META)
    with tarfile.open(store.path(artifact_id)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "bin",
        "bin/app",
        "bin/run",
        "current",
        "dangling",
        "empty",
        "secret.txt",
        "src",
        "src/shop",
        "src/shop/app.py",
    ]
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == artifacts.EPOCH


def test_metadata_log_and_list(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = store.put_dir(make_tree(tmp_path / "a"), metadata=META, log="step 1\nok\n")
    record = store.metadata(artifact_id)
    assert record["commit"] == "c" * 40 and record["app"] == "shop"
    assert record["id"] == artifact_id
    assert record["size"] == store.path(artifact_id).stat().st_size
    assert record["created"]
    assert store.log(artifact_id) == "step 1\nok\n"
    assert store.has(artifact_id)
    assert [r["id"] for r in store.list()] == [artifact_id]


def test_empty_store(store: ArtifactStore) -> None:
    assert store.list() == []
    assert not store.has("sha256:" + "0" * 64)
    with pytest.raises(NotFound):
        store.metadata("sha256:" + "0" * 64)
    with pytest.raises(NotFound):
        store.unpack("sha256:" + "0" * 64, store.root / "x")


def test_cache_index_lives_under_the_root(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = store.put_dir(make_tree(tmp_path / "a"), metadata=META)
    assert store.cache_get("k" * 64) is None
    store.cache_put("k" * 64, artifact_id)
    assert store.cache_get("k" * 64) == artifact_id
    assert (store.root / "cache" / ("k" * 64)).read_text().strip() == artifact_id
    with pytest.raises(NotFound):
        store.cache_put("other", "sha256:" + "0" * 64)
    # an entry whose artifact is gone is a miss, not a dangling id
    store.path(artifact_id).unlink()
    assert store.cache_get("k" * 64) is None


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha256:" + "A" * 64,
        "sha512:" + "0" * 64,
        "0" * 64,
        "sha256:../../../etc/passwd",
        "sha256:" + "0" * 64 + "\n",
        "sha256:" + "0" * 64 + "/../x",
        "",
    ],
)
def test_crafted_ids_are_rejected(store: ArtifactStore, tmp_path: Path, bad: str) -> None:
    for call in (
        lambda: store.has(bad),
        lambda: store.metadata(bad),
        lambda: store.log(bad),
        lambda: store.unpack(bad, tmp_path / "out"),
        lambda: store.cache_put("key", bad),
    ):
        with pytest.raises(InvalidInput, match="invalid build id"):
            call()


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "x" * 200, "a\nb"])
def test_crafted_cache_keys_are_rejected(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid build cache key"):
        store.cache_get(bad)


def test_interrupted_put_leaves_no_artifact(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "a")
    real_replace = os.replace

    def interrupted(src: str, dst: str) -> None:
        if str(dst).endswith(".tar"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put_dir(tree, metadata=META)
    monkeypatch.undo()
    assert store.list() == []
    assert list((store.root / "sha256").glob("*.tar")) == []
    assert list((store.root / "tmp").iterdir()) == []
    # and a later put succeeds
    artifact_id = store.put_dir(tree, metadata=META)
    assert store.has(artifact_id)


def test_put_interrupted_while_writing_the_tar(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "a")
    real_add = artifacts._add_member
    calls = []

    def add_then_die(*args, **kwargs) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_add(*args, **kwargs)

    monkeypatch.setattr(artifacts, "_add_member", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.put_dir(tree, metadata=META)
    assert store.list() == []
    assert list((store.root / "tmp").iterdir()) == []


def test_put_refuses_links_outside_and_special_files(store: ArtifactStore, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    (tree / "etc").symlink_to("/etc")
    with pytest.raises(UnsafeArtifact, match="'etc' is a symlink to '/etc'"):
        store.put_dir(tree, metadata=META)
    (tree / "etc").unlink()
    (tree / "up").symlink_to("../..")
    with pytest.raises(UnsafeArtifact, match="'up' is a symlink"):
        store.put_dir(tree, metadata=META)
    (tree / "up").unlink()
    os.mkfifo(tree / "pipe")
    with pytest.raises(UnsafeArtifact, match="'pipe' is a fifo"):
        store.put_dir(tree, metadata=META)
    assert store.list() == []


# -- unpacking ----------------------------------------------------------------------------


def test_unpack_round_trip_keeps_modes_and_symlinks(store: ArtifactStore, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    (tree / "readonly").mkdir()
    (tree / "readonly" / "f").write_text("x")
    (tree / "readonly").chmod(0o555)
    (tree / "suid").write_text("x")
    (tree / "suid").chmod(0o4755)
    # modes tarfile's data filter would change (group write dropped, owner write added)
    (tree / "shared").write_text("x")
    (tree / "shared").chmod(0o664)
    (tree / "frozen").write_text("x")
    (tree / "frozen").chmod(0o444)
    artifact_id = store.put_dir(tree, metadata=META)
    target = tmp_path / "envs" / "preview-1" / "app"
    store.unpack(artifact_id, target)
    expected = snapshot(tree)
    expected["suid"] = ("file", 0o755, "x")  # setuid never survives
    got = snapshot(target)
    assert got.pop(artifacts.MARKER)[2] == f"{artifact_id}\n"
    assert got == expected
    assert (target / "bin" / "app").read_text() == "print('hello')\n"
    assert os.access(target / "bin" / "run", os.X_OK)
    # no leftovers beside the target
    assert sorted(p.name for p in target.parent.iterdir()) == ["app"]
    # re-storing the unpacked tree gives the same id
    assert store.put_dir(target, metadata=META) == artifact_id
    artifacts.remove_tree(target)
    assert not target.exists()


def test_unpack_is_idempotent_and_refuses_other_content(
    store: ArtifactStore, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "a")
    artifact_id = store.put_dir(tree, metadata=META)
    target = tmp_path / "out"
    store.unpack(artifact_id, target)
    (target / "runtime-file").write_text("written by the app")
    store.unpack(artifact_id, target)  # already there: nothing happens
    assert (target / "runtime-file").exists()

    (tree / "secret.txt").write_text("changed\n")
    other = store.put_dir(tree, metadata=META)
    with pytest.raises(Conflict, match="already holds other files"):
        store.unpack(other, target)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x")
    with pytest.raises(Conflict):
        store.unpack(artifact_id, occupied)
    # an empty directory is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    store.unpack(artifact_id, empty)
    assert (empty / "secret.txt").read_text() == "only me\n"


def test_unpack_detects_a_damaged_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = store.put_dir(make_tree(tmp_path / "a"), metadata=META)
    path = store.path(artifact_id)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[600] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeArtifact, match="damaged"):
        store.unpack(artifact_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "store"]


# -- malicious tars -------------------------------------------------------------------------


def member(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", link: str = ""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def crafted_artifact(store: ArtifactStore, members) -> str:
    """Plant a hand-made tar in the store under its true digest, as an attacker with write
    access to the store (or a bug) would."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, data)
    payload = buffer.getvalue()
    import hashlib

    hexdigest = hashlib.sha256(payload).hexdigest()
    (store.root / "sha256").mkdir(parents=True, exist_ok=True)
    (store.root / "sha256" / f"{hexdigest}.tar").write_bytes(payload)
    return f"sha256:{hexdigest}"


UNSAFE = {
    "absolute-path": ([member("/tmp/evil", data=b"x")], "absolute path"),
    "dotdot": ([member("../evil", data=b"x")], "'..'"),
    "dotdot-inside": ([member("a/../../evil", data=b"x")], "'..'"),
    "symlink-absolute": ([member("link", tarfile.SYMTYPE, link="/etc")], "outside the tree"),
    "symlink-up": ([member("link", tarfile.SYMTYPE, link="../outside")], "resolves outside"),
    "symlink-up-deep": (
        [member("a", tarfile.DIRTYPE), member("a/link", tarfile.SYMTYPE, link="../../x")],
        "resolves outside",
    ),
    "symlink-chain": (
        # each link looks inside on its own; followed together they leave the tree
        [
            member("self", tarfile.SYMTYPE, link="."),
            member("up", tarfile.SYMTYPE, link="self/.."),
        ],
        "resolves outside",
    ),
    "symlink-chain-later": (
        # "up" is judged before "self" exists, when it still resolves inside
        [
            member("up", tarfile.SYMTYPE, link="self/.."),
            member("self", tarfile.SYMTYPE, link="."),
        ],
        "resolves outside",
    ),
    "write-through-symlink": (
        [
            member("dir", tarfile.SYMTYPE, link="."),
            member("dir/evil", data=b"x"),
        ],
        "through the symlink",
    ),
    "write-through-escaping-symlink": (
        [
            member("out", tarfile.SYMTYPE, link="../.."),
            member("out/evil", data=b"x"),
        ],
        "resolves outside",  # refused at the symlink, before anything is written through it
    ),
    "write-through-symlink-escaping-later": (
        [
            member("up", tarfile.SYMTYPE, link="self/.."),
            member("self", tarfile.SYMTYPE, link="."),
            member("up/evil", data=b"x"),
        ],
        "through the symlink",
    ),
    "overwrite-symlink": (
        [
            member("link", tarfile.SYMTYPE, link="ok.txt"),
            member("link", data=b"x"),
        ],
        "appears twice",
    ),
    "hardlink-absolute": ([member("h", tarfile.LNKTYPE, link="/etc/passwd")], "hardlink"),
    "hardlink-up": ([member("h", tarfile.LNKTYPE, link="../victim")], "hardlink"),
    "hardlink-to-symlink": (
        [
            member("s", tarfile.SYMTYPE, link="ok.txt"),
            member("h", tarfile.LNKTYPE, link="s"),
        ],
        "hardlink",
    ),
    "char-device": ([member("null", tarfile.CHRTYPE)], "device"),
    "block-device": ([member("sda", tarfile.BLKTYPE)], "device"),
    "fifo": ([member("pipe", tarfile.FIFOTYPE)], "fifo"),
    "unknown-type": ([member("odd", b"Z")], "unsupported type"),
    "symlink-empty": ([member("nowhere", tarfile.SYMTYPE, link="")], "empty target"),
    "reserved-marker": ([member(artifacts.MARKER, data=b"sha256:" + b"0" * 64)], "reserves"),
    "file-as-parent": (
        [member("f", data=b"x"), member("f/child", data=b"y")],
        "inside the file",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_members_are_refused_and_nothing_is_written(
    store: ArtifactStore, tmp_path: Path, case: str
) -> None:
    members, why = UNSAFE[case]
    # a harmless member first, so the refusal comes mid-way through extraction
    artifact_id = crafted_artifact(store, [member("ok.txt", data=b"fine"), *members])
    sandbox = tmp_path / "sandbox"
    (sandbox / "envs").mkdir(parents=True)
    (sandbox / "victim").write_text("original")
    before = listing(tmp_path)
    target = sandbox / "envs" / "app"
    with pytest.raises(UnsafeArtifact, match="member") as raised:
        store.unpack(artifact_id, target)
    assert why in str(raised.value)
    assert listing(tmp_path) == before
    assert (sandbox / "victim").read_text() == "original"
    assert not target.exists()


def test_safe_hardlinks_and_implicit_parents_unpack(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = crafted_artifact(
        store,
        [
            member("./deep/er/file.txt", data=b"content"),
            member("deep/er/same.txt", tarfile.LNKTYPE, link="deep/er/file.txt"),
            member("deep/up", tarfile.SYMTYPE, link="../deep/er"),
        ],
    )
    target = tmp_path / "out"
    store.unpack(artifact_id, target)
    assert (target / "deep" / "er" / "same.txt").read_text() == "content"
    assert (target / "deep" / "up" / "file.txt").read_text() == "content"


def test_a_target_that_is_a_symlink_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = store.put_dir(make_tree(tmp_path / "a"), metadata=META)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "target").symlink_to(elsewhere)
    with pytest.raises(Conflict):
        store.unpack(artifact_id, tmp_path / "target")
    assert list(elsewhere.iterdir()) == []


def test_shared_tree_is_unpacked_once(store: ArtifactStore, tmp_path: Path) -> None:
    artifact_id = store.put_dir(make_tree(tmp_path / "a"), metadata=META)
    path = store.tree(artifact_id)
    assert path == store.root / "trees" / artifact_id.removeprefix("sha256:")
    assert (path / "bin" / "app").read_text() == "print('hello')\n"
    inode = (path / "secret.txt").stat().st_ino
    assert store.tree(artifact_id) == path
    assert (path / "secret.txt").stat().st_ino == inode
    assert [r["id"] for r in store.list()] == [artifact_id]
