"""Service Networking v1, FAKE (:mod:`skyrig_gcp.fake`): private services access connections.

A connection peers a consumer VPC network (``projects/NUMBER/global/networks/NAME``; a project id is read
too, the number is answered) with a service's network through allocated ranges (global addresses with
purpose VPC_PEERING on that network). As Google does, the checks happen in the long-running operation: a
network or range that does not exist, or a second create with other ranges ("Cannot modify allocated
ranges in CreateConnection. Please use UpdateConnection."), fails it with FAILED_PRECONDITION. Once done the
network shows the peering. Cloud SQL and Memorystore ask :meth:`ServiceNetworking.connected`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request
from skyrig_gcp.fake.errors import ApiError, failed_precondition, invalid

PEERING = "servicenetworking-googleapis-com"


class ServiceNetworking(ApiHandler):
    """Service Networking: connections (create, list, patch, deleteConnection)."""

    api = "servicenetworking"
    version = "v1"
    kinds = {"connections": Kind("connections", "Connection")}

    def operation_parent(self, target: str) -> str | None:
        return None

    def _network(self, value: str) -> tuple[str, str, str]:
        """``(project id, network name, the network as answered: projects/NUMBER/global/networks/NAME)``."""
        match = re.match(r"^(?:.*?/)?projects/([^/]+)/global/networks/([^/]+)$", value or "")
        if not match:
            raise invalid(
                f"Invalid network '{value}': expected projects/{{project "
                f"number}}/global/networks/{{network}}.",
                "network",
            )
        project = self.fake.project_id(match.group(1))
        number = self.fake.project_number(match.group(1))
        return project, match.group(2), f"projects/{number}/global/networks/{match.group(2)}"

    def _key(self, service: str, network: str) -> str:
        return f"{service}/connections/{network.replace('/', '~')}"

    def connected(self, project: str, network: str) -> bool:
        """Whether ``network`` (``projects/p/global/networks/n``) of ``project`` has a connection."""
        try:
            _, _, answered = self._network(
                network if "/" in network else f"projects/{project}/global/networks/{network}"
            )
        except ApiError:
            return False
        return any(c.get("network") == answered for c in self.store.values())

    def user_of(self, key: str, resource: dict[str, Any]) -> str | None:
        """The connection that uses a Compute Engine network or allocated range, if one does."""
        parts = key.split("/")
        for name, connection in self.store.items():
            project, network, _ = self._network(connection["network"])
            if parts[2:4] == ["global", "networks"] and (project, network) == (parts[1], parts[4]):
                return name
            ranges = connection.get("reservedPeeringRanges", [])
            if parts[2:4] == ["global", "addresses"] and parts[4] in ranges and project == parts[1]:
                return name
        return None

    def _check_ranges(self, project: str, network: str, ranges: list[str]) -> None:
        compute = self.fake.handlers["compute"]
        net_key = compute.canonical(f"projects/{project}/global/networks/{network}")
        if net_key not in compute.store:
            raise failed_precondition(f"Network '{net_key}' was not found.")
        for name in ranges:
            address = compute.store.get(compute.canonical(f"projects/{project}/global/addresses/{name}"))
            if address is None or address.get("purpose") != "VPC_PEERING":
                raise failed_precondition(f"Allocated IP range '{name}' not found in network.")
            if not str(address.get("network", "")).endswith(f"projects/{project}/global/networks/{network}"):
                raise failed_precondition(f"Allocated IP range '{name}' is not in network '{network}'.")

    def _peer(self, project: str, network: str, add: bool) -> None:
        compute = self.fake.handlers["compute"]
        owner = compute.store.get(compute.canonical(f"projects/{project}/global/networks/{network}"))
        if owner is None:
            return
        peerings = [p for p in owner.get("peerings", []) if p.get("name") != PEERING]
        if add:
            peerings.append(
                {
                    "name": PEERING,
                    "network": "https://www.googleapis.com/compute/v1/projects/fake-tenant/global/networks/servicenetworking",
                    "state": "ACTIVE",
                    "stateDetails": "[2026-01-01T00:00:00.000-00:00]: Connected.",
                    "autoCreateRoutes": True,
                    "exportCustomRoutes": False,
                    "importCustomRoutes": False,
                    "exchangeSubnetRoutes": True,
                }
            )
        owner["peerings"] = peerings

    def do_create(self, req: Request) -> dict[str, Any]:
        """Creates (or confirms) the connection of a network; checked when its operation completes."""
        body = self.body(req)
        service = self.path_key(req).removesuffix("/connections")
        project, network, answered = self._network(body.get("network", ""))
        ranges = list(body.get("reservedPeeringRanges", []))
        key = self._key(service, answered)

        def complete() -> dict[str, Any]:
            existing = self.store.get(key)
            if existing is not None and sorted(existing.get("reservedPeeringRanges", [])) != sorted(ranges):
                raise failed_precondition(
                    "Cannot modify allocated ranges in CreateConnection. Please use UpdateConnection."
                )
            self._check_ranges(project, network, ranges)
            connection = {
                "network": answered,
                "reservedPeeringRanges": ranges,
                "peering": PEERING,
                "service": service,
            }
            self.store[key] = connection
            self._peer(project, network, True)
            return {
                "@type": "type.googleapis.com/google.api.servicenetworking.v1.Connection",
                **copy.deepcopy(connection),
            }

        return self.start_operation(req, "CREATE", key, None, complete)

    def do_list(self, req: Request) -> dict[str, Any]:
        """The connections of the ``network`` query parameter."""
        service = self.path_key(req).removesuffix("/connections")
        wanted = req.query.get("network")
        answered = self._network(wanted)[2] if wanted else None
        found = [
            copy.deepcopy(c)
            for k, c in sorted(self.store.items())
            if c.get("service") in (service, None) or service.endswith("/-")
            if answered is None or c.get("network") == answered
        ]
        return {"connections": found} if found else {}

    def do_patch(self, req: Request) -> dict[str, Any]:
        """Changes a connection's allocated ranges."""
        body = self.body(req)
        service = self.path_key(req).rsplit("/connections/", 1)[0]
        project, network, answered = self._network(body.get("network", ""))
        key = self._key(service, answered)
        ranges = list(body.get("reservedPeeringRanges", []))
        force = bool(req.query.get("force"))

        def complete() -> dict[str, Any]:
            existing = self.store.get(key)
            if existing is None and not force:
                raise failed_precondition(f"No connection for network '{answered}'; create one first.")
            self._check_ranges(project, network, ranges)
            connection = {
                "network": answered,
                "reservedPeeringRanges": ranges,
                "peering": PEERING,
                "service": service,
            }
            self.store[key] = connection
            self._peer(project, network, True)
            return {
                "@type": "type.googleapis.com/google.api.servicenetworking.v1.Connection",
                **copy.deepcopy(connection),
            }

        return self.start_operation(req, "UPDATE", key, None, complete)

    def do_deleteConnection(self, req: Request) -> dict[str, Any]:
        """Deletes the connection of ``consumerNetwork``."""
        body = self.body(req)
        service = self.path_key(req).rsplit("/connections/", 1)[0]
        project, network, answered = self._network(body.get("consumerNetwork", ""))
        key = self._key(service, answered)
        if key not in self.store:
            raise ApiError("NOT_FOUND", f"No connection for network '{answered}'.")

        def complete() -> dict[str, Any]:
            self.store.pop(key, None)
            self._peer(project, network, False)
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return self.start_operation(req, "DELETE", key, None, complete)
