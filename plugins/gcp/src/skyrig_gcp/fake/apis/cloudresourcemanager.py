"""Resource Manager v3, FAKE (:mod:`skyrig_gcp.fake`): projects and their IAM policies.

Projects are named by number (``projects/123456789012``) and found by id or number; one the fake does not
know answers 403, as Google answers for a project the caller cannot see. ``FakeGcp(projects=(...))`` and
:meth:`FakeGcp.add_project <skyrig_gcp.fake.FakeGcp.add_project>` make existing ones. A create (a
long-running operation) checks the project id (6 to 30 characters, ``[a-z][-a-z0-9]{4,28}[a-z0-9]``); a
delete marks the project DELETE_REQUESTED.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError, already_exists, invalid
from skyrig_gcp.fake.operations import now_rfc3339

_PROJECT_ID = r"[a-z][-a-z0-9]{4,28}[a-z0-9]"


class CloudResourceManager(ApiHandler):
    """Resource Manager: projects (create, get, list, search, patch, delete) and their IAM policies."""

    api = "cloudresourcemanager"
    version = "v3"
    proto_package = "google.cloud.resourcemanager.v3"
    project_names = "number"
    kinds = {"projects": Kind("projects", "Project", label="Project")}

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        return ApiError("PERMISSION_DENIED", "The caller does not have permission")

    def seed_project(self, project_id: str, number: str) -> dict[str, Any]:
        """An ACTIVE project as it exists before a test starts."""
        stamp = now_rfc3339()
        return {
            "name": f"projects/{number}",
            "projectId": project_id,
            "state": "ACTIVE",
            "displayName": project_id,
            "createTime": stamp,
            "updateTime": stamp,
            "etag": new_etag(),
        }

    def do_create(self, req: Request) -> dict[str, Any]:
        """Creates a project (a long-running operation; the project is ACTIVE when it is done)."""
        body = self.body(req)
        project_id = body.get("projectId", "")
        if not re.fullmatch(_PROJECT_ID, project_id):
            raise invalid(
                f"Project id '{project_id}' is invalid: 6 to 30 lowercase letters, digits or hyphens, "
                "starting with a letter and not ending with a hyphen.",
                "project.project_id",
            )
        if any(p.get("projectId") == project_id for p in self.store.values()):
            raise already_exists("Requested entity already exists")
        number = self.fake.project_number(project_id)
        key = f"projects/{number}"
        project = {**body, **self.seed_project(project_id, number)}
        if "displayName" in body:
            project["displayName"] = body["displayName"]
        self.store[key] = project
        kind = self.kinds["projects"]

        def complete() -> dict[str, Any]:
            return {"@type": self.type_url("Project"), **copy.deepcopy(self.store[key])}

        return self.start_operation(req, "CREATE", key, kind, complete)

    def metadata(self, verb: str, kind: Kind | None, target: str) -> dict[str, Any] | None:
        if verb == "CREATE":
            return {
                "@type": self.type_url("CreateProjectMetadata"),
                "createTime": now_rfc3339(),
                "gettable": True,
            }
        return {"@type": self.type_url(f"{verb.capitalize()}ProjectMetadata")}

    def generic_delete(self, req: Request) -> dict[str, Any]:
        key = self.canonical(self.path_key(req))
        project = self.lookup(key)
        project["state"] = "DELETE_REQUESTED"
        project["deleteTime"] = now_rfc3339()
        return self.start_operation(
            req, "DELETE", key, None, lambda: {"@type": self.type_url("Project"), **copy.deepcopy(project)}
        )

    def generic_list(self, req: Request) -> dict[str, Any]:
        parent = req.query.get("parent")
        items = [
            (k, v)
            for k, v in sorted(self.store.items())
            if v.get("parent") == parent and (req.query.get("showDeleted") or v.get("state") == "ACTIVE")
        ]
        page, token = self.paginate(req, items)
        body: dict[str, Any] = {}
        if page:
            body["projects"] = [copy.deepcopy(v) for _, v in page]
        if token:
            body["nextPageToken"] = token
        return body

    def do_search(self, req: Request) -> dict[str, Any]:
        """Projects matching the ``query`` terms ``id:X``, ``projectId:X``, ``name:X``, ``parent:X``,
        ``state:X``."""
        query = str(req.query.get("query") or "")
        terms = [term.split(":", 1) for term in query.split() if ":" in term or "=" in term]
        fields = {
            "id": "projectId",
            "projectid": "projectId",
            "name": "displayName",
            "displayname": "displayName",
            "parent": "parent",
            "state": "state",
            "lifecyclestate": "state",
        }
        found = []
        for key, project in sorted(self.store.items()):
            if all(
                str(project.get(fields.get(name.lower(), name), "")) == value.strip("\"'")
                for name, value in terms
            ):
                found.append((key, project))
        page, token = self.paginate(req, found)
        body: dict[str, Any] = {}
        if page:
            body["projects"] = [copy.deepcopy(v) for _, v in page]
        if token:
            body["nextPageToken"] = token
        return body
