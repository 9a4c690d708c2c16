"""Kubernetes Engine API v1 (GKE's control plane), FAKE (:mod:`skyrig_gcp.fake`): clusters, node pools, and
GKE's own operations.

This is not GKE: no Kubernetes runs behind it. It answers ``projects.locations.*`` as GKE documents it:

- Every change is a GKE ``Operation`` (``operation-<ms>-<hex>`` under ``projects/P/locations/L/operations``;
  ``operationType`` CREATE_CLUSTER, DELETE_CLUSTER, UPDATE_CLUSTER, UPGRADE_MASTER, UPGRADE_NODES,
  SET_LABELS, CREATE_NODE_POOL, DELETE_NODE_POOL, SET_NODE_POOL_SIZE; ``status`` PENDING, RUNNING, DONE;
  ``selfLink``, ``targetLink``, ``error`` when it failed or was cancelled), done after the fake's delay.
- A cluster is PROVISIONING until its create is done, then RUNNING with an ``endpoint``,
  ``masterAuth.clusterCaCertificate`` (base64 PEM of a real CA of the fake's own, see
  :meth:`Container.server_identity`), ``currentMasterVersion``/``currentNodeVersion``, node pools RUNNING
  with instance groups. Any other change makes it RECONCILING until done; while it is PROVISIONING,
  RECONCILING or STOPPING, another mutating call is 400 FAILED_PRECONDITION, as GKE answers. Delete: STOPPING,
  then gone. Cancelling a create leaves the cluster in ERROR.
- Checked as GKE checks: names (1-40 characters, lowercase letters, digits, hyphens, a letter first, no
  hyphen last); 409 for a second create of a name; the location (a region, or a zone; Autopilot is regional
  only); Autopilot without node pools or node counts, VPC-native and in a release channel, Workload Identity
  on by default; Standard with ``nodePools`` or ``initialNodeCount`` (not both); ``network``/``subnetwork``
  that exist in the fake's Compute Engine API, secondary range names that exist on the subnetwork; private
  nodes only VPC-native, a Standard cluster's private nodes with a private /28 ``masterIpv4CidrBlock`` that
  does not overlap the subnetwork; the Workload Identity pool ``PROJECT.svc.id.goog``; versions and their
  aliases (``latest``, ``1.X``) against the release channel; resource labels and their fingerprint
  (``setResourceLabels`` with a stale one is GKE's 400); one ``desired*`` field per ``update``; node pool
  machine types, autoscaling limits, sizes, and GKE_METADATA only on a cluster with Workload Identity;
  node pool methods on an Autopilot cluster are 400.

Node pools live inside their cluster's stored resource (``nodePools``), as GKE answers them; a test changes
one through :meth:`FakeGcp.update_resource <skyrig_gcp.fake.FakeGcp.update_resource>` on the cluster.
Methods beyond these (the ``projects.zones.*`` forms, IP rotation, legacy ABAC, ...) answer 501.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, deep_merge, new_etag
from skyrig_gcp.fake.discovery import snake
from skyrig_gcp.fake.errors import ApiError, already_exists, failed_precondition, invalid, not_found
from skyrig_gcp.fake.operations import Operation, now_rfc3339

SELF_LINK = "https://container.googleapis.com/v1/"
COMPUTE_LINK = "https://www.googleapis.com/compute/v1/"
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")
_NAME_MESSAGE = (
    'Invalid value for field "{field}": "{name}". Must be a match of regex '
    "'(?:[a-z](?:[-a-z0-9]{{0,38}}[a-z0-9])?)' (only alphanumerics and '-' allowed, must start with a letter "
    "and end with an alphanumeric, and must be no longer than 40 characters)."
)
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")
_ZONE = re.compile(r"(?P<region>[a-z]+-[a-z]+[0-9]+)-[a-z]")
_MACHINE = re.compile(
    r"e2-(micro|small|medium)"
    r"|(e2|n1|n2|n2d|n4|c2|c2d|c3|c3d|c4|t2a|t2d|m1|m2|m3)-(standard|highmem|highcpu|megamem|ultramem)-\d+"
    r"|(e2|n1|n2|n2d)-custom-\d+-\d+"
)
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
#: Versions per release channel, newest first (the first is the channel's default).
CHANNELS = {
    "RAPID": ("1.36.3-gke.1480000", "1.35.7-gke.1102000"),
    "REGULAR": ("1.35.7-gke.1102000", "1.34.10-gke.1215000"),
    "STABLE": ("1.34.10-gke.1215000", "1.33.13-gke.1160000"),
    "EXTENDED": ("1.33.13-gke.1160000", "1.32.15-gke.1045000"),
}
IMAGE_TYPES = ("COS_CONTAINERD", "UBUNTU_CONTAINERD", "WINDOWS_LTSC_CONTAINERD")
#: The ``ClusterUpdate`` fields that only accompany another one.
_UPDATE_COMPANIONS = frozenset({"desiredNodePoolId", "etag"})
#: UpdateNodePoolRequest's fields that wrap their map or list in one field (NodeLabels, NetworkTags, ...).
_WRAPPED = {"labels": "labels", "tags": "tags", "resourceLabels": "labels", "taints": "taints"}
_BUSY = "Cluster is currently being created, deleted, updated or repaired and cannot be updated."
_AUTOPILOT_POOLS = "Node pool operations are not supported on Autopilot clusters."


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def all_versions() -> list[str]:
    """Every version the fake offers, newest first."""
    return sorted({v for versions in CHANNELS.values() for v in versions}, key=_version_key, reverse=True)


def label_fingerprint(labels: dict[str, str]) -> str:
    """The fingerprint of a set of resource labels: 8 hex digits that move when the labels do."""
    text = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class Container(ApiHandler):
    """Kubernetes Engine: clusters (Autopilot and Standard), their node pools, GKE's operations."""

    api = "container"
    version = "v1"
    lro = "container"
    proto_package = "google.container.v1"
    kinds = {"clusters": Kind("clusters", "Cluster", label="Cluster")}

    # -- dispatch ----------------------------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[int, dict[str, Any]]:
        """Answers the ``projects.locations.*`` methods the fake serves; 501 for the others."""
        name = req.method.id.removeprefix("container.projects.locations.")
        method = self._methods().get(name)
        if method is None:
            raise ApiError("UNIMPLEMENTED", f"The fake does not implement {req.method.id}.")
        return 200, method(req)

    def _methods(self) -> dict[str, Callable[[Request], dict[str, Any]]]:
        return {
            "getServerConfig": self.server_config,
            "clusters.create": self.create_cluster,
            "clusters.get": lambda req: self.present_cluster(self._cluster(req)[1]),
            "clusters.list": self.list_clusters,
            "clusters.delete": self.delete_cluster,
            "clusters.update": self.update_cluster,
            "clusters.setResourceLabels": self.set_labels,
            "clusters.nodePools.create": self.create_pool,
            "clusters.nodePools.get": lambda req: self._present_pool(self._pool(req)[2]),
            "clusters.nodePools.list": self.list_pools,
            "clusters.nodePools.delete": self.delete_pool,
            "clusters.nodePools.setSize": self.set_pool_size,
            "clusters.nodePools.setAutoscaling": self.set_pool_autoscaling,
            "clusters.nodePools.update": self.update_pool,
            "operations.get": lambda req: self.render(self._operation(req)),
            "operations.list": self.list_operations_of,
            "operations.cancel": self.cancel_operation,
        }

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        return not_found(f"Not found: {key}.")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return already_exists(f"Already exists: {key}.")

    # -- lookups -----------------------------------------------------------------------------------------

    def _key(self, req: Request, suffix: str = "") -> str:
        return self.canonical(self.path_key(req).removesuffix(suffix))

    def _cluster(self, req: Request, suffix: str = "") -> tuple[str, dict[str, Any]]:
        key = self._key(req, suffix)
        return key, self.lookup(key)

    def _pool(self, req: Request) -> tuple[str, dict[str, Any], dict[str, Any]]:
        key = self._key(req)
        cluster_key, _, name = key.rpartition("/nodePools/")
        cluster = self.lookup(cluster_key)
        for pool in cluster.get("nodePools", []):
            if pool["name"] == name:
                return cluster_key, cluster, pool
        raise self.missing(key)

    def _standard(self, cluster: dict[str, Any]) -> None:
        if cluster.get("autopilot", {}).get("enabled"):
            raise invalid(_AUTOPILOT_POOLS)

    def _ready(self, key: str, cluster: dict[str, Any]) -> None:
        """400 FAILED_PRECONDITION while the cluster is changing (an operation on it is not done)."""
        running = any(
            api == self.api and not op.done and op.extra.get("cluster") == key
            for (api, _), op in self.fake.operations.items()
        )
        if cluster.get("status") == "ERROR":
            raise failed_precondition("The cluster is in ERROR: it can only be deleted.")
        if running or cluster.get("status") not in ("RUNNING", "DEGRADED"):
            raise failed_precondition(_BUSY)

    # -- presentation ------------------------------------------------------------------------------------

    def present_cluster(self, cluster: dict[str, Any]) -> dict[str, Any]:
        """A cluster as GKE answers it (without the fake's own ``_`` fields, its pools' neither)."""
        shown = {name: copy.deepcopy(value) for name, value in cluster.items() if not name.startswith("_")}
        if "nodePools" in shown:
            shown["nodePools"] = [self._present_pool(pool) for pool in cluster["nodePools"]]
        return shown

    @staticmethod
    def _present_pool(pool: dict[str, Any]) -> dict[str, Any]:
        return {name: copy.deepcopy(value) for name, value in pool.items() if not name.startswith("_")}

    def present(self, kind: Kind | None, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        return self.present_cluster(resource)

    # -- server config -----------------------------------------------------------------------------------

    def server_config(self, req: Request) -> dict[str, Any]:
        """The versions, image types and release channels GKE offers in a location."""
        location = self._key(req, "/serverConfig").split("/")[3]
        self._location(location)
        versions = all_versions()
        return {
            "defaultClusterVersion": CHANNELS["REGULAR"][0],
            "validMasterVersions": versions,
            "validNodeVersions": versions,
            "defaultImageType": IMAGE_TYPES[0],
            "validImageTypes": list(IMAGE_TYPES),
            "channels": [
                {
                    "channel": channel,
                    "defaultVersion": listed[0],
                    "validVersions": list(listed),
                    "upgradeTargetVersion": listed[0],
                }
                for channel, listed in CHANNELS.items()
            ],
        }

    @staticmethod
    def _location(location: str) -> str:
        """The region of a location (a region or a zone); 400 for anything else."""
        zone = _ZONE.fullmatch(location)
        if zone:
            return zone.group("region")
        if _REGION.fullmatch(location):
            return location
        raise invalid(f'Location "{location}" is not a valid Compute Engine region or zone.', "parent")

    @staticmethod
    def resolve_version(wanted: str | None, channel: str, field: str, *, kind: str = "Master") -> str:
        """An explicit version for ``wanted`` (an exact version, ``latest``, ``-``, ``1.X``, ``1.X.Y``) in
        ``channel`` (UNSPECIFIED: every version); 400 when none matches."""
        offered = list(CHANNELS[channel]) if channel in CHANNELS else all_versions()
        if wanted in (None, "", "-"):
            return offered[0] if channel in CHANNELS else CHANNELS["REGULAR"][0]
        if wanted == "latest":
            return max(offered, key=_version_key)
        matches = [
            version
            for version in offered
            if version == wanted or version.startswith(wanted + ".") or version.startswith(wanted + "-")
        ]
        if not matches:
            where = f" in the {channel} release channel" if channel in CHANNELS else ""
            raise invalid(f'{kind} version "{wanted}" is unsupported{where}.', field)
        return max(matches, key=_version_key)

    # -- clusters ----------------------------------------------------------------------------------------

    def list_clusters(self, req: Request) -> dict[str, Any]:
        """The clusters of a location (``-``: of every location)."""
        parent = self._key(req, "/clusters")
        project, location = parent.split("/")[1], parent.split("/")[3]
        found = [
            self.present_cluster(cluster)
            for key, cluster in sorted(self.store.items())
            if key.split("/")[1] == project and location in ("-", key.split("/")[3])
        ]
        return {"clusters": found} if found else {}

    def create_cluster(self, req: Request) -> dict[str, Any]:
        """Checks a cluster as GKE does, stores it PROVISIONING, answers its CREATE_CLUSTER operation."""
        parent = self._key(req, "/clusters")
        project, location = parent.split("/")[1], parent.split("/")[3]
        cluster = self.body(req)["cluster"]
        name = cluster.get("name", "")
        if not _NAME.fullmatch(name):
            raise invalid(_NAME_MESSAGE.format(field="cluster.name", name=name), "cluster.name")
        if location == "-":
            raise invalid("A cluster is created in one location: a region or a zone, not '-'.", "parent")
        region = self._location(location)
        key = f"{parent}/clusters/{name}"
        if key in self.store:
            raise self.exists(key, self.kinds["clusters"])
        autopilot = bool(cluster.get("autopilot", {}).get("enabled"))
        if autopilot:
            self._autopilot_defaults(project, location, cluster)
        if {"username", "password"} & set(cluster.get("masterAuth") or {}):
            raise invalid(
                "Basic authentication (master_auth.username/password) is not supported: clients "
                "authenticate with Google credentials.",
                "cluster.master_auth",
            )
        self._check_network(project, region, cluster)
        self._check_addressing(cluster, autopilot)
        self._check_private(cluster, autopilot)
        _check_authorized(
            cluster.get("masterAuthorizedNetworksConfig") or {}, "cluster.master_authorized_networks_config"
        )
        pool = cluster.get("workloadIdentityConfig", {}).get("workloadPool")
        if pool:
            self._check_pool(project, pool, "cluster.workload_identity_config.workload_pool")
        channel = cluster.setdefault("releaseChannel", {}).setdefault("channel", "REGULAR")
        master = self.resolve_version(
            cluster.get("initialClusterVersion"), channel, "cluster.initial_cluster_version"
        )
        self._check_labels(cluster.get("resourceLabels") or {}, "cluster.resource_labels")
        zones = self._zones(location, cluster.get("locations"), "cluster.locations")
        pools = self._initial_pools(cluster, autopilot)
        for index, pool_body in enumerate(pools):
            self._check_node_pool(cluster, pool_body, master, region, f"cluster.node_pools[{index}]")
        self._prepare_cluster(location, key, cluster, master, zones, pools)
        self.store[key] = cluster
        return self.start(
            "CREATE_CLUSTER",
            key,
            key,
            self._finish(key, self._cluster_ready),
            on_cancel=self._create_cancelled,
        )

    def _autopilot_defaults(self, project: str, location: str, cluster: dict[str, Any]) -> None:
        if _ZONE.fullmatch(location):
            raise invalid(
                f'Autopilot clusters must be regional clusters: "{location}" is a zone.', "cluster.location"
            )
        for field in ("nodePools", "initialNodeCount", "nodeConfig"):
            if cluster.get(field):
                raise invalid(
                    f"Autopilot clusters do not take cluster.{snake(field)}: GKE manages their nodes.",
                    f"cluster.{snake(field)}",
                )
        if cluster.get("releaseChannel", {}).get("channel") == "UNSPECIFIED":
            raise invalid(
                "Autopilot clusters must be enrolled in a release channel.", "cluster.release_channel"
            )
        cluster.setdefault("workloadIdentityConfig", {}).setdefault("workloadPool", f"{project}.svc.id.goog")
        cluster.setdefault("verticalPodAutoscaling", {"enabled": True})
        cluster.setdefault("shieldedNodes", {"enabled": True})

    def _check_network(self, project: str, region: str, cluster: dict[str, Any]) -> None:
        compute = self.fake.handlers["compute"]
        network = cluster.get("network")
        if network:
            network_key = compute.canonical(
                f"projects/{project}/global/networks/{network}"
                if "/" not in network
                else re.sub(r"^.*?(projects/)", r"\1", network)
            )
            if network_key not in self.fake.stores["compute"]:
                raise invalid(f'Network "{network}" does not exist.', "cluster.network")
        else:
            network_key = f"projects/{project}/global/networks/default"
        subnetwork = cluster.get("subnetwork")
        subnet: dict[str, Any] | None = None
        if subnetwork:
            subnet_key = compute.canonical(
                f"projects/{project}/regions/{region}/subnetworks/{subnetwork}"
                if "/" not in subnetwork
                else re.sub(r"^.*?(projects/)", r"\1", subnetwork)
            )
            subnet = self.fake.stores["compute"].get(subnet_key)
            if subnet is None or subnet_key.split("/")[3] != region:
                raise invalid(
                    f'Subnetwork "{subnetwork}" does not exist in region {region}.', "cluster.subnetwork"
                )
            if not str(subnet.get("network", "")).endswith(network_key.removeprefix(f"projects/{project}")):
                raise invalid(
                    f'Subnetwork "{subnetwork}" is not in network "{network_key.rsplit("/", 1)[-1]}".',
                    "cluster.subnetwork",
                )
            cluster["subnetwork"] = subnet_key.rsplit("/", 1)[-1]
            cluster["_subnet"] = subnet_key
        cluster["network"] = network_key.rsplit("/", 1)[-1]
        cluster["networkConfig"] = {
            **cluster.get("networkConfig", {}),
            "network": network_key,
            **({"subnetwork": cluster["_subnet"]} if subnet is not None else {}),
        }

    def _subnet(self, cluster: dict[str, Any]) -> dict[str, Any] | None:
        key = cluster.get("_subnet")
        return self.fake.stores["compute"].get(key) if key else None

    def _check_addressing(self, cluster: dict[str, Any], autopilot: bool) -> None:
        policy = cluster.setdefault("ipAllocationPolicy", {})
        if policy.get("useRoutes") or policy.get("useIpAliases") is False:
            if autopilot:
                raise invalid(
                    "Autopilot clusters must be VPC-native (ip_allocation_policy.use_ip_aliases).",
                    "cluster.ip_allocation_policy",
                )
            if cluster.get("privateClusterConfig", {}).get("enablePrivateNodes"):
                raise invalid(
                    "Alias IP addresses are required for private clusters, please make sure you enable alias "
                    "IPs (ip_allocation_policy.use_ip_aliases) when creating a cluster.",
                    "cluster.ip_allocation_policy",
                )
            policy["useIpAliases"] = False
            return
        policy["useIpAliases"] = True  # VPC-native is the default for new clusters
        subnet = self._subnet(cluster)
        ranges = {item.get("rangeName"): item for item in (subnet or {}).get("secondaryIpRanges", [])}
        for field in ("clusterSecondaryRangeName", "servicesSecondaryRangeName"):
            wanted = policy.get(field)
            if wanted and wanted not in ranges:
                raise invalid(
                    f'Secondary range "{wanted}" does not exist on the cluster\'s subnetwork.',
                    f"cluster.ip_allocation_policy.{snake(field)}",
                )
        digest = int(hashlib.sha256(str(cluster.get("name")).encode()).hexdigest(), 16)
        pods = (
            ranges[policy["clusterSecondaryRangeName"]]["ipCidrRange"]
            if policy.get("clusterSecondaryRangeName")
            else _block(policy.get("clusterIpv4CidrBlock"), f"10.{digest % 60 * 4 + 4}.0.0/14")
        )
        services = (
            ranges[policy["servicesSecondaryRangeName"]]["ipCidrRange"]
            if policy.get("servicesSecondaryRangeName")
            else _block(policy.get("servicesIpv4CidrBlock"), "34.118.224.0/20")
        )
        policy.update(
            clusterIpv4Cidr=pods,
            clusterIpv4CidrBlock=pods,
            servicesIpv4Cidr=services,
            servicesIpv4CidrBlock=services,
            stackType=policy.get("stackType", "IPV4"),
        )
        cluster["clusterIpv4Cidr"] = pods
        cluster["servicesIpv4Cidr"] = services

    def _check_private(self, cluster: dict[str, Any], autopilot: bool) -> None:
        private = cluster.get("privateClusterConfig") or {}
        field = "cluster.private_cluster_config.master_ipv4_cidr_block"
        block = private.get("masterIpv4CidrBlock")
        if not private.get("enablePrivateNodes"):
            if block or private.get("enablePrivateEndpoint"):
                raise invalid(
                    "master_ipv4_cidr_block and enable_private_endpoint need private nodes "
                    "(private_cluster_config.enable_private_nodes).",
                    "cluster.private_cluster_config",
                )
            return
        if not block:
            if autopilot:
                return
            raise invalid(
                "master_ipv4_cidr_block is required for a Standard cluster with private nodes.", field
            )
        try:
            network = ipaddress.IPv4Network(block)
        except ValueError:
            raise invalid(
                f'Invalid value for field "{field}": "{block}". Must be a /28 CIDR block.', field
            ) from None
        if network.prefixlen != 28:
            raise invalid(f'Invalid value for field "{field}": "{block}". Must be a /28 CIDR block.', field)
        if not network.is_private:
            raise invalid(f'The master CIDR block "{block}" must be in a private (RFC 1918) range.', field)
        subnet = self._subnet(cluster)
        taken = [(subnet or {}).get("ipCidrRange")] + [
            item.get("ipCidrRange") for item in (subnet or {}).get("secondaryIpRanges", [])
        ]
        for other in filter(None, taken):
            if network.overlaps(ipaddress.IPv4Network(other)):
                raise invalid(
                    f'The master CIDR block "{block}" overlaps the subnetwork\'s range "{other}".', field
                )

    def _check_pool(self, project: str, pool: str, field: str) -> None:
        if pool != f"{project}.svc.id.goog":
            raise invalid(
                f'Invalid Workload Identity pool "{pool}": the only pool a cluster of project {project} can '
                f'use is "{project}.svc.id.goog".',
                field,
            )

    @staticmethod
    def _check_labels(labels: dict[str, Any], field: str) -> None:
        if len(labels) > 64:
            raise invalid("A resource can have at most 64 labels.", field)
        for label, value in labels.items():
            if not _LABEL_KEY.fullmatch(label) or not _LABEL_VALUE.fullmatch(str(value)):
                raise invalid(
                    f'Invalid label "{label}": "{value}". Keys are 1-63 lowercase letters, digits, "_" or '
                    '"-", starting with a letter; values 0-63 of the same.',
                    field,
                )

    def _zones(self, location: str, wanted: list[str] | None, field: str) -> list[str]:
        region = self._location(location)
        zones = [location] if _ZONE.fullmatch(location) else [f"{region}-{z}" for z in "abc"]
        for zone in wanted or []:
            match = _ZONE.fullmatch(zone)
            if not match or match.group("region") != region:
                raise invalid(f'Zone "{zone}" is not in region {region}.', field)
        if wanted and _ZONE.fullmatch(location) and location not in wanted:
            raise invalid(f'The locations of a zonal cluster must include its zone "{location}".', field)
        return list(wanted) if wanted else zones

    def _initial_pools(self, cluster: dict[str, Any], autopilot: bool) -> list[dict[str, Any]]:
        if autopilot:
            return [
                {
                    "name": "default-pool",
                    "config": {"machineType": "e2-medium", "imageType": IMAGE_TYPES[0]},
                    "autoscaling": {"enabled": True, "autoprovisioned": True},
                    "initialNodeCount": 0,
                }
            ]
        pools = cluster.get("nodePools") or []
        count = cluster.get("initialNodeCount") or 0
        if pools and count:
            raise invalid(
                "Cluster.initial_node_count must be unset when cluster.node_pools is given.",
                "cluster.initial_node_count",
            )
        if not pools:
            if count <= 0:
                raise invalid(
                    "Cluster.initial_node_count must be greater than zero (or give cluster.node_pools).",
                    "cluster.initial_node_count",
                )
            pools = [
                {"name": "default-pool", "initialNodeCount": count, "config": cluster.get("nodeConfig", {})}
            ]
        names = [pool.get("name") for pool in pools]
        if len(set(names)) != len(names):
            raise invalid("Node pool names must be unique within a cluster.", "cluster.node_pools")
        return pools

    def _check_node_pool(
        self, cluster: dict[str, Any], pool: dict[str, Any], master: str, region: str, field: str
    ) -> None:
        """Checks a node pool (``field`` names it in errors) and fills its defaults."""
        name = pool.get("name", "")
        if not _NAME.fullmatch(name):
            raise invalid(_NAME_MESSAGE.format(field=f"{field}.name", name=name), f"{field}.name")
        config = pool.setdefault("config", {})
        self._check_config(cluster, config, f"{field}.config")
        autoscaling = pool.get("autoscaling") or {}
        self._check_autoscaling(autoscaling, f"{field}.autoscaling")
        count = pool.get("initialNodeCount", 0)
        if count < 0 or (count == 0 and not autoscaling.get("enabled")):
            raise invalid(
                f"{field}.initial_node_count must be greater than zero without autoscaling.",
                f"{field}.initial_node_count",
            )
        pool["version"] = self._pool_version(pool.get("version"), master, f"{field}.version")
        if pool.get("locations"):
            pool["locations"] = self._zones(region, pool["locations"], f"{field}.locations")
        pool.setdefault("management", {"autoUpgrade": True, "autoRepair": True})
        pool.setdefault("podIpv4CidrSize", 24)
        pool["_nodeCount"] = count

    def _check_config(self, cluster: dict[str, Any], config: dict[str, Any], field: str) -> None:
        at = f"{field}." if field else ""  # an UpdateNodePoolRequest has the fields at its top
        machine = config.setdefault("machineType", "e2-medium")
        if not _MACHINE.fullmatch(machine):
            raise invalid(f'Invalid machine type "{machine}".', f"{at}machine_type")
        image = config.setdefault("imageType", IMAGE_TYPES[0])
        if image.upper() not in IMAGE_TYPES:
            raise invalid(f'Invalid image type "{image}".', f"{at}image_type")
        size = config.setdefault("diskSizeGb", 100)
        if size and size < 12:
            raise invalid(f"{at}disk_size_gb must be at least 12 GB.", f"{at}disk_size_gb")
        config.setdefault("serviceAccount", "default")
        identity = bool(cluster.get("workloadIdentityConfig", {}).get("workloadPool"))
        mode = config.get("workloadMetadataConfig", {}).get("mode")
        if mode == "GKE_METADATA" and not identity:
            raise invalid(
                "Workload Identity must be enabled on the cluster (workload_identity_config.workload_pool) "
                "to use the GKE_METADATA workload metadata mode.",
                f"{at}workload_metadata_config.mode",
            )
        if identity and mode in (None, "MODE_UNSPECIFIED"):
            config["workloadMetadataConfig"] = {"mode": "GKE_METADATA"}
        account = config["serviceAccount"]
        if account != "default" and not self.fake.service_account_exists(account):
            raise invalid(f'Service account "{account}" does not exist.', f"{at}service_account")

    @staticmethod
    def _check_autoscaling(autoscaling: dict[str, Any], field: str) -> None:
        if not autoscaling.get("enabled") or autoscaling.get("autoprovisioned"):
            return
        total = "totalMinNodeCount" in autoscaling or "totalMaxNodeCount" in autoscaling
        per_zone = "minNodeCount" in autoscaling or "maxNodeCount" in autoscaling
        if total and per_zone:
            raise invalid("Give either min/max_node_count or total_min/max_node_count, not both.", field)
        low = autoscaling.get("totalMinNodeCount" if total else "minNodeCount", 0)
        high = autoscaling.get("totalMaxNodeCount" if total else "maxNodeCount", 0)
        if low < 0:
            raise invalid(f"{field}.min_node_count must not be negative.", f"{field}.min_node_count")
        if high < 1 or high > 1000:
            raise invalid(f"{field}.max_node_count must be between 1 and 1000.", f"{field}.max_node_count")
        if low > high:
            raise invalid(
                f"{field}.min_node_count ({low}) must not be above max_node_count ({high}).",
                f"{field}.min_node_count",
            )

    def _pool_version(self, wanted: str | None, master: str, field: str) -> str:
        version = (
            master if wanted in (None, "", "-") else self.resolve_version(wanted, "", field, kind="Node")
        )
        if _version_key(version) > _version_key(master):
            raise invalid(f'Node version "{version}" must not be newer than the master ({master}).', field)
        return version

    def _prepare_cluster(
        self,
        location: str,
        key: str,
        cluster: dict[str, Any],
        master: str,
        zones: list[str],
        pools: list[dict[str, Any]],
    ) -> None:
        autopilot = bool(cluster.get("autopilot", {}).get("enabled"))
        cluster.update(
            location=location,
            zone=location,
            locations=zones,
            selfLink=f"{SELF_LINK}{key}",
            id=uuid.uuid4().hex,
            createTime=now_rfc3339(),
            status="PROVISIONING",
            initialClusterVersion=master,
            autopilot={**cluster.get("autopilot", {}), "enabled": autopilot},
            loggingService=cluster.get("loggingService") or "logging.googleapis.com/kubernetes",
            monitoringService=cluster.get("monitoringService") or "monitoring.googleapis.com/kubernetes",
            resourceLabels=cluster.get("resourceLabels") or {},
            etag=new_etag(),
            masterAuth=cluster.get("masterAuth") or {},
        )
        cluster["labelFingerprint"] = label_fingerprint(cluster["resourceLabels"])
        cluster.pop("nodePools", None)
        cluster.pop("initialNodeCount", None)
        for pool in pools:
            self._prepare_pool(key, cluster, pool)
        cluster["nodePools"] = pools
        if pools and not autopilot:
            cluster["nodeConfig"] = copy.deepcopy(pools[0]["config"])

    def _prepare_pool(self, cluster_key: str, cluster: dict[str, Any], pool: dict[str, Any]) -> None:
        pool.setdefault("locations", list(cluster["locations"]))
        pool.update(
            selfLink=f"{SELF_LINK}{cluster_key}/nodePools/{pool['name']}",
            status="PROVISIONING",
            etag=new_etag(),
        )

    def _cluster_ready(self, key: str, cluster: dict[str, Any]) -> None:
        """What a cluster has once its create is done: an endpoint, a CA, versions, running node pools."""
        from skyrig_gcp.fake.apis.sqladmin import Authority

        digest = hashlib.sha256(key.encode()).digest()
        public = f"34.{digest[0] % 200 + 20}.{digest[1]}.{digest[2] % 250 + 2}"
        private = cluster.get("privateClusterConfig") or {}
        if private.get("enablePrivateNodes"):
            block = private.get("masterIpv4CidrBlock") or f"172.16.{digest[3]}.0/28"
            private["privateEndpoint"] = str(ipaddress.IPv4Network(block)[2])
            private["publicEndpoint"] = public
            private.setdefault("peeringName", f"gke-n{digest.hex()[:16]}-{digest.hex()[16:20]}-peer")
            cluster["privateClusterConfig"] = private
        cluster["endpoint"] = private["privateEndpoint"] if private.get("enablePrivateEndpoint") else public
        authority = Authority(str(uuid.UUID(bytes=digest[:16])))
        cluster["_caName"] = authority.name
        cluster["_caKey"] = authority.key_pem
        ca = authority.describe()["cert"]
        cluster["masterAuth"] = {
            **cluster.get("masterAuth", {}),
            "clusterCaCertificate": base64.b64encode(ca.encode()).decode(),
        }
        cluster["currentMasterVersion"] = cluster["initialClusterVersion"]
        for pool in cluster.get("nodePools", []):
            self._pool_ready(key, cluster, pool)

    def _pool_ready(self, key: str, cluster: dict[str, Any], pool: dict[str, Any]) -> None:
        pool["status"] = "RUNNING"
        project = key.split("/")[1]
        digest = hashlib.sha256(f"{key}/{pool['name']}".encode()).hexdigest()[:8]
        group = f"gke-{cluster['name'][:14]}-{pool['name'][:14]}-{digest}-grp"
        pool["instanceGroupUrls"] = [
            f"{COMPUTE_LINK}projects/{project}/zones/{zone}/instanceGroupManagers/{group}"
            for zone in pool.get("locations", [])
        ]
        self._counts(cluster)

    @staticmethod
    def _counts(cluster: dict[str, Any]) -> None:
        pools = [pool for pool in cluster.get("nodePools", []) if pool.get("status") == "RUNNING"]
        nodes = sum(pool.get("_nodeCount", 0) * len(pool.get("locations", [])) for pool in pools)
        if nodes:
            cluster["currentNodeCount"] = nodes
        else:
            cluster.pop("currentNodeCount", None)
        versions = sorted((pool["version"] for pool in pools if pool.get("version")), key=_version_key)
        if versions:
            cluster["currentNodeVersion"] = versions[0]

    def _finish(
        self, key: str, change: Callable[[str, dict[str, Any]], None]
    ) -> Callable[[], dict[str, Any] | None]:
        """An operation's completion: ``change`` the cluster, which is RUNNING again."""

        def complete() -> dict[str, Any] | None:
            cluster = self.store.get(key)
            if cluster is None:
                raise ApiError("ABORTED", f"Cluster '{key}' was deleted while an operation ran on it.")
            change(key, cluster)
            cluster["status"] = "RUNNING"
            cluster.pop("statusMessage", None)
            cluster["etag"] = new_etag()
            return None

        return complete

    def _create_cancelled(self, key: str, cluster: dict[str, Any]) -> None:
        cluster["status"] = "ERROR"
        cluster["statusMessage"] = "The cluster's creation was cancelled."

    def delete_cluster(self, req: Request) -> dict[str, Any]:
        """STOPPING, then gone: a DELETE_CLUSTER operation."""
        key, cluster = self._cluster(req)
        if cluster.get("status") != "ERROR":
            self._ready(key, cluster)
        cluster["status"] = "STOPPING"

        def complete() -> dict[str, Any] | None:
            self.remove(key)
            return None

        return self.start("DELETE_CLUSTER", key, key, complete)

    def set_labels(self, req: Request) -> dict[str, Any]:
        """Replaces the resource labels, when the request's fingerprint is the current one."""
        key, cluster = self._cluster(req)
        body = self.body(req, exempt=frozenset({"resourceLabels", "labelFingerprint"}))
        sent, expected = body.get("labelFingerprint", ""), cluster.get("labelFingerprint", "")
        if sent != expected:
            raise failed_precondition(
                "Labels could not be set due to fingerprint mismatch; try again with the proper fingerprint: "
                f'incorrect fingerprint supplied was "{sent}", the expected one is "{expected}".'
            )
        labels = body.get("resourceLabels") or {}
        self._check_labels(labels, "resource_labels")
        self._ready(key, cluster)
        cluster["status"] = "RECONCILING"

        def change(_: str, target: dict[str, Any]) -> None:
            target["resourceLabels"] = dict(labels)
            target["labelFingerprint"] = label_fingerprint(labels)

        return self.start("SET_LABELS", key, key, self._finish(key, change))

    def update_cluster(self, req: Request) -> dict[str, Any]:
        """Applies the one ``desired*`` field of a ``ClusterUpdate``: an UPDATE_CLUSTER (or upgrade)
        operation."""
        key, cluster = self._cluster(req)
        update = self.body(req)["update"]
        fields = [name for name in update if name not in _UPDATE_COMPANIONS]
        if len(fields) != 1:
            raise invalid(
                "Exactly one update can be applied to a cluster with each request: give one desired_* field "
                f"(given: {', '.join(snake(name) for name in fields) or 'none'}).",
                "update",
            )
        field = fields[0]
        self._ready(key, cluster)
        change, op_type = self._cluster_change(key, cluster, field, update)
        cluster["status"] = "RECONCILING"
        return self.start(op_type, key, key, self._finish(key, change))

    def _cluster_change(
        self, key: str, cluster: dict[str, Any], field: str, update: dict[str, Any]
    ) -> tuple[Callable[[str, dict[str, Any]], None], str]:
        value = update[field]
        where = f"update.{snake(field)}"
        project = key.split("/")[1]
        autopilot = cluster.get("autopilot", {}).get("enabled")
        simple = {
            "desiredMasterAuthorizedNetworksConfig": "masterAuthorizedNetworksConfig",
            "desiredLoggingService": "loggingService",
            "desiredMonitoringService": "monitoringService",
            "desiredVerticalPodAutoscaling": "verticalPodAutoscaling",
            "desiredShieldedNodes": "shieldedNodes",
            "desiredBinaryAuthorization": "binaryAuthorization",
        }
        if field == "desiredWorkloadIdentityConfig":
            pool = value.get("workloadPool", "")
            if pool:
                self._check_pool(project, pool, f"{where}.workload_pool")
            elif autopilot:
                raise invalid("Workload Identity cannot be disabled on Autopilot clusters.", where)
            return _setter("workloadIdentityConfig", value if pool else None), "UPDATE_CLUSTER"
        if field == "desiredReleaseChannel":
            channel = value.get("channel", "UNSPECIFIED")
            if autopilot and channel == "UNSPECIFIED":
                raise invalid("Autopilot clusters must be enrolled in a release channel.", where)
            current = cluster.get("currentMasterVersion", "0")
            if channel in CHANNELS and _version_key(current)[:2] > _version_key(CHANNELS[channel][0])[:2]:
                raise invalid(
                    f"The cluster's version {current} is newer than the {channel} channel offers "
                    f"({CHANNELS[channel][0]}): it cannot move to that channel until the channel catches up.",
                    where,
                )
            return _setter("releaseChannel", value), "UPDATE_CLUSTER"
        if field == "desiredMasterAuthorizedNetworksConfig":
            _check_authorized(value, where)
        if field in simple:
            return _setter(simple[field], value), "UPDATE_CLUSTER"
        if field == "desiredMasterVersion":
            channel = cluster.get("releaseChannel", {}).get("channel", "UNSPECIFIED")
            version = self.resolve_version(value, channel, where)
            if _version_key(version) < _version_key(cluster.get("currentMasterVersion", "0")):
                raise invalid(f'The master cannot be downgraded to "{version}".', where)
            return _setter("currentMasterVersion", version), "UPGRADE_MASTER"
        if field in ("desiredNodeVersion", "desiredNodePoolAutoscaling"):
            if autopilot:
                raise invalid(_AUTOPILOT_POOLS, where)
            pool = self._update_pool_target(cluster, update.get("desiredNodePoolId"))
            if field == "desiredNodeVersion":
                version = self._pool_version(value, cluster["currentMasterVersion"], where)
                return self._pool_setter(pool["name"], {"version": version}), "UPGRADE_NODES"
            self._check_autoscaling(value, where)
            return self._pool_setter(pool["name"], {"autoscaling": value}), "UPDATE_CLUSTER"
        if field == "desiredAddonsConfig":
            return (
                lambda _, target: deep_merge(target.setdefault("addonsConfig", {}), value)
            ), "UPDATE_CLUSTER"
        if field == "desiredGatewayApiConfig":
            return (
                lambda _, target: target.setdefault("networkConfig", {}).update(gatewayApiConfig=value)
            ), "UPDATE_CLUSTER"
        if field == "desiredEnablePrivateEndpoint":
            return (
                lambda _, target: target.setdefault("privateClusterConfig", {}).update(
                    enablePrivateEndpoint=value
                )
            ), "UPDATE_CLUSTER"
        if field == "desiredLocations":
            if autopilot:
                raise invalid("The zones of an Autopilot cluster cannot be changed.", where)
            return _setter("locations", self._zones(cluster["location"], value, where)), "UPDATE_CLUSTER"
        raise ApiError("UNIMPLEMENTED", f"The fake does not implement the cluster update {snake(field)}.")

    @staticmethod
    def _update_pool_target(cluster: dict[str, Any], name: str | None) -> dict[str, Any]:
        pools = cluster.get("nodePools", [])
        if not name:
            if len(pools) != 1:
                raise invalid(
                    "update.desired_node_pool_id is required when the cluster has more than one node pool.",
                    "update.desired_node_pool_id",
                )
            return pools[0]
        for pool in pools:
            if pool["name"] == name:
                return pool
        raise not_found(f'Node pool "{name}" not found in cluster {cluster["name"]}.')

    def _pool_setter(self, name: str, changes: dict[str, Any]) -> Callable[[str, dict[str, Any]], None]:
        def change(_: str, cluster: dict[str, Any]) -> None:
            for pool in cluster.get("nodePools", []):
                if pool["name"] == name:
                    pool.update(copy.deepcopy(changes))
                    pool["status"] = "RUNNING"
                    pool["etag"] = new_etag()
            self._counts(cluster)

        return change

    # -- node pools --------------------------------------------------------------------------------------

    def list_pools(self, req: Request) -> dict[str, Any]:
        """The node pools of a cluster."""
        _, cluster = self._cluster(req, "/nodePools")
        pools = [self._present_pool(pool) for pool in cluster.get("nodePools", [])]
        return {"nodePools": pools} if pools else {}

    def create_pool(self, req: Request) -> dict[str, Any]:
        """Adds a node pool to a Standard cluster: a CREATE_NODE_POOL operation."""
        key, cluster = self._cluster(req, "/nodePools")
        pool = self.body(req)["nodePool"]
        self._standard(cluster)
        name = pool.get("name", "")
        if not _NAME.fullmatch(name):
            raise invalid(_NAME_MESSAGE.format(field="node_pool.name", name=name), "node_pool.name")
        if any(existing["name"] == name for existing in cluster.get("nodePools", [])):
            raise self.exists(f"{key}/nodePools/{name}", self.kinds["clusters"])
        self._ready(key, cluster)
        region = self._location(cluster["location"])
        self._check_node_pool(cluster, pool, cluster["currentMasterVersion"], region, "node_pool")
        self._prepare_pool(key, cluster, pool)
        cluster.setdefault("nodePools", []).append(pool)
        cluster["status"] = "RECONCILING"

        def change(cluster_key: str, target: dict[str, Any]) -> None:
            for existing in target.get("nodePools", []):
                if existing["name"] == name:
                    self._pool_ready(cluster_key, target, existing)

        return self.start("CREATE_NODE_POOL", key, f"{key}/nodePools/{name}", self._finish(key, change))

    def delete_pool(self, req: Request) -> dict[str, Any]:
        """STOPPING, then gone: a DELETE_NODE_POOL operation."""
        key, cluster, pool = self._pool(req)
        self._standard(cluster)
        self._ready(key, cluster)
        pool["status"] = "STOPPING"
        cluster["status"] = "RECONCILING"
        name = pool["name"]

        def change(_: str, target: dict[str, Any]) -> None:
            target["nodePools"] = [item for item in target.get("nodePools", []) if item["name"] != name]
            self._counts(target)

        return self.start("DELETE_NODE_POOL", key, f"{key}/nodePools/{name}", self._finish(key, change))

    def _pool_operation(
        self, req: Request, op_type: str, changes: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        key, cluster, pool = self._pool(req)
        self._standard(cluster)
        wanted = changes(cluster, pool)
        self._ready(key, cluster)
        pool["status"] = "RECONCILING"
        cluster["status"] = "RECONCILING"
        target = f"{key}/nodePools/{pool['name']}"
        return self.start(op_type, key, target, self._finish(key, self._pool_setter(pool["name"], wanted)))

    def set_pool_size(self, req: Request) -> dict[str, Any]:
        """Resizes a node pool (nodes per zone): a SET_NODE_POOL_SIZE operation."""
        body = self.body(req)

        def changes(_: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
            count = body["nodeCount"]
            if not 0 <= count <= 1000:
                raise invalid("node_count must be between 0 and 1000.", "node_count")
            return {"_nodeCount": count}

        return self._pool_operation(req, "SET_NODE_POOL_SIZE", changes)

    def set_pool_autoscaling(self, req: Request) -> dict[str, Any]:
        """Changes a node pool's autoscaling limits: an UPDATE_CLUSTER operation."""
        body = self.body(req)

        def changes(_: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
            self._check_autoscaling(body["autoscaling"], "autoscaling")
            return {"autoscaling": body["autoscaling"]}

        return self._pool_operation(req, "UPDATE_CLUSTER", changes)

    def update_pool(self, req: Request) -> dict[str, Any]:
        """Changes a node pool's version, image, machine and node settings: an UPGRADE_NODES operation."""
        body = self.body(req)
        config_fields = (
            "machineType",
            "diskSizeGb",
            "diskType",
            "labels",
            "taints",
            "tags",
            "resourceLabels",
            "workloadMetadataConfig",
            "kubeletConfig",
            "linuxNodeConfig",
            "gcfsConfig",
            "gvnic",
        )

        def changes(cluster: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
            config = copy.deepcopy(pool.get("config", {}))
            for field in config_fields:
                if field in body:
                    value = body[field]
                    if field in _WRAPPED and isinstance(value, dict):
                        value = value.get(_WRAPPED[field], [] if field in ("tags", "taints") else {})
                    config[field] = value
            if body["imageType"] not in ("-", ""):
                config["imageType"] = body["imageType"]
            self._check_config(cluster, config, "")
            version = self._pool_version(body["nodeVersion"], cluster["currentMasterVersion"], "node_version")
            wanted: dict[str, Any] = {"config": config, "version": version}
            if body.get("locations"):
                wanted["locations"] = self._zones(cluster["location"], body["locations"], "locations")
            if "upgradeSettings" in body:
                wanted["upgradeSettings"] = body["upgradeSettings"]
            return wanted

        return self._pool_operation(req, "UPGRADE_NODES", changes)

    # -- operations --------------------------------------------------------------------------------------

    def start(
        self,
        op_type: str,
        cluster_key: str,
        target: str,
        complete: Callable[[], dict[str, Any] | None],
        *,
        on_cancel: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Starts a GKE operation on ``target`` (in cluster ``cluster_key``); answers it not done."""
        parts = cluster_key.split("/")
        project, location = parts[1], parts[3]
        number = self.fake.project_number(project)
        ident = f"operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
        key = f"projects/{project}/locations/{location}/operations/{ident}"
        target_path = target.split("/", 4)[4]
        op = Operation(
            api=self.api,
            style=self.lro,
            key=key,
            name=ident,
            verb=op_type,
            target=target,
            due=time.time() + self.fake.delay_for(self.api),
            complete=complete,
            extra={
                "location": location,
                "cluster": cluster_key,
                "on_cancel": on_cancel,
                "selfLink": f"{SELF_LINK}projects/{number}/locations/{location}/operations/{ident}",
                "targetLink": f"{SELF_LINK}projects/{number}/locations/{location}/{target_path}",
            },
        )
        self.fake.operations[(self.api, key)] = op
        return self.render(op)

    @staticmethod
    def render(op: Operation) -> dict[str, Any]:
        """A GKE ``Operation``."""
        status = "DONE" if op.done else ("RUNNING" if time.time() - op.started > 0.02 else "PENDING")
        body: dict[str, Any] = {
            "name": op.name,
            "zone": op.extra["location"],
            "location": op.extra["location"],
            "operationType": op.verb,
            "status": status,
            "selfLink": op.extra["selfLink"],
            "targetLink": op.extra["targetLink"],
            "startTime": now_rfc3339(op.started),
        }
        if op.done:
            body["endTime"] = now_rfc3339(op.finished)
            if op.error is not None:
                body["error"] = op.error.rpc_status()
                body["statusMessage"] = op.error.message
        return body

    def _operation(self, req: Request, suffix: str = "") -> Operation:
        key = self._key(req, suffix)
        op = self.fake.operations.get((self.api, key))
        if op is None:
            raise self.missing(key)
        return op

    def list_operations_of(self, req: Request) -> dict[str, Any]:
        """The operations of a location (``-``: of every location), oldest first."""
        parent = self._key(req, "/operations")
        project, location = parent.split("/")[1], parent.split("/")[3]
        ops = [
            op
            for (api, key), op in self.fake.operations.items()
            if api == self.api and key.split("/")[1] == project and location in ("-", key.split("/")[3])
        ]
        found = [self.render(op) for op in sorted(ops, key=lambda op: op.started)]
        return {"operations": found} if found else {}

    def cancel_operation(self, req: Request) -> dict[str, Any]:
        """Cancels an operation that is not done: it is DONE with a CANCELLED error; a cancelled create
        leaves its cluster in ERROR, any other change leaves the cluster RUNNING as it was."""
        self.body(req)
        op = self._operation(req, ":cancel")
        if op.done:
            raise failed_precondition(f"Operation {op.name} is already done and cannot be cancelled.")
        cluster_key = op.extra["cluster"]
        on_cancel = op.extra.get("on_cancel")
        op.complete = None
        op.error = ApiError("CANCELLED", f"Operation {op.name} was cancelled.")
        op.finish(time.time())
        cluster = self.store.get(cluster_key)
        if cluster is not None:
            if on_cancel is not None:
                on_cancel(cluster_key, cluster)
            else:
                cluster["status"] = "RUNNING"
                for pool in cluster.get("nodePools", []):
                    if pool.get("status") in ("RECONCILING", "STOPPING"):
                        pool["status"] = "RUNNING"
                cluster["nodePools"] = [
                    p for p in cluster.get("nodePools", []) if p["status"] != "PROVISIONING"
                ]
        return {}

    # -- what tests use ----------------------------------------------------------------------------------

    def server_identity(self, cluster: str, host: str | None = None) -> tuple[str, str]:
        """A serving certificate and its key (PEM) for ``cluster``'s endpoint (or ``host``), signed by the
        cluster's CA: what a test's Kubernetes API server presents so that clients trusting
        ``masterAuth.clusterCaCertificate`` accept it."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from skyrig_gcp.fake.apis.sqladmin import Authority

        with self.fake.lock:
            self.fake.settle()
            resource = self.lookup(self.canonical(cluster))
            if "_caKey" not in resource:
                raise failed_precondition(f"Cluster '{cluster}' is not RUNNING yet: it has no CA.")
            ca = base64.b64decode(resource["masterAuth"]["clusterCaCertificate"]).decode()
            authority = Authority(resource["_caName"], resource["_caKey"], ca)
            name = host or resource["endpoint"]
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = authority.issue(key.public_key(), name, 86400)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _setter(field: str, value: Any) -> Callable[[str, dict[str, Any]], None]:
    """A change that sets (None: removes) one top-level field of a cluster."""

    def change(_: str, cluster: dict[str, Any]) -> None:
        if value is None:
            cluster.pop(field, None)
        else:
            cluster[field] = copy.deepcopy(value)

    return change


def _check_authorized(config: dict[str, Any], field: str) -> None:
    """400 for master authorized networks GKE refuses: more than 50, or a block that is not a CIDR."""
    blocks = config.get("cidrBlocks", [])
    if len(blocks) > 50:
        raise invalid("At most 50 master authorized networks can be given.", field)
    for block in blocks:
        try:
            ipaddress.ip_network(block.get("cidrBlock", ""))
        except ValueError:
            raise invalid(f'Invalid CIDR block "{block.get("cidrBlock", "")}".', field) from None


def _block(value: str | None, default: str) -> str:
    """A CIDR block from a ``/14``-style size or a full block; ``default`` when none is given."""
    if not value:
        return default
    if value.startswith("/"):
        return f"{default.split('/')[0]}{value}"
    try:
        return str(ipaddress.IPv4Network(value))
    except ValueError:
        raise invalid(f'Invalid CIDR block "{value}".', "cluster.ip_allocation_policy") from None
