"""What an environment's processes are started with, and what they must never show.

The environment reconciler (`controllers/environments.py`) hands its start actions here: a
replica's process environment (resources, config of its release, flags, ports) and its
`ProcessSpec`; the release hook's start and end (`controllers/hooks.py` runs it as a job);
and the values that must never reach a log or a message (resource addresses, secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

from laneway.controllers import hidden, hooks, ports
from laneway.controllers.context import Context
from laneway.controllers.outcomes import PermanentFailure
from laneway.core import config as configs
from laneway.core import environments as plans
from laneway.core.types import Environment, EventType
from laneway.flags.keys import client_key
from laneway.runtime import redacting
from laneway.runtime.base import ProcessInfo, ProcessSpec
from laneway.spec.model import Spec

PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")


class Launcher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def resource_values(self, environment: Environment) -> dict[str, str]:
        return hidden.resource_values(self.ctx, environment.id)

    def config_of(self, environment: Environment, release: int) -> dict[str, configs.ConfigEntry]:
        return self.ctx.vault.open(self.ctx.store.sealed_config(environment.id, release))

    def process_env(
        self,
        environment: Environment,
        spec: Spec,
        *,
        release: int,
        service: str | None = None,
        port: int | None = None,
        build: plans.Generation | None = None,
        config: dict[str, configs.ConfigEntry] | None = None,
    ) -> dict[str, str]:
        """What a process of `release` is started with; `config`, the release's config if the
        caller has opened it already."""
        if config is None:
            config = self.config_of(environment, release)
        build_id = build.build_id if build is not None else environment.build_id
        commit = environment.commit
        if build is not None and build.build_id != environment.build_id:
            commit = self.ctx.store.get_build(build.build_id).commit
        return plans.compose_env(
            environment,
            spec,
            service=service,
            port=port,
            resources=self.resource_values(environment),
            base={k: v for k, v in os.environ.items() if k in PASSED_THROUGH},
            app_dir=str(self.ctx.release_dir(environment.id, release)),
            config=configs.plain(config),
            release=release,
            build=(build_id or "", commit or ""),
            flags=(
                (self.ctx.settings.api_url, client_key(self.ctx.secret, environment.id))
                if self.ctx.secret
                else None
            ),
            flags_sync=self.ctx.settings.flags_sync_address,
        )

    def start_hook(self, environment: Environment, spec: Spec, release: int, command: str) -> None:
        config = self.config_of(environment, release)
        secret_keys = hidden.keys(spec, config)
        hooks.start(
            self.ctx,
            environment.id,
            release,
            command,
            env=self.process_env(environment, spec, release=release, config=config),
            hidden_keys=secret_keys,
        )

    def finish_hook(self, environment: Environment, action: plans.HookDone, command: str) -> None:
        store = self.ctx.store
        self.ctx.runtime.forget(action.key)
        output = hooks.keep_output(
            self.ctx, environment.id, action.release, hidden.redactor(self.ctx, environment)
        )
        if action.exit_code == 0:
            store.update_environment(environment.id, hook_release=action.release)
            store.add_event(environment.id, EventType.HOOK, "release hook succeeded")
            return
        tail = "\n".join(output.splitlines()[-10:])
        what = (
            f"did not finish within {plans.HOOK_TIMEOUT:g}s"
            if action.exit_code is None
            else f"exited with code {action.exit_code}"
        )
        raise PermanentFailure(f"release hook `{command}` {what}:\n{tail}")

    def start_replica(
        self, environment: Environment, generation: plans.Generation, service: str, index: int
    ) -> ProcessInfo:
        ctx = self.ctx
        spec = generation.spec
        number = generation.number
        port = None
        if spec.services[service].has_port(service):
            port = ports.lease(ctx, environment.id, number, service, index)
        config = self.config_of(environment, number)
        env = self.process_env(
            environment,
            spec,
            release=number,
            service=service,
            port=port,
            build=generation,
            config=config,
        )
        secret_keys = hidden.keys(spec, config)
        tail = self.tail_path(environment, service, index, number)
        tail.unlink(missing_ok=True)
        return ctx.runtime.start_process(
            ProcessSpec(
                environment_id=environment.id,
                service=service,
                index=index,
                release=f"v{number}",
                # its output reaches its log file through the filter that hides secrets
                command="exec " + redacting.command(spec.services[service].command),
                cwd=ctx.release_dir(environment.id, number),
                env={
                    **env,
                    redacting.KEYS: ",".join(sorted(secret_keys)),
                    redacting.TAIL: str(tail),
                },
                log_path=ctx.log_dir(environment.id) / f"{service}.{index}.log",
                per_release=True,
            )
        )

    def tail_path(self, environment: Environment, service: str, index: int, number: int) -> Path:
        """Where replica `service/index` of generation `number` leaves its last output when
        it ends (`redacting.TAIL`)."""
        return self.ctx.log_dir(environment.id) / f"{service}.{index}.v{number}.tail"

    def remove_tails(self, environment: Environment, number: int) -> None:
        for path in self.ctx.log_dir(environment.id).glob(f"*.v{number}.tail"):
            path.unlink(missing_ok=True)

    def log_tail(
        self, environment: Environment, service: str, index: int, number: int, lines: int = 10
    ) -> str:
        """The last output of replica `service/index` of generation `number`: its own, once it
        has ended; while it runs, the end of the log file it shares with the same replica of
        the generation before, said so."""
        own = self.tail_path(environment, service, index, number)
        name = f"{service}.{index}.log"
        try:
            text = own.read_text(errors="replace").splitlines()[-lines:]
            heading = ""
        except OSError:
            try:
                path = self.ctx.log_dir(environment.id) / name
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                return ""
            heading = f"(the end of {name}, which other releases' {service}/{index} write to too)\n"
        if not text:
            return ""
        return heading + hidden.redactor(self.ctx, environment).text("\n".join(text))
