"""The shop example (three services, every kind of resource) on GCP, against the emulators and the FAKE:
it applies, re-plans empty, applies again without a mutating call, and destroy leaves only what holds
data (and nothing with ``--include-data``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from skyrig_gcp import api

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"


@pytest.fixture
def shop(gcp_app: Any) -> Any:
    """The shop example's code in an app folder (its own ``skyrig.toml`` replaced)."""
    for entry in SHOP.iterdir():
        if entry.is_dir() and entry.name not in (".skyrig", "__pycache__"):
            shutil.copytree(entry, gcp_app.root / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
    gcp_app.write({})
    return gcp_app


def _left(fake: Any) -> dict[str, list[str]]:
    """What the FAKE still holds of the app's kinds: Cloud Run services and jobs, Cloud SQL instances,
    Memorystore instances, secrets, Scheduler jobs."""
    wanted = {
        "run": "/services/",
        "sqladmin": "/instances/",
        "redis": "/instances/",
        "secretmanager": "/secrets/",
        "cloudscheduler": "/jobs/",
    }
    return {
        api: [name for name in fake.resources(api) if part in name and "/versions/" not in name]
        for api, part in wanted.items()
    }


def test_the_shop_applies_replans_empty_and_a_second_apply_changes_nothing(shop: Any, fake: Any) -> None:
    shop.apply()
    assert shop.plan() == [], "a plan right after an apply changes nothing"
    left = _left(fake)
    assert all(left[api] for api in ("run", "sqladmin", "redis", "secretmanager", "cloudscheduler")), left
    fake.calls.clear()
    before = api.mutating_calls().copy()
    shop.apply()
    assert fake.calls.mutating() == [], "a second apply makes no mutating call to the FAKE"
    assert api.mutating_calls() == before, "nor to the emulators"


def test_destroy_with_its_data_leaves_nothing(shop: Any, fake: Any) -> None:
    shop.apply()
    shop.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert all(not names for names in _left(fake).values()), _left(fake)
    assert shop.plan() and all(change["action"] == "create" for change in shop.plan())
