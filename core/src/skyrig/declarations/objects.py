"""Object storage buckets."""

from __future__ import annotations

from typing import ClassVar

from skyrig.declarations._base import Declaration, Spec
from skyrig.declarations.types import Name


class BucketSpec(Spec):
    """Settings of a :class:`Bucket`."""

    name: Name
    public: bool = False
    """Objects are readable by anyone with their URL (served through a CDN in the clouds)."""
    versioned: bool = False
    """Every write keeps the previous versions of the object."""


class Bucket(Declaration):
    """An object storage bucket::

    avatars = Bucket("avatars", public=True)
    """

    kind = "bucket"
    spec_model = BucketSpec
    operations = {
        "upload": "upload",
        "download": "download",
        "list": "list",
        "remove": "remove",
        "versions": "download",
        "public_url": "public_url",
        "signed_url": "signed_url",
    }
    UPLOAD_HEADERS: ClassVar[dict[str, str]] = {"x-ms-blob-type": "BlockBlob"}
    """The headers an upload through a signed ``PUT`` URL sends, whatever the cloud: Azure Blob Storage
    requires this one, the others ignore it."""

    def __init__(self, name: str, *, public: bool = False, versioned: bool = False) -> None:
        self._declare(name=name, public=public, versioned=versioned)

    def upload(self, key: str, data: bytes) -> None:
        """Store ``data`` as ``key`` (a versioned bucket keeps the previous version)."""
        from skyrig.runtime.binding import client

        client(self, "upload").upload(key, data)

    def download(self, key: str) -> bytes:
        """The object's bytes; a ``KeyError`` if there is none."""
        from skyrig.runtime.binding import client

        return client(self, "download").download(key)

    def list(self, prefix: str = "") -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        from skyrig.runtime.binding import client

        return client(self, "list").list(prefix)

    def remove(self, key: str) -> None:
        """Delete the object (no error if it is not there)."""
        from skyrig.runtime.binding import client

        client(self, "remove").remove(key)

    def versions(self, key: str) -> list[bytes]:
        """Earlier versions of the object, oldest first, not counting the current one (versioned buckets
        keep the previous bytes on each upload and on remove)."""
        from skyrig.runtime.binding import client

        return client(self, "download").versions(key)

    def public_url(self, key: str) -> str:
        """The object's URL, readable by anyone (public buckets only)."""
        from skyrig.runtime.binding import client

        return client(self, "public_url").public_url(key)

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        """A temporary URL that grants ``method`` on the object until ``expires_in`` has passed.

        An upload through it (``PUT``) sends :attr:`UPLOAD_HEADERS` (``x-ms-blob-type: BlockBlob``, which
        Azure Blob Storage requires and the other clouds ignore)."""
        from skyrig.runtime.binding import client

        return client(self, "signed_url").signed_url(key, expires_in, method)
