"""What each test of the suite needs from the provider, in the manner of SQLAlchemy's ``requirements.py``.

A test is marked with the kinds and the optional feature it exercises. It runs when the provider's
manifest claims them, and is skipped otherwise with the reason shown; a test marked :func:`unclaimed`
runs only when the feature is *not* claimed, and checks that it is refused or absent, so a provider can
neither claim what it lacks nor silently half-do what it does not claim. Every test also names its row
in the capability matrix.
"""

from __future__ import annotations

from typing import Any

import pytest

from skyrig.provider import FAMILIES, FEATURES, KIND_FAMILIES, KINDS

AREAS = ("lifecycle", "robustness")
"""Matrix rows for tests that concern every kind."""
ROWS = (*AREAS, *FAMILIES, *FEATURES)
"""The capability matrix's rows, in order: areas, families, optional features."""
LIMITABLE = frozenset(
    {
        "objects.signed_url_tampering",
        "objects.public_url_fetch",
        "objects.versions",
        "sql.data_plane",
        "lifecycle.recreate_after_destroy",
    }
)
"""Checks a profile may declare its backend cannot show (``Profile.limits``), each with its reason. A
profile may also name a family (``pubsub``) whose backend could not start on this machine (an emulator
that is not installed): every test of its kinds and features is skipped with that reason, and the app
declares none of its kinds."""

NOT_CLAIMED = "not claimed"
CLAIMED = "claimed"
LIMIT = "backend limit"


def kinds(*names: str) -> pytest.MarkDecorator:
    """The test exercises resources of these kinds (matrix row: their family)."""
    return pytest.mark.skyrig_requires(kinds=names)


def feature(name: str) -> pytest.MarkDecorator:
    """The test exercises optional feature ``name`` (matrix row: the feature)."""
    assert name in FEATURES, name
    return pytest.mark.skyrig_requires(feature=name)


def unclaimed(name: str) -> pytest.MarkDecorator:
    """The test checks that feature ``name``, when not claimed, is refused or absent."""
    assert name in FEATURES, name
    return pytest.mark.skyrig_requires(unclaimed=name)


def area(name: str) -> pytest.MarkDecorator:
    """The test concerns every kind (``lifecycle``, ``robustness``)."""
    assert name in AREAS, name
    return pytest.mark.skyrig_requires(area=name)


def row_of(marker: Any) -> str:
    """The capability matrix row of a test marked ``marker``."""
    options = marker.kwargs
    if options.get("feature"):
        return options["feature"]
    if options.get("unclaimed"):
        return options["unclaimed"]
    if options.get("kinds"):
        return KIND_FAMILIES[options["kinds"][0]]
    return options.get("area", "lifecycle")


def check(
    marker: Any, provider: str, manifest: Any, families: dict[str, str], limits: dict[str, str] | None = None
) -> str | None:
    """Why a test marked ``marker`` does not apply to ``provider``, or None when it does; ``limits``: the
    profile's, where a family named is one its backend could not start."""
    options = marker.kwargs
    for kind in options.get("kinds", ()):
        if kind not in manifest.kinds or families.get(KIND_FAMILIES[kind], provider) != provider:
            return f"{NOT_CLAIMED}: provider {provider!r} does not provision {kind}"
    wanted = options.get("feature")
    if wanted and wanted not in manifest.features:
        return f"{NOT_CLAIMED}: provider {provider!r} does not claim {wanted}"
    refused = options.get("unclaimed")
    if refused and refused in manifest.features:
        return f"{CLAIMED}: provider {provider!r} claims {refused}, which its own tests check"
    needed = list(options.get("kinds", ()))
    if wanted:
        needed += [name for name, kind in KINDS.items() if wanted in kind.features]
    for kind in needed:
        reason = (limits or {}).get(KIND_FAMILIES[kind])
        if reason:
            return f"{LIMIT}: {reason}"
    return None


def unavailable(limits: Any) -> frozenset[str]:
    """The families a profile's ``limits`` say its backend could not start."""
    return frozenset(name for name in limits if name in FAMILIES)


def limited(profile: Any, name: str) -> None:
    """Skip the rest of a test when the profile says its backend cannot show check ``name``."""
    assert name in LIMITABLE, name
    reason = profile.limits.get(name)
    if reason:
        pytest.skip(f"{LIMIT}: {reason}")
