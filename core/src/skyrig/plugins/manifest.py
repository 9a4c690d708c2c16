"""What a provider declares it can do: its capability manifest."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from skyrig.kinds import FAMILIES, FEATURE_KINDS, FEATURES, KIND_FAMILIES, TRAITS

if TYPE_CHECKING:
    from pydantic import BaseModel

EnvironmentType = Literal["local", "preview", "development", "production"]
ENVIRONMENT_TYPES: tuple[EnvironmentType, ...] = ("local", "preview", "development", "production")


class ManifestError(ValueError):
    """A provider's manifest names a kind, feature or environment type skyrig does not know."""


@dataclass(frozen=True)
class Manifest:
    """A provider's capability manifest.

    The planner refuses a model that uses a kind the provider does not list here, before any API call;
    the conformance suite tests every claimed feature and checks that unclaimed ones are refused.
    """

    name: str
    """The provider's name: its entry point in ``skyrig.providers`` and its settings table in config."""
    kinds: frozenset[str]
    """The resource kinds it provisions (:data:`skyrig.kinds.KINDS`)."""
    environment_types: frozenset[str]
    """The environment types it serves (:data:`ENVIRONMENT_TYPES`)."""
    features: frozenset[str] = frozenset()
    """The optional features it supports (:data:`skyrig.kinds.FEATURES`), each of a kind it provisions."""
    settings: str | None = None
    """Where its pydantic settings model is (``"package.module:Class"``), imported only when needed;
    the model validates ``[env.NAME.PROVIDER]`` in ``skyrig.toml``."""
    description: str = ""
    together: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Family -> the families this provider must serve too wherever it serves that one, because the
    nodes it expands for it depend on theirs (AWS's databases run their migrations as tasks of its
    compute: ``{"sql": frozenset({"compute"})}``). An environment that hands one to it and not the
    others is refused by ``skyrig check``, naming the override."""
    traits: frozenset[str] = frozenset()
    """What is true of the environments it serves that another provider there may need
    (:data:`skyrig.kinds.TRAITS`), each of a family it serves: ``"compute.internet"`` when its services
    reach hosts on the public internet (AWS: through its NAT gateways)."""
    needs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Family -> the traits it needs of the environment's other families wherever it serves that one
    (Neon's databases are reached at public endpoints: ``{"sql": frozenset({"compute.internet"})}``). An
    environment whose provider of a trait's family does not declare it is refused by ``skyrig check``,
    naming the override and the providers that do."""
    families: frozenset[str] = field(init=False)
    """The families of its kinds: what an environment can hand to it (``sql = "neon"``)."""

    def __post_init__(self) -> None:
        wanted = {f for families in self.together.values() for f in families}
        needed = {t for traits in self.needs.values() for t in traits}
        for label, values, known in (
            ("kind", self.kinds, KIND_FAMILIES),
            ("environment type", self.environment_types, ENVIRONMENT_TYPES),
            ("feature", self.features, FEATURES),
            ("family", set(self.together) | wanted | set(self.needs), FAMILIES),
            ("trait", self.traits | needed, TRAITS),
        ):
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise ManifestError(
                    f"provider {self.name!r} declares unknown {label}s {unknown}; known: {sorted(known)}"
                )
        stray = sorted(f for f in self.features if FEATURE_KINDS[f] not in self.kinds)
        if stray:
            raise ManifestError(
                f"provider {self.name!r} claims {', '.join(stray)} without provisioning "
                f"{', '.join(sorted({FEATURE_KINDS[f] for f in stray}))}"
            )
        object.__setattr__(self, "families", frozenset(KIND_FAMILIES[k] for k in self.kinds))
        outside = sorted((set(self.together) | wanted) - self.families)
        if outside:
            raise ManifestError(
                f"provider {self.name!r} says it needs families it does not serve: {', '.join(outside)}"
            )
        if set(self.needs) - self.families:
            raise ManifestError(
                f"provider {self.name!r} needs traits for families it does not serve: "
                f"{', '.join(sorted(set(self.needs) - self.families))}"
            )
        foreign = sorted(t for t in self.traits if trait_family(t) not in self.families)
        if foreign:
            raise ManifestError(
                f"provider {self.name!r} declares traits of families it does not serve: {', '.join(foreign)}"
            )

    def settings_model(self) -> type[BaseModel] | None:
        """The settings model, imported now."""
        if self.settings is None:
            return None
        module, _, name = self.settings.partition(":")
        return getattr(importlib.import_module(module), name)


def trait_family(trait: str) -> str:
    """The family a trait is about: the provider of that family in an environment declares it."""
    return trait.partition(".")[0]
