"""The image an environment's services run: what was deployed stays deployed.

A compute provider *runs images* when its settings model has an ``image`` field (the AWS provider's
``[env.NAME.aws] image``). The core sets that field, before anything expands or connects, to the image of
this command, and the provider uses it as it always did (every service's main node carries it as its
``image`` property, ``None`` for the provider's default). So the image is part of what an apply records:
each service's record in state holds the image it runs, and the next plan starts from it.

The image of a command, first found:

1. ``--image`` (``skyrig plan`` and ``skyrig apply``), or the image a saved plan was made with
   (``skyrig apply FILE``);
2. the provider's ``image`` setting, when configuration sets one (``skyrig.toml`` or
   ``SKYRIG_ENV__<ENV>__<PROVIDER>__IMAGE``): configuration pins the image, as it pins any setting;
3. the image applied last: the newest ``image`` among the services' records in state, so that a plan or
   apply without ``--image`` keeps what the services run (and finishes a deploy that stopped halfway);
4. none: the provider's default (AWS: the environment's ECR repository, tag ``latest``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skyrig.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from skyrig.config import Environment
    from skyrig.engine.session import Session
    from skyrig.state import NodeRecord

SOURCES = {
    "--image": "--image",
    "plan": "as the saved plan was made",
    "setting": "the {provider} setting 'image'",
    "applied": "as last applied",
    "default": "the {provider} provider's default",
}
"""Where the image of a command comes from, as a plan says it."""


@dataclass(frozen=True)
class Image:
    """The image the services of one environment run after this command, and where it comes from."""

    provider: str
    """The compute provider, whose ``image`` setting carries it."""
    ref: str | None
    """``REPO:TAG`` or a digest; None for the provider's default."""
    source: str
    """``--image``, ``plan``, ``setting``, ``applied`` or ``default`` (the keys of :data:`SOURCES`)."""
    setting: str | None = None
    """The ``image`` setting as configured (before this command set it)."""
    applied: dict[str, str | None] = field(default_factory=dict)
    """Service -> the image its record in state holds (what it runs now, as far as state knows)."""

    def describe(self) -> str:
        """``example/app:1 (as last applied)``."""
        where = SOURCES[self.source].format(provider=self.provider)
        if self.source in ("--image", "plan") and self.setting and self.setting != self.ref:
            where += (
                f"; the {self.provider} setting 'image' pins {self.setting}: a plan without --image goes "
                "back to it"
            )
        return f"{self.ref} ({where})" if self.ref else where


def provider_running_images(environment: Environment) -> str | None:
    """The environment's compute provider if it runs images (its settings have an ``image`` field)."""
    provider = environment.providers.get("compute")
    settings = environment.settings.get(provider) if provider else None
    if settings is None or "image" not in getattr(type(settings), "model_fields", {}):
        return None
    return provider


def applied(records: Mapping[str, NodeRecord], provider: str) -> dict[str, str | None]:
    """Service -> the image its main node's record holds, for the services ``provider`` runs."""
    return {
        record.resource.partition("/")[2]: record.desired.get("image")
        for record in sorted(records.values(), key=lambda r: r.id)
        if record.provider == provider
        and (record.resource or "").startswith("service/")
        and "image" in record.desired
    }


def newest(records: Mapping[str, NodeRecord], provider: str) -> str | None:
    """The image of the service record written last: what the last apply deployed (an apply that stopped
    halfway recorded it for some services only; the next one carries it to the others)."""
    found = [
        record
        for record in records.values()
        if record.provider == provider
        and (record.resource or "").startswith("service/")
        and record.desired.get("image")
    ]
    if not found:
        return None
    return max(found, key=lambda r: (r.updated_at, r.id)).desired["image"]


def settle(session: Session, asked: str | None = None, source: str = "--image") -> Image | None:
    """The image of ``session``'s command (``asked``: from ``--image`` or a saved plan), set as its compute
    provider's ``image`` setting; None when the compute provider runs no images. Call it before the graph
    is built or a provider connects (:attr:`Session.image` does, on first use)."""
    environment = session.environment
    provider = provider_running_images(environment)
    if provider is None:
        if asked:
            compute = environment.providers.get("compute")
            raise UserError(
                f"--image: provider {compute!r} (compute of environment {session.name!r}) runs no images",
                "leave --image out for this environment",
            )
        return None
    settings = environment.settings[provider]
    configured = settings.image
    records = session.store.nodes(session.name)
    last = newest(records, provider)
    if asked:
        ref, source = asked, source
    elif configured:
        ref, source = configured, "setting"
    elif last:
        ref, source = last, "applied"
    else:
        ref, source = None, "default"
    if ref != configured:
        environment.settings[provider] = settings.model_copy(update={"image": ref})
    return Image(provider, ref, source, configured, applied(records, provider))


def use(session: Session, ref: str, source: str = "--image") -> Image | None:
    """Run ``ref`` in ``session``'s command (``--image``, or a saved plan's image): before anything has
    read the compute provider's settings."""
    if "graph" in session.__dict__ or session._contexts:
        raise RuntimeError("the image is settled before the graph is built or a provider connects")
    if "image" in session.__dict__:  # settled already: undo what it set
        settled: Image | None = session.__dict__.pop("image")
        if settled is not None:
            current = session.environment.settings[settled.provider]
            session.environment.settings[settled.provider] = current.model_copy(
                update={"image": settled.setting}
            )
    image = settle(session, ref, source)
    session.image = image
    return image


def note(image: Image | None) -> list[dict[str, Any]]:
    """The plan annotation that says which image the services run (none when they run no images)."""
    if image is None:
        return []
    return [{"label": "image", "value": image.describe(), "node": None, "source": "skyrig"}]
