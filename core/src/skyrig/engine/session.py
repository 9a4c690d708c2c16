"""One environment, opened for a command: configuration, model, graph, state, provider clients, lock."""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from skyrig.collector import paused
from skyrig.config import Config, Environment, variables
from skyrig.engine import images, runtime_config
from skyrig.engine.annotate import annotate
from skyrig.engine.contract import Context, NodeType, Observed
from skyrig.engine.graph import Graph, Node, build_graph
from skyrig.engine.plan import Change, Plan, diff
from skyrig.errors import UserError
from skyrig.model import AppModel
from skyrig.state import LeaseLost, Locked, NodeRecord, StateMoved, open_store
from skyrig.state.store import Snapshots

if TYPE_CHECKING:
    import pluggy

    from skyrig.plugins.base import Provider


def lock_ttl() -> float:
    """Seconds a lock lives without a heartbeat (``SKYRIG_LOCK_TTL``; 30 by default)."""
    return float(variables.value("SKYRIG_LOCK_TTL") or 30)


class Session:
    """Everything a command needs to work on environment ``name`` of the app in ``config``."""

    def __init__(self, config: Config, name: str) -> None:
        self.config = config
        self.environment: Environment = config.environment(name)
        self.name = name
        self.root = config.root
        self.store = open_store(self.environment.state, config.root)
        self._contexts: dict[str, Context] = {}
        self._executor: Any = None
        """The apply running now (its records so far give :attr:`Context.runtime_config`), if any."""
        self._recorded: dict[str, str] | None = None
        """Node id -> provider id of what state recorded at this session's first read of it: every
        provider's :attr:`Context.recorded` (one read of state per command, not one per provider)."""

    @cached_property
    def plugins(self) -> pluggy.PluginManager:
        """The plugin manager of this environment's providers and every installed plugin, made once."""
        from skyrig.plugins.support import plugin_manager

        return plugin_manager(self.environment)

    def provider(self, name: str) -> Provider:
        """The environment's provider ``name``."""
        from skyrig.plugins.registry import load_provider

        return load_provider(name)

    @property
    def app(self) -> str:
        return self.config.app

    @cached_property
    def model(self) -> AppModel:
        from skyrig.analysis import build_model
        from skyrig.plugins.support import check_support

        model = build_model(self.root, self.app)
        check_support(model, [self.environment], self.plugins)
        return model

    @cached_property
    def image(self) -> images.Image | None:
        """The image the services run after this command (:mod:`skyrig.engine.images`): settled on first
        use, before the graph is built or a provider connects; None when compute runs no images."""
        return images.settle(self)

    @cached_property
    def graph(self) -> Graph:
        _ = self.image  # settles the compute provider's image setting first
        return build_graph(self.app, self.model, self.environment, self.plugins)

    @cached_property
    def types(self) -> dict[str, NodeType]:
        found: dict[str, NodeType] = {}
        for provider in sorted(set(self.environment.providers.values())):
            found.update(self.provider(provider).node_types())
        return found

    def context(self, provider: str) -> Context:
        """The context (and client) of ``provider``, connected on first use."""
        if provider not in self._contexts:
            _ = self.image  # settles the compute provider's image setting first
            settings = self.environment.settings.get(provider)
            client = self.provider(provider).connect(self.app, self.environment, settings, self.root)
            if self._recorded is None:
                self.read(lean=True)
            assert self._recorded is not None
            self._contexts[provider] = Context(
                self.app, self.environment, settings, client, self._recorded, self._runtime_config_now
            )
        return self._contexts[provider]

    def contexts(self) -> dict[str, Context]:
        return {name: self.context(name) for name in sorted(set(self.environment.providers.values()))}

    # -- state --------------------------------------------------------------------------------

    def read(self, *, lean: bool = False) -> tuple[int, dict[str, NodeRecord]]:
        """The serial and every record of the environment, read together (at one instant, from a store
        with :class:`~skyrig.state.store.Snapshots`; else the serial first, so that a write in between
        makes the serial older, never newer, than the records). ``lean``: what a plan reads (the records'
        outputs and drift left empty). The first read also gives the contexts' ``recorded``."""
        if isinstance(self.store, Snapshots):
            serial, records = self.store.snapshot(self.name, lean=lean)
        else:
            serial = self.store.serial(self.name)
            records = self.store.nodes(self.name)
        if self._recorded is None:
            self._recorded = {node: record.provider_id for node, record in records.items()}
        return serial, records

    # -- refresh and plan -----------------------------------------------------------------------

    def refresh(
        self, records: dict[str, NodeRecord], graph: Graph | None = None
    ) -> dict[str, Observed | None]:
        """Read every recorded node back from its cloud, one bulk read per node type, each as it was last
        applied (``graph``'s node where it is the same: one node fewer to make)."""
        by_type: dict[str, list[tuple[Node, str]]] = {}
        wanted = graph.nodes if graph is not None else {}
        for record in records.values():
            node = wanted.get(record.id)
            if (
                node is None
                or node.properties != record.desired
                or node.depends_on != tuple(record.depends_on)
                or (node.type, node.provider, node.resource)
                != (record.type, record.provider, record.resource)
            ):
                node = record.node()
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
            made = self._plan(destroy, include_data, refresh)
            made.annotations = annotate(self.plugins, made, self.environment)  # notes: never change it
            return made

    def _plan(self, destroy: bool, include_data: bool, refresh: bool) -> Plan:
        # read once, without the outputs unless state is taken as the truth (they are not compared)
        serial, records = self.read(lean=refresh)
        stored = {} if refresh else {r.id: r.observation() for r in records.values()}
        graph = Graph([]) if destroy else self.graph
        observed = self.refresh(records, graph) if refresh else stored
        if destroy:
            changes = diff(graph, records, observed, self.types, {}, include_data=include_data)
            granted: runtime_config.Grants = {}
        else:
            changes = diff(
                graph,
                records,
                observed,
                self.types,
                self.store.intents(self.name),
                include_data=include_data,
            )
            granted = runtime_config.grants(self.model)
        return Plan(self.app, self.name, serial, changes, granted, destroy=destroy, include_data=include_data)

    # -- recovering lost state -----------------------------------------------------------------

    def recover(self, fence: int, *, force: bool = False) -> Recovery:
        """Rebuild state from the cloud under the lease ``fence``: look every node of the graph that state
        has no record of up by its identity (one ``find_many`` per node type, as an apply does before its
        creates) and record what is found. Refused when state records anything of the environment, unless
        ``force``: then the nodes it records are kept as they are and only the others are looked up."""
        from skyrig.engine.apply import RetryPolicy, find_all

        _, records = self.read(lean=True)
        if records and not force:
            raise UserError(
                f"state of environment {self.name!r} is not empty ({len(records)} node(s) recorded): "
                "recover rebuilds lost state, and refuses to touch state that is there",
                f"skyrig status --env {self.name} shows it; pass --force to look up and record only the "
                "nodes it lacks",
            )
        wanted = [self.graph.nodes[node_id] for node_id in self.graph.order if node_id not in records]
        retry = RetryPolicy.from_environment()
        found, failed = find_all(wanted, self.types, self.contexts(), call=retry.call)
        recovery = Recovery(kept=sorted(node for node in records if node in self.graph.nodes))
        for node in wanted:
            observed = found.get(node.id)
            if node.id in failed:
                recovery.failed[node.id] = failed[node.id]
            elif observed is None:
                recovery.missing.append(node.id)
            else:
                # what was last applied is lost: a tunable that differs is taken as asked by the app, not
                # as a console change to keep, so that the plan shows it (as an apply would set it)
                tunable = self.types[node.type].tunable
                applied = {k: v for k, v in observed.properties.items() if k in tunable}
                desired = {**node.properties, **applied}
                self.store.record(self.name, fence, NodeRecord.of(node, observed, desired))
                recovery.adopted[node.id] = observed.provider_id
        return recovery

    # -- apply ----------------------------------------------------------------------------------

    def apply(self, plan: Plan, fence: int, *, parallelism: int, report: Any = None) -> Any:
        """Carry out ``plan`` under the lease ``fence``; refuse it if state moved since it was made."""
        from skyrig.engine.apply import Executor

        if plan.environment != self.name or plan.app != self.app:
            raise UserError(f"the plan is for {plan.app}/{plan.environment}, not {self.app}/{self.name}")
        serial = self.store.serial(self.name)
        if serial != plan.serial:
            raise StateMoved(
                f"state of environment {self.name!r} has changed since the plan was made "
                f"(serial {plan.serial}, now {serial}); nothing was applied",
                "make a new plan: skyrig plan --env " + self.name,
            )
        manager = self.plugins
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
        _, records = self.read()  # before the contexts: their recorded comes from it, if not yet read
        executor = Executor(
            plan,
            self.store,
            fence,
            self.contexts(),
            self.types,
            records,
            self.store.intents(self.name),
            parallelism=parallelism,
            report=report,
        )
        outcome = None
        aborted = False
        self._executor = executor
        try:
            outcome = executor.run()
            if outcome.succeeded and not plan.destroy:
                self.write_runtime_configs(plan, fence, executor.recorded())
        except KeyboardInterrupt:  # a second Ctrl-C: the CLI exits at once, past locked()'s release
            aborted = True
            raise
        finally:
            self._executor = None
            manager.hook.skyrig_after_apply(  # providers stop what they started (local: an initdb)
                plan=plan, environment=self.environment, succeeded=bool(outcome and outcome.succeeded)
            )
            if aborted:  # let go now: writes still in flight are fenced off, their intents stay
                self.store.release(self.name, fence)
        return outcome

    def _runtime_config_now(self, service: str) -> dict[str, Any] | None:
        """:attr:`Context.runtime_config`: ``service``'s runtime config from the records of the apply
        running now (those done so far included), or None."""
        executor = self._executor
        if executor is None or executor.plan.destroy:
            return None
        records = executor.records_now()
        configs = runtime_config.build(
            self.app, self.name, executor.plan.grants, records, self.types, self.model
        )
        return configs.get(service)

    def write_runtime_configs(
        self, plan: Plan, fence: int, records: dict[str, NodeRecord] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Each service's runtime config after ``plan`` (see :mod:`skyrig.engine.runtime_config`), from
        ``records`` (what state records now, as the apply that wrote it knows) or, without, from state."""
        return runtime_config.write(self, plan, fence, records)

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


@dataclass
class Recovery:
    """What :meth:`Session.recover` did, node by node."""

    adopted: dict[str, str] = field(default_factory=dict)
    """Node id -> provider id of each node found in the cloud and recorded."""
    missing: list[str] = field(default_factory=list)
    """Nodes not found: the next apply creates them."""
    failed: dict[str, str] = field(default_factory=dict)
    """Node id -> why looking it up failed (nothing recorded for it)."""
    kept: list[str] = field(default_factory=list)
    """Nodes state recorded already (``force``), left as they were."""


def describe(change: Change) -> str:
    """One line for a change: what, why."""
    fields = ", ".join(f"{k}: {v[0]!r} → {v[1]!r}" for k, v in change.fields.items())
    adopted = ", ".join(f"{k}={v!r} adopted from the cloud" for k, v in change.adopt.items())
    details = "; ".join(part for part in (fields, adopted, *change.reasons) if part)
    return f"{change.id} ({change.type})" + (f": {details}" if details else "")
