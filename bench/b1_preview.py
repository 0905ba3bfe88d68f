"""B1: a preview environment from an already-built artifact to its first 200 through the router.

Starts a laneway server on ports chosen at run time, builds the example app once, then creates
and destroys a preview from that build (`--warmup` runs not counted, then `--runs`). Each run
is timed from the API request to the first 200 answered through the router (polled every
5 ms) and broken down with the environment's own event timestamps from the events API:

    API request      POST sent -> "created" event
    unpack           phase "unpacking the build" -> "unpacked"
    provision        phase "provisioning <resources>" -> last "provisioned"
    release hook     "release hook: ..." -> "release hook succeeded"
    process start    phase "starting" -> last "started" (every replica spawned)
    health + route   last "started" -> first 200 through the router (web boots, probes
                     pass, the router loads the table; "running" is said only after that)
    between passes   the rest: the reconciler's waits between one step's pass and the next

so that the steps of every run add up to its total exactly. Then (`--components N`, 0 to
skip) it times the pieces alone, N times each: unpacking the artifact, creating the database
and role, Python and psycopg start-up, the release hook, and the web service's boot.

By default (`--deps vendored`) the bench's copy of the example commits the packages
`requirements.txt` pins, copied from this Python's site-packages (same versions, checked-hash
byte code as `pip install --target .deps` writes under the build's SOURCE_DATE_EPOCH), and
its build command only checks they are there: the build needs no package index and no
network. `--deps pip` builds with the example's own command instead (needs an index).

Columns: median, p90 (nearest rank), min, max and mean of the counted runs, in ms. The client
polls the router every 5 ms, so "route" carries up to 5 ms of polling.

Loopback only; everything it starts (server, router, app processes, databases, roles,
files) is stopped and dropped at the end, also on failure or Ctrl-C.

    python bench/b1_preview.py [--runs 15] [--warmup 1] [--components 5] [--deps vendored|pip]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import os
import py_compile
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from laneway.builds.artifacts import ArtifactStore
from laneway.cli.demo import example_source
from laneway.resources.postgres import PostgresProvider
from laneway.settings import load_settings
from laneway.testing import Server, free_port, git, make_server, wait_until

APP = "shop"
RUN_TIMEOUT = 60.0  # seconds one create (or destroy) may take before the bench gives up
STEPS = (
    "API request",
    "unpack + provision",
    "release hook",
    "process start",
    "health + route",
    "between passes",
)


# -- the app --------------------------------------------------------------------------------


def make_repo(root: Path, deps: str) -> Path:
    repo = root / APP
    shutil.copytree(example_source(), repo, ignore=shutil.ignore_patterns("__pycache__", ".deps"))
    if deps == "vendored":
        vendor(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-q", "-m", APP)
    return repo


def vendor(repo: Path) -> None:
    """Copy the installed distributions `requirements.txt` pins (and what they require) into
    `.deps`, and make the build command a check that they are there."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        raise SystemExit("--deps vendored needs the `packaging` module; use --deps pip") from None
    target = repo / ".deps"
    queue = [
        Requirement(line.split("#", 1)[0].strip())
        for line in (repo / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    done: set[str] = set()
    while queue:
        requirement = queue.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in done:
            continue
        done.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed here; use --deps pip") from None
        if dist.version not in requirement.specifier:
            raise SystemExit(
                f"{name} {dist.version} is installed, the example wants {requirement}; "
                "use --deps pip"
            )
        base = Path(str(dist.locate_file("")))
        for file in dist.files or ():
            if file.parts[0] == "..":
                continue  # console scripts: none of shop's packages has one
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(base / file, destination)
        for text in dist.requires or ():
            required = Requirement(text)
            extras = requirement.extras or {""}
            if required.marker is None or any(
                required.marker.evaluate({"extra": extra}) for extra in extras
            ):
                queue.append(required)
    # As `pip install` does under the build's SOURCE_DATE_EPOCH: byte code checked by hash,
    # which stays valid when the artifact resets every mtime (timestamp-checked .pyc files
    # copied from site-packages would go stale, and each environment would recompile them).
    compileall.compile_dir(
        target, quiet=1, force=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
    spec = repo / "laneway.yaml"
    text, count = re.subn(
        r"(?m)^(  command: )pip install .*$",
        r"\1test -f .deps/psycopg/__init__.py  # vendored by bench/b1_preview.py",
        spec.read_text(),
    )
    assert count == 1, "the example's build command changed; update vendor()"
    spec.write_text(text)


def artifact_stats(store: ArtifactStore, build: str) -> tuple[int, int]:
    """(members, bytes of file contents) of an artifact."""
    with tarfile.open(store.path(build)) as tar:
        members = tar.getmembers()
    return len(members), sum(m.size for m in members if m.isfile())


# -- one run ---------------------------------------------------------------------------------


def timestamp(event: dict) -> float:
    return datetime.fromisoformat(event["time"]).timestamp()


class Timeline:
    """Walks an environment's events in order, so that each boundary comes after the last."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events
        self.cursor = 0

    def find(self, matches: Callable[[dict], bool], *, last_of_run: bool = False) -> float:
        for index in range(self.cursor, len(self.events)):
            if matches(self.events[index]):
                if last_of_run:  # the last of consecutive matches (several replicas, resources)
                    while index + 1 < len(self.events) and matches(self.events[index + 1]):
                        index += 1
                self.cursor = index + 1
                return timestamp(self.events[index])
        seen = "\n".join(f"  {e['type']}: {e['message']}" for e in self.events)
        raise AssertionError(f"event missing from the timeline; events:\n{seen}")


def is_(kind: str, prefix: str = "") -> Callable[[dict], bool]:
    return lambda e: e["type"] == kind and e["message"].startswith(prefix)


def one_run(http: httpx.Client, probe: httpx.Client, build: str, name: str) -> dict[str, float]:
    base = f"/api/v1/apps/{APP}/environments"
    host = {"Host": f"{name}.{APP}.localhost"}
    t0 = time.time()
    response = http.post(base, json={"name": name, "kind": "preview", "build": build})
    response.raise_for_status()

    polls = 0

    def answered() -> bool:
        nonlocal polls
        if probe.get("/", headers=host).status_code == 200:
            return True
        polls += 1
        if polls % 100 == 0:  # every half second or so: give up early on a failed create
            status = http.get(f"{base}/{name}").json()
            if status.get("phase") in ("failed", "degraded"):
                raise AssertionError(f"{name} is {status['phase']}: {status.get('message')}")
        return False

    wait_until(answered, timeout=RUN_TIMEOUT, interval=0.005, what=f"{name} to answer 200")
    t1 = time.time()
    events = http.get(f"{base}/{name}/events").json()
    http.delete(f"{base}/{name}").raise_for_status()
    wait_until(
        lambda: http.get(f"{base}/{name}").status_code == 404,
        timeout=RUN_TIMEOUT,
        what=f"{name} to be destroyed",
    )

    line = Timeline(events)
    b = [t0]
    b.append(line.find(is_("created")))
    b.append(line.find(is_("phase", "provisioning: unpacking")))
    start = line.cursor
    unpacked = line.find(is_("unpacked"))
    line.cursor = start
    provisioned = line.find(is_("provisioned"), last_of_run=True)
    line.cursor = max(line.cursor, start + 1)
    b.append(max(unpacked, provisioned))  # the two run side by side
    b.append(line.find(is_("hook", "release hook: ")))
    b.append(line.find(is_("hook", "release hook succeeded")))
    b.append(line.find(is_("phase", "starting:")))
    b.append(line.find(is_("started"), last_of_run=True))
    b.append(t1)
    if any(later < earlier for earlier, later in zip(b, b[1:], strict=False)):
        raise AssertionError(f"{name}: event times out of order: {b}")
    d = [later - earlier for earlier, later in zip(b, b[1:], strict=False)]
    run = {
        "total": t1 - t0,
        "API request": d[0],
        "unpack + provision": d[2],
        "release hook": d[4],
        "process start": d[6],
        "health + route": d[7],
        "between passes": d[1] + d[3] + d[5],
    }
    assert abs(sum(run[s] for s in STEPS) - run["total"]) < 1e-6
    return run


# -- the pieces alone ------------------------------------------------------------------------


def timed(work: Callable[..., object], *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    work(*args, **kwargs)
    return time.perf_counter() - started


def sh(command: str, *, cwd: Path, env: dict[str, str], timeout: float = 60) -> None:
    """Run `command` and return as soon as it exits. (`subprocess.run(timeout=...)` would
    poll for the exit with sleeps growing to 50 ms, and so add up to 50 ms to what is timed.)
    """
    process = spawn(command, cwd, env)
    watchdog = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
    watchdog.start()
    try:
        code = process.wait()
    finally:
        watchdog.cancel()
    if code != 0:
        raise AssertionError(f"`{command}` exited {code}")


def spawn(command: str, tree: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["/bin/sh", "-c", f"exec {command}"],
        cwd=tree,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def web_boot(tree: Path, env: dict[str, str], *, with_worker: bool) -> tuple[float, float]:
    """Start `python -m shop.web` (and the worker alongside, as a create does); seconds to
    its port accepting a connection, and to its /healthz answering 200 (polled every 2 ms)."""
    port = free_port()
    started = time.perf_counter()
    processes = [spawn("python -m shop.web", tree, {**env, "PORT": str(port)})]
    if with_worker:
        processes.append(spawn("python -m shop.worker", tree, env))
    listening = 0.0
    try:
        with httpx.Client(timeout=5) as client:
            deadline = time.monotonic() + RUN_TIMEOUT
            while time.monotonic() < deadline:
                if processes[0].poll() is not None:
                    raise AssertionError(f"shop.web exited {processes[0].returncode}")
                if not listening:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    except OSError:
                        time.sleep(0.002)
                        continue
                    listening = time.perf_counter() - started
                if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return listening, time.perf_counter() - started
                time.sleep(0.002)
            raise AssertionError("shop.web did not answer 200 on /healthz")
    finally:
        for process in processes:
            stop(process)


def postgres_pieces(
    admin: psycopg.Connection, url: str, provider: PostgresProvider, i: int
) -> list[tuple[str, float]]:
    """What provisioning is made of, and what a pool of databases made ahead would cost."""
    name = provider.database_name(f"b1probe{i}", "db")
    made, claimed, role = (sql.Identifier(name + suffix) for suffix in ("x", "p", "r"))
    run = admin.execute
    pieces = [
        ("  connect", timed(lambda: psycopg.connect(url).close())),
        ("  CREATE DATABASE", timed(run, sql.SQL("CREATE DATABASE {}").format(made))),
    ]
    run(sql.SQL("DROP DATABASE {}").format(made))
    statement = sql.SQL("CREATE DATABASE {} STRATEGY FILE_COPY").format(made)
    pieces.append(("  CREATE DATABASE FILE_COPY", timed(run, statement)))

    def claim() -> None:  # the database was made ahead: rename it and hand it over
        run(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'b1'").format(role))
        run(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(made, claimed))
        run(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(claimed, role))

    pieces.append(("  claim a pre-made database", timed(claim)))
    pieces.append(("  DROP DATABASE", timed(run, sql.SQL("DROP DATABASE {}").format(claimed))))
    run(sql.SQL("DROP ROLE {}").format(role))
    return pieces


def components(server: Server, build: str, rounds: int) -> dict[str, list[float]]:
    """Each piece of a create alone, `rounds` times; seconds per piece."""
    settings = load_settings(environ=server.env)
    store = ArtifactStore(settings.artifacts)
    provider = PostgresProvider(settings.postgres_url, owner=settings.owner, secret=b"b1")
    out: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        out.setdefault(key, []).append(seconds)

    scratch = Path(tempfile.mkdtemp(prefix="b1-pieces-", dir=settings.home))
    shm = Path("/dev/shm")
    shm_scratch: Path | None = None
    if shm.is_dir() and os.access(shm, os.W_OK):
        shm_scratch = Path(tempfile.mkdtemp(prefix="laneway-b1-", dir=shm))
    probes: list[str] = []
    try:
        tree = store.tree(build)  # shared, read-only: what the app commands below run in
        for i in range(rounds):
            add("unpack (verify)", timed(store.unpack, build, scratch / f"v{i}"))
            add("unpack (no verify)", timed(store.unpack, build, scratch / f"n{i}", verify=False))
            if shm_scratch is not None:
                add("unpack to tmpfs", timed(store.unpack, build, shm_scratch / f"v{i}"))
            add("shared tree()", timed(store.tree, build))
            linked = scratch / f"l{i}"
            add(
                "hardlink copy of tree()",
                timed(shutil.copytree, tree, linked, copy_function=os.link),
            )

        with psycopg.connect(settings.postgres_url, autocommit=True) as admin:
            for i in range(rounds):
                environment = f"b1probe{i}"
                probes.append(environment)
                started = time.perf_counter()
                url = provider.ensure(environment, "db")
                add("provision ensure()", time.perf_counter() - started)
                for key, seconds in postgres_pieces(admin, settings.postgres_url, provider, i):
                    add(key, seconds)
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": os.environ.get("HOME", "/"),
                    "PYTHONPATH": ".deps",
                    "PYTHONDONTWRITEBYTECODE": "1",  # tree() is shared: nothing writes into it
                    "DATABASE_URL": url,
                }
                for key, command in (
                    ("python -c pass", "python -c pass"),
                    ("python: import psycopg", "python -c 'import psycopg'"),
                    ("release hook alone", "python -m shop.migrate"),
                ):
                    add(key, timed(sh, command, cwd=tree, env=env))
                # The hook waited for as the reconciler does: subprocess.run with a timeout.
                hook = ["/bin/sh", "-c", "python -m shop.migrate"]
                polled = timed(
                    subprocess.run,
                    hook,
                    cwd=tree,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    timeout=600,
                    check=True,
                )
                add("  same, run(timeout=600)", polled)
                listening, healthy = web_boot(tree, env, with_worker=False)
                add("web alone: port open", listening)
                add("web alone: /healthz 200", healthy)
                listening, healthy = web_boot(tree, env, with_worker=True)
                add("web + worker: port open", listening)
                add("web + worker: /healthz 200", healthy)
                provider.destroy_all(environment)
    finally:
        for environment in probes:
            provider.destroy_all(environment)
        shutil.rmtree(scratch, ignore_errors=True)
        if shm_scratch is not None:
            shutil.rmtree(shm_scratch, ignore_errors=True)
    return out


# -- report ----------------------------------------------------------------------------------


def table(title: str, rows: dict[str, list[float]], *, mean: bool = False) -> str:
    head = f"{'':<28}{'median':>8}{'p90':>8}{'min':>8}{'max':>8}" + (f"{'mean':>8}" if mean else "")
    lines = [title, head]
    for key, seconds in rows.items():
        values = sorted(s * 1000 for s in seconds)
        p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
        line = f"{key:<28}{statistics.median(values):>8.0f}{p90:>8.0f}{values[0]:>8.0f}{values[-1]:>8.0f}"
        lines.append(line + (f"{statistics.fmean(values):>8.0f}" if mean else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=1, help="runs made first and not counted")
    parser.add_argument("--components", type=int, default=5, help="rounds of the pieces alone")
    parser.add_argument("--deps", choices=("vendored", "pip"), default="vendored")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="laneway-b1-") as tmp:
        root = Path(tmp)
        repo = make_repo(root, args.deps)
        server = make_server(root / "home")
        try:
            server.start()
            server.cli("build", "main", cwd=repo, timeout=600)
            with (
                server.http() as http,
                httpx.Client(base_url=server.router_url, timeout=5) as probe,
            ):
                build = http.get(f"/api/v1/apps/{APP}/builds").json()[0]["id"]
                warmup = [one_run(http, probe, build, f"w{i}") for i in range(args.warmup)]
                runs = [one_run(http, probe, build, f"b1-{i}") for i in range(args.runs)]
            settings = load_settings(environ=server.env)
            members, size = artifact_stats(ArtifactStore(settings.artifacts), build)
            # The server's garbage collector would drop the probes' databases (they belong
            # to no environment) under the pieces' feet: stop it first.
            server.kill(signal.SIGTERM)
            pieces = components(server, build, args.components) if args.components else {}
        finally:
            server.teardown()

    print(
        f"B1: preview from a cached build to its first 200 through the router, ms "
        f"({args.runs} runs after {args.warmup} warm-up; {datetime.now():%Y-%m-%d %H:%M})"
    )
    warm = ", ".join(f"{w['total'] * 1000:.0f}" for w in warmup) or "-"
    print(
        f"artifact: {members} members, {size / 1e6:.1f} MB of files; deps {args.deps}; "
        f"warm-up total ms: {warm}"
    )
    steps = {key: [run[key] for run in runs] for key in ("total", *STEPS)}
    print(table("", steps, mean=True))
    print("(each run's steps add up to its total; so do the means, not the medians)")
    if pieces:
        print()
        print(
            table(
                f"the pieces alone, ms ({args.components} round{'s' * (args.components != 1)})",
                pieces,
            )
        )


if __name__ == "__main__":
    main()
