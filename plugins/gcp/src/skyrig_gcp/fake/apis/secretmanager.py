"""Secret Manager v1, FAKE (:mod:`skyrig_gcp.fake`): secrets, their versions, and their IAM policies.

As Google answers: names carry the project's number (``projects/123456789012/secrets/s``) whatever the
request used; secret ids are ``[a-zA-Z0-9_-]{1,255}``; a global secret needs a replication policy;
``:addVersion`` takes a base64 payload (at most 64 KiB, its CRC32C checked when sent); ``versions/latest``
is the newest enabled version, and accessing a disabled or destroyed one is FAILED_PRECONDITION.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError, already_exists, failed_precondition, invalid, not_found
from skyrig_gcp.fake.operations import now_rfc3339

MAX_PAYLOAD = 64 * 1024


def crc32c(data: bytes) -> int | None:
    """CRC32C of ``data`` (google-crc32c comes with the Google client libraries), or None without it."""
    try:
        import google_crc32c
    except ImportError:  # pragma: no cover
        return None
    return int(google_crc32c.value(data))


class SecretManager(ApiHandler):
    """Secret Manager: secrets (no long-running operations), versions, IAM."""

    api = "secretmanager"
    version = "v1"
    proto_package = "google.cloud.secretmanager.v1"
    project_names = "number"
    kinds = {
        "secrets": Kind(
            "secrets",
            "Secret",
            id_param="secretId",
            id_pattern=r"[a-zA-Z0-9_-]{1,255}",
            id_message=(
                "The provided Secret ID [{id}] does not match the expected format [[a-zA-Z_0-9-]{{1,255}}]"
            ),
            label="Secret",
        ),
        "versions": Kind("versions", "SecretVersion", label="Secret Version"),
    }

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        if "/versions/" in key:
            return not_found(f"Secret Version [{key}] not found.")
        return not_found(f"Secret [{key}] not found or has no versions.")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return already_exists(f"Secret [{key}] already exists.")

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        super().prepare(req, kind, key, resource)
        resource["etag"] = f'"{new_etag()[:12]}"'

    def touch(self, kind: Kind, resource: dict[str, Any]) -> None:
        super().touch(kind, resource)
        resource["etag"] = f'"{new_etag()[:12]}"'

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if kind.collection != "secrets":
            return
        regional = "/locations/" in key
        replication = resource.get("replication")
        if not regional and not replication:
            raise invalid("Secret.replication must be set for a global secret.", "secret.replication")
        if replication and len([k for k in ("automatic", "userManaged") if k in replication]) != 1:
            raise invalid(
                "Secret.replication must be exactly one of automatic or user_managed.", "replication"
            )
        if replication and "userManaged" in replication and not replication["userManaged"].get("replicas"):
            raise invalid("Secret.replication.user_managed needs at least one replica.", "replication")
        if old is not None and old.get("replication") != resource.get("replication"):
            raise invalid("Secret.replication is immutable.", "secret.replication")
        if "ttl" in resource and "expireTime" in resource:
            raise invalid("Only one of Secret.ttl and Secret.expire_time may be set.", "secret.ttl")

    # -- versions ------------------------------------------------------------------------------------------

    def _versions(self, secret: str) -> list[tuple[int, dict[str, Any]]]:
        prefix = secret + "/versions/"
        found = [(int(k[len(prefix) :]), v) for k, v in self.store.items() if k.startswith(prefix)]
        return sorted(found, key=lambda item: item[0])

    def resolve_version(self, key: str) -> str:
        """``.../versions/latest`` as the newest enabled version's name; 404 when there is none."""
        secret, _, ident = key.rpartition("/versions/")
        if ident != "latest":
            return key
        self.lookup(secret)
        enabled = [number for number, version in self._versions(secret) if version.get("state") == "ENABLED"]
        if not enabled:
            raise not_found(f"Secret Version [{key}] not found.")
        return f"{secret}/versions/{enabled[-1]}"

    def do_addVersion(self, req: Request) -> dict[str, Any]:
        """Adds a version holding the payload's bytes."""
        body = self.body(req)
        secret = self.canonical(self.path_key(req))
        self.lookup(secret)
        payload = body.get("payload") or {}
        data = base64.b64decode(payload.get("data", "") + "=" * (-len(payload.get("data", "")) % 4))
        if len(data) > MAX_PAYLOAD:
            raise invalid(
                f"Secret payload is larger than the maximum of {MAX_PAYLOAD} bytes.", "payload.data"
            )
        checksum = crc32c(data)
        sent = payload.get("dataCrc32c")
        if sent is not None and checksum is not None and int(sent) != checksum:
            raise invalid("Checksum mismatch: the payload's data_crc32c does not match its data.", "payload")
        number = (self._versions(secret)[-1][0] if self._versions(secret) else 0) + 1
        key = f"{secret}/versions/{number}"
        stamp = now_rfc3339()
        version: dict[str, Any] = {
            "name": key,
            "createTime": stamp,
            "state": "ENABLED",
            "replicationStatus": {"automatic": {}} if "/locations/" not in key else {},
            "etag": f'"{new_etag()[:12]}"',
            "clientSpecifiedPayloadChecksum": sent is not None,
            "_data": base64.b64encode(data).decode(),
        }
        if not version["replicationStatus"]:
            version.pop("replicationStatus")
        self.store[key] = version
        return self.present(self.kinds["versions"], key, version)

    def do_access(self, req: Request) -> dict[str, Any]:
        """The payload of a version (``latest``: the newest enabled one)."""
        key = self.resolve_version(self.canonical(self.path_key(req)))
        version = self.lookup(key)
        if version.get("state") != "ENABLED":
            raise failed_precondition(f"Secret Version [{key}] is in {version.get('state')} state.")
        data = base64.b64decode(version["_data"])
        payload: dict[str, Any] = {"data": version["_data"]}
        checksum = crc32c(data)
        if checksum is not None:
            payload["dataCrc32c"] = str(checksum)
        return {"name": key, "payload": payload}

    def generic_get(self, req: Request) -> dict[str, Any]:
        key = self.canonical(self.path_key(req))
        if "/versions/" in key:
            key = self.resolve_version(key)
        return self.present(None, key, self.lookup(key))

    def generic_list(self, req: Request) -> dict[str, Any]:
        collection = self.canonical(self.path_key(req))
        if collection.endswith("/versions"):
            self.lookup(collection.removesuffix("/versions"))
        body = super().generic_list(req)
        if req.method.verb == "list":
            listed = [k for k in self.store if self.in_collection(k, collection)]
            body["totalSize"] = len(self.filter_items(req, [(k, self.store[k]) for k in listed]))
        return body

    def _set_state(self, req: Request, state: str) -> dict[str, Any]:
        body = self.body(req)
        key = self.resolve_version(self.canonical(self.path_key(req)))
        version = self.lookup(key)
        if body.get("etag") and body["etag"] != version.get("etag"):
            raise ApiError("ABORTED", f"The etag of Secret Version [{key}] does not match.")
        if version.get("state") == "DESTROYED" and state != "DESTROYED":
            raise failed_precondition(f"Secret Version [{key}] is in DESTROYED state.")
        version["state"] = state
        version["etag"] = f'"{new_etag()[:12]}"'
        if state == "DESTROYED":
            version["destroyTime"] = now_rfc3339()
            version.pop("_data", None)
        return copy.deepcopy(self.present(None, key, version))

    def do_disable(self, req: Request) -> dict[str, Any]:
        """Disables a version."""
        return self._set_state(req, "DISABLED")

    def do_enable(self, req: Request) -> dict[str, Any]:
        """Enables a version."""
        return self._set_state(req, "ENABLED")

    def do_destroy(self, req: Request) -> dict[str, Any]:
        """Destroys a version's data."""
        return self._set_state(req, "DESTROYED")
