"""The resource types the FAKE ARM serves (:mod:`skyrig_azure.fake`): a few lines of data each, plus hooks.

A module per Azure namespace under ``skyrig_azure.fake.resources`` calls :func:`register` with a
:class:`ResourceType` for each type it serves; ``skyrig_azure.fake.resources`` imports them all. The
core does the rest for every type alike: routing, api-version checks, validation of PUT and PATCH bodies
against the named SDK models, idempotent PUT, immutable properties, asynchronous operations, etags,
listing with paging, deletion of what lies under a resource.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyrig_azure.fake.core import FakeAzure


@dataclass
class Context:
    """What a hook knows about the request: the fake, the resource's id and names, the scope it is in."""

    fake: FakeAzure
    id: str
    type: ResourceType
    subscription: str
    group: str | None
    names: tuple[str, ...]
    parent_id: str
    scope: str
    previous: dict[str, Any] | None = None
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The resource's own name (the last segment of its id)."""
        return self.names[-1]


#: ``on_write(ctx, resource)``: fills defaults and read-only outputs of a resource about to be stored
#: (``ctx.previous`` is what was stored before, None on create); raises ArmError to refuse it.
WriteHook = Callable[[Context, dict[str, Any]], None]
#: ``action(ctx, resource, body) -> (status, body)``: a POST action on a resource (``listKeys``).
ActionHook = Callable[[Context, dict[str, Any], Any], tuple[int, Any]]
#: ``list_filter(ctx, resources, filter_text) -> resources``: what a list answers (``$filter``).
ListHook = Callable[[Context, list[dict[str, Any]], str | None], list[dict[str, Any]]]
#: ``on_delete(ctx, resource)``: runs when a resource is removed (a vault's data plane stops).
DeleteHook = Callable[[Context, dict[str, Any]], None]


@dataclass
class ResourceType:
    """One ARM resource type, as the fake serves it.

    ``type`` is the full type (``Microsoft.Network/virtualNetworks/subnets``); ``scope`` where its
    top-level instances live: ``group`` (under a resource group), ``subscription``, or ``extension``
    (under any scope: ``{scope}/providers/Microsoft.Authorization/roleAssignments/{name}``).
    ``put_model`` / ``patch_model`` name the SDK models (``"azure.mgmt.keyvault.models:VaultCreateOrUpdate
    Parameters"``) every body is validated with; ``read_model`` the model of the resource as answered
    (for its read-only members). ``api_versions`` are those accepted (at least the one the SDK in the
    environment sends). ``async_put`` / ``async_patch`` / ``async_delete``: answered as long-running
    operations (the SDK's ``begin_*``). ``immutable``: dotted paths a PUT or PATCH may not change
    (refused with ``immutable_code``). ``inline_children``: a list member of ``properties`` that holds
    child resources (a virtual network's ``subnets``), kept in step with the child type.
    """

    type: str
    api_versions: tuple[str, ...]
    put_model: str | None = None
    patch_model: str | None = None
    read_model: str | None = None
    scope: str = "group"
    async_put: bool = False
    async_patch: bool = False
    async_delete: bool = False
    immutable: tuple[str, ...] = ()
    immutable_code: str = "PropertyChangeNotAllowed"
    etag: bool = False
    tracked: bool = True
    creating_state: str = "Creating"
    updating_state: str = "Updating"
    name_pattern: str | None = None
    name_error: str = "InvalidResourceName"
    inline_children: Mapping[str, str] = field(default_factory=dict)
    on_write: WriteHook | None = None
    on_delete: DeleteHook | None = None
    actions: Mapping[str, ActionHook] = field(default_factory=dict)
    """POST actions on a resource, by name (``listKeys``); the action ``""`` is a POST to the type's own
    path: a provider-level action such as ``Microsoft.KeyVault/checkNameAvailability``."""
    list_filter: ListHook | None = None
    provisioning_state: bool = True
    created_status: int = 201
    """The status of a PUT that creates (App Service answers 202 or 200, never 201)."""
    updated_status: int = 200
    """The status of a PUT or PATCH that changes an existing resource (PostgreSQL flexible servers answer
    202 to every write, and their SDK accepts nothing else)."""
    parent_required: bool = True
    """Whether a child's parent must exist (not for a type under a location: deleted vaults)."""

    @property
    def namespace(self) -> str:
        """``Microsoft.KeyVault``."""
        return self.type.split("/", 1)[0]

    @property
    def depth(self) -> int:
        """1 for a top-level type, 2 for its child, ..."""
        return self.type.count("/")


#: Every registered type, by its lower-cased full type.
REGISTRY: dict[str, ResourceType] = {}


def register(*types: ResourceType) -> None:
    """Makes the fake serve ``types`` (a later registration of the same type replaces the earlier one)."""
    for resource_type in types:
        REGISTRY[resource_type.type.lower()] = resource_type


def lookup(type_name: str) -> ResourceType | None:
    """The registered type named ``type_name`` (case-insensitive), or None."""
    return REGISTRY.get(type_name.lower())


def namespaces() -> set[str]:
    """The namespaces with at least one registered type, lower-cased."""
    return {name.split("/", 1)[0] for name in REGISTRY}
