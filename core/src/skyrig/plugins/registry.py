"""Named plugins, found through entry points and loaded with stevedore only when something names them.

One mechanism for every plugin point:

- ``skyrig.providers``: providers, by the name configuration gives (``provider = "aws"``);
- ``skyrig.state``: state stores, by the scheme of the state URL (``s3://...``);
- ``skyrig.conformance``: conformance profiles, by provider name;
- ``skyrig.plugins``: cross-cutting plugins (policies, cost estimates), every installed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from skyrig.errors import UserError
from skyrig.plugins.base import Provider
from skyrig.plugins.capabilities import problems
from skyrig.plugins.manifest import Manifest

PROVIDERS = "skyrig.providers"
PLUGINS = "skyrig.plugins"
STORES = "skyrig.state"
PROFILES = "skyrig.conformance"


class NotInstalled(LookupError):
    """No installed distribution registers the name in the group."""


class ProviderNotInstalled(UserError):
    """Configuration names a provider that no installed distribution registers."""

    def __init__(self, name: str, where: str | None = None) -> None:
        prefix = f"{where}: " if where else ""
        known = ", ".join(p.name for p in installed(PROVIDERS)) or "none"
        super().__init__(
            f"{prefix}provider {name!r} is not installed: pip install skyrig-{name}",
            f"installed providers: {known}",
        )
        self.name = name


class ProviderLoadError(UserError):
    """An installed provider fails to import, or its implementation and manifest disagree."""


@dataclass(frozen=True)
class Installed:
    """A plugin registered by an installed distribution (known without importing it)."""

    name: str
    target: str
    """The entry point's ``module:attribute``."""
    distribution: str
    version: str


def installed(group: str) -> list[Installed]:
    """Every plugin registered in ``group``, sorted by name. Nothing is imported."""
    found: dict[str, Installed] = {}
    for point in entry_points(group=group):
        dist = point.dist
        found.setdefault(
            point.name,
            Installed(point.name, point.value, dist.name if dist else "?", dist.version if dist else "?"),
        )
    return [found[name] for name in sorted(found)]


def named(group: str, name: str) -> Any:
    """The object registered as ``name`` in ``group``, imported now (only this one).

    Raises :class:`NotInstalled` when nothing registers it; an import error inside the plugin
    propagates as it is, for the caller to say whose fault it is.
    """
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    try:
        return DriverManager(
            namespace=group, name=name, invoke_on_load=False, on_missing_entrypoints_callback=None
        ).driver
    except NoMatches:
        raise NotInstalled(f"nothing is registered as {name!r} in {group}") from None


def every(group: str) -> list[tuple[str, Any]]:
    """``(name, object)`` of every plugin registered in ``group``, imported now; one that fails to import
    is a :class:`UserError` naming it."""
    from stevedore import ExtensionManager

    def failed(manager: Any, point: Any, error: Exception) -> None:
        raise UserError(
            f"plugin {point.name!r} ({point.value}) failed to load: {type(error).__name__}: {error}",
            "reinstall or uninstall the distribution that provides it",
        )

    manager = ExtensionManager(namespace=group, invoke_on_load=False, on_load_failure_callback=failed)
    return sorted((extension.name, extension.plugin) for extension in manager)


@cache
def load_provider(name: str) -> Provider:
    """The provider registered as ``name``, imported now (only this one), its manifest and implementation
    checked against each other."""
    try:
        provider = named(PROVIDERS, name)
    except NotInstalled:
        raise ProviderNotInstalled(name) from None
    except Exception as error:  # an import error inside the plugin: the plugin's fault, said plainly
        raise ProviderLoadError(
            f"provider {name!r} failed to load: {type(error).__name__}: {error}",
            f"reinstall it (pip install --force-reinstall skyrig-{name}) or uninstall it",
        ) from None
    manifest = getattr(provider, "manifest", None)
    if not isinstance(manifest, Manifest):
        raise ProviderLoadError(
            f"provider {name!r} has no capability manifest",
            "its entry point must name an object with a skyrig.provider.Manifest as .manifest",
        )
    if manifest.name != name:
        raise ProviderLoadError(f"provider registered as {name!r} calls itself {manifest.name!r}")
    found = problems(provider)
    if found:
        raise ProviderLoadError(
            f"provider {name!r} does not match its manifest: " + "; ".join(found),
            "this is a fault of the provider's distribution: upgrade or report it",
        )
    return provider


def providers_where(test: Callable[[Manifest], bool]) -> list[str]:
    """Names of the installed providers whose manifests pass ``test`` (those that fail to load do not)."""
    names = []
    for item in installed(PROVIDERS):
        try:
            manifest = load_provider(item.name).manifest
        except UserError:
            continue
        if test(manifest):
            names.append(item.name)
    return names
