"""Service Usage v1, FAKE (:mod:`skyrig_gcp.fake`): enabling APIs on projects.

Services are ``projects/NUMBER/services/NAME.googleapis.com`` (a project id is read too). ``enable``,
``disable`` and ``batchEnable`` (at most 20 ids) are long-running; a service is ENABLED once the operation is
done. A name that is not a ``*.googleapis.com`` service is 403, as Google answers for a service it does not
know. ``list`` answers the services the fake has seen (with ``filter=state:ENABLED``, the enabled ones), not
Google's whole catalogue. With ``FakeGcp(require_enabled_services=True)`` the other APIs answer 403
SERVICE_DISABLED for a project that has not enabled them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request
from skyrig_gcp.fake.errors import ApiError, invalid

_SERVICE = re.compile(r"^[a-z0-9][-a-z0-9]*(\.[a-z0-9][-a-z0-9]*)*\.googleapis\.com$")


class ServiceUsage(ApiHandler):
    """Service Usage: services (get, list, batchGet, enable, disable, batchEnable)."""

    api = "serviceusage"
    version = "v1"
    project_names = "number"
    kinds = {"services": Kind("services", "GoogleApiServiceusageV1Service")}

    def operation_parent(self, target: str) -> str | None:
        return None

    def _service(self, key: str) -> dict[str, Any]:
        parent, _, name = key.rpartition("/services/")
        if not _SERVICE.match(name):
            raise ApiError("PERMISSION_DENIED", f"Not found or permission denied for service(s): {name}.")
        return self.store.get(key) or {
            "name": key,
            "parent": parent,
            "config": {"name": name, "title": name.split(".")[0]},
            "state": "DISABLED",
        }

    def enable(self, project: str, service: str) -> None:
        """Marks ``service`` enabled for ``project`` at once (no operation)."""
        key = self.canonical(f"projects/{project}/services/{service}")
        record = self._service(key)
        record["state"] = "ENABLED"
        self.store[key] = record

    def enabled(self, project: str, service: str) -> bool:
        """Whether ``service`` is enabled for ``project``."""
        key = self.canonical(f"projects/{project}/services/{service}")
        return self.store.get(key, {}).get("state") == "ENABLED"

    def _answer(self, key: str) -> dict[str, Any]:
        return {
            "@type": "type.googleapis.com/google.api.serviceusage.v1.Service",
            **copy.deepcopy(self.store[key]),
        }

    def do_enable(self, req: Request) -> dict[str, Any]:
        """Enables a service (a long-running operation)."""
        self.body(req)
        key = self.canonical(self.path_key(req))
        self._service(key)

        def complete() -> dict[str, Any]:
            record = self._service(key)
            record["state"] = "ENABLED"
            self.store[key] = record
            return {
                "@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
                "service": copy.deepcopy(record),
            }

        return self.start_operation(req, "ENABLE", key, None, complete)

    def do_disable(self, req: Request) -> dict[str, Any]:
        """Disables a service (a long-running operation)."""
        self.body(req)
        key = self.canonical(self.path_key(req))
        self._service(key)

        def complete() -> dict[str, Any]:
            record = self._service(key)
            record["state"] = "DISABLED"
            self.store[key] = record
            return {
                "@type": "type.googleapis.com/google.api.serviceusage.v1.DisableServiceResponse",
                "service": copy.deepcopy(record),
            }

        return self.start_operation(req, "DISABLE", key, None, complete)

    def do_batchEnable(self, req: Request) -> dict[str, Any]:
        """Enables up to 20 services (one long-running operation)."""
        body = self.body(req)
        parent = self.canonical(self.path_key(req).removesuffix("/services"))
        ids = body.get("serviceIds", [])
        if not ids or len(ids) > 20:
            raise invalid("service_ids must name 1 to 20 services.", "service_ids")
        keys = [f"{parent}/services/{ident}" for ident in ids]
        for key in keys:
            self._service(key)

        def complete() -> dict[str, Any]:
            services = []
            for key in keys:
                record = self._service(key)
                record["state"] = "ENABLED"
                self.store[key] = record
                services.append(copy.deepcopy(record))
            return {
                "@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
                "services": services,
            }

        return self.start_operation(req, "ENABLE", parent, None, complete)

    def generic_get(self, req: Request) -> dict[str, Any]:
        return copy.deepcopy(self._service(self.canonical(self.path_key(req))))

    def do_batchGet(self, req: Request) -> dict[str, Any]:
        """The services of ``names``."""
        names = req.query.get("names") or []
        if len(names) > 30:
            raise invalid("At most 30 names.", "names")
        return {"services": [copy.deepcopy(self._service(self.canonical(name))) for name in names]}

    def generic_list(self, req: Request) -> dict[str, Any]:
        collection = self.canonical(self.path_key(req))
        items = [(k, v) for k, v in sorted(self.store.items()) if self.in_collection(k, collection)]
        items = self.filter_items(req, items)
        page, token = self.paginate(req, items)
        body: dict[str, Any] = {}
        if page:
            body["services"] = [copy.deepcopy(v) for _, v in page]
        if token:
            body["nextPageToken"] = token
        return body
