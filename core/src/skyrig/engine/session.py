"""One environment, opened for a command: configuration, model, graph, state, provider clients, lock."""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from skyrig.collector import paused
from skyrig.config import Config, Environment
from skyrig.engine.contract import Context, NodeType, Observed
from skyrig.engine.graph import Graph, Node, build_graph
from skyrig.engine.plan import Change, Plan, diff
from skyrig.errors import UserError
from skyrig.model import AppModel
from skyrig.state import LeaseLost, Locked, NodeRecord, StateMoved, open_store


def lock_ttl() -> float:
    """Seconds a lock lives without a heartbeat (``SKYRIG_LOCK_TTL``; 30 by default)."""
    return float(os.environ.get("SKYRIG_LOCK_TTL", "30"))


class Session:
    """Everything a command needs to work on environment ``name`` of the app in ``config``."""

    def __init__(self, config: Config, name: str) -> None:
        self.config = config
        self.environment: Environment = config.environment(name)
        self.name = name
        self.root = config.root
        self.store = open_store(config.project.state, config.root)
        self._contexts: dict[str, Context] = {}

    @property
    def app(self) -> str:
        return self.config.app

    @cached_property
    def model(self) -> AppModel:
        from skyrig.analysis import build_model
        from skyrig.plugins.support import check_support

        model = build_model(self.root, self.app)
        check_support(model, [self.environment])
        return model

    @cached_property
    def graph(self) -> Graph:
        return build_graph(self.app, self.model, self.environment)

    @cached_property
    def types(self) -> dict[str, NodeType]:
        from skyrig.plugins.registry import load_provider

        found: dict[str, NodeType] = {}
        for provider in sorted(set(self.environment.providers.values())):
            found.update(load_provider(provider).node_types())
        return found

    def context(self, provider: str) -> Context:
        """The context (and client) of ``provider``, connected on first use."""
        if provider not in self._contexts:
            from skyrig.plugins.registry import load_provider

            settings = self.environment.settings.get(provider)
            client = load_provider(provider).connect(self.app, self.environment, settings, self.root)
            recorded = {node: r.provider_id for node, r in self.store.nodes(self.name).items()}
            self._contexts[provider] = Context(self.app, self.environment, settings, client, recorded)
        return self._contexts[provider]

    def contexts(self) -> dict[str, Context]:
        return {name: self.context(name) for name in sorted(set(self.environment.providers.values()))}

    # -- refresh and plan -----------------------------------------------------------------------

    def refresh(self, records: dict[str, NodeRecord]) -> dict[str, Observed | None]:
        """Read every recorded node back from its cloud, one bulk read per node type."""
        by_type: dict[str, list[tuple[Node, str]]] = {}
        for record in records.values():
            node = Node(
                record.id,
                record.type,
                record.provider,
                record.desired,
                tuple(record.depends_on),
                record.resource,
            )
            by_type.setdefault(record.type, []).append((node, record.provider_id))
        observed: dict[str, Observed | None] = {}
        for type_name, nodes in sorted(by_type.items()):
            node_type = self.types.get(type_name)
            if node_type is None:
                raise UserError(
                    f"state has nodes of type {type_name!r}, which no provider of "
                    f"environment {self.name!r} provides"
                )
            observed.update(node_type.read_many(self.context(nodes[0][0].provider), nodes))
        return observed

    def plan(self, *, destroy: bool = False, include_data: bool = False, refresh: bool = True) -> Plan:
        """Refresh and diff: what an apply (or a destroy) would do now. Without ``refresh``, state is
        taken as the truth (no cloud call): what the app changed, not what the cloud did."""
        with paused():
            return self._plan(destroy, include_data, refresh)

    def _plan(self, destroy: bool, include_data: bool, refresh: bool) -> Plan:
        records = self.store.nodes(self.name)
        serial = self.store.serial(self.name)
        if refresh:
            observed = self.refresh(records)
        else:
            observed = {r.id: Observed(r.provider_id, r.observed, r.outputs) for r in records.values()}
        if destroy:
            empty = Graph([])
            changes = diff(empty, records, observed, self.types, {}, include_data=include_data)
            runtime: dict[str, dict[str, list[str]]] = {}
        else:
            changes = diff(
                self.graph,
                records,
                observed,
                self.types,
                self.store.intents(self.name),
                include_data=include_data,
            )
            runtime = self._runtime_plan()
        return Plan(self.app, self.name, serial, changes, runtime, destroy=destroy, include_data=include_data)

    def _runtime_plan(self) -> dict[str, dict[str, list[str]]]:
        """Service -> resource (``kind/name``) -> operations: what each service's runtime config holds."""
        runtime: dict[str, dict[str, list[str]]] = {s.name: {} for s in self.model.services}
        for resource in self.model.resources:
            runtime[resource.service].setdefault(f"{resource.kind}/{resource.name}", [])
        for use in self.model.uses:
            runtime[use.service][f"{use.kind}/{use.resource}"] = list(use.operations)
        return runtime

    # -- apply ----------------------------------------------------------------------------------

    def apply(self, plan: Plan, fence: int, *, parallelism: int, report: Any = None) -> Any:
        """Carry out ``plan`` under the lease ``fence``; refuse it if state moved since it was made."""
        from skyrig.engine.apply import Executor
        from skyrig.plugins.support import plugin_manager

        if plan.environment != self.name or plan.app != self.app:
            raise UserError(f"the plan is for {plan.app}/{plan.environment}, not {self.app}/{self.name}")
        serial = self.store.serial(self.name)
        if serial != plan.serial:
            raise StateMoved(
                f"state of environment {self.name!r} has changed since the plan was made "
                f"(serial {plan.serial}, now {serial}); nothing was applied",
                "make a new plan: skyrig plan --env " + self.name,
            )
        manager = plugin_manager(self.environment)
        vetoes = [
            v
            for answer in manager.hook.skyrig_validate_plan(plan=plan, environment=self.environment)
            for v in answer or []
        ]
        if vetoes:
            raise UserError(
                "the plan was vetoed: " + "; ".join(v.reason for v in vetoes), "nothing was applied"
            )
        manager.hook.skyrig_before_apply(plan=plan, environment=self.environment)
        executor = Executor(
            plan,
            self.store,
            fence,
            self.contexts(),
            self.types,
            self.store.nodes(self.name),
            self.store.intents(self.name),
            parallelism=parallelism,
            report=report,
        )
        outcome = None
        try:
            outcome = executor.run()
            if outcome.succeeded and not plan.destroy:
                self.write_runtime(plan, fence)
        finally:
            manager.hook.skyrig_after_apply(
                plan=plan, environment=self.environment, succeeded=bool(outcome and outcome.succeeded)
            )
        return outcome

    def write_runtime(self, plan: Plan, fence: int) -> dict[str, dict[str, Any]]:
        """Each service's runtime config: how to reach what it uses (secrets by reference only)."""
        records = self.store.nodes(self.name)
        main = {r.resource: r for r in records.values() if r.resource}
        code = self._code_references()
        configs = {}
        for service, resources in sorted(plan.runtime.items()):
            entries = {}
            for resource, operations in sorted(resources.items()):
                record = main.get(resource)
                if record is None:
                    continue
                node = Node(record.id, record.type, record.provider, record.desired)
                entry = (
                    self.types[record.type].runtime(
                        node, Observed(record.provider_id, record.observed, record.outputs)
                    )
                    or {}
                )
                entries[resource] = {**entry, **code.get(resource, {}), "operations": operations}
            configs[service] = {
                "app": self.app,
                "environment": self.name,
                "service": service,
                "resources": entries,
            }
        self.store.finish(self.name, fence, configs)
        folder = self.root / ".skyrig" / "runtime" / self.name.replace(":", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for service, config in configs.items():
            (folder / f"{service}.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if configs:
            from skyrig.plugins.registry import load_provider

            compute = self.environment.provider_for("compute")
            load_provider(compute).deliver_runtime(self.context(compute), configs)
        return configs

    def _code_references(self) -> dict[str, dict[str, str]]:
        """What the service host runs for a resource: a subscription's handler, a cron job's endpoint."""
        topics = {r.name: r for r in self.model.resources if r.kind == "topic"}
        code: dict[str, dict[str, str]] = {}
        for resource in self.model.resources:
            if resource.kind == "subscription":
                code[f"subscription/{resource.name}"] = {
                    "handler": resource.handler,
                    "topic": resource.topic,
                    "message_type": topics[resource.topic].message_type,
                }
            elif resource.kind == "cron_job":
                code[f"cron_job/{resource.name}"] = {"endpoint": resource.endpoint}
        return code

    # -- the lock -------------------------------------------------------------------------------

    @contextmanager
    def locked(self, *, wait: bool = False, timeout: float = 600) -> Iterator[int]:
        """Hold the environment's lease (with a heartbeat) for the block; yields the fence."""
        holder = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
        ttl = lock_ttl()
        deadline = time.monotonic() + timeout
        while True:
            try:
                fence = self.store.acquire(self.name, holder, ttl)
                break
            except Locked:
                if not wait or time.monotonic() > deadline:
                    raise
                time.sleep(min(1.0, ttl / 4))
        stop = threading.Event()
        lost = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(ttl / 3):
                if not self.store.renew(self.name, fence, ttl):
                    lost.set()
                    return

        beat = threading.Thread(target=heartbeat, name="skyrig-lease", daemon=True)
        beat.start()
        try:
            yield fence
        finally:
            stop.set()
            beat.join()
            if not lost.is_set():
                self.store.release(self.name, fence)
        if lost.is_set():
            raise LeaseLost(f"the lock on environment {self.name!r} expired during the command")


def describe(change: Change) -> str:
    """One line for a change: what, why."""
    fields = ", ".join(f"{k}: {v[0]!r} → {v[1]!r}" for k, v in change.fields.items())
    adopted = ", ".join(f"{k}={v!r} adopted from the cloud" for k, v in change.adopt.items())
    details = "; ".join(part for part in (fields, adopted, *change.reasons) if part)
    return f"{change.node} ({change.type})" + (f": {details}" if details else "")
