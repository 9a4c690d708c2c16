"""Finding installed providers (entry points) and loading them by name with stevedore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from skyrig.errors import UserError
from skyrig.plugins import Manifest, Provider

PROVIDERS = "skyrig.providers"
PLUGINS = "skyrig.plugins"


class ProviderNotInstalled(UserError):
    """Configuration names a provider that no installed distribution registers."""

    def __init__(self, name: str, where: str | None = None) -> None:
        prefix = f"{where}: " if where else ""
        installed = ", ".join(p.name for p in installed_providers()) or "none"
        super().__init__(
            f"{prefix}provider {name!r} is not installed: pip install skyrig-{name}",
            f"installed providers: {installed}",
        )
        self.name = name


class ProviderLoadError(UserError):
    """An installed provider fails to import or publishes an invalid manifest."""


@dataclass(frozen=True)
class InstalledProvider:
    """A provider registered by an installed distribution (known without importing it)."""

    name: str
    target: str
    """The entry point's ``module:attribute``."""
    distribution: str
    version: str


def installed_providers() -> list[InstalledProvider]:
    """Every installed provider, sorted by name. Nothing is imported."""
    found = {}
    for point in entry_points(group=PROVIDERS):
        dist = point.dist
        found.setdefault(
            point.name,
            InstalledProvider(
                name=point.name,
                target=point.value,
                distribution=dist.name if dist else "?",
                version=dist.version if dist else "?",
            ),
        )
    return [found[name] for name in sorted(found)]


@cache
def load_provider(name: str) -> Provider:
    """The provider registered as ``name``, imported now (only this one)."""
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    try:
        manager = DriverManager(namespace=PROVIDERS, name=name, invoke_on_load=False)
    except NoMatches:
        raise ProviderNotInstalled(name) from None
    except Exception as error:  # an import error inside the plugin: the plugin's fault, said plainly
        raise ProviderLoadError(
            f"provider {name!r} failed to load: {type(error).__name__}: {error}",
            f"reinstall it (pip install --force-reinstall skyrig-{name}) or uninstall it",
        ) from None
    provider = manager.driver
    manifest = getattr(provider, "manifest", None)
    if not isinstance(manifest, Manifest):
        raise ProviderLoadError(
            f"provider {name!r} has no capability manifest",
            "its entry point must name an object with a skyrig.plugins.Manifest as .manifest",
        )
    if manifest.name != name:
        raise ProviderLoadError(f"provider registered as {name!r} calls itself {manifest.name!r}")
    return provider


def providers_where(test: Callable[[Manifest], bool]) -> list[str]:
    """Names of the installed providers whose manifests pass ``test`` (those that fail to load do not)."""
    names = []
    for item in installed_providers():
        try:
            manifest = load_provider(item.name).manifest
        except UserError:
            continue
        if test(manifest):
            names.append(item.name)
    return names
