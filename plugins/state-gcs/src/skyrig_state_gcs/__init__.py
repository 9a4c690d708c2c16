"""skyrig state in Google Cloud Storage: ``state = "gs://bucket/prefix"``.

**The design is skyrig's store over an object store**, :mod:`skyrig.state.objectlog` (its docstring says why
and how; skyrig-state-s3 is the same store on S3): each environment's state is an append-only log of numbered
objects, ``PREFIX/ENV/log/NNNNNNNNNNNNNNNN.json``, lease changes included, so that fencing is the creation of
the log's next object; writes go in groups; snapshots in content-addressed chunks keep reads cheap. Here each
object is **created** with the precondition ``ifGenerationMatch=0``, which Cloud Storage refuses (412) when a
live object of that name exists. The lease needs no object of its own, so ``ifGenerationMatch=<generation>``
is never needed (a lease object replaced with it would be checked apart from the writes it guards, since Cloud
Storage cannot make the creation of one object conditional on another's generation). A write returns once
Cloud Storage has the object (it is strongly consistent, lists included).

This package gives that store what is Cloud Storage's own (:mod:`skyrig_state_gcs.store`): the
google-cloud-storage client, the URL (bucket and prefix), the credentials, and Cloud Storage's errors as
:class:`~skyrig.state.StateUnusable` with what to do.

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
