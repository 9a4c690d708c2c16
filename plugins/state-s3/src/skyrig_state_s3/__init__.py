"""skyrig state in S3, or in any S3-compatible store (MinIO, Ceph, R2, ...): ``state = "s3://bucket/prefix"``.

**The design is skyrig's store over an object store**, :mod:`skyrig.state.objectlog` (its docstring says why
and how; skyrig-state-gcs is the same store on Cloud Storage): each environment's state is an append-only log
of numbered objects, ``PREFIX/ENV/log/NNNNNNNNNNNNNNNN.json``, lease changes included, so that fencing is the
creation of the log's next object; writes go in groups; snapshots in content-addressed chunks keep reads
cheap. Here each object is **created** with ``If-None-Match: *``, which S3 refuses (412) when the object
exists (``If-Match`` is never needed: no object is ever replaced). A write returns once S3 has the object (S3
is strongly consistent, lists included).

This package gives that store what is S3's own (:mod:`skyrig_state_s3.store`): the boto3 client, the URL
(bucket and prefix), the credentials, and S3's errors as :class:`~skyrig.state.StateUnusable` with what to
do.

**Credentials and endpoint** come from the AWS chain, never from ``skyrig.toml``: ``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, SSO, an instance or workload role; the region from
``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile; an S3-compatible store's endpoint from
``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``). A URL with credentials in it is refused.

boto3 is imported only when a store is opened: naming this plugin costs nothing otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skyrig_state_s3.store import S3Store

__all__ = ["open_s3"]


def open_s3(url: str, root: Path) -> S3Store:
    """The store for ``url`` (the entry point of the scheme ``s3`` in the group ``skyrig.state``); ``root``,
    the app's folder, names the default prefix (the app's name) when the URL has none."""
    from skyrig_state_s3.store import S3Store

    return S3Store(url, root)
