"""Profiles: how the suite reaches one provider's backend (an emulator it starts, or a real cloud).

A provider ships its profile in its own package and registers it in the entry point group
``skyrig.conformance`` under its provider name; the value names a function that returns a context
manager yielding a :class:`Profile` (starting an emulator on 127.0.0.1 on entry, stopping it on exit)::

    [project.entry-points."skyrig.conformance"]
    aws = "skyrig_aws.conformance:profile"

Both ``skyrig conformance aws`` and the provider's own ``tests/conftest.py`` (``skyrig_profile =
provider_profile("aws")``) use it, so the suite runs the same way everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from skyrig.plugins.registry import PROFILES, NotInstalled, named

LIVE = "SKYRIG_CONFORMANCE_LIVE"


class StandIn(Protocol):
    """A real server standing in where an emulator has nothing behind an endpoint (moto's RDS and
    ElastiCache endpoints, say): the suite wires the runtime config to it, so that the provider's own
    data plane code is exercised against a real PostgreSQL or Redis."""

    def wire(self, kind: str, resource: Any, entry: dict[str, Any], root: Path, tag: str) -> dict[str, Any]:
        """The runtime config ``entry`` of model ``resource`` (of ``kind``), pointing at this server
        instead, after preparing what the provider's deploy would have (a database with its
        migrations applied); ``root`` is the app's folder, ``tag`` tells environments apart."""


@dataclass(frozen=True)
class Profile:
    """What the suite needs to provision with one provider, and to look at its backend."""

    provider: str
    """The provider under test: its entry point name in ``skyrig.providers``."""
    environment_type: str = "development"
    """The type of the environments the suite provisions (one the provider serves)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The provider's settings, ``[env.NAME.PROVIDER]`` (an emulator's endpoint, a region)."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """Process environment for the whole run (credentials an SDK wants, even fake ones)."""
    families: Mapping[str, str] = field(default_factory=dict)
    """Families handed to other providers in the suite's environments (``{"compute": "memory"}``) for
    a provider that does not provision every family itself."""
    beside: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Settings of the providers ``families`` names, by provider (``{"aws": {"endpoint_url": ...}}``,
    written as ``[env.NAME.aws]``): for a provider that runs beside a cloud provider it needs (EKS's
    services in the aws provider's network)."""
    stand_ins: Mapping[str, StandIn] = field(default_factory=dict)
    """Kind -> a real server its data plane is wired to, where the backend is emulated without one."""
    ignore: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Node type -> properties not compared when reading back what was created (ones the backend
    fills in or normalises); say why next to it in the profile."""
    limits: Mapping[str, str] = field(default_factory=dict)
    """Checks the backend cannot show, by name (:data:`skyrig_conformance.requirements.LIMITABLE`), with
    why: an emulator that does not verify presigned URLs, say. They are skipped with that reason, and the
    capability matrix shows it. A family's name (``pubsub``) says its backend could not start here (an
    emulator not installed): the app declares none of its kinds, and their tests are skipped."""
    live: bool = False
    """A real cloud account: the suite runs only with ``SKYRIG_CONFORMANCE_LIVE=1``."""


ProfileFactory = Callable[[], AbstractContextManager[Profile]]


def load_factory(provider: str) -> ProfileFactory:
    """The profile factory that provider ``provider`` registered, or a clear failure."""
    try:
        return named(PROFILES, provider)
    except NotInstalled:
        pass
    raise LookupError(
        f"provider {provider!r} registers no conformance profile: add an entry point "
        f'[project.entry-points."{PROFILES}"] {provider} = "module:function" to its distribution'
    )


@contextmanager
def entered(factory: ProfileFactory) -> Iterator[Profile]:
    """Enter ``factory``'s profile with its process environment set, skipping a live one not opted in."""
    with factory() as profile:
        if profile.live and os.environ.get(LIVE) != "1":
            pytest.skip(f"provider {profile.provider!r} runs against a real cloud: set {LIVE}=1 to run it")
        with environment(profile.environ):
            yield profile


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment with ``values`` set for the block, as it was again after it."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def provider_profile(provider: str) -> Any:
    """A session fixture named ``skyrig_profile`` for ``provider``'s registered profile; assign it in a
    provider's ``tests/conftest.py``: ``skyrig_profile = provider_profile("aws")``."""

    @pytest.fixture(scope="session", name="skyrig_profile")
    def skyrig_profile() -> Iterator[Profile]:
        with entered(load_factory(provider)) as profile:
            yield profile

    return skyrig_profile
