"""`python -m laneway.router --listen HOST:PORT --table FILE`: run the built-in router.

The routing controller starts it as a process of its own, so that it outlives a restart of
the control plane; benchmarks and tests start it the same way. Port 0 picks a free port;
the address listened on is logged ("listening on http://HOST:PORT"). Each of its limits and
timeouts (`router.types.ProxyOptions`) is a flag too: `--max-connections 20000`,
`--head-timeout 5`. Bad arguments or an address that cannot be listened on exit with
status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from laneway import addresses, errors
from laneway.router.types import ProxyOptions


def main(argv: list[str] | None = None) -> int:
    # SIGHUP's default action kills; until `serve` handles it (reloading), it is ignored, and
    # the table written meanwhile is found by the load at start or the next tick.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    parser = argparse.ArgumentParser(
        prog="python -m laneway.router", description="laneway's built-in HTTP router"
    )
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to listen on")
    parser.add_argument("--table", required=True, type=Path, help="routing table JSON file")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    for field in dataclasses.fields(ProxyOptions):
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=_positive(int if field.type == "int" else float),
            metavar="N" if field.type == "int" else "SECONDS",
            help=f"default {field.default}",
        )
    args = parser.parse_args(argv)
    given = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(ProxyOptions)
        if getattr(args, field.name) is not None
    }
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s laneway router: %(message)s",
        stream=sys.stderr,
    )
    from laneway.router import server  # after the above: imports take a while

    try:
        host, port = _listen(args.listen)
        if not args.table.parent.is_dir():
            raise errors.InvalidInput(f"--table: directory {args.table.parent} does not exist")
        server.run(host, port, args.table, options=ProxyOptions(**given))
    except errors.LanewayError as exc:
        print(f"laneway router: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def _listen(text: str) -> addresses.Address:
    try:
        return addresses.parse_address(text, any_port=True)
    except ValueError as exc:
        raise errors.InvalidInput(f"--listen: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
