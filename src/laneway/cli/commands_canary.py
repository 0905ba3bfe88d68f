"""`laneway canary start|status|pause|resume|promote|abort`: canary rollouts.

`start` is a deploy whose new release takes a share of the clients in steps, each judged
against the stable release by the router's measurements. `--wait` follows it until it is
promoted (exit 0) or aborted (exit 1, with the verdict that decided), so a CI step can gate
on it; `status -f` shows it live. The other verbs record intent and print the status.
"""

from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.commands_approvals import held
from laneway.cli.options import (
    AppOpt,
    JsonOpt,
    RepoOpt,
    app_of,
    check_build,
    env_arg,
    register_app,
    which_app,
)
from laneway.errors import InvalidInput, LanewayError, Unavailable

canary_app = typer.Typer(
    help="Canary rollouts: a share of clients in steps, judged, promoted or aborted.",
    no_args_is_help=True,
)

ENDED = ("promoted", "aborted")
OUTCOME_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def _path(app: str, environment: str, *rest: str) -> Any:
    return path("apps", app, "environments", environment, "canary", *rest)


def _steps(text: str | None) -> list[float | str] | None:
    """`1,5,pause,25,pause 10m,100` -> [1.0, 5.0, "pause", 25.0, "pause 10m", 100.0]."""
    if text is None:
        return None
    steps: list[float | str] = []
    for number, part in enumerate(text.split(","), 1):
        item = part.strip().removesuffix("%")
        if item.startswith("pause"):
            steps.append(item)
            continue
        try:
            steps.append(float(item))
        except ValueError:
            raise InvalidInput(
                f"--steps: step {number} is {part.strip()!r}: a percent (0.1, 5, 100) or "
                "`pause` / `pause 10m`"
            ) from None
    return steps


@canary_app.command()
def start(
    environment: str = env_arg(),
    ref: str | None = typer.Option(None, "--ref", help="Git ref to roll out (built if needed)."),
    build: str | None = typer.Option(
        None, "--build", help="Build id (or a prefix).", callback=check_build
    ),
    steps: str | None = typer.Option(
        None, "--steps", help="Percents of clients, comma-separated: `1,5,pause,50,100`."
    ),
    interval: str | None = typer.Option(
        None, "--interval", help="How long each weight is held and judged (`2m`)."
    ),
    warmup: str | None = typer.Option(
        None, "--warmup", help="How long each weight serves before it is measured (`30s`)."
    ),
    failure_limit: int | None = typer.Option(
        None, "--failure-limit", help="Failed verdicts tolerated."
    ),
    min_requests: int | None = typer.Option(
        None, "--min-requests", help="Requests each side needs for a verdict."
    ),
    max_error_rate: float | None = typer.Option(
        None, "--max-error-rate", help="A limit on the canary's failed requests, in percent."
    ),
    max_latency: str | None = typer.Option(
        None, "--max-latency", help="A limit on the canary's latency percentile (`500ms`)."
    ),
    hotfix: bool = typer.Option(False, "--hotfix", help="Bypass the pipeline's protection."),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --hotfix)."),
    wait: bool = typer.Option(
        False, "--wait", help="Follow it; exit 0 once promoted, 1 if aborted."
    ),
    timeout: float = typer.Option(7200.0, "--timeout", help="Seconds --wait waits at most."),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Roll a ref or a build out to ENV as a canary (steps and limits from the live spec's
    `canary:` section unless given here)."""
    if (ref is None) == (build is None):
        raise InvalidInput("give exactly one of --ref or --build")
    name, root = app_of(repo, app_name)
    client = Client()
    if ref is not None:
        register_app(client, name, root)
    body = {
        "ref": ref,
        "build": build,
        "steps": _steps(steps),
        "interval": interval,
        "warmup": warmup,
        "failure_limit": failure_limit,
        "min_requests": min_requests,
        "max_error_rate": max_error_rate,
        "max_latency": max_latency,
        "hotfix": hotfix,
        "reason": reason,
    }
    release = client.request("POST", _path(name, environment), json=body)
    if held(release, as_json=as_json):
        return
    if as_json and (not wait or release.get("unchanged")):
        output.print_json(release)
        return
    if release.get("unchanged"):
        output.out().print(f"nothing to roll out: {environment} runs {release['name']} already")
        return
    # with --json, standard output is the final status alone, for a pipeline to parse
    told = output.err() if as_json else output.out()
    told.print(f"{release['name']}: {release['description']}", markup=False)
    if wait:
        final = follow(client, name, environment, release, timeout=timeout)
        if as_json:
            output.print_json(final)
        _ended(final, release["name"], told)


def _ended(status: dict[str, Any], release: str, told: Any) -> None:
    if status["phase"] == "promoted" and status["stable"] == release:
        told.print(f"[green]{release} is promoted: it serves all clients[/]")
        return
    raise LanewayError(
        f"{release} was aborted: {status['aborted'] or status['message']}",
        hint="`laneway canary status` has every verdict",
    )


def follow(
    client: Client, app: str, environment: str, release: dict[str, Any], *, timeout: float
) -> dict[str, Any]:
    """Show the rollout live until it ends; its final status. A stream that ends (the
    server ends a follow after an hour, or restarts) is followed again from where it was."""
    import time

    from rich.live import Live

    started = time.monotonic()
    events = path("apps", app, "environments", environment, "events")
    after = release.get("events_after")
    cursor = str(after) if after is not None else "-1"
    status: dict[str, Any] = client.request("GET", _path(app, environment))
    name = release.get("name") or status["canary"] or "the rollout"
    with Live(render(status), console=output.err(), auto_refresh=False) as live:
        while True:
            try:
                for event in client.events(
                    "GET", events, params={"follow": "true", "after": cursor}
                ):
                    cursor = event.id or cursor
                    if event.type == "end":
                        raise LanewayError(f"{environment} was destroyed")
                    if event.type == "status":
                        continue
                    status = client.request("GET", _path(app, environment))
                    live.update(render(status), refresh=True)
                    if _over(status):
                        return status
                    _in_time(started, timeout, name, environment)
                status = client.request("GET", _path(app, environment))
            except Unavailable:
                time.sleep(1.0)  # the server restarts: the rollout goes on, so do we
            if _over(status):
                return status
            _in_time(started, timeout, name, environment)


def _over(status: dict[str, Any]) -> bool:
    return status["canary"] is None and status["phase"] in ENDED


def _in_time(started: float, timeout: float, name: str, environment: str) -> None:
    import time

    if time.monotonic() - started > timeout:
        raise LanewayError(
            f"the rollout of {name} has not ended after {timeout:g}s",
            hint=f"it goes on; see `laneway canary status {environment}`",
        )


@canary_app.command()
def status(
    environment: str = env_arg(),
    follow_it: bool = typer.Option(False, "--follow", "-f", help="Show it live until it ends."),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Where the rollout is: weights, steps, the verdicts with their numbers."""
    name = which_app(repo, app_name)
    client = Client()
    current = client.request("GET", _path(name, environment))
    if follow_it and current["canary"] is not None:
        current = follow(client, name, environment, {"name": current["canary"]}, timeout=86_400.0)
    if as_json:
        output.print_json(current)
        return
    output.out().print(render(current))


