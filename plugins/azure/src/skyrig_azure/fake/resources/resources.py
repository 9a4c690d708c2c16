"""Microsoft.Resources: resource groups (synchronous PUT and PATCH; DELETE is long-running and takes
everything in the group with it), and the generic lists of resources in a subscription or a group
(``resources.list`` / ``resources.list_by_resource_group``, with ``$filter`` on ``resourceType``, ``name``,
``substringof(..., name)``, ``tagName`` and ``tagValue``), by which a provider finds what carries its tags."""

from __future__ import annotations

import re
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.resource.resources.models"
_VERSIONS = ("2021-04-01", "2022-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01")
_CLAUSE = re.compile(
    r"^\s*(?:(resourceType|name|tagName|tagValue)\s+eq\s+'([^']*)'|substringof\('([^']*)',\s*name\))\s*$",
    re.IGNORECASE,
)


def _matches(resource: dict[str, Any], filter_text: str) -> bool:
    clauses = [c for c in re.split(r"\s+and\s+", filter_text, flags=re.IGNORECASE) if c.strip()]
    tag_name: str | None = None
    tag_value: str | None = None
    for clause in clauses:
        match = _CLAUSE.match(clause)
        if match is None:
            raise ArmError(
                400,
                "InvalidFilterInQueryString",
                f"Invalid $filter '{filter_text}': the fake "
                "reads resourceType, name and tagName/tagValue eq '...' and substringof('...', name).",
            )
        field, value, part = match.groups()
        if part is not None:
            if part.lower() not in resource["name"].lower():
                return False
        elif field.lower() == "resourcetype":
            if resource["type"].lower() != value.lower():
                return False
        elif field.lower() == "name":
            if resource["name"].lower() != value.lower():
                return False
        elif field.lower() == "tagname":
            tag_name = value
        else:
            tag_value = value
    if tag_name is not None:
        tags = {k.lower(): v for k, v in (resource.get("tags") or {}).items()}
        if tag_name.lower() not in tags:
            return False
        if tag_value is not None and tags[tag_name.lower()] != tag_value:
            return False
    return True


def _generic_list(ctx: Context, items: list[dict[str, Any]], filter_text: str | None) -> list[dict[str, Any]]:
    """The top-level resources of the subscription (or of the group), as ``GenericResourceExpanded``."""
    found = []
    for entry in ctx.fake.store.values():
        kind = entry.type
        if kind.depth != 1 or kind.scope != "group" or entry.subscription.lower() != ctx.subscription.lower():
            continue
        if ctx.group is not None and (entry.group or "").lower() != ctx.group.lower():
            continue
        resource = entry.resource
        generic = {
            k: resource[k]
            for k in ("id", "name", "type", "location", "tags", "kind", "sku", "identity", "managedBy")
            if resource.get(k) is not None
        }
        if filter_text and not _matches(generic, filter_text):
            continue
        found.append(generic)
    return sorted(found, key=lambda r: r["id"].lower())


register(
    ResourceType(
        type="Microsoft.Resources/resourceGroups",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:ResourceGroup",
        patch_model=f"{_MODELS}:ResourceGroupPatchable",
        scope="subscription",
        async_delete=True,
        immutable=("location",),
        immutable_code="InvalidResourceGroupLocation",
        name_pattern=r"[-\w\.\(\)]{0,89}[-\w\(\)]",
        name_error="InvalidResourceGroup",
    )
)
register(
    ResourceType(
        type="Microsoft.Resources/resources",
        api_versions=_VERSIONS,
        scope="subscription",
        tracked=False,
        provisioning_state=False,
        list_filter=_generic_list,
    )
)
