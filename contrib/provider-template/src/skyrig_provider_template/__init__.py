"""A minimal skyrig provider: it keeps an app's secrets in a vault.

The "vault" here is a folder of JSON files (:mod:`skyrig_provider_template.vault`), standing in for the
API of a real secret service; replace that module with calls to yours. Everything else is what every
provider has: a manifest, a settings model, expansion of the model into nodes, one node type with
read / find / create / update / delete, a data plane, and the conformance wiring. This module stays
light: ``skyrig providers`` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyrig.provider import Manifest, Provider

if TYPE_CHECKING:
    from skyrig.provider import Context, Environment


class TemplateProvider(Provider):
    """Secrets in a vault, for every environment type."""

    manifest = Manifest(
        name="template",
        kinds=frozenset({"secret"}),
        environment_types=frozenset({"local", "preview", "development", "production"}),
        settings="skyrig_provider_template.settings:TemplateSettings",
        description="template provider: secrets in a vault (copy it to write your own)",
    )

    modules = ("skyrig_provider_template.secrets",)
    data_planes = {"secret": "skyrig_provider_template.runtime:SecretClient"}

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_provider_template.vault import Vault

        return Vault(root / settings.vault)

    def set_secret(self, context: Context, name: str, value: str) -> None:
        context.client.put_value(context.app, context.environment.name, name, value)

    def secret_is_set(self, context: Context, name: str) -> bool:
        return context.client.value(context.app, context.environment.name, name) is not None

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        from skyrig_provider_template.secrets import SECRET

        return [
            (SECRET.type, key) for key in context.client.containers(context.app, context.environment.name)
        ]


provider = TemplateProvider()
