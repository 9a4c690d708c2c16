"""Microsoft.Resources: resource groups (synchronous PUT and PATCH; DELETE is long-running and takes
everything in the group with it)."""

from __future__ import annotations

from skyrig_azure.fake.registry import ResourceType, register

_MODELS = "azure.mgmt.resource.resources.models"

register(
    ResourceType(
        type="Microsoft.Resources/resourceGroups",
        api_versions=("2021-04-01", "2022-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01"),
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
