"""The pytest plugin of the conformance suite (entry point ``pytest11``): fixtures, requirements, and the
capability matrix.

Inert in any pytest run that does not collect the suite. A provider's ``tests/conftest.py`` names its
profile (``skyrig_profile = provider_profile("aws")``), or ``--skyrig-provider NAME`` names one from the
``skyrig.conformance`` entry points; its ``tests/test_conformance.py`` imports the suite's classes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyrig.provider import LocalServers
from skyrig_conformance import matrix
from skyrig_conformance.requirements import row_of

PROVIDER = "skyrig_provider"
ROW = "skyrig_row"
CHECK = "skyrig_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("skyrig-conformance")
    group.addoption("--skyrig-provider", help="run the suite against this installed provider's profile")
    group.addoption("--skyrig-matrix-json", help="write the capability matrix as JSON to this file")
    group.addoption("--skyrig-matrix-md", help="write the capability matrix as Markdown to this file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "skyrig_requires(kinds, feature, unclaimed, area): what a conformance test needs"
    )
    config.pluginmanager.register(MatrixCollector(config), "skyrig-conformance-matrix")


@pytest.fixture(scope="session")
def skyrig_profile(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The profile of the provider under test; a provider's conftest overrides this fixture."""
    from skyrig_conformance.profile import entered, load_factory

    name = request.config.getoption("--skyrig-provider")
    if not name:
        pytest.fail(
            "the conformance suite does not know which provider to test: in the provider's tests/conftest.py "
            "write 'from skyrig_conformance import provider_profile' and 'skyrig_profile = "
            'provider_profile("NAME")\', or run pytest with --skyrig-provider NAME'
        )
    with entered(load_factory(name)) as profile:
        yield profile


@pytest.fixture(scope="module")
def skyrig_manifest(skyrig_profile: Any) -> Any:
    """The manifest of the provider under test. Module-scoped, as everything that depends on the profile:
    one pytest run may test several providers (each folder's conftest names its own), and a
    session-scoped fixture would keep the first one's."""
    from skyrig.plugins.registry import load_provider

    return load_provider(skyrig_profile.provider).manifest


@pytest.fixture(scope="session", autouse=True)
def _skyrig_isolation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Per-user files (the local provider's secrets) in a folder of the run's own; quick retries."""
    from skyrig_conformance.profile import environment

    values = {"XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("config-home"))}
    values["SKYRIG_RETRY_BASE_MS"] = os.environ.get("SKYRIG_RETRY_BASE_MS", "20")
    with environment(values):
        yield


def _deployment(profile: Any, manifest: Any, root: Path) -> Any:
    from skyrig_conformance.deployment import Deployment

    return Deployment(root, profile, manifest)


@pytest.fixture(scope="module")
def deployment(
    skyrig_profile: Any, skyrig_manifest: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The suite's app, applied once for the data plane tests of a provider; destroyed however they end."""
    made = _deployment(skyrig_profile, skyrig_manifest, tmp_path_factory.mktemp("conformance") / "app")
    try:
        made.apply()
        yield made
    finally:
        made.close()
        _tear_down(made)


@pytest.fixture
def fresh(skyrig_profile: Any, skyrig_manifest: Any, tmp_path: Path) -> Iterator[Any]:
    """The suite's app written but not applied, for a test of its own; destroyed however the test ends."""
    made = _deployment(skyrig_profile, skyrig_manifest, tmp_path / "app")
    try:
        yield made
    finally:
        made.close()
        _tear_down(made)


def _tear_down(made: Any) -> None:
    state = made.root / ".skyrig"
    if not state.exists():
        return
    for environment in made.environments:
        if made.has_state(environment):
            result = made.cli("destroy", "--env", environment, "--yes", "--include-data")
            if result.code != 0:
                raise AssertionError(f"teardown could not destroy {environment}: {result.text}")
    local = made.provider()
    if isinstance(local, LocalServers):
        for environment in made.environments:
            local.stop_local_servers(made.context(environment))


class Suite:
    """The base of the suite's test classes: applies each test's requirements and names its matrix row."""

    @pytest.fixture(autouse=True)
    def _skyrig_requirements(
        self, request: pytest.FixtureRequest, skyrig_profile: Any, skyrig_manifest: Any
    ) -> None:
        from skyrig_conformance.requirements import check

        marker = request.node.get_closest_marker("skyrig_requires")
        request.node.user_properties.append((PROVIDER, skyrig_profile.provider))
        if marker is None:
            return
        request.node.user_properties.append((ROW, row_of(marker)))
        request.node.user_properties.append((CHECK, "refusal" if marker.kwargs.get("unclaimed") else "claim"))
        reason = check(
            marker,
            skyrig_profile.provider,
            skyrig_manifest,
            dict(skyrig_profile.families),
            dict(skyrig_profile.limits),
        )
        if reason:
            pytest.skip(reason)


class MatrixCollector:
    """Collects each suite test's outcome under its provider and matrix row, and reports the matrix."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results = matrix.Results()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if PROVIDER in properties and ROW in properties:
            self.results.add(report, properties[PROVIDER], properties[ROW], properties.get(CHECK, "claim"))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results.providers():
            return
        table = self.results.matrix()
        terminalreporter.section("skyrig conformance: capability matrix")
        for line in matrix.render_text(table).splitlines():
            terminalreporter.write_line(line)
        if json_path := self.config.getoption("--skyrig-matrix-json"):
            Path(json_path).write_text(matrix.render_json(table))
        if md_path := self.config.getoption("--skyrig-matrix-md"):
            Path(md_path).write_text(matrix.render_markdown(table))
