"""skyrig state in Google Cloud Storage: ``state = "gs://bucket/prefix"``.

**The design: an append-only log of numbered objects**, as skyrig-state-s3's. Everything that happens to an
environment's state, lease changes included, is an *entry* of its log: the object
``PREFIX/ENV/log/NNNNNNNNNNNNNNNN.json``, numbered from 1 with no gap, and each one **created** with the
precondition ``ifGenerationMatch=0``, which Cloud Storage refuses (412) when a live object of that name
exists. An entry is a few *operations*: ``acquire`` (a lease taken: holder, fence, expiry), ``renew``,
``release``, ``break`` (``skyrig state unlock --force``), ``intent``, ``record`` (one node's record),
``forget``, ``finish`` (the runtime configs) and ``load`` (``skyrig state migrate``). State is what the
log says, replayed in order.

**Fencing is atomic with the write** because a write *is* the creation of the next position: a writer
checks its fence against the lease as the log says it up to position N, then creates N+1. If anything,
a takeover in particular, was written at N+1 meanwhile, the create fails, and the writer reads what came
and checks again: a writer whose lease was taken over or released raises
:class:`~skyrig.state.LeaseLost` and writes nothing; one whose lease expired raises it too, before
writing. Of any number of processes taking the lease at once, exactly one creates the position they all
aimed at; the others read its ``acquire`` and raise :class:`~skyrig.state.Locked`, naming the holder.
Taking, renewing and releasing the lease are entries like any other, so the lease needs no object of its
own, and no object is ever replaced: ``ifGenerationMatch=<generation>`` is never needed. (A lease object
replaced with it would be checked apart from the writes it guards, since Cloud Storage cannot make the
creation of one object conditional on another's generation.)

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

**Durability and threads.** A write returns once Cloud Storage has the object (it is strongly consistent,
lists included); a process killed mid-write leaves the entry whole or absent. One store object serves
every thread of a process (an apply's nodes and the lease's heartbeat).

**Credentials** come from Google's Application Default Credentials, never from ``skyrig.toml``:
``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, or the service account
attached where skyrig runs (workload identity, a VM's). With ``STORAGE_EMULATOR_HOST`` set (an emulator
such as fake-gcs-server), google-cloud-storage talks to it with anonymous credentials. A URL with
credentials in it is refused.

google-cloud-storage is imported only when a store is opened: naming this plugin costs nothing otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skyrig_state_gcs.store import GCSStore

__all__ = ["open_gcs"]


def open_gcs(url: str, root: Path) -> GCSStore:
    """The store for ``url`` (the entry point of the scheme ``gs`` in the group ``skyrig.state``); ``root``,
    the app's folder, names the default prefix (the app's name) when the URL has none."""
    from skyrig_state_gcs.store import GCSStore

    return GCSStore(url, root)
