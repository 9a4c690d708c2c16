"""A FAKE Azure Resource Manager (and Key Vault's secrets data plane), for skyrig-azure's tests.

This is not Azure: ARM has no emulator, so this is a strict stand-in that speaks ARM's REST protocol to
Microsoft's own clients (azure-mgmt-*, azure-keyvault-secrets). Every PUT and PATCH body is validated with
the SDK's own model of that resource type (:mod:`skyrig_azure.fake.schema`: unknown members, missing
required ones, read-only ones, JSON types, enum values case-insensitively, stated patterns and bounds);
long-running operations answer ``Azure-AsyncOperation`` (and ``Location``) polling and finish after
``lro_delay``; PUT is idempotent (the same body again: 200, nothing changes), immutable properties are
refused, PATCH merges, DELETE of a missing resource is 204, etags and ``If-Match`` where the type has one.
The provider never imports it.

Start it, point the real clients at it::

    from azure.core.credentials import AccessToken
    from skyrig_azure.fake import FakeAzure

    with FakeAzure(subscription=SUB, tenant=TENANT, lro_delay=0.1) as fake:
        common = dict(base_url=fake.endpoint, connection_verify=fake.ca_bundle,
                      credential_scopes=["https://management.azure.com/.default"])
        resources = ResourceManagementClient(credential, fake.subscription, **common)
        vaults = KeyVaultManagementClient(credential, fake.subscription, **common)
        auth = AuthorizationManagementClient(credential, fake.subscription, **common)
        vault = vaults.vaults.begin_create_or_update(...).result()
        secrets = SecretClient(vault.properties.vault_uri, credential, connection_verify=fake.ca_bundle,
                               verify_challenge_resource=False)

What the clients need: ``base_url=fake.endpoint`` (``https://127.0.0.1:PORT``: azure-core's bearer policy
refuses plain http), ``connection_verify=fake.ca_bundle`` (the PEM of the fake's own CA), any
``TokenCredential`` (every ``Bearer`` token is accepted; none is 401 ``AuthenticationFailed``), and
``credential_scopes`` (the mgmt clients derive their default scope from ``base_url``, which would name the
fake's address). ``SecretClient`` needs ``verify_challenge_resource=False``: the challenge names
``https://vault.azure.net`` while the vault is at 127.0.0.1. Each vault has its own port (its ``vaultUri``),
because the SDK refuses a path prefix in a secret's id.

Interfaces for tests (kept stable):

- ``FakeAzure(subscription=..., tenant=..., lro_delay=0.1, page_size=100)``, a context manager;
  ``.endpoint``, ``.ca_bundle``, ``.subscription``, ``.tenant``.
- ``.calls``: a :class:`CallLog` of :class:`Call` (``type``, ``method``, ``status``, ``mutating``,
  ``poll``, ``path``, ``action``); ``calls.count("Microsoft.KeyVault/vaults", "PUT")``,
  ``calls.mutating("Microsoft.Network")``; polls of operations are counted apart (``poll=True``).
- ``.reset()``: forgets everything (resources, operations, secrets, calls, injections).
- ``.inject(status, type=..., method=..., path=..., code=..., times=1, retry_after=...)``: the next
  matching requests fail (429 with ``Retry-After``, 500, 409, ...).
- ``.fail_operations(type=..., kind="put"|"delete", code=..., times=1)``: the next matching long-running
  operations are accepted, then end ``Failed`` (the SDK's poller raises); the same PUT again retries.
- ``.resource(id)``: a stored resource as GET answers it (or None); ``.resources(type)``: ids;
  ``.edit(id, patch)``: a change made in the portal (merge patch; etag moves); ``.settle(everything=True)``
  finishes pending operations now; ``.vault(name)``: a vault's secrets (``.value(name)``).
- ``.put_resource(id, resource)``: stores a resource as it is (no validation): one made outside the
  provider. The vault data plane's calls are logged with type ``KeyVault/secrets``.

How it differs from Azure, on purpose: operations take ``lro_delay`` and tell the pollers when to come back
with ``x-ms-retry-after-ms`` (azure-core honours it; the SDKs read ``Retry-After`` as whole seconds, and
without one their pollers wait 30 s); a body member the SDK's model marks read-only is refused, where
Azure mostly ignores it, so that a provider sending one is caught; a soft-deleted vault keeps no secrets.

Adding a resource type: see :mod:`skyrig_azure.fake.resources` and :class:`ResourceType`:
``register(ResourceType(type="Microsoft.Cache/redis", api_versions=("2024-11-01",),
put_model="azure.mgmt.redis.models:RedisCreateParameters", patch_model="azure.mgmt.redis.models:
RedisUpdateParameters", async_put=True, async_delete=True, immutable=("properties.sku.family",),
on_write=hook))`` in ``fake/resources/<namespace>.py``, imported by ``fake/resources/__init__.py``. The hook
``on_write(ctx, resource)`` fills defaults and read-only outputs (ids of children, host names, keys) and
raises :class:`ArmError` to refuse; ``actions={"listKeys": fn}`` serves POST actions; ``list_filter``
answers lists with ``$filter``; ``inline_children`` keeps a list member in step with a child type.
"""

from __future__ import annotations

from skyrig_azure.fake.calls import Call, CallLog
from skyrig_azure.fake.core import FakeAzure
from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

__all__ = ["ArmError", "Call", "CallLog", "Context", "FakeAzure", "ResourceType", "register"]
