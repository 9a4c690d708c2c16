"""Settings of the Azure provider: ``[env.NAME.azure]`` in ``skyrig.toml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ENDPOINT_NAMES = frozenset({"arm", "servicebus"})
"""What ``endpoints`` may redirect: Azure Resource Manager (``arm``) and the Service Bus namespaces'
AMQP address (``servicebus``). Blob storage, Key Vault and the rest are reached where Resource Manager
says they are (a storage account's ``primaryEndpoints``, a vault's ``vaultUri``)."""

_UUID = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"


class AzureSettings(BaseModel):
    """Where to provision (credentials come from ``DefaultAzureCredential``: ``az login``, a service
    principal's environment variables, a managed identity), sizes, and how long to wait.

    Sizes are only the defaults of a new environment: changed in the Azure portal afterwards, they are
    adopted and never reverted (see ``docs/providers/azure.md``).
    """

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(..., pattern=_UUID)
    """The subscription to provision in (``az account show --query id``)."""
    location: str = Field("eastus", pattern=r"^[a-z0-9]+$")
    """The region of everything (``eastus``, ``westeurope``, ...)."""
    resource_group: str | None = Field(None, pattern=r"^[-\w._()]{1,89}[-\w_()]$")
    """An existing resource group to provision in. By default skyrig makes one per environment
    (``APP-ENV``) and deletes it with the environment."""
    endpoints: dict[str, str] = Field(default_factory=dict)
    """``arm`` -> Azure Resource Manager's address, ``servicebus`` -> the Service Bus AMQP address: an
    emulator or a fake (``https://127.0.0.1:8443``). Unset, Azure's own."""
    emulator: Literal["fake"] | None = None
    """The endpoints are skyrig's test fakes and emulators: calls carry a test token instead of Entra ID
    credentials. Never set it for Azure."""
    ca_bundle: str | None = None
    """A PEM file of the certificate authority the endpoints' TLS certificates come from (a test fake's);
    unset, the system's."""
    vnet_cidr: str = Field("10.20.0.0/16", pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$")
    """The environment's virtual network; its subnets (app integration, database, private endpoints) are
    carved from it."""
    image: str | None = None
    """Pins the container image of the services: every plan deploys it unless ``--image`` says otherwise
    (``SKYRIG_ENV__<ENV>__AZURE__IMAGE`` sets it per deploy). Unset (the usual way: deploy with
    ``--image``), the services keep the image they run."""
    app_service_sku: str = Field("P0v3", pattern=r"^[A-Z][A-Za-z0-9]+$")
    """The App Service Plan's pricing tier: P0v3, the smallest latest-generation tier that autoscales;
    user-tunable in the portal."""
    app_service_workers: int = Field(1, ge=1, le=30)
    """Instances of the App Service Plan; user-tunable (autoscale rules may change it)."""
    service_port: int = Field(8080, ge=1, le=65535)
    """The port the services' containers listen on (``WEBSITES_PORT``)."""
    sql_sku: str = Field("Standard_D2s_v3", pattern=r"^Standard_[A-Za-z0-9_]+$")
    """The PostgreSQL flexible server's compute size (General Purpose, 2 vCores / 8 GiB, the smallest
    that scales); user-tunable."""
    sql_tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = "GeneralPurpose"
    """The compute tier of ``sql_sku``."""
    sql_storage_gb: int = Field(32, ge=32, le=32768)
    """The server's storage (auto-grow on)."""
    sql_version: str = Field("18", pattern=r"^\d+$")
    """The PostgreSQL major version of a new server: 18, the latest Azure offers (the
    ``PostgreSqlFlexibleServerVersion`` enum of Azure's SDKs; the Python one takes any string)."""
    cache_sku: str = Field("C1", pattern=r"^[CP]\d$")
    """Azure Cache for Redis's size: C1 (Standard, 1 GiB, replicated), the smallest that scales;
    user-tunable. ``P1``.. is Premium."""
    servicebus_sku: Literal["Standard", "Premium"] = "Standard"
    """The Service Bus namespace's tier (topics need Standard or above)."""
    wait_delay: float = Field(10.0, gt=0, le=300)
    """Seconds between two checks of a long-running operation (when Azure does not say)."""
    wait_timeout: float = Field(3600.0, gt=0)
    """Seconds to wait for one operation before giving up (the next apply adopts the resource when it is
    ready)."""
    max_attempts: int = Field(5, ge=1, le=20)
    """Attempts of each API call on throttling and 5xx answers, before skyrig's own retries."""

    def endpoint(self, name: str) -> str | None:
        """The endpoint configured for ``name`` (``arm``, ``servicebus``), if any."""
        return self.endpoints.get(name)
