"""The image the services run (skyrig.engine.images): --image, else a pinned setting, else as applied.

Providers run images when their settings have an ``image`` field; the memory provider has none, so these
tests give a compute provider such settings, and plugins/aws/tests/test_aws.py deploys on moto.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from skyrig.config import Environment
from skyrig.engine import images
from skyrig.errors import UserError
from skyrig.state import NodeRecord


class RunsImages(BaseModel):
    region: str = "here"
    image: str | None = None


class RunsNone(BaseModel):
    region: str = "here"


def _record(service: str, image: str | None, updated_at: float, provider: str = "boxes") -> NodeRecord:
    return NodeRecord(
        f"compute.service/{service}",
        f"{provider}.service",
        provider,
        f"id-{service}",
        {"name": service, "image": image},
        {"name": service, "image": image},
        resource=f"service/{service}",
        updated_at=updated_at,
    )


def _session(settings: BaseModel, *records: NodeRecord):
    environment = Environment("dev", "development", {"compute": "boxes", "sql": "boxes"}, {"boxes": settings})
    store = SimpleNamespace(nodes=lambda env: {r.id: r for r in records})
    return SimpleNamespace(environment=environment, name="dev", store=store, _contexts={})


def test_without_image_the_services_keep_the_newest_image_applied():
    session = _session(RunsImages(), _record("a", "app:1", 10), _record("b", "app:2", 20))
    image = images.settle(session)
    assert (image.ref, image.source) == ("app:2", "applied"), "an apply that stopped halfway is carried on"
    assert image.applied == {"a": "app:1", "b": "app:2"}
    assert session.environment.settings["boxes"].image == "app:2", "expansion sees it as the setting"
    assert image.describe() == "app:2 (as last applied)"


def test_image_beats_the_setting_which_beats_what_was_applied():
    pinned = _session(RunsImages(image="app:pinned"), _record("a", "app:1", 10))
    image = images.settle(pinned)
    assert (image.ref, image.source, image.setting) == ("app:pinned", "setting", "app:pinned")
    assert image.describe() == "app:pinned (the boxes setting 'image')"

    asked = images.use(pinned, "app:3")
    assert (asked.ref, asked.source, asked.setting) == ("app:3", "--image", "app:pinned")
    assert pinned.image is asked and pinned.environment.settings["boxes"].image == "app:3"
    assert asked.describe() == (
        "app:3 (--image; the boxes setting 'image' pins app:pinned: a plan without --image goes back to it)"
    )


def test_nothing_applied_and_nothing_set_is_the_providers_default():
    session = _session(RunsImages(), _record("a", None, 10))
    image = images.settle(session)
    assert (image.ref, image.source) == (None, "default")
    assert image.describe() == "the boxes provider's default"
    assert images.note(image) == [
        {"label": "image", "value": "the boxes provider's default", "node": None, "source": "skyrig"}
    ]


def test_a_compute_provider_that_runs_no_images_refuses_image():
    session = _session(RunsNone(), _record("a", None, 10))
    assert images.settle(session) is None and images.note(None) == []
    with pytest.raises(UserError, match=r"--image: provider 'boxes' .* runs no images"):
        images.use(session, "app:1")
