"""The local runtime and the resource providers against the real thing: processes on this
machine, databases on the PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sqlite3
import threading
from pathlib import Path

import psutil
import psycopg
import pytest

from laneway.resources.files import DirectoryProvider, SqliteProvider
from laneway.resources.postgres import PostgresProvider
from laneway.runtime.base import ProcessSpec
from laneway.runtime.fake import FakeRuntime
from laneway.runtime.local import LocalRuntime, scan
from laneway.testing import PG_ADMIN, wait_until


@pytest.fixture
def owner() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture
def runtime(owner: str):
    rt = LocalRuntime(owner)
    yield rt
    for process in rt.list_processes():
        rt.stop_process(process.key, timeout=2)


def spec(tmp_path: Path, command: str, *, index: int = 0) -> ProcessSpec:
    return ProcessSpec(
        environment_id="e1",
        service="web",
        index=index,
        release="v1",
        command=command,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "GREETING": "hello"},
        log_path=tmp_path / "logs" / f"web.{index}.log",
    )


@pytest.mark.parametrize("make", [LocalRuntime, lambda owner: FakeRuntime()], ids=["local", "fake"])
def test_runtime_contract(tmp_path: Path, owner: str, make):
    rt = make(owner)
    try:
        info = rt.start_process(spec(tmp_path, "echo $GREETING; exec sleep 30"))
        assert info.alive and info.key == "e1/web/0"
        again = rt.start_process(spec(tmp_path, "echo $GREETING; exec sleep 30"))
        assert again.pid == info.pid, "a second start must adopt, not duplicate"
        assert [p.key for p in rt.list_processes("e1")] == ["e1/web/0"]
        assert rt.list_processes("other") == []
        rt.stop_process("e1/web/0", timeout=5)
        rt.stop_process("e1/web/0", timeout=5)
        assert [p for p in rt.list_processes() if p.alive] == []
    finally:
        for p in rt.list_processes():
            rt.stop_process(p.key, timeout=2)


def test_processes_are_found_by_label_from_another_runtime(
    tmp_path: Path, runtime: LocalRuntime, owner: str
):
    info = runtime.start_process(spec(tmp_path, "exec sleep 30"))
    wait_until(lambda: scan(owner), what="the process to exec")
    other = LocalRuntime(owner)  # as after a control-plane restart
    found = other.list_processes()
    assert [(p.key, p.pid, p.release) for p in found] == [("e1/web/0", info.pid, "v1")]
    assert LocalRuntime("someone-else").list_processes() == []
    wait_until(lambda: (tmp_path / "logs" / "web.0.log").exists(), what="the log file")


def test_exit_codes_of_own_children_are_reported(tmp_path: Path, runtime: LocalRuntime):
    runtime.start_process(spec(tmp_path, "echo bye; exit 3"))
    dead = wait_until(lambda: [p for p in runtime.list_processes() if not p.alive], what="the exit")
    assert dead[0].exit_code == 3
    assert "bye" in (tmp_path / "logs" / "web.0.log").read_text()
    runtime.forget("e1/web/0")
    assert runtime.list_processes() == []


def test_stop_kills_the_whole_group_even_if_term_is_ignored(
    tmp_path: Path, runtime: LocalRuntime, owner: str
):
    info = runtime.start_process(spec(tmp_path, "trap '' TERM; sleep 30 & sleep 30; wait"))
    wait_until(lambda: scan(owner), what="the process")
    runtime.stop_process(info.key, timeout=0.3)
    wait_until(lambda: not _live_members(info.pid), timeout=5, what="the group to be gone")


def _live_members(pgid: int) -> list[int]:
    live = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                live.append(process.pid)
    return live


def test_a_killed_adopted_process_disappears(tmp_path: Path, runtime: LocalRuntime, owner: str):
    info = runtime.start_process(spec(tmp_path, "exec sleep 30"))
    os.kill(info.pid, signal.SIGKILL)
    other = LocalRuntime(owner)
    wait_until(
        lambda: not [p for p in other.list_processes() if p.alive], what="the process to be gone"
    )


def test_postgres_database_per_environment(owner: str):
    provider = PostgresProvider(PG_ADMIN, owner=owner, secret=b"s")
    try:
        url = provider.ensure("e1", "db")
        assert provider.ensure("e1", "db") == url, "ensure is idempotent and the password derived"
        other = provider.ensure("e2", "db")
        assert other != url
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.commit()
        with psycopg.connect(other) as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
            ).fetchone() == (0,)
        assert provider.owned_environments() == {"e1", "e2"}
        provider.destroy("e1", "db")
        provider.destroy("e1", "db")
        assert provider.owned_environments() == {"e2"}
    finally:
        for environment_id in provider.owned_environments():
            provider.destroy_all(environment_id)
    assert provider.owned_environments() == set()


def test_postgres_unreachable_is_a_clear_error():
    provider = PostgresProvider(
        "postgresql://postgres@127.0.0.1:1/postgres", owner="x", secret=b"s"
    )
    with pytest.raises(Exception) as caught:
        provider.ensure("e1", "db")
    assert "postgres: cannot connect to postgresql://postgres@127.0.0.1:1/postgres" in str(
        caught.value
    )


def test_file_resources(tmp_path: Path):
    sqlite_provider = SqliteProvider(tmp_path)
    url = sqlite_provider.ensure("e1", "cache")
    assert url == f"sqlite:///{tmp_path / 'e1' / 'data' / 'cache.sqlite3'}"
    sqlite3.connect(url.removeprefix("sqlite:///")).execute("CREATE TABLE t (x)").connection.close()
    assert sqlite_provider.ensure("e1", "cache") == url
    sqlite_provider.destroy("e1", "cache")
    assert not (tmp_path / "e1" / "data" / "cache.sqlite3").exists()
    directory = DirectoryProvider(tmp_path)
    path = Path(directory.ensure("e1", "uploads"))
    (path / "f").write_text("x")
    directory.destroy_all("e1")
    assert not path.exists()


def test_an_app_that_rewrites_its_environment_stays_visible(
    tmp_path: Path, runtime: LocalRuntime, owner: str
):
    # like setproctitle: the app's own environ loses the labels; the leading sh keeps them
    command = "env -i PATH=/usr/bin:/bin sh -c 'sleep 30 & wait'"
    info = runtime.start_process(spec(tmp_path, command))
    wait_until(lambda: len(_live_members(info.pid)) == 3, what="sh, env's sh and sleep")
    other = LocalRuntime(owner)  # as after a restart
    assert [p.pid for p in other.list_processes()] == [info.pid]
    assert len(_live_members(info.pid)) == 3, "a healthy group was taken for an orphan"


def test_members_of_a_group_whose_leader_died_are_stopped(
    tmp_path: Path, runtime: LocalRuntime, owner: str
):
    info = runtime.start_process(spec(tmp_path, "sleep 30 & sleep 31; wait"))
    wait_until(lambda: len(_live_members(info.pid)) == 3, what="the shell and its two children")
    os.kill(info.pid, signal.SIGKILL)
    other = LocalRuntime(owner)
    wait_until(
        lambda: not other.list_processes() and not _live_members(info.pid),
        timeout=10,
        what="the orphans to be stopped",
    )


def test_logs_rotate_while_the_process_keeps_writing(tmp_path: Path, runtime: LocalRuntime):
    from laneway.runtime import logfiles

    runtime.start_process(spec(tmp_path, "while true; do echo 0123456789; sleep 0.01; done"))
    log = tmp_path / "logs" / "web.0.log"
    wait_until(lambda: log.exists() and log.stat().st_size > 200, what="output")
    assert logfiles.rotate(log.parent, max_bytes=100) == [log]
    assert (log.parent / "web.0.log.1").stat().st_size > 200
    wait_until(lambda: 0 < log.stat().st_size < 5000, what="new output at the start of the file")
    assert log.read_text().splitlines()[0].strip("\0") == "0123456789"


def test_unlabelled_members_of_a_broken_group_are_stopped(tmp_path: Path, runtime: LocalRuntime):
    info = runtime.start_process(
        spec(tmp_path, "env -i PATH=/usr/bin:/bin sh -c 'sleep 30 & wait'")
    )
    wait_until(lambda: len(_live_members(info.pid)) == 3, what="the group")
    runtime.list_processes()  # the runtime has seen the group
    os.kill(info.pid, signal.SIGKILL)
    wait_until(
        lambda: (
            not [p for p in runtime.list_processes() if p.alive] and not _live_members(info.pid)
        ),
        timeout=10,
        what="the orphans to go",
    )


def test_a_group_draining_after_sigterm_is_left_alone(tmp_path: Path, runtime: LocalRuntime):
    drained = tmp_path / "drained"
    command = (
        f"(trap 'sleep 1; echo ok > {drained}; exit' TERM; while :; do sleep 0.05; done) & wait"
    )
    info = runtime.start_process(spec(tmp_path, command))
    wait_until(lambda: len(_live_members(info.pid)) == 3, what="sh, the subshell and its sleep")
    stopping = threading.Thread(
        target=runtime.stop_process, args=(info.key,), kwargs={"timeout": 10}
    )
    stopping.start()
    wait_until(lambda: info.pid not in _live_members(info.pid), what="the leader to exit")
    assert _live_members(info.pid), "the subshell drains"
    runtime.list_processes()  # a group whose leader is gone, but it is being stopped
    stopping.join()
    assert drained.read_text() == "ok\n", "a draining group was killed"
