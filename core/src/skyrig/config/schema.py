"""The shape of ``skyrig.toml`` (before provider settings, which each provider's model validates)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from skyrig.declarations.types import Name
from skyrig.plugins.manifest import EnvironmentType

DEFAULT_STATE = "sqlite:///.skyrig/state.db"

ProviderName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
EnvironmentName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9:_-]*$", max_length=63)]


class EnvironmentConfig(BaseModel):
    """One environment: ``[env.NAME]``. Tables named after a provider hold that provider's settings."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, Any]] = Field(init=False)  # provider settings tables

    type: EnvironmentType
    """``local``, ``preview``, ``development`` or ``production``: what the environment is optimised for."""
    provider: ProviderName
    """The provider of every resource kind not overridden below."""
    compute: ProviderName | None = None
    """Another provider for services (``"eks"``, ``"gke"``)."""
    sql: ProviderName | None = None
    """Another provider for SQL databases (``"neon"``)."""
    pubsub: ProviderName | None = None
    """Another provider for topics and subscriptions."""
    cache: ProviderName | None = None
    """Another provider for cache clusters."""
    cron: ProviderName | None = None
    """Another provider for cron jobs."""
    objects: ProviderName | None = None
    """Another provider for buckets."""
    secrets: ProviderName | None = None
    """Another provider for secrets."""
    state: str | None = None
    """Where this environment's state is kept, as a URL, if not where the app's ``state`` says."""

    def provider_tables(self) -> dict[str, dict[str, Any]]:
        """The provider settings tables, by provider name."""
        return dict(self.model_extra or {})


class PreviewConfig(BaseModel):
    """``[preview]``: how ``pr:N`` environments (one per pull request) are made."""

    model_config = ConfigDict(extra="forbid")

    template: EnvironmentName | None = None
    """The environment each preview copies (its providers and their settings; the preview's name is
    ``pr:N`` and its type ``preview``). Default: the only environment of type ``preview``."""
    seed_from: EnvironmentName | None = None
    """The environment whose SQL databases seed a new preview when ``skyrig preview open`` is given no
    ``--seed-from``: rows copied, or branched where the SQL provider branches (Neon's ``branch_from``).
    Unset: previews start with their migrations only."""


class ProjectConfig(BaseSettings):
    """``skyrig.toml``; any field can be overridden by ``SKYRIG_`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="SKYRIG_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    app: Name
    """The app's name: part of every resource's cloud name, so keep it short and stable."""
    state: str = DEFAULT_STATE
    """Where state is kept, as a URL, for every environment without a ``state`` of its own. The default
    is a SQLite file under ``.skyrig/`` in the app."""
    env: dict[EnvironmentName, EnvironmentConfig] = {}
    """The environments, by name."""
    preview: PreviewConfig = PreviewConfig()
    """How previews (``pr:N``, one per pull request) are made from a template environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; environment variables override them.
        return (env_settings, init_settings)
