"""What a provider needs of an environment's configuration, reported by ``skyrig check`` at the field of
``skyrig.toml`` with what to do: a provider that runs no services as an environment's ``provider``, a trait
one family's provider needs of another's (``Manifest.needs`` / ``traits``), and the provider's own rules
(``Provider.check_environment``). The test providers: ``branchy`` (SQL only, needs ``compute.internet``,
its ``parent`` setting must name an environment) and ``offline`` (services without the internet)."""

from __future__ import annotations

import re

import pytest

from skyrig.provider import Manifest, ManifestError

APP = {
    "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
    "svc/api.py": 'from skyrig import SQLDatabase\napp = None\ndb = SQLDatabase("main")\n',
}
OTHERS = ("compute", "pubsub", "cache", "cron", "objects", "secrets")


def _check(write_app, run, config: str):
    result = run("check", str(write_app(APP, config='app = "testapp"\n' + config)))
    assert "Traceback" not in result.err
    return result


def test_a_provider_that_runs_no_services_is_refused_as_the_environments_provider(
    write_app, run, test_plugins
):
    result = _check(write_app, run, '[env.dev]\ntype = "development"\nprovider = "branchy"\n')

    assert result.code == 1
    message = " ".join(result.err.split())
    assert message.startswith(
        "error: skyrig.toml:4: env.dev.provider: provider 'branchy' provisions only sql"
    )
    assert "an environment's provider provisions every family not set apart, its services included" in message
    found = re.search(r"set provider to one that runs services \(([^)]*)\) and sql = 'branchy'", message)
    assert found and "memory" in found[1].split(", "), message


def test_it_may_be_the_provider_where_compute_is_set_apart(write_app, run, test_plugins):
    """The conformance suite's shape: the provider under test names the environment, the rest set apart."""
    others = "".join(f'{family} = "memory"\n' for family in OTHERS)
    result = _check(write_app, run, f'[env.dev]\ntype = "development"\nprovider = "branchy"\n{others}')
    assert result.code == 0, result.err


def test_a_trait_the_compute_provider_lacks_is_refused_at_the_override(write_app, run, test_plugins):
    result = _check(
        write_app, run, '[env.dev]\ntype = "development"\nprovider = "offline"\nsql = "branchy"\n'
    )

    assert result.code == 1
    message = " ".join(result.err.split())
    assert "skyrig.toml:5: env.dev.sql: provider 'branchy' serves sql only where the services" in message
    assert "open connections to hosts on the public internet (compute.internet)" in message
    assert "this environment's compute provider 'offline' does not say so" in message
    found = re.search(r"set compute in \[env\.dev\] to a provider that does \(([^)]*)\)", message)
    assert found and "memory" in found[1].split(", ") and "offline" not in found[1], message


def test_beside_services_that_reach_the_internet_it_is_served(write_app, run, test_plugins):
    result = _check(write_app, run, '[env.dev]\ntype = "development"\nprovider = "memory"\nsql = "branchy"\n')
    assert result.code == 0, result.err


def test_a_providers_own_rule_is_reported_at_its_setting(write_app, run, test_plugins):
    config = (
        '[env.dev]\ntype = "development"\nprovider = "memory"\nsql = "branchy"\n\n'
        '[env.dev.branchy]\nparent = "nope"\n\n'
        '[env.other]\ntype = "development"\nprovider = "memory"\nsql = "branchy"\n'
        '[env.other.branchy]\nparent = "dev"\n'
    )
    result = _check(write_app, run, config)

    assert result.code == 1
    assert result.err.splitlines() == [
        "error: skyrig.toml:8: env.dev.branchy.parent: names no environment 'nope': name one that exists"
    ]
    root = write_app(APP, config='app = "testapp"\n' + config)
    assert run("plan", "--env", "other", "-C", str(root)).code == 1, "every command reads the configuration"


def test_a_check_that_fails_is_the_providers_fault_said_plainly(write_app, run, test_plugins):
    config = '[env.dev]\ntype = "development"\nprovider = "memory"\nsql = "branchy"\n[env.dev.branchy]\nparent = "boom"\n'
    result = _check(write_app, run, config)

    assert result.code == 1
    assert (
        "skyrig.toml:2: env.dev: provider 'branchy' failed to check this environment: RuntimeError: the check "
        "itself failed"
    ) in result.err


def test_a_manifest_declares_only_known_traits_of_its_own_families():
    kinds, types = frozenset({"sql_database"}), frozenset({"local"})
    with pytest.raises(ManifestError, match=r"unknown traits \['compute.telepathy'\]"):
        Manifest("x", kinds=kinds, environment_types=types, needs={"sql": frozenset({"compute.telepathy"})})
    with pytest.raises(
        ManifestError, match=r"declares traits of families it does not serve: compute\.internet"
    ):
        Manifest("x", kinds=kinds, environment_types=types, traits=frozenset({"compute.internet"}))
    with pytest.raises(ManifestError, match="needs traits for families it does not serve: cache"):
        Manifest("x", kinds=kinds, environment_types=types, needs={"cache": frozenset({"compute.internet"})})


def test_providers_json_shows_traits_and_needs(run, test_plugins):
    import json

    rows = {p["name"]: p for p in json.loads(run("providers", "--json").out)["providers"]}
    assert rows["memory"]["traits"] == ["compute.internet"] and rows["memory"]["needs"] == {}
    assert rows["branchy"]["needs"] == {"sql": ["compute.internet"]} and rows["branchy"]["traits"] == []
