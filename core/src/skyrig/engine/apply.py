"""Applying a plan: a walk of its DAG with bounded parallelism, retries, intents and per-node state.

Every node is recorded the moment it completes. Before a create, an intent is written. No node state
does not record is created without first being looked up by its identity (ownership tags or
deterministic name): once per node type, before the walk (:func:`find_all`, the node types'
``find_many``). What is found is adopted, brought up to date, instead of created again: a crash between
the cloud call and the state write, or state lost altogether, never makes a duplicate.

With a store that writes batches (:class:`~skyrig.state.store.BatchWrites`, as SQLite does), state
writes are grouped: the intents of the creates of nodes state does not record are written a batch at a
time, the first before the walk and the others while it starts (a node whose batch is not yet durable
waits for it before its cloud call), and each node that completes
hands its record to the :class:`Recorder` and lets its dependents start, while the recorder commits
whatever completed during its last commit as one batch (group commit). A node counts as done, and is
reported, once its record is durable; the apply returns once every record is. A crash before that
loses no resource: its intent is durable, and the next apply looks it up and adopts it.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from skyrig.config import variables
from skyrig.engine import dag
from skyrig.engine.contract import Context, NodeType, Observed
from skyrig.engine.graph import Node
from skyrig.engine.plan import Change, Plan
from skyrig.errors import ProviderError, ThrottledError, TransientError
from skyrig.state import NodeRecord, StateStore
from skyrig.state.store import BatchWrites

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; throttling starts from a longer base."""

    attempts: int = 8
    base: float = 0.2
    throttle_base: float = 1.0
    cap: float = 20.0

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        """The default policy; ``SKYRIG_RETRY_BASE_MS`` scales it (tests make it fast)."""
        scale = float(variables.value("SKYRIG_RETRY_BASE_MS") or 0) / 200
        return cls(base=0.2 * scale, throttle_base=1.0 * scale, cap=20.0 * max(scale, 0.01))

    def call(
        self, function: Callable[[], T], on_retry: Callable[[Exception, float], None] | None = None
    ) -> T:
        for attempt in range(self.attempts):
            try:
                return function()
            except TransientError as error:
                if attempt == self.attempts - 1:
                    raise
                base = self.throttle_base if isinstance(error, ThrottledError) else self.base
                delay = random.uniform(0, min(self.cap, base * 2**attempt))
                if on_retry:
                    on_retry(error, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


class CrashPoint:
    """A kill -9 on purpose, for crash tests of any provider: with ``SKYRIG_CRASH_AFTER_CREATE=N`` the
    process exits hard right after the Nth create call returned and before its node is recorded, the
    worst moment there is. The conformance suite uses it to prove that a re-apply adopts, never
    duplicates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def passed(self) -> None:
        limit = variables.value("SKYRIG_CRASH_AFTER_CREATE")
        if not limit:
            return
        with self._lock:
            self._count += 1
            if self._count == limit:
                os._exit(137)


crash_point = CrashPoint()


def find_all(
    nodes: Iterable[Node],
    types: Mapping[str, NodeType],
    contexts: Mapping[str, Context],
    *,
    call: Callable[[Callable[[], Any]], Any] = lambda function: function(),
    parallelism: int = 10,
) -> tuple[dict[str, Observed | None], dict[str, str]]:
    """Look ``nodes`` up by their identity, one ``find_many`` per node type (the types at once, at most
    ``parallelism`` together), each through ``call`` (the executor's retries); if a type's ``find_many``
    fails, its nodes are looked up one by one, so that a failure is the failing node's alone. Returns what
    was found (node id -> observed, or None: not there) and, for each node whose lookup failed, why."""
    by_type: dict[str, list[Node]] = {}
    for node in nodes:
        by_type.setdefault(node.type, []).append(node)
    found: dict[str, Observed | None] = {}
    failed: dict[str, str] = {}
    if not by_type:
        return found, failed

    def look_up(group: list[Node]) -> dict[str, Observed | Exception | None]:
        node_type = types[group[0].type]
        context = contexts[group[0].provider]
        try:
            answer = call(lambda: node_type.find_many(context, group))
            return {node.id: answer.get(node.id) for node in group}
        except Exception as error:  # then one by one: each node its own answer, or its own error
            if len(group) == 1:
                return {group[0].id: error}
        each: dict[str, Observed | Exception | None] = {}
        for node in group:
            try:
                each[node.id] = call(lambda node=node: node_type.find(context, node))
            except Exception as error:  # that node fails, with this error
                each[node.id] = error
        return each

    workers = max(1, min(parallelism, len(by_type)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skyrig-find") as pool:
        futures = [pool.submit(look_up, group) for _, group in sorted(by_type.items())]
        for future in futures:
            for node_id, answer in future.result().items():
                if isinstance(answer, Exception):
                    failed[node_id] = (
                        f"looking it up before creating it failed ({error_text(answer)}): nothing was created"
                    )
                else:
                    found[node_id] = answer
    return found, failed


def error_text(error: Exception) -> str:
    """How a node's error is shown: a provider's message as it is, anything else with its type."""
    return str(error) if isinstance(error, ProviderError) else f"{type(error).__name__}: {error}"


FORGET = "forget"
"""What a node whose resource was deleted writes instead of a record: its record is forgotten."""

BATCH = 1000
"""At most this many nodes' writes in one batch: a store's write never grows with the apply."""

PACE = 0.02
"""Seconds from the start of one batch to the start of the next, at least (unless :data:`BATCH` nodes or a
flush wait): a transaction costs about as much as a hundred rows, and a node's record durable 20 ms later
costs nothing (its dependents do not wait for it). A store slower than that commits back to back."""


@dataclass
class Completion:
    """A node done in the cloud, whose state write (its record, or ``FORGET``) is on its way."""

    change: Change
    action: str
    write: NodeRecord | str
    started: float


class Recorder:
    """The executor's group commit: nodes that complete hand their writes to it and go on, and one thread
    writes whatever was handed while its previous batch was being written (and at least :data:`PACE`
    after that batch began) as the next batch, of at most :data:`BATCH`, through the store's
    ``write_batch``. ``finished`` hears about each completion once its batch is durable (``error`` None)
    or refused (the error: nothing of the batch was written)."""

    def __init__(
        self,
        store: BatchWrites,
        env: str,
        fence: int,
        finished: Callable[[list[Completion], Exception | None], None],
    ) -> None:
        self.store = store
        self.env = env
        self.fence = fence
        self.finished = finished
        self._queue: queue.SimpleQueue[Completion | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="skyrig-state", daemon=True)
        self._thread.start()

    def put(self, completion: Completion) -> None:
        self._queue.put(completion)

    def flush(self) -> None:
        """Return once everything handed so far is written (or refused)."""
        written = threading.Event()
        self._queue.put(written)
        written.wait()

    def close(self) -> None:
        """Write what is left, then stop."""
        self._queue.put(None)
        self._thread.join()

    def abandon(self) -> None:
        """Stop without waiting (an aborted apply: what is not yet written keeps its intent)."""
        self._queue.put(None)

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        began = 0.0
        while True:
            items = [get()]  # wait for one; then take whatever else has queued meanwhile
            while isinstance(items[-1], Completion) and len(items) < BATCH:
                wait = began + PACE - time.monotonic()  # no sooner than PACE after the last began
                try:
                    items.append(get(timeout=wait) if wait > 0 else get_nowait())
                except queue.Empty:
                    if wait <= 0:
                        break
            began = time.monotonic()
            pending: list[Completion] = []
            for item in items:
                if isinstance(item, Completion):
                    pending.append(item)
                    if len(pending) == BATCH:
                        self._write(pending)
                        pending = []
                    continue
                self._write(pending)
                pending = []
                if item is None:
                    return
                item.set()
            self._write(pending)

    def _write(self, batch: list[Completion]) -> None:
        if not batch:
            return
        try:
            self.store.write_batch(
                self.env,
                self.fence,
                records=[c.write for c in batch if isinstance(c.write, NodeRecord)],
                forgotten=[c.change.id for c in batch if c.write == FORGET],
            )
        except Exception as error:  # the whole batch failed: each of its nodes fails with it
            failure: Exception | None = error
        else:
            failure = None
        with suppress(Exception):  # a report that fails must not stop the recorder: flush would wait
            self.finished(batch, failure)


@dataclass
class Outcome:
    """How an apply went."""

    done: dict[str, str] = field(default_factory=dict)
    """Node id -> action performed."""
    failed: dict[str, str] = field(default_factory=dict)
    """Node id -> error."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Node id -> why it did not run (a dependency failed, or the apply was stopped)."""
    retries: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.failed and not self.skipped and not self.interrupted


class Executor:
    """Runs a plan's changes against the clouds, recording each in state as it completes."""

    def __init__(
        self,
        plan: Plan,
        store: StateStore,
        fence: int,
        contexts: Mapping[str, Context],
        types: Mapping[str, NodeType],
        records: Mapping[str, NodeRecord],
        intents: Mapping[str, str],
        *,
        parallelism: int = 10,
        retry: RetryPolicy | None = None,
        report: Callable[[str, Change | None, float], None] | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.fence = fence
        self.contexts = contexts
        self.types = types
        self.records = records
        self.intents = intents
        self.parallelism = max(1, parallelism)
        self.retry = retry or RetryPolicy.from_environment()
        self.report = report or (lambda event, change, seconds: None)
        self.outcome = Outcome()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.found: dict[str, Observed | None] = {}
        """Node id -> what looking it up by its identity found, for each node created without a record."""
        self.lookup_failed: dict[str, str] = {}
        self.batches = store if isinstance(store, BatchWrites) else None
        """The store, if it writes batches: then records go through a :class:`Recorder`."""
        self.recorder: Recorder | None = None
        self.intended: set[str] = set()
        """Nodes whose create intent was written in a batch (before their turn in the walk)."""
        self.intending: dict[str, threading.Event] = {}
        """Node id -> an event set once its batch of intents is written (or refused), for the batches after
        the first."""
        self._intender: threading.Thread | None = None
        self.started: set[str] = set()
        self.completed: dict[str, NodeRecord] = {}
        """Node id -> its record, for each node of this apply done in the cloud (durable or not yet)."""
        self.written: dict[str, NodeRecord | str] = {}
        """Node id -> its record, or :data:`FORGET`, for each state write of this apply that is durable."""

    # -- the walk -------------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.perf_counter()
        forward = [c for c in self.plan.changes if c.action not in ("delete", "retain")]
        backward = [c for c in self.plan.changes if c.action == "delete"]
        self._look_up(forward)
        if self.batches is not None:
            self._intend(forward)
            self.recorder = Recorder(self.batches, self.plan.environment, self.fence, self._finished)
        try:
            self._walk(forward, {c.id: c.node.depends_on for c in forward})
            self._flush()
            if not self.outcome.failed and not self.stopping.is_set():
                # delete a node only after the nodes that depend on it are gone
                dependents: dict[str, list[str]] = {c.id: [] for c in backward}
                for change in backward:
                    for dependency in change.node.depends_on:
                        if dependency in dependents:
                            dependents[dependency].append(change.id)
                self._walk(backward, dependents)
                self._flush()
            if self._intender is not None:
                self._intender.join()
            self._unintend()
        except BaseException:
            if self.recorder is not None:  # aborted: what is not written keeps its intent
                self.recorder.abandon()
            raise
        if self.recorder is not None:
            self.recorder.close()
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    def _intend(self, changes: list[Change]) -> None:
        """Write the intents of the creates of nodes state does not record and the lookups did not find,
        :data:`BATCH` at a time: a transaction for many nodes, not one each. The first batch is written
        before the walk and the rest by a thread while the walk starts; a node of a batch not yet written
        waits for it (:meth:`_create`), so each intent is durable before its cloud call. If a batch fails,
        its nodes and those after write their own. Nodes with a record keep their own intent, written just
        before."""
        creates = [
            c.node
            for c in changes
            if c.action == "create"
            and c.id not in self.records
            and c.id not in self.lookup_failed
            and self.found.get(c.id) is None
        ]
        chunks = [creates[start : start + BATCH] for start in range(0, len(creates), BATCH)]
        if not chunks or not self._write_intents(chunks[0]):
            return
        later = [(chunk, threading.Event()) for chunk in chunks[1:]]
        if not later:
            return
        self.intending = {node.id: written for chunk, written in later for node in chunk}

        def write_later() -> None:
            failed = False
            try:
                for chunk, written in later:
                    failed = failed or not self._write_intents(chunk)
                    written.set()
            finally:  # whatever happens here, no node waits for ever: unwritten, each writes its own
                for _, written in later:
                    written.set()

        self._intender = threading.Thread(target=write_later, name="skyrig-intents", daemon=True)
        self._intender.start()

    def _write_intents(self, nodes: list[Node]) -> bool:
        """One batch of create intents; False if the store refused it (each node then writes its own, and
        fails with the store's error)."""
        assert self.batches is not None
        try:
            intents = [(n.id, "create", self.contexts[n.provider].token(n)) for n in nodes]
            self.batches.write_batch(self.plan.environment, self.fence, intents=intents)
        except Exception:
            return False
        with self._lock:
            self.intended.update(n.id for n in nodes)
        return True

    def _unintend(self) -> None:
        """Clear the intents written before the walk for nodes that never started (the apply stopped, or a
        dependency failed): no cloud call began for them. An intent an earlier apply left stays."""
        unstarted = sorted(i for i in self.intended if i not in self.started and i not in self.intents)
        if not unstarted or self.batches is None:
            return
        with suppress(Exception):  # not cleared: the next apply looks them up, as it would anyway
            for start in range(0, len(unstarted), BATCH):
                chunk = unstarted[start : start + BATCH]
                self.batches.write_batch(self.plan.environment, self.fence, forgotten=chunk)

    def _flush(self) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def _walk(self, changes: list[Change], waits_for: Mapping[str, Iterable[str]]) -> None:
        """Run ``changes``, each after those of them it waits for, at most ``parallelism`` at once."""
        by_id = {c.id: c for c in changes}
        countdown = dag.Countdown(waits_for)
        ready = deque(countdown.ready())
        unstarted = set(by_id)
        running: dict[Future[None], Change] = {}

        pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="skyrig-apply")
        try:
            while ready or running:
                while ready and len(running) < self.parallelism and not self.stopping.is_set():
                    node_id = ready.popleft()
                    unstarted.discard(node_id)
                    failed = next(
                        (
                            d
                            for d in countdown.waits[node_id]
                            if d in self.outcome.failed or d in self.outcome.skipped
                        ),
                        None,
                    )
                    if failed:
                        self.outcome.skipped[node_id] = f"depends on {failed}, which did not complete"
                        ready.extend(countdown.done(node_id))
                        continue
                    self.started.add(node_id)
                    running[pool.submit(self._one, by_id[node_id])] = by_id[node_id]
                if not running:
                    break
                try:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if self.stopping.is_set():  # the second Ctrl-C: abort now; intents keep what is in flight
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise
                    self.stopping.set()
                    self.outcome.interrupted = True
                    self.report("stopping", None, float(len(running)))
                    continue
                for future in done:
                    ready.extend(countdown.done(running.pop(future).id))
        except KeyboardInterrupt:
            raise
        except BaseException:
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
        for node_id in sorted(unstarted):
            self.outcome.skipped.setdefault(node_id, "the apply was stopped before it")

    def _look_up(self, changes: list[Change]) -> None:
        """Before any create: look up every node to create that state has no record of (a first apply, an
        apply after a crash, or after state was lost), one ``find_many`` per node type."""
        unrecorded = [c.node for c in changes if c.action == "create" and c.id not in self.records]
        self.found, self.lookup_failed = find_all(
            unrecorded, self.types, self.contexts, call=self._call, parallelism=self.parallelism
        )

    def _one(self, change: Change) -> None:
        started = time.perf_counter()
        try:
            action, write = self._perform(change)
            if isinstance(write, NodeRecord):
                with self._lock:
                    self.completed[change.id] = write
            if write is not None and self.recorder is None:  # a store without batches: written now
                self._write(change, write)
        except Exception as error:  # a node's failure is recorded; its dependents are skipped
            with self._lock:
                self.outcome.failed[change.id] = error_text(error)
            self.report("failed", change, time.perf_counter() - started)
            return
        if write is not None and self.recorder is not None:  # done once its record is durable
            self.recorder.put(Completion(change, action, write, started))
            return
        with self._lock:
            self.outcome.done[change.id] = action
        self.report(action, change, time.perf_counter() - started)

    def _finished(self, batch: list[Completion], error: Exception | None) -> None:
        """The recorder wrote ``batch`` (``error`` None), or failed to."""
        with self._lock:
            for completion in batch:
                if error is None:
                    self.outcome.done[completion.change.id] = completion.action
                    self.written[completion.change.id] = completion.write
                else:
                    self.outcome.failed[completion.change.id] = error_text(error)
        now = time.perf_counter()
        for completion in batch:
            self.report("failed" if error else completion.action, completion.change, now - completion.started)

    def _write(self, change: Change, write: NodeRecord | str) -> None:
        if isinstance(write, NodeRecord):
            self.store.record(self.plan.environment, self.fence, write)
        else:
            self.store.forget(self.plan.environment, self.fence, change.id)
        with self._lock:
            self.written[change.id] = write

    def recorded(self) -> dict[str, NodeRecord]:
        """What state records after this apply: the records it began with, as its durable writes changed
        them (under the lease, nobody else writes), so that nothing needs reading back."""
        after = dict(self.records)
        with self._lock:
            for node_id, write in self.written.items():
                if isinstance(write, NodeRecord):
                    after[node_id] = write
                else:
                    after.pop(node_id, None)
        return after

    def records_now(self) -> dict[str, NodeRecord]:
        """What state will record once every write of this apply so far is durable: :meth:`recorded`
        with the records of the nodes done in the cloud whose write is still in flight."""
        now = self.recorded()
        with self._lock:
            now.update(self.completed)
        return now

    # -- one node -------------------------------------------------------------------------------

    def _perform(self, change: Change) -> tuple[str, NodeRecord | str | None]:
        """Do ``change`` in the cloud: the action done, and the state write that completes it (a record,
        :data:`FORGET`, or None), which :meth:`_one` makes or hands to the recorder."""
        node = change.node
        node_type = self.types[node.type]
        context = self.contexts[node.provider]
        record = self.records.get(node.id)
        if change.action == "noop":
            if change.adopt and record is not None:
                adopted = Observed(record.provider_id, dict(record.observed) | change.adopt, record.outputs)
                return "adopted", NodeRecord.of(node, adopted, record.desired)
            return "noop", None
        if change.action == "delete":
            if record is not None:
                self._call(lambda: node_type.delete(context, node, record.provider_id))
            return "deleted", FORGET
        if change.action == "update" and record is not None:
            changes = {key: wanted for key, (_, wanted) in change.fields.items()}
            observed = self._call(lambda: node_type.update(context, node, record.provider_id, changes))
            return "updated", NodeRecord.of(node, observed)
        if change.action == "replace" and record is not None:
            self.store.add_intent(self.plan.environment, self.fence, node.id, "replace", context.token(node))
            self._call(lambda: node_type.delete(context, node, record.provider_id))
            self._write(change, FORGET)
        return self._create(change, node, node_type, context)

    def _create(
        self, change: Change, node: Node, node_type: NodeType, context: Context
    ) -> tuple[str, NodeRecord]:
        if node.id in self.lookup_failed:
            raise ProviderError(self.lookup_failed[node.id])
        found: Observed | None = None
        if node.id in self.found:  # looked up before the walk: state has no record of it
            found = self.found[node.id]
        elif node.id in self.intents and change.action == "create":
            # recorded, gone from the cloud, and an earlier apply began creating it again and stopped
            found = self._call(lambda: node_type.find(context, node))
        if found is not None:
            adopted = self._adopt(change, node, node_type, context, found)
            if adopted is not None:
                return "adopted", NodeRecord.of(node, adopted)
        written = self.intending.get(node.id)
        if written is not None:  # its batch is being written: the intent must be durable before the call
            written.wait()
        if node.id not in self.intended:  # else written in a batch
            self.store.add_intent(self.plan.environment, self.fence, node.id, "create", context.token(node))
        attempts = 0

        def create() -> Observed:
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # the failed attempt may have created it before its response was lost
                found = self._call(lambda: node_type.find(context, node))
                if found is not None:
                    return found
            return node_type.create(context, node)

        observed = self._call(create)
        crash_point.passed()
        return "created", NodeRecord.of(node, observed)

    def _adopt(
        self, change: Change, node: Node, node_type: NodeType, context: Context, found: Observed
    ) -> Observed | None:
        """``found``, made for ``node`` by an earlier run that did not record it, brought up to date: its
        properties that differ from the node's are updated in place. If one of them cannot change in place
        (``replace_on``), the found resource is deleted and None returned (it is then created anew),
        unless it holds data: then it is adopted as it is, and the next plan shows the replacement."""
        stale = {k: v for k, v in node.properties.items() if found.properties.get(k) != v}
        fixed = (set(stale) & node_type.replace_on) - node_type.identity
        if fixed and not node_type.stateful:
            self.store.add_intent(self.plan.environment, self.fence, node.id, "replace", context.token(node))
            self._call(lambda: node_type.delete(context, node, found.provider_id))
            return None
        changes = {k: v for k, v in stale.items() if k not in fixed and k not in node_type.identity}
        if not changes:
            return found
        return self._call(lambda: node_type.update(context, node, found.provider_id, changes))

    def _call(self, function: Callable[[], T]) -> T:
        def count(error: Exception, delay: float) -> None:
            with self._lock:
                self.outcome.retries += 1

        return self.retry.call(function, count)
