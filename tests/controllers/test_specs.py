"""Specs are parsed off the event loop: a parse is CPU work the loop must not wait on."""

from __future__ import annotations

import logging

import pytest

from laneway.controllers.harness import Harness


def test_the_reconciler_and_the_routing_controller_parse_specs_off_the_event_loop(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="laneway.controllers.specs")
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    second = harness.add_build()
    harness.deploy(env, second)
    harness.converge(env)
    harness.restart()  # an empty cache: the next refresh parses the live spec again
    assert harness.run(harness.router.confirm()) is True
    assert harness.ctx.specs.live_spec(harness.environment(env)) is not None
    parsed_on_loop = [r.getMessage() for r in caplog.records]
    assert parsed_on_loop == []


def test_a_parse_on_the_event_loop_is_reported(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="laneway.controllers.specs")
    build = harness.add_build()

    async def parse() -> None:
        harness.ctx.specs.of_build(build)

    harness.run(parse())
    assert [r.getMessage() for r in caplog.records] == [
        f"the spec of build {build[7:19]} is parsed on the event loop"
    ]