def render(status: dict[str, Any]) -> Any:
    """The status as rich text: the weight and step, the verdicts, what it waits for."""
    from rich.console import Group
    from rich.text import Text

    lines: list[Any] = []
    head = Text()
    head.append(f"{status['environment']}: ", style="bold")
    head.append(f"{status['phase']}", style=_phase_style(status["phase"]))
    head.append(f": {status['message']}")
    lines.append(head)
    if status["steps"] and status["canary"] is not None:
        steps = Text("  steps ")
        for index, step in enumerate(status["steps"], 1):
            style = "bold reverse" if index == status["step"] else "dim"
            steps.append(f" {step} ", style=style)
        lines.append(steps)
    if status["stable"]:
        lines.append(Text(f"  stable {status['stable']}", style="dim"))
    if status["failure_limit"] is not None:
        lines.append(
            Text(
                f"  failed verdicts {status['failures']} (tolerated: {status['failure_limit']}), "
                f"interval {status['interval']:g}s",
                style="dim",
            )
        )
    if status["note"]:
        lines.append(Text(f"  last: {status['note']}"))
    if status["verdicts"]:
        table = output.table("step", "weight", "verdict", "time", "why")
        for verdict in status["verdicts"][-10:]:
            table.add_row(
                str(verdict["step"]),
                f"{verdict['weight']:g}%",
                Text(verdict["outcome"], style=OUTCOME_STYLE.get(verdict["outcome"], "")),
                verdict["time"][11:19],
                Text(verdict["summary"]),
            )
        lines.append(table)
    return Group(*lines)


def _phase_style(phase: str) -> str:
    return {"promoted": "green", "aborted": "red", "aborting": "red", "paused": "yellow"}.get(
        phase, "cyan"
    )


def _intent(
    verb: str,
    environment: str,
    body: dict[str, Any] | None,
    *,
    as_json: bool,
    app_name: str | None,
    repo: Path | None,
) -> None:
    name = which_app(repo, app_name)
    answer = Client().request("POST", _path(name, environment, verb), json=body or {})
    if as_json:
        output.print_json(answer)
        return
    output.out().print(render(answer))


ReasonOpt = typer.Option(None, "--reason", help="Why, recorded with it.")


@canary_app.command()
def pause(
    environment: str = env_arg(),
    reason: str | None = ReasonOpt,
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Hold the canary at its weight: no verdict, no next step, until resumed."""
    _intent("pause", environment, {"reason": reason}, as_json=as_json, app_name=app_name, repo=repo)


@canary_app.command()
def resume(
    environment: str = env_arg(),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Go on from a pause (a `pause` step, or `laneway canary pause`)."""
    _intent("resume", environment, None, as_json=as_json, app_name=app_name, repo=repo)


@canary_app.command()
def promote(
    environment: str = env_arg(),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Skip the remaining steps: all clients to the canary, then it is the release."""
    _intent("promote", environment, None, as_json=as_json, app_name=app_name, repo=repo)


@canary_app.command()
def abort(
    environment: str = env_arg(),
    reason: str | None = ReasonOpt,
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """All clients back to the stable release at once; the canary's release fails."""
    _intent("abort", environment, {"reason": reason}, as_json=as_json, app_name=app_name, repo=repo)
