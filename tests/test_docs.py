"""The docs stay true to the code: every declaration option is documented, every command is mentioned."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from skyrig import declarations
from skyrig.cli import COMMANDS
from skyrig.kinds import FEATURES, KINDS, TRAITS

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(
    "cls", [*(kind.declaration for kind in KINDS.values()), declarations.Keyspace], ids=lambda c: c.__name__
)
def test_every_parameter_of_every_declaration_is_in_the_reference(cls):
    reference = (DOCS / "declarations.md").read_text()
    function = declarations.CacheCluster.keyspace if cls is declarations.Keyspace else cls.__init__
    for name in list(inspect.signature(function).parameters)[1:]:
        assert f"`{name}`" in reference, f"{cls.__name__}({name}=...) is not in docs/declarations.md"


def test_every_eviction_policy_and_feature_is_documented():
    from typing import get_args

    from skyrig.declarations.cache import EvictionPolicy

    reference = (DOCS / "declarations.md").read_text()
    assert all(f'`"{policy}"`' in reference for policy in get_args(EvictionPolicy))
    assert all(f"`{feature}`" in (DOCS / "providers.md").read_text() for feature in FEATURES)
    assert all(f"`{trait}`" in (DOCS / "providers.md").read_text() for trait in TRAITS)


def test_every_command_is_in_getting_started():
    text = (DOCS / "getting-started.md").read_text()
    assert all(f"skyrig {command}" in text for command in COMMANDS)


def test_the_capability_matrix_agrees_with_every_manifest():
    """docs/providers.md's matrix comes from runs of the suite (scripts/provider-matrix); whatever a
    provider's manifest claims now must show there as passed, and nothing else as claimed."""
    from skyrig.kinds import KIND_FAMILIES
    from skyrig.plugins.registry import load_provider

    text = (DOCS / "providers.md").read_text()
    table = text.split("<!-- matrix:start -->")[1].split("<!-- matrix:end -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    providers = [cell.strip(" `") for cell in rows[0].strip("|").split("|")[1:]]
    assert {"memory", "local", "aws", "template"} <= set(providers), "every first-party provider is there"
    for row in rows[2:]:
        name, *cells = (cell.strip() for cell in row.strip("|").split("|"))
        capability = name.strip("`")
        for provider, cell in zip(providers, cells, strict=True):
            manifest = load_provider(provider).manifest
            if capability in FEATURES:
                claimed = capability in manifest.features
            elif capability in ("lifecycle", "robustness"):
                claimed = True
            else:
                claimed = any(KIND_FAMILIES[kind] == capability for kind in manifest.kinds)
            if claimed:
                assert cell.startswith(("✓", "?")), (
                    f"{provider} claims {capability}, the matrix says {cell!r}"
                )
            else:
                assert cell.startswith("·") or not cell, f"{provider} does not claim {capability}: {cell!r}"


def test_the_provider_sdk_reference_names_every_public_name_once():
    """docs/provider-sdk.md lists every name of skyrig.provider, one row each, and nothing else."""
    import re

    import skyrig.provider

    text = (DOCS / "provider-sdk.md").read_text()
    listed = re.findall(r"^\| `([A-Za-z_]+)` \|", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(skyrig.provider.__all__), (
        f"missing: {sorted(set(skyrig.provider.__all__) - set(listed))}; "
        f"not in the SDK: {sorted(set(listed) - set(skyrig.provider.__all__))}"
    )
    assert len(listed) == len(set(listed)), "a name is listed twice"
    for name in skyrig.provider.__all__:
        getattr(skyrig.provider, name)  # every name resolves, lazy ones too
