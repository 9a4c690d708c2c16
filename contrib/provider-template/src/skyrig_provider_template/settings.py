"""Settings of the template provider: ``[env.NAME.template]`` in ``skyrig.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TemplateSettings(BaseModel):
    """Where the vault is. A real provider has its endpoint, region, credentials' source here."""

    model_config = ConfigDict(extra="forbid")

    vault: str = ".skyrig/vault"
    """The vault's folder, relative to the app root."""
