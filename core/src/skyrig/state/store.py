"""The contract of a state store: what the engine, the CLI and the dashboard may ask of one.

A store keeps, per environment (a name such as ``dev`` or ``preview:pr-12``, matching
``[a-z0-9][a-z0-9:_-]*``), independently of every other environment:

- the *journal*: one :class:`~skyrig.state.NodeRecord` per provisioned node, keyed by node id, each
  written alone (a change to one node is one small write, whatever the size of the state);
- the *intents*: node id -> action, for cloud calls that began and were never recorded as done;
- the *serial*: a counter that moves with every change to the journal and with every :meth:`finish`;
- the time of the last complete apply and each service's runtime config, written by :meth:`finish`;
- one *lease* (the environment's lock), with a holder, an expiry and a *fence*: a number, strictly
  greater than every fence the store ever issued for the environment, that every write must carry.

Guarantees every store gives (:mod:`skyrig.state.suite` tests them; any store must pass it):

- **Atomic writes.** Each write (:meth:`add_intent`, :meth:`record`, :meth:`forget`, :meth:`finish`)
  takes effect entirely or not at all, for every reader, even if the process dies at any instant during
  it: never a torn record, never a record whose intent is still listed, never a change without its
  serial move.
- **Durable writes.** A write returns only once it would survive the writing process being killed
  (``kill -9``) the next instant, and every reader that starts afterwards, in any process, sees it.
- **Fencing.** A write is checked, in the same atomic step, against the environment's lease: if
  ``fence`` is not the current lease's fence, or that lease has expired, the write raises
  :class:`~skyrig.state.LeaseLost` and changes nothing. A fence that was superseded, expired or
  released never becomes valid again.
- **Crash recovery without help.** A holder that dies keeps its lease only until the TTL it last asked
  for runs out; then :meth:`acquire` succeeds for anyone, with a greater fence. Nobody needs to unlock.
  What the dead process wrote is kept; what it was writing is there entirely or not at all; its intents
  stay listed, so the next apply looks those resources up instead of creating duplicates.
- **Threads.** The engine calls one store object from several threads at once (an apply's parallel
  nodes, the lease's heartbeat): every method is safe to call concurrently.
- **No secrets.** Secret values never reach a store: records and runtime configs hold references only
  (the engine guarantees it), so a store may keep what it is given as it is. A remote store's own
  credentials come from its service's usual chain (environment, profile, workload identity), or from a
  password in the state URL set through ``SKYRIG_STATE``; a store never writes them into state and never
  puts an unmasked URL in an error message.

Reads need no lease and are not fenced. Lease times are in seconds of wall-clock time.

A store plugin registers a factory ``(url: str, root: Path) -> StateStore`` in the entry point group
``skyrig.state`` under its URL scheme (``s3``, ``postgresql``, ...); ``root`` is the app's folder, for
stores that resolve relative paths. :func:`skyrig.state.open_store` calls it and checks the result is
a :class:`StateStore`.

A store in an object store that can create an object only if its key is free (S3, Cloud Storage, ...)
need not write any of this: :mod:`skyrig.state.objectlog` is the whole store over such an object store,
and the plugin gives it the object store (the ``s3://`` and ``gs://`` stores do).

A store may also be a :class:`StateTransfer` (optional; the built-in stores are): what ``skyrig state
migrate`` (moving an environment between stores) and ``skyrig state unlock --force`` need beyond the
protocol. The store suite's ``TestTransfer`` checks it where a store has it.

Two more optional protocols make applies and plans fast, and a store gains by having them (SQLite has
both): :class:`BatchWrites`, several per-node writes in one atomic step, with which the engine commits
an apply's intents and records in groups (without it, each node's write is a call of its own, made by the
thread that finished the node); and :class:`Snapshots`, the serial and the records read at one instant,
leaving out what a plan does not read. The suite's ``TestBatches`` and ``TestSnapshots`` check them where
a store has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from skyrig.state import EnvironmentState, NodeRecord


@runtime_checkable
class StateStore(Protocol):
    """State of every environment of one app (see the module's docstring for what every method keeps)."""

    # -- reading (no lease needed) --------------------------------------------------------------

    def serial(self, env: str) -> int:
        """A counter that grows with every change to ``env``'s journal (:meth:`record`, :meth:`forget` of a
        recorded node) and with every :meth:`finish`; 0 for an environment never written. Leases do not
        move it (a saved plan stays valid across taking the lock to apply it); intents need not."""
        ...

    def applied_at(self, env: str) -> float | None:
        """When the last :meth:`finish` of ``env`` happened (seconds since the epoch), or None if never."""
        ...

    def nodes(self, env: str) -> dict[str, NodeRecord]:
        """Every node recorded in ``env``, by id, each exactly as last passed to :meth:`record` except
        ``updated_at``, which is the time of that write."""
        ...

    def intents(self, env: str) -> dict[str, str]:
        """Node id -> action (``create``, ``replace``) for every intent of ``env`` not yet cleared by a
        :meth:`record` or :meth:`forget` of that node."""
        ...

    def runtime_configs(self, env: str) -> dict[str, dict[str, Any]]:
        """Service -> runtime config, as passed to the last :meth:`finish` of ``env`` (empty if none)."""
        ...

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, env: str, holder: str, ttl: float) -> int:
        """Take ``env``'s lease for ``ttl`` seconds and return its fence, greater than any fence issued
        for ``env`` before. If an unexpired lease exists (whoever holds it, even ``holder`` itself), raise
        :class:`~skyrig.state.Locked` with that lease's holder, start and expiry, and change nothing.
        Atomic across processes and machines: of any number of concurrent callers, at most one wins."""
        ...

    def renew(self, env: str, fence: int, ttl: float) -> bool:
        """The heartbeat: make the lease held with ``fence`` expire ``ttl`` seconds from now. True if it
        was still this lease (not released, not taken over by another :meth:`acquire`); False, changing
        nothing, otherwise. The holder must then stop writing (its writes would raise
        :class:`~skyrig.state.LeaseLost` anyway)."""
        ...

    def release(self, env: str, fence: int) -> None:
        """Give up the lease held with ``fence``, so that :meth:`acquire` succeeds at once. If ``fence`` is
        not the current lease's, nothing changes (never release someone else's lease)."""
        ...

    # -- writing (each one atomic, durable and fenced) ------------------------------------------

    def add_intent(self, env: str, fence: int, node_id: str, action: str, token: str) -> None:
        """Note, before a cloud call that creates (or replaces) ``node_id``, that it is about to happen;
        ``token`` is the node's idempotency token, kept alongside. Replaces an earlier intent of the same
        node. Durable before it returns: a crash after the cloud call leaves the intent listed, and the
        next apply adopts what was created instead of duplicating it. Raises
        :class:`~skyrig.state.LeaseLost`, changing nothing, if ``fence`` is stale."""
        ...

    def record(self, env: str, fence: int, node: NodeRecord) -> None:
        """Save ``node`` as provisioned, replacing its previous record, clear its intent and move the
        serial: all three or none. Raises :class:`~skyrig.state.LeaseLost`, changing nothing, if ``fence``
        is stale."""
        ...

    def forget(self, env: str, fence: int, node_id: str) -> None:
        """Remove ``node_id``'s record (a node never recorded is no error), clear its intent and move the
        serial: all three or none. Raises :class:`~skyrig.state.LeaseLost`, changing nothing, if ``fence``
        is stale."""
        ...

    def finish(self, env: str, fence: int, runtime: dict[str, dict[str, Any]]) -> None:
        """Mark an apply of ``env`` complete: :meth:`applied_at` becomes now, the runtime configs become
        exactly ``runtime`` (services not in it are dropped), the serial moves; all or none. Raises
        :class:`~skyrig.state.LeaseLost`, changing nothing, if ``fence`` is stale."""
        ...

    # -- the handle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Let go of this handle's connections (not of any lease: a lease ends by :meth:`release` or by
        expiring). The handle is not used afterwards."""
        ...


STORE_METHODS = frozenset(
    name for name, value in vars(StateStore).items() if callable(value) and not name.startswith("_")
)
"""The names of the methods every store has."""


@runtime_checkable
class StateTransfer(Protocol):
    """Optional, beside :class:`StateStore`: an environment's whole state out and in (``skyrig state
    migrate``), and a lease broken by hand (``skyrig state unlock --force``)."""

    def export(self, env: str) -> EnvironmentState:
        """Everything ``env`` holds but its lease: every record (``updated_at`` as stored), every intent
        with its token, the runtime configs, :meth:`StateStore.applied_at`, the serial, and the highest
        fence ever issued for ``env`` (0 if none)."""
        ...

    def load(self, env: str, fence: int, state: EnvironmentState) -> None:
        """Make ``env`` hold exactly ``state``'s records, intents, runtime configs and ``applied_at``,
        in one atomic, durable and fenced write (:class:`~skyrig.state.LeaseLost`, changing nothing, if
        ``fence`` is stale). The serial becomes ``max(state.serial, serial + 1)``: it moves, and a plan
        saved against ``state``'s store stays valid only if nothing moved there since. The highest fence
        issued becomes at least ``state.fence``, so that the next :meth:`StateStore.acquire` issues a
        fence greater than any either store issued; the current lease is kept."""
        ...

    def break_lease(self, env: str) -> None:
        """End ``env``'s lease, whoever holds it and whether or not it expired: :meth:`StateStore.acquire`
        succeeds at once afterwards, and the broken lease's fence never writes again."""
        ...


