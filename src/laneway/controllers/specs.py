"""Which spec each generation of an environment runs: builds' specs read once, shared.

A build never changes, so its parsed `laneway.yaml` is kept for the life of the process; a
release's build never changes once set, so the build of each generation is kept too. The
environment reconciler, the routing controller and the API (which checks a proposed build's
spec) all read through the one `Specs` that the context holds.

Parsing a spec is CPU work (up to about a second for the largest allowed), so it never runs
on the event loop. The controllers ask with `parse=False`, which answers from what is kept
or raises `NotParsed`; they then call again in a worker thread (`asyncio.to_thread`) to
parse, so a pass costs no thread while every spec it needs is kept. The API calls from its
synchronous routes (a thread pool). A parse found on the loop is logged as an error.
"""

from __future__ import annotations

import asyncio
import logging

from laneway.core import environments as plans
from laneway.core.types import Environment
from laneway.errors import NotFound, SpecError
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec
from laneway.store.repository import Store

log = logging.getLogger("laneway.controllers.specs")


class NotParsed(Exception):
    """A spec asked for with `parse=False` is not kept yet: ask again off the event loop."""


class Specs:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_build: dict[str, Spec | SpecError] = {}
        self._generation_builds: dict[tuple[str, int], str] = {}
        self._scale: dict[tuple[str, int], tuple[int, dict[str, int], dict[str, float]]] = {}
        """Scale counts and service restarts per (environment, generation), with the newest
        release they were read at: only a new release can change them."""

    def of_build(self, build_id: str, *, parse: bool = True) -> Spec:
        """The spec of a build; raises NotFound or SpecError (or NotParsed, see above)."""
        spec = self._by_build.get(build_id)
        if spec is None:
            if not parse:
                raise NotParsed(build_id)
            text = self._store.get_build(build_id).spec_text
            if _on_event_loop():
                log.error("the spec of build %s is parsed on the event loop", build_id[7:19])
            try:
                spec = load_spec_text(text, filename="laneway.yaml")
            except SpecError as exc:
                spec = exc  # a build never changes: neither does its spec's verdict
            self._by_build[build_id] = spec
        if isinstance(spec, SpecError):
            raise SpecError(spec.problems, hint=spec.hint)  # a fresh one: no traceback piles up
        return spec

    def of_environment(self, environment: Environment) -> Spec | None:
        """The spec of the environment's newest release, None before it is built."""
        return None if environment.build_id is None else self.of_build(environment.build_id)

    def generations(
        self, environment: Environment, *, parse: bool = True
    ) -> dict[int, plans.Generation]:
        """The target, live and warm generations that have a build, with their specs."""
        found = {}
        for number in {environment.target_generation, environment.live, environment.warm} - {0}:
            build_id = self._build_of(environment, number)
            if build_id:
                spec = self.of_build(build_id, parse=parse)
                _, replicas, restarts = self._scale_of(environment, number)
                found[number] = plans.Generation(number, build_id, spec, replicas, restarts)
        return found

    def _scale_of(
        self, environment: Environment, number: int
    ) -> tuple[int, dict[str, int], dict[str, float]]:
        key = (environment.id, number)
        known = self._scale.get(key)
        if known is None or known[0] != environment.release:
            known = (environment.release, *self._store.generation_replicas(environment.id, number))
            self._scale[key] = known
        return known

    def generation_specs(self, environment: Environment, *, parse: bool = True) -> dict[int, Spec]:
        """Like `generations`, but an unreadable record or spec leaves its generation out."""
        try:
            return {n: g.spec for n, g in self.generations(environment, parse=parse).items()}
        except (NotFound, SpecError):
            return {}

    def live_spec(self, environment: Environment, *, parse: bool = True) -> Spec | None:
        return self.generation_specs(environment, parse=parse).get(environment.live)

    def _build_of(self, environment: Environment, number: int) -> str | None:
        if number == environment.target_generation and environment.build_id:
            return environment.build_id
        key = (environment.id, number)
        build_id = self._generation_builds.get(key)
        if build_id is None:
            try:
                build_id = self._store.get_release(environment.id, number).build_id
            except NotFound:
                return None
            if build_id:
                self._generation_builds[key] = build_id
        return build_id

    def forget(self, environment_id: str) -> None:
        """Drop what is kept of a destroyed environment's generations."""
        for key in [k for k in self._generation_builds if k[0] == environment_id]:
            del self._generation_builds[key]
        for key in [k for k in self._scale if k[0] == environment_id]:
            del self._scale[key]


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
