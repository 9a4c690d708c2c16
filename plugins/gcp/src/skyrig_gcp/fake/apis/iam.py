"""IAM v1, FAKE (:mod:`skyrig_gcp.fake`): service accounts and their IAM policies.

A service account is named by its email (``projects/p/serviceAccounts/NAME@p.iam.gserviceaccount.com``);
requests may name it by email or unique id, and with ``projects/-``. Its account id is 6 to 30 characters of
``[a-z]([-a-z0-9]*[a-z0-9])``; a second create of the same id is 409; patches take an ``updateMask`` of
``displayName`` and ``description``.
"""

from __future__ import annotations

import base64
import copy
import random
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError, already_exists, invalid, not_found

_ACCOUNT = r"[a-z]([-a-z0-9]{4,28}[a-z0-9])"


class Iam(ApiHandler):
    """IAM: service accounts (create, get, list, patch, update, delete, get/setIamPolicy)."""

    api = "iam"
    version = "v1"
    kinds = {"serviceAccounts": Kind("serviceAccounts", "ServiceAccount", label="Service account")}

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
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
        """Creates a service account from ``accountId`` and its ``serviceAccount`` fields."""
        body = self.body(req)
        collection = self.canonical(self.path_key(req))
        project = collection.split("/")[1]
        account_id = body.get("accountId", "")
        import re

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

    def generic_patch(self, req: Request) -> dict[str, Any]:
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
        self.lookup(key)
        self.remove(key)
        return {}

    def generic_list(self, req: Request) -> dict[str, Any]:
        collection = self.canonical(self.path_key(req))
        items = [(k, v) for k, v in sorted(self.store.items()) if self.in_collection(k, collection)]
        page, token = self.paginate(req, items)
        body: dict[str, Any] = {}
        if page:
            body["accounts"] = [copy.deepcopy(v) for _, v in page]
        if token:
            body["nextPageToken"] = token
        return body

    def iam_resource(self, req: Request) -> str:
        return self.path_key(req)
