"""The docs stay true to the code: every declaration option is documented, every command is mentioned."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from skyrig import declarations
from skyrig.cli import COMMANDS
from skyrig.plugins import FEATURES

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(
    "cls", [*declarations.KINDS.values(), declarations.Keyspace], ids=lambda c: c.__name__
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


def test_every_command_is_in_getting_started():
    text = (DOCS / "getting-started.md").read_text()
    assert all(f"skyrig {command}" in text for command in COMMANDS)
