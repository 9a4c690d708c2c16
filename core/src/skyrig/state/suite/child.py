"""The other processes of the store test suite (:mod:`skyrig.state.suite`): each opens the store under test
by its URL, does one thing and says what it did on stdout, one line per step that returned.

``python -m skyrig.state.suite.child ROLE URL ROOT ENV [ARGS...]``; a store plugin must be installed
(its entry point registered) for its URL to open here.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from skyrig.state import Locked, NodeRecord, StateStore, open_store

WHOLE = "whole"
"""The node the crash writer rewrites again and again, with a large payload, each version distinct."""


def whole_record(version: int, size: int) -> NodeRecord:
    """Version ``version`` of the rewritten node: every field says the version, so a mix is visible."""
    payload = f"{version:08d}" * max(1, size // 8)
    return NodeRecord(
        WHOLE,
        "suite.blob",
        "suite",
        f"blob-{version}",
        {"version": version, "payload": payload},
        {"version": version, "payload": payload},
        {"version": version},
        f"blob/{version}",
        [f"dependency-{version}"],
        [f"drift-{version}"],
    )


def node_record(number: int) -> NodeRecord:
    """The ``number``-th node the crash writer creates."""
    return NodeRecord(f"node-{number}", "suite.node", "suite", str(number), {"n": number}, {"n": number})


BATCH = 20
"""Nodes a batch of the batch writer records."""


def batch_record(number: int, index: int) -> NodeRecord:
    """Node ``index`` of the batch writer's batch ``number``: a record of some size, saying both."""
    payload = f"{number:06d}{index:02d}" * 64
    return NodeRecord(
        f"batch-{number}-{index}",
        "suite.batch",
        "suite",
        f"{number}.{index}",
        {"number": number, "index": index, "payload": payload},
        {"number": number, "index": index, "payload": payload},
        {"index": index},
    )


def counter_record(count: int) -> NodeRecord:
    """The counter the contending processes increment under the lease."""
    return NodeRecord("counter", "suite.counter", "suite", "counter", {"count": count}, {"count": count})


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def holder() -> str:
    return f"suite-child pid {os.getpid()}"


def hold(store: StateStore, env: str, ttl: str) -> None:
    """Take the lease, say its fence, and wait to be killed."""
    say(f"fence {store.acquire(env, holder(), float(ttl))}")
    time.sleep(600)


def race(store: StateStore, env: str, go: str) -> None:
    """Once ``go`` exists, try to take the lease, once; keep it if won."""
    say("ready")
    while not Path(go).exists():
        time.sleep(0.001)
    try:
        say(f"won {store.acquire(env, holder(), 60)}")
    except Locked:
        say("locked")


def count(store: StateStore, env: str, rounds: str) -> None:
    """``rounds`` times: take the lease (waiting for it), read the counter, write it plus one, let go."""
    for _ in range(int(rounds)):
        while True:
            try:
                fence = store.acquire(env, holder(), 60)
                break
            except Locked:
                time.sleep(random.uniform(0, 0.005))
        current = store.nodes(env).get("counter")
        store.record(env, fence, counter_record((current.desired["count"] if current else 0) + 1))
        say(f"fence {fence}")
        store.release(env, fence)


def write(store: StateStore, env: str, size: str) -> None:
    """Write until killed: an intent (``I n``), its node (``R n``), a new version of the large node
    (``W n``), each line said once the write returned."""
    fence = store.acquire(env, holder(), 600)
    number = 0
    while True:
        number += 1
        store.add_intent(env, fence, f"node-{number}", "create", f"token-{number}")
        say(f"I {number}")
        store.record(env, fence, node_record(number))
        say(f"R {number}")
        store.record(env, fence, whole_record(number, int(size)))
        say(f"W {number}")


def write_batches(store: StateStore, env: str) -> None:
    """Write batches until killed (``write_batch``): batch ``n`` records its :data:`BATCH` nodes and notes
    the intents of the next batch's; ``B n`` said once it returned."""
    fence = store.acquire(env, holder(), 600)
    write_batch = store.write_batch  # type: ignore[attr-defined]
    write_batch(env, fence, intents=[(f"batch-1-{n}", "create", "token") for n in range(BATCH)])
    number = 0
    while True:
        number += 1
        write_batch(
            env,
            fence,
            intents=[(f"batch-{number + 1}-{n}", "create", "token") for n in range(BATCH)],
            records=[batch_record(number, n) for n in range(BATCH)],
        )
        say(f"B {number}")


def die_after_intent(store: StateStore, env: str, node_id: str) -> None:
    """Note an intent, then die at once, as after a cloud call whose result was never recorded."""
    fence = store.acquire(env, holder(), 600)
    store.add_intent(env, fence, node_id, "create", "token")
    say("intent")
    os._exit(137)


ROLES = {
    "hold": hold,
    "race": race,
    "count": count,
    "write": write,
    "write-batches": write_batches,
    "die-after-intent": die_after_intent,
}


def main(argv: list[str]) -> None:
    role, url, root, env, *args = argv
    store = open_store(url, Path(root))
    try:
        ROLES[role](store, env, *args)
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