TRANSFER_METHODS = frozenset(
    name for name, value in vars(StateTransfer).items() if callable(value) and not name.startswith("_")
)
"""The names of the methods of the optional :class:`StateTransfer`."""


@runtime_checkable
class BatchWrites(Protocol):
    """Optional, beside :class:`StateStore`: several per-node writes of one environment in one step, so
    that the engine can commit node records in groups (an apply's writes cost a few transactions, not two
    per node). A store without it gets the per-node calls, each from the thread that made the change."""

    def write_batch(
        self,
        env: str,
        fence: int,
        *,
        intents: Sequence[tuple[str, str, str]] = (),
        records: Sequence[NodeRecord] = (),
        forgotten: Sequence[str] = (),
    ) -> None:
        """What :meth:`StateStore.add_intent` for each ``(node_id, action, token)`` of ``intents``, then
        :meth:`StateStore.record` for each of ``records``, then :meth:`StateStore.forget` for each of
        ``forgotten`` would do, as one write: atomic (all of it or none, whenever the process dies),
        durable before it returns, and fenced (:class:`~skyrig.state.LeaseLost`, changing nothing, if
        ``fence`` is stale). The serial moves if ``records`` or ``forgotten`` is not empty."""
        ...


@runtime_checkable
class Snapshots(Protocol):
    """Optional, beside :class:`StateStore`: the records a plan needs, read once with the serial they are
    at. A store without it is read with :meth:`StateStore.serial`, then :meth:`StateStore.nodes`."""

    def snapshot(self, env: str, *, lean: bool = False) -> tuple[int, dict[str, NodeRecord]]:
        """:meth:`StateStore.serial` and :meth:`StateStore.nodes` of ``env`` as they were at one instant
        (no write falls between the two). ``lean``: leave out what a plan does not read, for speed: each
        record's ``outputs`` and ``drift`` are empty and its ``updated_at`` 0."""
        ...


OPTIONAL_METHODS = frozenset(
    name
    for protocol in (BatchWrites, Snapshots)
    for name, value in vars(protocol).items()
    if callable(value) and not name.startswith("_")
)
"""The names of the methods of the optional :class:`BatchWrites` and :class:`Snapshots`."""
