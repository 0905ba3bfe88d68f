"""builder.build and builds.git against real git repositories made in tmp_path."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from laneway.builds import artifacts, builder, git
from laneway.builds.artifacts import ArtifactStore
from laneway.errors import BuildFailed, InvalidInput, SpecError, UnsafeArtifact

pytestmark = pytest.mark.integration

SPEC = """\
app: shop
build:
  command: {command}
services:
  web:
    command: python -m http.server $PORT
"""


def run_git(repo: Path, *args: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    environment.update(
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    ).stdout.strip()


def commit_files(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD")


def spec_with(command: str) -> str:
    return SPEC.format(command=command)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    run_git(path, "init", "-q", "-b", "main")
    return path


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "work"


def test_build_uses_the_commit_not_the_work_tree(
    repo: Path, store: ArtifactStore, workdir: Path, tmp_path: Path
) -> None:
    commit = commit_files(
        repo,
        {
            "laneway.yaml": spec_with("echo built > output.txt"),
            "app.py": "print('committed')\n",
        },
    )
    # dirty and untracked files must not reach the build
    (repo / "app.py").write_text("print('dirty')\n")
    (repo / "untracked.txt").write_text("not committed\n")
    (repo / "laneway.yaml").write_text(spec_with("echo from-work-tree > output.txt"))

    result = builder.build(repo, "main", store=store, workdir=workdir)

    assert result.commit == commit and result.ref == "main" and not result.cached
    assert result.spec.app == "shop"
    assert result.spec.build.command == "echo built > output.txt"
    assert result.spec_digest.startswith("sha256:")
    out = tmp_path / "unpacked"
    store.unpack(result.id, out)
    assert (out / "app.py").read_text() == "print('committed')\n"
    assert (out / "output.txt").read_text() == "built\n"
    assert not (out / "untracked.txt").exists()
    assert not (out / ".git").exists()
    record = store.metadata(result.id)
    assert record["commit"] == commit and record["ref"] == "main" and record["app"] == "shop"
    assert record["spec_digest"] == result.spec_digest
    assert record["build_command"] == "echo built > output.txt"
    assert record["builder_version"] and record["created"] and record["size"] > 0
    # the scratch directory is gone
    assert list(workdir.iterdir()) == []


def test_output_is_streamed_line_by_line_and_logged(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    command = "echo one; echo two >&2; printf 'three'"
    commit_files(repo, {"laneway.yaml": spec_with(f'"{command}"')})
    seen: list[str] = []
    result = builder.build(repo, "main", store=store, workdir=workdir, on_output=seen.append)
    assert seen == ["one", "two", "three"]
    assert store.log(result.id) == "one\ntwo\nthree\n"
    assert result.log_tail == "one\ntwo\nthree"


def test_clean_environment(repo: Path, store: ArtifactStore, workdir: Path, tmp_path: Path) -> None:
    command = "env | sort > env.txt; pwd > pwd.txt"
    commit_files(repo, {"laneway.yaml": spec_with(f'"{command}"')})
    os.environ["LANEWAY_TEST_LEAK"] = "leaked"
    try:
        result = builder.build(
            repo, "main", store=store, workdir=workdir, env={"PIP_INDEX_URL": "http://index"}
        )
    finally:
        del os.environ["LANEWAY_TEST_LEAK"]
    out = tmp_path / "out"
    store.unpack(result.id, out)
    environment = dict(
        line.split("=", 1) for line in (out / "env.txt").read_text().splitlines() if "=" in line
    )
    assert "LANEWAY_TEST_LEAK" not in environment
    assert environment["LANEWAY_BUILD_COMMIT"] == result.commit
    assert environment["LANEWAY_BUILD_REF"] == "main"
    assert environment["PIP_INDEX_URL"] == "http://index"
    assert environment["HOME"].startswith(str(workdir))
    assert environment["PATH"]
    assert (out / "pwd.txt").read_text().strip().startswith(str(workdir))


def test_rebuild_is_a_cache_hit_that_runs_nothing(
    repo: Path, store: ArtifactStore, workdir: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs.txt"
    commit_files(repo, {"laneway.yaml": spec_with(f"echo run >> {counter}; echo building")})
    first = builder.build(repo, "main", store=store, workdir=workdir)
    seen: list[str] = []
    second = builder.build(repo, "main", store=store, workdir=workdir, on_output=seen.append)
    assert counter.read_text() == "run\n"
    assert second.cached and not first.cached
    assert second.id == first.id and second.commit == first.commit
    assert second.log_tail == "building"
    assert seen == []
    # the same commit through another name is the same build
    run_git(repo, "branch", "feature/checkout")
    third = builder.build(repo, "feature/checkout", store=store, workdir=workdir)
    assert third.cached and third.id == first.id and third.ref == "feature/checkout"
    # build-time credentials do not make another build: what is promoted is what was built
    fourth = builder.build(repo, "main", store=store, workdir=workdir, env={"TOKEN": "x"})
    assert fourth.cached and fourth.id == first.id
    # a new commit is a new build
    commit_files(repo, {"README": "changed\n"})
    fifth = builder.build(repo, "main", store=store, workdir=workdir)
    assert not fifth.cached and fifth.id != first.id
    assert counter.read_text() == "run\nrun\n"


def test_failing_command_stores_nothing(repo: Path, store: ArtifactStore, workdir: Path) -> None:
    command = "for i in $(seq 1 30); do echo line $i; done; exit 3"
    commit = commit_files(repo, {"laneway.yaml": spec_with(f'"{command}"')})
    with pytest.raises(BuildFailed) as raised:
        builder.build(repo, "main", store=store, workdir=workdir)
    assert str(raised.value) == f"build of main (commit {commit[:12]}) failed: command exited 3"
    assert raised.value.hint == "\n".join(f"line {i}" for i in range(11, 31))
    assert store.list() == []
    assert list(workdir.iterdir()) == []
    # a failed build is not cached: a rebuild runs the command again
    with pytest.raises(BuildFailed):
        builder.build(repo, "main", store=store, workdir=workdir)


def test_timeout_kills_the_command_and_its_children(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    command = "sleep 60 & echo child $!; exec sleep 60"
    commit = commit_files(repo, {"laneway.yaml": spec_with(f'"{command}"')})
    with pytest.raises(BuildFailed) as raised:
        builder.build(repo, "main", store=store, workdir=workdir, timeout=0.5)
    assert (
        str(raised.value)
        == f"build of main (commit {commit[:12]}) failed: command timed out after 0.5s"
    )
    assert raised.value.hint is not None and raised.value.hint.startswith("child ")
    assert store.list() == []
    assert list(workdir.iterdir()) == []
    # the whole process group is gone, not just the shell: the background child exits too
    child = int(raised.value.hint.split()[1])
    try:
        pidfd = os.pidfd_open(child)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([pidfd], [], [], 10)
    finally:
        os.close(pidfd)
    assert readable, f"background child {child} outlived the build"


def test_background_process_does_not_hold_the_build(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    # a daemon left holding stdout would otherwise keep the build waiting until the timeout
    command = "sleep 60 & echo done"
    commit_files(repo, {"laneway.yaml": spec_with(f'"{command}"')})
    result = builder.build(repo, "main", store=store, workdir=workdir, timeout=30)
    assert result.log_tail == "done"


def test_no_build_command_still_makes_an_artifact(
    repo: Path, store: ArtifactStore, workdir: Path, tmp_path: Path
) -> None:
    spec = "app: shop\nservices:\n  web:\n    command: ./serve\n"
    commit_files(repo, {"laneway.yaml": spec, "serve": "#!/bin/sh\n"})
    run_git(repo, "update-index", "--chmod=+x", "serve")
    run_git(repo, "commit", "-q", "-m", "exec")
    result = builder.build(repo, "main", store=store, workdir=workdir)
    assert result.log_tail == ""
    out = tmp_path / "out"
    store.unpack(result.id, out)
    assert os.access(out / "serve", os.X_OK)
    assert store.metadata(result.id)["build_command"] is None


def test_unknown_ref(repo: Path, store: ArtifactStore, workdir: Path) -> None:
    commit_files(repo, {"laneway.yaml": spec_with("echo ok")})
    with pytest.raises(InvalidInput, match=f"no such branch or commit 'nope' in {repo}"):
        builder.build(repo, "nope", store=store, workdir=workdir)
    with pytest.raises(InvalidInput, match="invalid branch or commit '--output=x'"):
        builder.build(repo, "--output=x", store=store, workdir=workdir)


def test_not_a_repository(tmp_path: Path, store: ArtifactStore, workdir: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidInput, match="is not a git repository"):
        builder.build(plain, "main", store=store, workdir=workdir)


def test_missing_and_invalid_spec(repo: Path, store: ArtifactStore, workdir: Path) -> None:
    commit = commit_files(repo, {"README": "hi\n"})
    (repo / "laneway.yaml").write_text(spec_with("echo ok"))  # only in the work tree
    with pytest.raises(InvalidInput, match=f"{commit[:12]} \\(main\\) .* has no laneway.yaml"):
        builder.build(repo, "main", store=store, workdir=workdir)
    commit = commit_files(repo, {"laneway.yaml": "app: Not A Label\nservices: {}\n"})
    with pytest.raises(SpecError, match=f"laneway.yaml@{commit[:12]}"):
        builder.build(repo, "main", store=store, workdir=workdir)
    assert store.list() == []


def test_branch_names_and_short_shas_resolve(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    first = commit_files(repo, {"laneway.yaml": spec_with("echo v1 > v")})
    run_git(repo, "checkout", "-q", "-b", "feature/checkout")
    second = commit_files(repo, {"laneway.yaml": spec_with("echo v2 > v")})
    run_git(repo, "checkout", "-q", "main")
    assert git.resolve(repo, "feature/checkout") == second
    assert git.resolve(repo, "main") == first
    assert git.resolve(repo, first[:10]) == first
    assert git.resolve(repo, "HEAD") == first
    result = builder.build(repo, "feature/checkout", store=store, workdir=workdir)
    assert result.commit == second and result.spec.build.command == "echo v2 > v"
    assert git.current_branch(repo) == "main"
    assert git.branches_containing(repo, first) == ["feature/checkout", "main"]
    assert git.branches_containing(repo, second) == ["feature/checkout"]
    run_git(repo, "checkout", "-q", "--detach", second)
    assert git.current_branch(repo) is None


def test_git_helpers(repo: Path, tmp_path: Path) -> None:
    commit = commit_files(repo, {"laneway.yaml": "x: 1\n", "sub/dir/file.txt": "deep\n"})
    assert git.is_repo(repo)
    assert not git.is_repo(tmp_path / "missing")
    assert git.show_file(repo, commit, "laneway.yaml") == "x: 1\n"
    assert git.show_file(repo, commit, "sub/dir/file.txt") == "deep\n"
    assert git.show_file(repo, commit, "absent.yaml") is None
    with pytest.raises(InvalidInput, match="is a tree"):
        git.show_file(repo, commit, "sub")
    target = tmp_path / "tree"
    git.export_tree(repo, commit, target)
    assert (target / "sub" / "dir" / "file.txt").read_text() == "deep\n"
    with pytest.raises(InvalidInput, match="not empty"):
        git.export_tree(repo, commit, target)


def test_export_refuses_a_commit_with_a_symlink_out_of_the_tree(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    commit_files(repo, {"laneway.yaml": spec_with("echo ok")})
    (repo / "etc").symlink_to("/etc")
    run_git(repo, "add", "etc")
    run_git(repo, "commit", "-q", "-m", "link")
    with pytest.raises(UnsafeArtifact, match="'etc' is a symlink to '/etc'"):
        builder.build(repo, "main", store=store, workdir=workdir)
    assert list(workdir.iterdir()) == []


def test_interrupted_build_leaves_no_scratch(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    commit_files(repo, {"laneway.yaml": spec_with('"echo one; echo two"')})

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        builder.build(repo, "main", store=store, workdir=workdir, on_output=interrupt)
    assert list(workdir.iterdir()) == []
    assert store.list() == []


def test_read_only_output_is_cleaned_up(repo: Path, store: ArtifactStore, workdir: Path) -> None:
    # Go's module cache and some package managers leave read-only directories behind
    command = "mkdir -p $HOME/cache/ro && touch $HOME/cache/ro/f && chmod 555 $HOME/cache/ro"
    commit_files(repo, {"laneway.yaml": spec_with(f'"{command}"')})
    builder.build(repo, "main", store=store, workdir=workdir)
    assert list(workdir.iterdir()) == []


def test_unpacked_build_runs(
    repo: Path, store: ArtifactStore, workdir: Path, tmp_path: Path
) -> None:
    commit_files(
        repo,
        {
            "laneway.yaml": spec_with(f"{sys.executable} -m compileall -q pkg"),
            "pkg/__init__.py": "VALUE = 42\n",
        },
    )
    result = builder.build(repo, "main", store=store, workdir=workdir)
    out = tmp_path / "env"
    store.unpack(result.id, out)
    assert any((out / "pkg" / "__pycache__").iterdir())
    probe = subprocess.run(
        [sys.executable, "-c", "import pkg; print(pkg.VALUE)"],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "42"
    assert artifacts.MARKER in os.listdir(out)


def test_spec_env_and_build_path_apply_to_the_build(
    repo: Path, store: ArtifactStore, workdir: Path
) -> None:
    spec = (
        "app: shop\n"
        "build:\n"
        "  command: mkdir -p tools && printf '#!/bin/sh\\necho tool ran\\n' > tools/mytool"
        " && chmod +x tools/mytool && mytool && echo $GREETING\n"
        "  path: [tools]\n"
        "env: {GREETING: hello}\n"
        "services:\n  web: {command: x}\n"
    )
    commit_files(repo, {"laneway.yaml": spec})
    seen: list[str] = []
    builder.build(repo, "main", store=store, workdir=workdir, on_output=seen.append)
    assert seen == ["tool ran", "hello"]
