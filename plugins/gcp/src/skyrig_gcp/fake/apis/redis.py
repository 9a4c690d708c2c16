"""Memorystore for Redis v1, FAKE (:mod:`skyrig_gcp.fake`): instances, long-running, with Google's rules.

An instance is CREATING until its operation is done, then READY with ``host``, ``port`` (6378 with TLS),
``readEndpoint`` with read replicas, ``serverCaCerts`` with in-transit encryption (a real CA of the fake's
own: a test's Redis behind TLS can present :meth:`Redis.server_identity`), ``currentLocationId``,
``nodes``. Checked as Google checks: the instance id; memory size per tier (read replicas need 5 GiB and
STANDARD_HA); replica counts; the Redis version; ``redisConfigs`` keys per version (``maxmemory-policy``
values, ``maxmemory-gb`` not above the memory size, ``activedefrag`` yes/no); an authorized network that
exists; PRIVATE_SERVICE_ACCESS only with a Service Networking connection on that network; a patch needs an
``updateMask`` of updatable fields (tier, TLS and the connect mode are not).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError, already_exists, failed_precondition, invalid, not_found

VERSIONS = ("REDIS_3_2", "REDIS_4_0", "REDIS_5_0", "REDIS_6_X", "REDIS_7_0", "REDIS_7_2")
POLICIES = (
    "noeviction",
    "allkeys-lru",
    "volatile-lru",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lfu",
    "volatile-lfu",
)
#: The configs Memorystore takes (Instance.redisConfigs' documentation), by the version that introduced them.
CONFIGS = {
    "maxmemory-policy": "REDIS_3_2",
    "notify-keyspace-events": "REDIS_3_2",
    "activedefrag": "REDIS_4_0",
    "lfu-decay-time": "REDIS_4_0",
    "lfu-log-factor": "REDIS_4_0",
    "maxmemory-gb": "REDIS_4_0",
    "stream-node-max-bytes": "REDIS_5_0",
    "stream-node-max-entries": "REDIS_5_0",
    "maxmemory-clients": "REDIS_7_0",
    "lazyfree-lazy-eviction": "REDIS_7_0",
    "lazyfree-lazy-expire": "REDIS_7_0",
    "lazyfree-lazy-user-del": "REDIS_7_0",
    "lazyfree-lazy-user-flush": "REDIS_7_0",
    "active-expire-effort": "REDIS_7_0",
}
UPDATABLE = frozenset(
    {
        "displayName",
        "labels",
        "memorySizeGb",
        "redisConfigs",
        "replicaCount",
        "authEnabled",
        "maintenancePolicy",
        "persistenceConfig",
        "readReplicasMode",
        "secondaryIpRange",
        "maintenanceVersion",
    }
)


class Redis(ApiHandler):
    """Memorystore for Redis: instances (long-running create, update, delete), auth strings."""

    api = "redis"
    version = "v1"
    proto_package = "google.cloud.redis.v1"
    operation_metadata = "type.googleapis.com/google.cloud.redis.v1.OperationMetadata"
    kinds = {
        "instances": Kind(
            "instances",
            "Instance",
            id_param="instanceId",
            id_pattern=r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?",
            id_message=(
                "Invalid instance_id '{id}': it must be 1 to 40 characters of lowercase letters, digits and "
                "hyphens, start with a letter and end with a letter or digit."
            ),
            label="Instance",
            creating={"state": "CREATING"},
            ready={"state": "READY"},
            updating={"state": "UPDATING"},
            deleting={"state": "DELETING"},
        )
    }

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        return not_found(f"Resource '{key}' was not found")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return already_exists(f"Resource '{key}' already exists")

    def present(self, kind: Kind | None, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        return super().present(kind, key, resource)

    def _network(self, key: str, network: str) -> str:
        project = key.split("/")[1]
        if "/" not in network:
            return f"projects/{project}/global/networks/{network}"
        return re.sub(r"^.*?(projects/)", r"\1", network)

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        tier = resource.get("tier", "TIER_UNSPECIFIED")
        if tier == "TIER_UNSPECIFIED":
            raise invalid("instance.tier must be BASIC or STANDARD_HA.", "instance.tier")
        version = resource.setdefault("redisVersion", "REDIS_7_0")
        if version not in VERSIONS:
            raise invalid(f"Unsupported Redis version '{version}'.", "instance.redis_version")
        replicas_mode = resource.get("readReplicasMode", "READ_REPLICAS_DISABLED")
        memory = int(resource.get("memorySizeGb", 0))
        if not 1 <= memory <= 300:
            raise invalid("instance.memory_size_gb must be between 1 and 300 GiB.", "instance.memory_size_gb")
        if replicas_mode == "READ_REPLICAS_ENABLED":
            if tier != "STANDARD_HA":
                raise invalid("Read replicas are only supported for the STANDARD_HA tier.", "instance.tier")
            if memory < 5:
                raise invalid(
                    "Instances with read replicas enabled need at least 5 GiB of memory.",
                    "instance.memory_size_gb",
                )
        count = resource.get("replicaCount")
        if tier == "BASIC":
            if count not in (None, 0):
                raise invalid(
                    "The replica count of a BASIC tier instance must be 0.", "instance.replica_count"
                )
        elif replicas_mode == "READ_REPLICAS_ENABLED":
            if count is not None and not 1 <= int(count) <= 5:
                raise invalid(
                    "The replica count with read replicas must be between 1 and 5.", "instance.replica_count"
                )
        elif count not in (None, 1):
            raise invalid(
                "Without read replicas, the replica count of a STANDARD_HA instance must be 1.",
                "instance.replica_count",
            )
        self._check_configs(resource, version, memory)
        network = self._network(key, resource.get("authorizedNetwork") or "default")
        if old is None:
            project = key.split("/")[1]
            compute = self.fake.stores["compute"]
            network_key = self.fake.handlers["compute"].canonical(network)
            if network_key not in compute:
                raise invalid(
                    f"Invalid authorized network: '{network}' does not exist.", "instance.authorized_network"
                )
            networking = self.fake.handlers["servicenetworking"]
            psa = resource.get("connectMode") == "PRIVATE_SERVICE_ACCESS"
            if psa and not networking.connected(project, network):  # type: ignore[attr-defined]
                raise failed_precondition(
                    f"Private services access is not configured for network '{network}': create a Service "
                    "Networking connection (servicenetworking.googleapis.com) on it first."
                )
            resource["authorizedNetwork"] = network
        else:
            for name in ("tier", "transitEncryptionMode", "connectMode", "authorizedNetwork", "redisVersion"):
                if old.get(name) != resource.get(name) and name in resource:
                    raise invalid(f"Field '{name}' cannot be updated.", f"instance.{name}")

    def _check_configs(self, resource: dict[str, Any], version: str, memory: int) -> None:
        for name, value in (resource.get("redisConfigs") or {}).items():
            since = CONFIGS.get(name)
            if since is None or VERSIONS.index(version) < VERSIONS.index(since):
                raise invalid(f"Unsupported Redis config '{name}' for {version}.", "instance.redis_configs")
            if name == "maxmemory-policy" and value not in POLICIES:
                raise invalid(
                    f"Invalid value '{value}' for Redis config maxmemory-policy.", "instance.redis_configs"
                )
            if name == "activedefrag" and value not in ("yes", "no"):
                raise invalid(
                    f"Invalid value '{value}' for Redis config activedefrag.", "instance.redis_configs"
                )
            if name == "maxmemory-gb":
                try:
                    amount = float(value)
                except ValueError:
                    raise invalid(
                        f"Invalid value '{value}' for maxmemory-gb.", "instance.redis_configs"
                    ) from None
                if not 0 < amount <= memory:
                    raise invalid(
                        f"maxmemory-gb ({value}) must be more than 0 and at most the memory size "
                        f"({memory} GiB).",
                        "instance.redis_configs",
                    )

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        super().prepare(req, kind, key, resource)
        region = key.split("/")[3]
        resource.setdefault("locationId", f"{region}-a")
        if resource.get("tier") == "STANDARD_HA":
            resource.setdefault("alternativeLocationId", f"{region}-b")
            if resource.get("readReplicasMode") == "READ_REPLICAS_ENABLED":
                resource.setdefault("replicaCount", 2)
            else:
                resource.setdefault("replicaCount", 1)
        resource.setdefault("connectMode", "DIRECT_PEERING")
        resource.setdefault("transitEncryptionMode", "DISABLED")
        resource.setdefault("readReplicasMode", "READ_REPLICAS_DISABLED")
        resource.setdefault("persistenceConfig", {"persistenceMode": "DISABLED"})
        digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        resource["reservedIpRange"] = (
            resource.get("reservedIpRange") or f"10.{digest % 200 + 20}.{digest % 250}.0/29"
        )
        resource["_authString"] = new_etag() + new_etag()

    def on_ready(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        base = resource["reservedIpRange"].split("/")[0].rsplit(".", 1)[0]
        tls = resource.get("transitEncryptionMode") == "SERVER_AUTHENTICATION"
        resource["host"] = f"{base}.3"
        resource["port"] = 6378 if tls else 6379
        resource["currentLocationId"] = resource.get("locationId")
        resource["persistenceIamIdentity"] = (
            f"serviceAccount:service-{self._number(key)}@cloud-redis.iam.gserviceaccount.com"
        )
        nodes = [{"id": "node-0", "zone": resource.get("locationId")}]
        if resource.get("tier") == "STANDARD_HA":
            for index in range(int(resource.get("replicaCount", 1))):
                nodes.append({"id": f"node-{index + 1}", "zone": resource.get("alternativeLocationId")})
        resource["nodes"] = nodes
        if resource.get("readReplicasMode") == "READ_REPLICAS_ENABLED":
            resource["readEndpoint"] = f"{base}.4"
            resource["readEndpointPort"] = resource["port"]
        else:
            resource.pop("readEndpoint", None)
            resource.pop("readEndpointPort", None)
        if tls and "_serverCaKey" not in resource:
            from skyrig_gcp.fake.apis.sqladmin import Authority

            authority = Authority("Google Cloud Memorystore Redis Server CA")
            described = authority.describe()
            resource["_serverCaKey"] = authority.key_pem
            resource["serverCaCerts"] = [
                {
                    "serialNumber": described["certSerialNumber"],
                    "cert": described["cert"],
                    "createTime": described["createTime"],
                    "expireTime": described["expirationTime"],
                    "sha1Fingerprint": described["sha1Fingerprint"],
                }
            ]
        resource.setdefault("authEnabled", False)

    def _number(self, key: str) -> str:
        return self.fake.project_number(key.split("/")[1])

    def generic_patch(self, req: Request) -> dict[str, Any]:
        mask = [path.strip() for path in str(req.query.get("updateMask") or "").split(",") if path.strip()]
        from skyrig_gcp.fake.discovery import camel

        for path in mask:
            if camel(path.split(".")[0]) not in UPDATABLE:
                raise invalid(
                    f"Field mask path '{path}' is not supported: only {', '.join(sorted(UPDATABLE))} "
                    "can be updated.",
                    "update_mask",
                )
        key = self.canonical(self.path_key(req))
        current = self.lookup(key)
        if current.get("state") != "READY":
            raise failed_precondition(
                f"Instance '{key}' is {current.get('state')}: another operation is in progress."
            )
        return super().generic_patch(req)

    def check_delete(self, req: Request, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        if resource.get("state") == "DELETING":
            raise failed_precondition(f"Instance '{key}' is already being deleted.")

    def server_identity(self, instance: str) -> tuple[str, str]:
        """A server certificate and its key (PEM) for instance ``instance``, signed by its server CA: what a
        test's Redis (behind TLS) presents in the instance's place."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from skyrig_gcp.fake.apis.sqladmin import Authority

        with self.fake.lock:
            resource = self.lookup(self.canonical(instance))
            authority = Authority(
                "Google Cloud Memorystore Redis Server CA",
                resource["_serverCaKey"],
                resource["serverCaCerts"][0]["cert"],
            )
            host = resource["host"]
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = authority.issue(key.public_key(), host, 86400)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()

    def do_getAuthString(self, req: Request) -> dict[str, Any]:
        """The AUTH string of an instance with AUTH on (empty otherwise)."""
        key = self.canonical(self.path_key(req).removesuffix("/authString"))
        resource = self.lookup(key)
        return {"authString": resource["_authString"]} if resource.get("authEnabled") else {}
