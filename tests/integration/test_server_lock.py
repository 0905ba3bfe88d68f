"""One server owns a state directory: a second `laneway server` on it is refused, naming the
process that holds it, and leaves the first one's router alone; once the holder is gone,
however it went, a server starts there again."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from laneway.testing import Server, free_port, make_server, poll_until

pytestmark = pytest.mark.integration


def second_server(first: Server) -> Server:
    """A server on `first`'s LANEWAY_HOME, on addresses of its own."""
    env = first.env | {"LANEWAY_FLAGS_SYNC": f"127.0.0.1:{free_port()}"}
    return Server(
        home=first.home,
        api=f"127.0.0.1:{free_port()}",
        router=f"127.0.0.1:{free_port()}",
        env=env,
    )


def test_a_second_server_on_one_state_directory_is_refused(tmp_path: Path):
    first = make_server(tmp_path / "lw")
    try:
        first.start()
        assert first.process is not None
        with first.http() as http:
            # the router starts in the server's first passes, maybe after it answers
            router_pid = poll_until(
                lambda: http.get("/api/v1/status").json()["router"]["pid"],
                what="the first server's router",
            )
        other = second_server(first)
        refused = subprocess.run(
            [sys.executable, "-m", "laneway.cli", "server", "--api", other.api],
            env=other.env | {"LANEWAY_ROUTER": other.router},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1, refused.stderr
        assert f"another laneway server (pid {first.process.pid}) is running" in refused.stderr
        assert "Traceback" not in refused.stderr
        with first.http() as http:
            status = http.get("/api/v1/status").json()
        assert status["router"]["pid"] == router_pid  # its router was not replaced

        first.kill(signal.SIGKILL)  # the kernel lets go of the lock with the process
        other.start()
        assert other.process is not None
        lock = (first.home / "state" / "server.lock").read_text()
        assert lock.strip() == str(other.process.pid)
        other.kill(signal.SIGTERM)
    finally:
        first.teardown()
