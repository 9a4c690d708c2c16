"""A state store over an object store (S3, Cloud Storage, ...): each environment's state as an append-only
log of numbered objects, each created only if absent, plus snapshots. The remote stores ``s3://``
(skyrig-state-s3) and ``gs://`` (skyrig-state-gcs) are this store over their service.

**The design: an append-only log of numbered objects.** Everything that happens to an environment's state,
lease changes included, is an *entry* of its log: the object ``PREFIX/ENV/log/NNNNNNNNNNNNNNNN.json``,
numbered from 1 with no gap, and each one **created** only if no object has its key (S3's
``If-None-Match: *``, Cloud Storage's ``ifGenerationMatch=0``). An entry is a few *operations*: ``acquire``
(a lease taken: holder, fence, expiry), ``renew``, ``release``, ``break`` (``skyrig state unlock
--force``), ``intent``, ``record`` (one node's record), ``forget``, ``finish`` (the runtime configs) and
``load`` (``skyrig state migrate``). State is what the log says, replayed in order.

**Fencing is atomic with the write** because a write *is* the creation of the next position: a writer
checks its fence against the lease as the log says it up to position N, then creates N+1. If anything,
a takeover in particular, was written at N+1 meanwhile, the create fails, and the writer reads what came
and checks again: a writer whose lease was taken over or released raises
:class:`~skyrig.state.LeaseLost` and writes nothing; one whose lease expired raises it too, before
writing. Of any number of processes taking the lease at once, exactly one creates the position they all
aimed at; the others read its ``acquire`` and raise :class:`~skyrig.state.Locked`, naming the holder. The
highest fence issued is what the log says, so it survives release. The lease needs no object of its own,
and no object is ever replaced.

**Small writes, in groups.** A node change is one operation of a few hundred bytes: an apply that creates
N nodes writes at most 2N + 3 entries and its heartbeats (the lease taken, an intent before each create
and a record after it, the runtime configs, the lease let go). The threads of one process that write
while an entry is being created go together into the next one (group commit, at most 64 operations an
entry), so an apply writes fewer entries than operations when it runs nodes in parallel. No write grows
with N. (The store does not take the engine's batches, ``skyrig.state.store.BatchWrites``: a batch is one
atomic write of up to 1,000 nodes, and would make an entry grow with the apply.)

**Snapshots keep reads cheap.** A reader loads the newest snapshot and replays the entries after it.
A snapshot (``PREFIX/ENV/snapshots/``, named so that the newest lists first) is a small manifest of the
state beside the records, and the records in *chunks* of about 128 nodes each
(``PREFIX/ENV/chunks/SHA256.json``), content-addressed, so that a snapshot writes only the chunks that
changed since the last one. A snapshot is derived data (anyone may write it, it says nothing the log does
not): it is written when the command lets go of the lease and the log has grown by 16 entries since the
last one, and during an apply whenever the log has grown by as many entries as there are nodes (at least
512), which keeps the bytes written per apply O(N). Log entries are never deleted: a position deleted
could be created again by a writer whose lease was lost unnoticed.

**Durability and threads.** A write returns once the object store has the object (it must be strongly
consistent, lists included); a process killed mid-write leaves the entry whole or absent. One store object
serves every thread of a process (an apply's nodes and the lease's heartbeat).

**A store plugin** gives what is its own: its client, its credentials, its URL's rules
(:func:`bucket_url` parses ``SCHEME://BUCKET/PREFIX`` with them), its errors as
:class:`~skyrig.state.StateUnusable` with what to do, and an :class:`ObjectStore` over its service (create
if absent, read, list, close). Its store subclasses :class:`ObjectLogStore`, and runs the store suite
(:mod:`skyrig.state.suite`) on an emulator that honours the create-if-absent condition::

    class S3Store(ObjectLogStore):
        def __init__(self, url: str, root: Path) -> None:
            bucket, prefix = bucket_url(url, root, scheme="s3", store="an S3", ...)
            objects = Bucket(url, bucket)  # boto3's client, S3's errors made StateUnusable
            super().__init__(
                objects, url, prefix, package="skyrig-state-s3", versions="the bucket's versions"
            )

The modules: :mod:`~skyrig.state.objectlog.objects` (the protocol), :mod:`~skyrig.state.objectlog.view`
(what a log says, and snapshots' chunks), :mod:`~skyrig.state.objectlog.writes` (operations, and what the
lease allows), :mod:`~skyrig.state.objectlog.store` (reading, group commit, the store's methods),
:mod:`~skyrig.state.objectlog.urls` (a bucket's state URL).
"""

from skyrig.state.objectlog.objects import ObjectStore
from skyrig.state.objectlog.store import READERS, ObjectLogStore
from skyrig.state.objectlog.urls import bucket_url

__all__ = ["READERS", "ObjectLogStore", "ObjectStore", "bucket_url"]
