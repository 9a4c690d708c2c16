"""IAM v1, FAKE (:mod:`skyrig_gcp.fake`): service accounts and their IAM policies, and a project's custom
roles.

A service account is named by its email (``projects/p/serviceAccounts/NAME@p.iam.gserviceaccount.com``);
requests may name it by email or unique id, and with ``projects/-``. Its account id is 6 to 30 characters of
``[a-z]([-a-z0-9]*[a-z0-9])``; a second create of the same id is 409; patches take an ``updateMask`` of
``displayName`` and ``description``.

A custom role (``projects/p/roles/ID``) has an id of 3 to 64 of ``[a-zA-Z0-9_.]`` and a title; its
permissions must be ``service.resource.verb``. A delete marks it ``deleted`` (it is still read, and listed
with ``showDeleted``): its id cannot be created again (``undelete`` brings it back); patches take an
``updateMask`` of ``title``, ``description``, ``includedPermissions`` and ``stage``, and refuse a deleted
role.
"""

from __future__ import annotations

import base64
import copy
import random
import re
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError, already_exists, failed_precondition, invalid, not_found

_ACCOUNT = r"[a-z]([-a-z0-9]{4,28}[a-z0-9])"
_ROLE_ID = r"[a-zA-Z0-9_.]{3,64}"
_PERMISSION = r"[a-z][a-zA-Z0-9]*\.[a-zA-Z0-9]+\.[a-zA-Z0-9]+"
_ROLE_FIELDS = ("title", "description", "includedPermissions", "stage")


