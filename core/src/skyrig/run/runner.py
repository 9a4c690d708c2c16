"""One ``skyrig run``: the local environment provisioned, every service up, until it is stopped.

The data flows one way, as everywhere in skyrig: code -> model -> graph -> plan -> state -> runtime
config; the services then read their runtime config. Everything this run starts (service processes,
provider servers, the dashboard) is stopped by :meth:`LocalRun.stop`; provider servers that the
provisioning itself started (PostgreSQL, the broker, caches) belong to this process and stop with it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from skyrig.errors import UserError
from skyrig.ports import free_port, port_free
from skyrig.run.runfile import RunFile, remove_run_file, trigger_cron, write_run_file
from skyrig.run.supervisor import Running, Supervisor, server_entry
from skyrig.run.zygote import Zygote

RESTARTS = 3
"""A service that crashes more often than this in a minute waits for a code change to start again."""


class LocalRun:
    """Provisions a local environment and runs the app's services, consumers, dashboard and cron."""

    def __init__(self, root: Path, environment: str, console: Console, zygote: Zygote | None = None) -> None:
        self.root = root
        self.environment = environment
        self.console = console
        self.session = self._open()
        folder = root / ".skyrig" / "runtime" / environment.replace(":", "-")
        self.supervisor = Supervisor(root, folder, echo=self._echo, zygote=zygote)
        self.ports: dict[str, int] = {}
        self.state: RunFile | None = None
        self.timings: dict[str, float] = {}
        self.due: dict[str, datetime] = {}
        self.dashboard: dict[str, Any] | None = None
        self.early: list[Running] = []
        self._early: threading.Thread | None = None
        self.crashes: dict[str, list[float]] = {}
        self.down: set[str] = set()
        """Services that crashed and could not be restarted: started again on the next code change."""

    def _open(self) -> Any:
        from skyrig.config import load_config
        from skyrig.engine.session import Session

        session = Session(load_config(self.root), self.environment)
        if session.environment.type != "local":
            raise UserError(
                f"environment {self.environment!r} is {session.environment.type}, not local",
                "skyrig run serves local environments; use skyrig apply for the others",
            )
        return session

    def prepare(self, dashboard_port: int) -> None:
        """Before provisioning, start what does not depend on it, in the background: the zygote's loading
        of the providers' data planes and the dashboard."""
        self.dashboard = self._dashboard(dashboard_port)
        self.supervisor.prepare((*self._preload(), *(["skyrig.dashboard.app"] if self.dashboard else [])))
        if self.dashboard is not None:
            entry = server_entry(self.dashboard)
            self._early = threading.Thread(
                target=lambda: self.early.extend(self.supervisor.spawn([entry])), name="skyrig-dashboard"
            )
            self._early.start()

    def _preload(self) -> list[str]:
        """What the zygote loads for the services beside their frameworks: each provider of the
        environment (``provider:NAME``) and its data plane modules for the kinds the app uses."""
        from skyrig.plugins.registry import load_provider

        kinds = {resource.kind for resource in self.session.model.resources}
        found = []
        for name in sorted(set(self.session.environment.providers.values())):
            found.append(f"provider:{name}")
            planes = getattr(load_provider(name), "data_planes", {})
            found += sorted(
                {reference.partition(":")[0] for kind, reference in planes.items() if kind in kinds}
            )
        return found

    def _join_early(self) -> None:
        if self._early is not None:
            self._early.join()
            self._early = None

    # -- provisioning --------------------------------------------------------------------------

    def provision(self) -> None:
        """Plan and apply the local environment (a warm start finds nothing to do), and write the
        runtime configs."""
        started = time.perf_counter()
        session = self.session
        with session.locked(wait=True) as fence:
            plan = session.plan()
            if plan.has_changes() or plan.has_adoptions():
                outcome = session.apply(plan, fence, parallelism=10)
                if outcome.interrupted:  # a first Ctrl-C: what was in flight finished and was recorded
                    raise KeyboardInterrupt
                if not outcome.succeeded:
                    problems = "; ".join(f"{node}: {error}" for node, error in sorted(outcome.failed.items()))
                    raise UserError(
                        f"the local environment could not be provisioned: {problems}",
                        "fix it and run again; what did succeed is kept and reused",
                    )
            else:
                session.write_runtime_configs(plan, fence)
        self.timings["provisioning"] = time.perf_counter() - started

    def missing_secrets(self) -> list[str]:
        """Declared secrets that have no value in this environment."""
        from skyrig.plugins.capabilities import SecretStore, capability

        names = [r.name for r in self.session.model.of_kind("secret")]
        provider = self.session.environment.provider_for("secrets")
        store = capability(self.session.provider(provider), SecretStore)
        if not names or store is None:
            return []
        context = self.session.context(provider)
        return [name for name in names if not store.secret_is_set(context, name)]

    # -- processes -----------------------------------------------------------------------------

    def start(self, first_port: int, dashboard_port: int, *, cron: bool) -> None:
        """Start the provider servers, the dashboard and every service; write the run file."""
        missing = self.missing_secrets()
        if missing:
            commands = "\n    ".join(f"skyrig secret set {name} --env {self.environment}" for name in missing)
            raise UserError(
                f"the app uses secrets that have no value in {self.environment!r}: {', '.join(missing)}; "
                f"nothing was started",
                f"set each one (the value is read from a prompt or standard input):\n    {commands}",
            )
        started = time.perf_counter()
        token = os.urandom(16).hex()
        if self.dashboard is None and self._early is None:
            self.dashboard = self._dashboard(dashboard_port)
            servers = self._servers() + ([self.dashboard] if self.dashboard else [])
        else:
            servers = self._servers()
        self._join_early()
        self.ports = {service.name: first_port + i for i, service in enumerate(self.session.model.services)}
        self.supervisor.start(self._services(), servers=servers, token=token, early=self.early)
        self.state = RunFile(
            pid=os.getpid(),
            environment=self.environment,
            services={name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()},
            token=token,
            dashboard=f"http://127.0.0.1:{self.dashboard['port']}" if self.dashboard else None,
            cron=cron,
        )
        write_run_file(self.root, self.state)
        self.timings["services"] = time.perf_counter() - started
        self.due = {}

    def _services(self) -> list[tuple[str, str, int]]:
        return [(s.name, s.app, self.ports[s.name]) for s in self.session.model.services]

    def _servers(self) -> list[dict[str, Any]]:
        """The providers' servers (the local provider's object server)."""
        from skyrig.plugins.capabilities import LocalServers, capability

        session = self.session
        return [
            server
            for name in sorted(set(session.environment.providers.values()))
            if (local := capability(session.provider(name), LocalServers))
            for server in local.local_servers(session.context(name), session.model)
        ]

    def _dashboard(self, dashboard_port: int) -> dict[str, Any] | None:
        """How to serve the dashboard on ``dashboard_port`` (another free port if it is taken)."""
        if not dashboard_port or importlib.util.find_spec("skyrig.dashboard") is None:
            return None
        if not port_free(dashboard_port):  # the dashboard is a convenience: never a reason to fail
            dashboard_port = free_port()
        return {
            "name": "dashboard",
            "app": "skyrig.dashboard.app:from_environment",
            "port": dashboard_port,
            "factory": True,
            "env": {"SKYRIG_DASHBOARD_ROOT": str(self.root), "SKYRIG_DASHBOARD_ENV": self.environment},
        }

    def show(self, elapsed: float) -> None:
        """The table of what runs where, and how long it took."""
        from rich.table import Table

        assert self.state is not None
        table = Table("service", "url", title=f"{self.session.app}/{self.environment} is running")
        for name, url in self.state.services.items():
            table.add_row(name, url)
        if self.state.dashboard:
            table.add_row("[bold]dashboard[/bold]", self.state.dashboard)
        self.console.print(table)
        self.console.print(
            f"ready in {elapsed:.2f} s (provisioning {self.timings['provisioning']:.2f} s, "
            f"services {self.timings['services']:.2f} s); "
            f"cron {'on its schedule' if self.state.cron else 'off (skyrig cron run JOB runs one)'}; "
            "Ctrl-C stops everything"
        )

    def check(self) -> None:
        """Restart a service (or server) that has crashed, only it, showing its last output; one that
        crashes again while starting, or too often, waits for the next code change."""
        crashed = self.supervisor.crashed()
        if crashed is None:
            return
        self.supervisor._collect(crashed)
        name = crashed.service
        tail = "\n    ".join(crashed.log) or "(no output)"
        now = time.monotonic()
        recent = self.crashes[name] = [when for when in self.crashes.get(name, []) if now - when < 60] + [now]
        if len(recent) > RESTARTS:
            self.supervisor.stop({name})
            self.down.add(name)
            self.console.print(
                f"[red]service {name!r} stopped (exit code {crashed.process.returncode})[/red], "
                f"{len(recent)} times in a minute; it waits for a code change. Its last output:\n    {tail}"
            )
            return
        self.console.print(
            f"[red]service {name!r} stopped (exit code {crashed.process.returncode})[/red]; restarting it. "
            f"Its last output:\n    {tail}"
        )
        try:
            self.supervisor.restart(crashed)
        except UserError as error:
            self.down.add(name)
            self.console.print(f"[red]{error}[/red]\n[dim]it waits for a code change[/dim]")
        else:
            self.console.print(f"service {name!r} restarted")

    def reload(self, changed: set[str] | None = None) -> None:
        """The code changed (the files ``changed``, or unknown): re-read the model, provision what changed
        (nothing to plan when only Python files changed and the model is the same), and restart the
        services that run changed code or whose runtime config changed, only those.

        An error in the new code is shown and the services keep running as they were.
        """
        self.console.print("[dim]code changed: reloading[/dim]")
        started = time.perf_counter()
        configs = self._configs()
        previous = self.session
        try:
            self.session = self._open()
            if not _same_model(previous, self.session, changed):
                self.provision()
        except UserError as error:
            self.console.print(f"[red]reload failed:[/red] {error}")
            return
        names = {service.name for service in self.session.model.services}
        affected = (self._affected(changed, configs) | self.down) & names
        self.supervisor.stop(affected | (set(self.ports) - names))
        for name in sorted(names - set(self.ports)):
            self.ports[name] = max(self.ports.values(), default=3999) + 1
            affected.add(name)
        self.ports = {name: port for name, port in self.ports.items() if name in names}
        self.down -= affected
        try:
            self.supervisor.start(
                [entry for entry in self._services() if entry[0] in affected],
                token=self.state.token if self.state else None,
            )
        except UserError as error:
            self.down |= affected - {item.service for item in self.supervisor.running}
            self.console.print(f"[red]reload failed:[/red] {error}\n[dim]waiting for the next change[/dim]")
            return
        if self.state is not None:
            self.state.services = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
            write_run_file(self.root, self.state)
        which = ", ".join(sorted(affected)) or "no service runs the changed code"
        self.console.print(f"reloaded in {time.perf_counter() - started:.2f} s ({which})")

    def _configs(self) -> dict[str, bytes]:
        """Each service's runtime config as written."""
        found = {}
        for name in self.ports:
            try:
                found[name] = (self.supervisor.runtime_folder / f"{name}.json").read_bytes()
            except OSError:
                found[name] = b""
        return found

    def _affected(self, changed: set[str] | None, configs: dict[str, bytes]) -> set[str]:
        """The running services that a change to the files ``changed`` affects: those that imported one
        of them, and those whose runtime config changed; all of them for a change of configuration or an
        unknown change. Migrations (``.sql``) are applied by the provisioning and restart nothing."""
        running = set(self.ports)
        if changed is None or any(path.endswith(".toml") for path in changed):
            return running
        sources = {os.path.relpath(path, self.root) for path in changed if path.endswith(".py")}
        now = self._configs()
        affected = {name for name in running if now.get(name) != configs.get(name)}
        for name in running - affected:
            loaded = self._loaded(name)
            if loaded is None or sources & loaded:
                affected.add(name)
        return affected

    def _loaded(self, name: str) -> set[str] | None:
        """The app's files the running service has imported (None when it cannot say)."""
        import json
        import urllib.request

        from skyrig.runtime.control import HEADER, PREFIX

        if self.state is None:
            return None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[name]}{PREFIX}health", headers={HEADER: self.state.token}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return set(json.loads(response.read())["files"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- cron ----------------------------------------------------------------------------------

    def tick_cron(self) -> None:
        """Trigger the cron jobs that are due (``skyrig run --cron``)."""
        from skyrig.declarations.cron import next_run

        now = datetime.now(UTC)
        for job in self.session.model.of_kind("cron_job"):
            due = self.due.setdefault(job.name, next_run(job, now))
            if now >= due:
                self.due[job.name] = next_run(job, now)
                threading.Thread(target=self._trigger, args=(job.service, job.name), daemon=True).start()

    def _trigger(self, service: str, job: str) -> None:
        assert self.state is not None
        outcome = trigger_cron(self.state, service, job)
        if outcome.get("ok"):
            self.console.print(f"cron {job}: done in {outcome.get('seconds', 0):.2f} s")
        else:
            self.console.print(f"[red]cron {job} failed:[/red] {outcome.get('error')}")

    def _echo(self, name: str, line: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble((f"{name:>14} | ", "dim"), line))

    def stop(self, *, servers: bool = True) -> None:
        """Stop every process this run started and remove the run file; with ``servers`` false, leave
        the providers' servers to stop with this process."""
        from skyrig.plugins.capabilities import LocalServers, capability

        self._join_early()
        self.supervisor.stop()
        remove_run_file(self.root, self.environment)
        if not servers:
            return
        for name, context in self.session.contexts().items():
            local = capability(self.session.provider(name), LocalServers)
            if local is not None:
                local.stop_local_servers(context)


def _same_model(before: Any, after: Any, changed: set[str] | None) -> bool:
    """Whether a change to ``changed`` left the app as provisioned: only Python files changed and the
    model read from them is the same (then the environment and the runtime configs are too)."""
    if not changed or not all(path.endswith(".py") for path in changed):
        return False
    return bool(before.model.model_dump_json() == after.model.model_dump_json())
