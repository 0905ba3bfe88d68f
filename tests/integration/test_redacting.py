"""The filter between a process and its log file, as real processes: what it hides, and that
the process it wraps ends as it would have without it."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from pathlib import Path

import pytest

from laneway.runtime import redacting
from laneway.testing import poll_until

SECRET = "hunter2-is-a-password"


def start(
    tmp_path: Path, command: str | None, **extra: str
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "out.log"
    env = {"PATH": os.environ["PATH"], "TOKEN": SECRET, redacting.KEYS: "TOKEN,EMPTY", **extra}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            ["/bin/sh", "-c", "exec " + redacting.command(command)],
            env=env,
            stdin=subprocess.PIPE if command is None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


@pytest.fixture
def group():
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def test_a_wrapped_command_has_its_output_hidden_and_its_exit_code_kept(tmp_path: Path, group):
    encoded = base64.b64encode(SECRET.encode()).decode()
    process, log = start(
        tmp_path, f'echo "plain $TOKEN"; echo "b64 {encoded}" >&2; printf "no newline"; exit 7'
    )
    group.append(process)
    assert process.wait(timeout=30) == 7
    assert log.read_text() == "plain ***\nb64 ***\nno newline"


def test_a_command_killed_by_a_signal_ends_the_wrapper_by_it(tmp_path: Path, group):
    process, _ = start(tmp_path, "kill -KILL $$")
    group.append(process)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_sigterm_to_the_group_lets_the_process_say_its_last_words(tmp_path: Path, group):
    command = "trap 'echo \"stopping with $TOKEN\"; exit 0' TERM; echo ready; while :; do sleep 0.05; done"
    process, log = start(tmp_path, command)
    group.append(process)
    poll_until(lambda: "ready" in log.read_text(), timeout=30, what="the command to start")
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    said = log.read_text()  # between them, the shell may say that its `sleep` was terminated
    assert said.startswith("ready\n") and said.endswith("stopping with ***\n")


def test_a_program_that_drains_on_sigterm_is_heard_to_the_end(tmp_path: Path, group):
    program = (
        "import os, signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(0.5)\n"
        "    print('drained', os.environ['TOKEN'], flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    (tmp_path / "app.py").write_text(program)
    process, log = start(tmp_path, f"cd {tmp_path} && python3 app.py")
    group.append(process)
    poll_until(lambda: "ready" in log.read_text(), timeout=30, what="the program to start")
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM  # as a plain `sh -c` leader would
    assert log.read_text() == "ready\ndrained ***\n"


def test_a_daemon_left_holding_the_output_does_not_keep_the_wrapper(tmp_path: Path, group):
    process, log = start(tmp_path, "sleep 600 & echo $TOKEN started; exit 3")
    group.append(process)
    assert process.wait(timeout=60) == 3  # long before the daemon's 600 s
    assert log.read_text() == "*** started\n"


def test_as_a_pipe_it_filters_its_input(tmp_path: Path, group):
    process, log = start(tmp_path, None)
    group.append(process)
    assert process.stdin is not None
    process.stdin.write(f"a {SECRET[:5]}".encode())
    process.stdin.flush()
    process.stdin.write(f"{SECRET[5:]} b\n{SECRET.encode().hex()}\n".encode())
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    assert log.read_text() == "a *** b\n***\n"


def test_it_runs_this_very_laneway_whatever_the_environment_says(tmp_path: Path, group):
    decoy = tmp_path / "decoy" / "laneway"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the wrong laneway')\n")
    process, log = start(tmp_path, "echo $TOKEN", PYTHONPATH=str(decoy.parent))
    group.append(process)
    assert process.wait(timeout=30) == 0
    assert log.read_text() == "***\n"


def test_a_wrapped_command_leaves_its_own_last_output_when_it_ends(tmp_path: Path, group):
    """The log file may be shared with the same replica of an earlier release; the tail file
    holds only this command's last output (redacted, at most TAIL_BYTES), and the command
    does not see where it goes."""
    tail = tmp_path / "web.0.v2.tail"
    (tmp_path / "out.log").write_text("an earlier release's line\n")
    lines = "; ".join(f"echo line-{n}" for n in range(2000))
    process, log = start(
        tmp_path,
        f'{lines}; echo "seen: ${{{redacting.TAIL}:-none}}"; echo "last $TOKEN"; exit 4',
        **{redacting.TAIL: str(tail)},
    )
    group.append(process)
    assert process.wait(timeout=30) == 4
    left = tail.read_bytes()
    assert left.endswith(b"line-1999\nseen: none\nlast ***\n")
    assert len(left) == redacting.TAIL_BYTES
    assert b"an earlier release" not in left and b"an earlier release" in log.read_bytes()
