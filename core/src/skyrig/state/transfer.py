"""Moving an environment's state from one store to another (``skyrig state migrate``) and breaking a lease
by hand (``skyrig state unlock``): what the CLI asks of stores beyond :class:`~skyrig.state.StateStore`,
through the optional :class:`~skyrig.state.StateTransfer` (the built-in stores have it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from skyrig.errors import UserError
from skyrig.state import EnvironmentState, LeaseLost, Locked, StateStore, StateTransfer, masked
from skyrig.state.store import TRANSFER_METHODS


def transferable(store: StateStore, url: str) -> StateTransfer:
    """``store`` as a :class:`StateTransfer`, or a :class:`UserError` saying what its plugin lacks."""
    if isinstance(store, StateTransfer):
        return store
    missing = sorted(name for name in TRANSFER_METHODS if not callable(getattr(store, name, None)))
    raise UserError(
        f"the store of {masked(url)} ({type(store).__name__}) cannot move state in or out, nor break a lock "
        f"(it lacks {', '.join(missing)} of skyrig.state.StateTransfer)",
        "upgrade the store's plugin; until then, its locks end by expiring (SKYRIG_LOCK_TTL)",
    )


@contextmanager
def held(store: StateStore, env: str, holder: str, ttl: float, *, wait: bool = False) -> Iterator[int]:
    """Hold ``env``'s lease in ``store`` for the block, renewed by a heartbeat; yields the fence. With
    ``wait``, wait (up to 10 minutes) for another holder to let go instead of raising :class:`Locked`."""
    deadline = time.monotonic() + 600
    while True:
        try:
            fence = store.acquire(env, holder, ttl)
            break
        except Locked:
            if not wait or time.monotonic() > deadline:
                raise
            time.sleep(min(1.0, ttl / 4))
    stop, lost = threading.Event(), threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ttl / 3):
            if not store.renew(env, fence, ttl):
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
            store.release(env, fence)
    if lost.is_set():
        raise LeaseLost(f"the lock on environment {env!r} expired during the command")


@dataclass
class Moved:
    """What :func:`migrate` moved."""

    nodes: int
    intents: int
    services: int
    serial: int
    """The serial the target is at afterwards (the source's, or more if the target had been further)."""
    fence: int
    """The highest fence the source had issued: the target issues greater ones from now on."""
    emptied: bool
    """Whether the source's copy was emptied (a move), or kept."""


def is_empty(state: EnvironmentState) -> bool:
    return not (state.nodes or state.intents or state.runtime) and state.applied_at is None


def migrate(
    source: StateStore,
    source_url: str,
    target: StateStore,
    target_url: str,
    env: str,
    *,
    holder: str,
    ttl: float,
    force: bool = False,
    keep: bool = False,
    wait: bool = False,
) -> Moved:
    """Move ``env``'s state from ``source`` to ``target``: under both leases, copy it whole (records with
    their times, intents with their tokens, runtime configs, the time of the last apply, the serial and the
    highest fence issued) in one write, read it back and compare, then empty the source (unless ``keep``),
    which moves its serial so that a plan saved against it is refused. A target that holds state of
    ``env`` already is refused unless ``force`` (replaced)."""
    source_in, target_in = transferable(source, source_url), transferable(target, target_url)
    with (
        held(source, env, holder, ttl, wait=wait) as source_fence,
        held(target, env, holder, ttl, wait=wait) as target_fence,
    ):
        state = source_in.export(env)
        there = target_in.export(env)
        if not is_empty(there) and not force:
            raise UserError(
                f"{masked(target_url)} already holds state of environment {env!r} ({len(there.nodes)} "
                "node(s) recorded): migrate refuses to replace it",
                "if an earlier migrate was cut short, or that copy is stale, pass --force to replace it "
                f"with the state of {masked(source_url)}",
            )
        target_in.load(env, target_fence, state)
        copied = target_in.export(env)
        if (copied.nodes, copied.intents, copied.runtime, copied.applied_at) != (
            state.nodes,
            state.intents,
            state.runtime,
            state.applied_at,
        ) or copied.serial < state.serial:
            raise UserError(  # a store that loads what it was given differently: its plugin's fault
                f"the state of environment {env!r} read back from {masked(target_url)} differs from what "
                f"was written: {masked(source_url)} keeps its copy",
                "report it to the target store's plugin; nothing in the cloud changed",
            )
        if not keep:
            source_in.load(env, source_fence, EnvironmentState(fence=state.fence))
    return Moved(
        len(state.nodes), len(state.intents), len(state.runtime), copied.serial, state.fence, not keep
    )


def unlock(store: StateStore, url: str, env: str, *, holder: str, force: bool) -> Locked | None:
    """End ``env``'s lock in ``store`` if one is held: refused while it is live (its holder renews it)
    unless ``force``. The lock that was broken (None if there was none)."""
    try:
        fence = store.acquire(env, holder, 5.0)
    except Locked as held_by:
        left = max(0.0, held_by.expires - time.time())
        if not force:
            raise UserError(
                f"environment {env!r} is locked by {held_by.holder} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(held_by.since))}, and the lock is live: "
                f"it runs out in {left:.0f} s unless its holder renews it (a holder that runs renews it; one "
                "that died cannot, so its lock ends then by itself): unlock refuses a live holder",
                "unlock is never needed after a crash: wait for the lock to run out (or pass --wait to the "
                "next command). If the holder runs and must stop, stop it (Ctrl-C lets the lock go); "
                "--force breaks the lock now: the holder's writes to state are refused from then on, but "
                "cloud calls it has in flight still happen",
            ) from None
        transferable(store, url).break_lease(env)
        return held_by
    store.release(env, fence)
    return None
