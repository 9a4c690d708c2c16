"""skyrig state in Azure Blob Storage: ``state = "azblob://account/container/prefix"``.

**The design is skyrig's store over an object store**, :mod:`skyrig.state.objectlog` (its docstring says why
and how; skyrig-state-s3 and skyrig-state-gcs are the same store on S3 and Cloud Storage): each
environment's state is an append-only log of numbered blobs, ``PREFIX/ENV/log/NNNNNNNNNNNNNNNN.json``, lease
changes included, so that fencing is the creation of the log's next blob; writes go in groups; snapshots in
content-addressed chunks keep reads cheap. Here each blob is **created** with ``If-None-Match: *``, which
Azure refuses (409 ``BlobAlreadyExists``) when a blob of that name exists. A write returns once Azure has the
blob (it is strongly consistent, lists included).

**The lock is also a blob lease.** When the log grants an environment's lease (and its fence), the store
takes an Azure blob lease on ``PREFIX/ENV/lock`` (a lease id derived from the fence; 15 to 60 s, renewed with
the heartbeat; released, or broken by ``skyrig state unlock --force``) and writes the holder and fence into
that blob's metadata, a write that carries the lease id: the lock shows in the portal and the Azure CLI
(``az storage blob show``: lease state, holder), and a second holder of that blob lease gets 409
``LeaseAlreadyPresent``. The log stays what decides, because Azure cannot make the creation of one blob
conditional on another blob's lease: fencing is the log's, and a blob lease left by a crashed holder is
broken by the next holder the log admits.

This package gives that store what is Azure's own (:mod:`skyrig_state_azblob.store`): the
azure-storage-blob client, the URL (account, container and prefix), the credentials, the blob lease, and
Azure's errors as :class:`~skyrig.state.StateUnusable` with what to do.

**Credentials and endpoint** come from the environment, never from ``skyrig.toml`` or the URL, as the Azure
CLI reads them: ``AZURE_STORAGE_CONNECTION_STRING`` (endpoint and key or SAS; its account must be the URL's;
Azurite's well-known one works), else ``AZURE_STORAGE_KEY`` (the account's key), else Entra ID through
azure-identity's ``DefaultAzureCredential`` (``az login``, a managed identity, workload identity, the
``AZURE_CLIENT_*`` variables). The endpoint is ``https://ACCOUNT.blob.core.windows.net`` unless the
connection string or ``SKYRIG_AZBLOB_ENDPOINT`` says another (``{account}`` in it is replaced).

azure-storage-blob is imported only when a store is opened: naming this plugin costs nothing otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skyrig_state_azblob.store import AzureBlobStore

__all__ = ["open_azblob"]


def open_azblob(url: str, root: Path) -> AzureBlobStore:
    """The store for ``url`` (the entry point of the scheme ``azblob`` in the group ``skyrig.state``);
    ``root``, the app's folder, names the default prefix (the app's name) when the URL has none."""
    from skyrig_state_azblob.store import AzureBlobStore

    return AzureBlobStore(url, root)
