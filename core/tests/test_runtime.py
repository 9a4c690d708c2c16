"""The runtime binding: a declaration finds its entry by name and checks the declared operation."""

from __future__ import annotations

import json

import pytest

from skyrig import Secret
from skyrig.runtime import binding


@pytest.fixture
def config(monkeypatch):
    def use(resources: dict) -> None:
        document = {"app": "shop", "environment": "dev", "service": "payments", "resources": resources}
        monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", json.dumps(document))
        binding.reset()

    yield use
    binding.reset()


def test_an_undeclared_operation_is_refused_before_any_provider_is_loaded(config):
    config({"secret/api-key": {"provider": "not-installed", "operations": []}})
    with pytest.raises(
        binding.BindingError, match="did not declare the operation 'read' on 'secret api-key'"
    ):
        Secret("api-key").value  # noqa: B018


def test_an_unknown_resource_is_named(config):
    config({})
    with pytest.raises(binding.BindingError, match="'secret api-key' is not available to service 'payments'"):
        Secret("api-key").value  # noqa: B018