class Iam(ApiHandler):
    """IAM: service accounts (create, get, list, patch, update, delete, get/setIamPolicy) and custom roles
    (create, get, list, patch, delete, undelete)."""

    api = "iam"
    version = "v1"
    kinds = {
        "serviceAccounts": Kind("serviceAccounts", "ServiceAccount", label="Service account"),
        "roles": Kind("roles", "Role", label="Role"),
    }

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        if "/roles/" in key:
            return not_found(f"The role named {key} was not found.")
        return not_found(f"Unknown service account: {key.rsplit('/', 1)[-1]}")

    def resolve(self, key: str) -> str:
        """The stored name of the service account a request names (email or unique id; ``projects/-``)."""
        parts = key.split("/")
        if len(parts) < 4 or parts[2] != "serviceAccounts":
            return key
        ident = parts[3]
        for name, account in self.store.items():
            project = account.get("projectId", "")
            same = account.get("email") == ident or account.get("uniqueId") == ident
            if same and parts[1] in ("-", project, self.fake.project_number(project)):
                return name
        raise self.missing(key)

    def path_key(self, req: Request) -> str:
        key = super().path_key(req)
        if req.method.verb in ("create", "list"):
            return key
        return self.resolve(self.canonical(key))

    def do_create(self, req: Request) -> dict[str, Any]:
        """Creates a service account from ``accountId`` and its ``serviceAccount`` fields, or a custom role
        from ``roleId`` and its ``role``."""
        body = self.body(req)
        collection = self.canonical(self.path_key(req))
        if collection.endswith("/roles"):
            return self._create_role(collection, body)
        project = collection.split("/")[1]
        account_id = body.get("accountId", "")

        if not re.fullmatch(_ACCOUNT, account_id):
            raise invalid(
                f"Invalid account ID '{account_id}': it must be 6-30 characters long and match the regular "
                "expression [a-z]([-a-z0-9]*[a-z0-9]) to comply with RFC1035.",
                "account_id",
            )
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        key = f"{collection}/{email}"
        if key in self.store:
            raise already_exists(
                f"Service account {account_id} already exists within project projects/{project}."
            )
        unique = str(random.randrange(10**20, 10**21))
        fields = body.get("serviceAccount") or {}
        account = {
            "name": key,
            "projectId": project,
            "uniqueId": unique,
            "email": email,
            "etag": base64.b64encode(new_etag().encode()[:8]).decode(),
            "oauth2ClientId": unique,
            **{k: v for k, v in fields.items() if k in ("displayName", "description")},
        }
        self.store[key] = account
        return copy.deepcopy(account)

    # -- custom roles ---------------------------------------------------------------------------------

    def _check_role(self, role: dict[str, Any]) -> None:
        for permission in role.get("includedPermissions", []):
            if not re.fullmatch(_PERMISSION, permission):
                raise invalid(f"Permission {permission} is not valid.", "role.included_permissions")
        if len(role.get("title", "")) > 100:
            raise invalid("The role's title is longer than 100 characters.", "role.title")

    def _create_role(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        role_id = str(body.get("roleId", ""))
        if not re.fullmatch(_ROLE_ID, role_id):
            raise invalid(
                f"The role ID '{role_id}' is not valid: 3 to 64 letters, digits, underscores and periods.",
                "role_id",
            )
        key = f"{collection}/{role_id}"
        if key in self.store:
            if self.store[key].get("deleted"):
                raise already_exists(
                    f"A role named {role_id} in {collection.rsplit('/', 1)[0]} was deleted; its id cannot be "
                    "used again for 37 days (undelete it instead)."
                )
            raise already_exists(f"A role named {role_id} in {collection.rsplit('/', 1)[0]} already exists.")
        fields = body.get("role") or {}
        role = {"name": key, **{k: copy.deepcopy(v) for k, v in fields.items() if k in _ROLE_FIELDS}}
        self._check_role(role)
        role.setdefault("stage", "GA")
        role["etag"] = base64.b64encode(new_etag().encode()[:8]).decode()
        self.store[key] = role
        return copy.deepcopy(role)

    def _patch_role(self, req: Request, key: str) -> dict[str, Any]:
        body = self.body(req)
        old = self.lookup(key)
        if old.get("deleted"):
            raise failed_precondition(f"The role {key} is deleted: undelete it first.")
        if body.get("etag") and body["etag"] != old.get("etag"):
            raise ApiError("ABORTED", f"The etag of {key} does not match: it changed since it was read.")
        mask = [path.strip() for path in str(req.query.get("updateMask") or "").split(",") if path.strip()]
        paths = mask or list(_ROLE_FIELDS)
        new = copy.deepcopy(old)
        for path in paths:
            name = {"included_permissions": "includedPermissions"}.get(path, path)
            if name not in _ROLE_FIELDS:
                raise invalid(f"Invalid update mask path '{path}'.", "update_mask")
            if name in body:
                new[name] = copy.deepcopy(body[name])
            else:
                new.pop(name, None)
        self._check_role(new)
        new["etag"] = base64.b64encode(new_etag().encode()[:8]).decode()
        self.store[key] = new
        return copy.deepcopy(new)

    def do_undelete(self, req: Request) -> dict[str, Any]:
        """Brings a deleted custom role back."""
        body = self.body(req, require=False)
        key = self.canonical(self.path_key(req))
        role = self.lookup(key)
        if not role.get("deleted"):
            raise failed_precondition(f"The role {key} is not deleted.")
        if body.get("etag") and body["etag"] != role.get("etag"):
            raise ApiError("ABORTED", f"The etag of {key} does not match: it changed since it was read.")
        role.pop("deleted")
        role["etag"] = base64.b64encode(new_etag().encode()[:8]).decode()
        return copy.deepcopy(role)

    # -- generic verbs, for both ------------------------------------------------------------------------

    def generic_patch(self, req: Request) -> dict[str, Any]:
        if "/roles/" in req.path:
            return self._patch_role(req, self.canonical(self.path_key(req)))
        body = self.body(req, require=False)
        key = self.path_key(req)
        old = self.lookup(key)
        fields = body.get("serviceAccount") or {}
        mask = [path.strip() for path in str(body.get("updateMask") or "").split(",") if path.strip()]
        if not mask:
            raise invalid("The update mask (update_mask) must name the fields to change.", "update_mask")
        new = copy.deepcopy(old)
        for path in mask:
            if path not in ("displayName", "description", "display_name"):
                raise invalid(
                    f"Invalid update mask path '{path}': only displayName and description change.",
                    "update_mask",
                )
            name = "displayName" if path in ("displayName", "display_name") else path
            if name in fields:
                new[name] = fields[name]
            else:
                new.pop(name, None)
        sent = fields.get("etag")
        if sent and sent != old.get("etag"):
            raise ApiError("ABORTED", f"The etag of {key} does not match: it changed since it was read.")
        new["etag"] = base64.b64encode(new_etag().encode()[:8]).decode()
        self.store[key] = new
        return copy.deepcopy(new)

    def generic_update(self, req: Request) -> dict[str, Any]:
        body = self.body(req)
        key = self.path_key(req)
        old = self.lookup(key)
        if body.get("etag") and body["etag"] != old.get("etag"):
            raise ApiError("ABORTED", f"The etag of {key} does not match: it changed since it was read.")
        new = copy.deepcopy(old)
        for name in ("displayName", "description"):
            if name in body:
                new[name] = body[name]
            else:
                new.pop(name, None)
        new["etag"] = base64.b64encode(new_etag().encode()[:8]).decode()
        self.store[key] = new
        return copy.deepcopy(new)

    def generic_delete(self, req: Request) -> dict[str, Any]:
        key = self.path_key(req)
        if "/roles/" in key:
            key = self.canonical(key)
            role = self.lookup(key)
            if role.get("deleted"):
                raise failed_precondition(f"The role {key} is already deleted.")
            role["deleted"] = True
            role["etag"] = base64.b64encode(new_etag().encode()[:8]).decode()
            return copy.deepcopy(role)
        self.lookup(key)
        self.remove(key)
        return {}

    def generic_list(self, req: Request) -> dict[str, Any]:
        collection = self.canonical(self.path_key(req))
        items = [(k, v) for k, v in sorted(self.store.items()) if self.in_collection(k, collection)]
        roles = collection.endswith("/roles")
        if roles and not req.query.get("showDeleted"):
            items = [(k, v) for k, v in items if not v.get("deleted")]
        page, token = self.paginate(req, items)
        body: dict[str, Any] = {}
        if page:
            body["roles" if roles else "accounts"] = [copy.deepcopy(v) for _, v in page]
        if token:
            body["nextPageToken"] = token
        return body

    def iam_resource(self, req: Request) -> str:
        return self.path_key(req)
