"""``skyrig check`` refuses ``sql = "neon"`` where it cannot work, at the field of ``skyrig.toml``, with the
reason and what to do: Neon as an environment's provider (it runs no services), a ``branch_from`` that names
no environment, itself, one whose sql is not Neon, another project or a cycle, ``branch_from`` or
``branch_at`` on production, two production environments on one default branch, and services that cannot
reach Neon's public endpoints. Nothing calls Neon (no API key is set)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrig.cli.testing import run_cli
from skyrig.plugins import registry
from skyrig_neon import provider

SERVICE = 'from skyrig import Service\nservice = Service("shop", app="shop.api:app")\n'
API = 'from skyrig import SQLDatabase\napp = None\norders = SQLDatabase("orders")\n'
STAGING = '[env.staging]\ntype = "development"\nprovider = "memory"\nsql = "neon"\n'
PROD = '[env.prod]\ntype = "production"\nprovider = "memory"\nsql = "neon"\n'


def _preview(name: str = "pr-template", **neon: str) -> str:
    table = f'[env.{name}]\ntype = "preview"\nprovider = "memory"\nsql = "neon"\n'
    if neon:
        table += f"[env.{name}.neon]\n" + "".join(f'{k} = "{v}"\n' for k, v in neon.items())
    return table


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], *tables: str):
    """``skyrig check`` on a shop app with ``tables`` as its environments: (exit code, errors as one line
    per problem, the text of skyrig.toml)."""
    root = tmp_path / "shop"
    (root / "shop").mkdir(parents=True, exist_ok=True)
    (root / "shop" / "__init__.py").write_text(SERVICE)
    (root / "shop" / "api.py").write_text(API)
    text = 'app = "shop"\n\n' + "\n".join(tables)
    (root / "skyrig.toml").write_text(text)
    result = run_cli(["check", "-C", str(root)], capsys)
    assert "Traceback" not in result.err + result.out
    errors = [line.removeprefix("error: ") for line in result.err.splitlines() if line.startswith("error: ")]
    return result.code, errors, text


def _at(text: str, table: str, key: str) -> str:
    """``skyrig.toml:LINE: FIELD``: where the error about ``key`` of ``[table]`` must point."""
    lines = text.splitlines()
    start = lines.index(f"[{table}]")
    number = next(i for i in range(start, len(lines)) if lines[i].startswith(f"{key} =")) + 1
    return f"skyrig.toml:{number}: {table}.{key}:"


def test_the_manifest_needs_services_that_reach_the_internet() -> None:
    assert dict(provider.manifest.needs) == {"sql": frozenset({"compute.internet"})}


def test_a_preview_branched_from_staging_checks_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, errors, _ = _check(
        tmp_path,
        capsys,
        PROD,
        STAGING,
        _preview(branch_from="staging", branch_at="2026-02-26T12:00:00Z"),
        _preview("pr-1", branch_from="pr-template"),
        _preview("pr-2", branch_at="2026-02-26T12:00:00+02:00"),  # from the default branch, at a time
        _preview("pr-3", branch_from="prod"),
    )
    assert (code, errors) == (0, [])


def test_neon_as_the_environments_provider_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, errors, text = _check(tmp_path, capsys, '[env.staging]\ntype = "development"\nprovider = "neon"\n')
    assert code == 1
    (error,) = errors
    assert error.startswith(_at(text, "env.staging", "provider") + " provider 'neon' provisions only sql")
    found = re.search(
        r"in \[env\.staging\] set provider to one that runs services \(([^)]*)\) and sql = 'neon'", error
    )
    assert found and "memory" in found[1].split(", "), error


def test_neon_may_name_the_environment_where_every_other_family_is_set_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The conformance suite's shape: ``provider = "neon"`` and the other families on memory."""
    others = "".join(
        f'{f} = "memory"\n' for f in ("compute", "pubsub", "cache", "cron", "objects", "secrets")
    )
    code, errors, _ = _check(
        tmp_path, capsys, f'[env.staging]\ntype = "development"\nprovider = "neon"\n{others}'
    )
    assert (code, errors) == (0, [])


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        pytest.param(
            (STAGING, _preview(branch_from="stagin")),
            "names no environment of skyrig.toml (environments whose sql is neon: staging): add "
            '[env.stagin] with sql = "neon", or name an existing one',
            id="unknown",
        ),
        pytest.param(
            (STAGING, _preview(branch_from="pr-template")),
            "names environment 'pr-template' itself: a branch is made from another environment's branch; "
            "name another (environments whose sql is neon: staging), or remove branch_from from "
            "[env.pr-template.neon] to branch from the project's default branch (production's)",
            id="itself",
        ),
        pytest.param(
            (STAGING.replace('sql = "neon"\n', ""), _preview(branch_from="staging")),
            "names environment 'staging', whose sql is on 'memory', not Neon, so it has no Neon branch to "
            "branch from: set sql = \"neon\" in [env.staging], or name another (none has sql = 'neon')",
            id="not-on-neon",
        ),
        pytest.param(
            (STAGING + '[env.staging.neon]\nproject_id = "other-project"\n', _preview(branch_from="staging")),
            "names environment 'staging', which is in another Neon project (project_id 'other-project' there, "
            "the app's project here): a branch is made within one project; set the same project_id (and "
            "org_id) in [env.pr-template.neon] and [env.staging.neon]",
            id="another-project",
        ),
    ],
)
def test_a_branch_from_that_cannot_work_is_refused_at_the_setting(
    tables: tuple[str, ...], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, errors, text = _check(tmp_path, capsys, *tables)
    assert code == 1
    assert errors == [f"{_at(text, 'env.pr-template.neon', 'branch_from')} {expected}"]


def test_a_cycle_of_branch_from_is_refused_at_each_of_its_environments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, errors, text = _check(
        tmp_path,
        capsys,
        _preview("a", branch_from="b"),
        _preview("b", branch_from="a"),
        _preview("c", branch_from="a"),  # below the cycle, not in it: nothing of its own
    )
    assert code == 1
    assert errors == [
        f"{_at(text, 'env.a.neon', 'branch_from')} makes a cycle (a -> b -> a): a branch is made from a parent "
        "branch that exists first; remove branch_from from one of [env.a.neon] and [env.b.neon]",
        f"{_at(text, 'env.b.neon', 'branch_from')} makes a cycle (b -> a -> b): a branch is made from a parent "
        "branch that exists first; remove branch_from from one of [env.b.neon] and [env.a.neon]",
    ]


@pytest.mark.parametrize("field", ["branch_from", "branch_at"])
def test_production_is_the_default_branch_and_is_never_branched(
    field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = "staging" if field == "branch_from" else "2026-02-26T12:00:00Z"
    code, errors, text = _check(tmp_path, capsys, STAGING, PROD + f'[env.prod.neon]\n{field} = "{value}"\n')
    assert code == 1
    assert errors == [
        f"{_at(text, 'env.prod.neon', field)} a production environment is on the Neon project's default "
        "branch, which Neon makes with the project and which is never made from another branch or point in "
        f'time: remove {field} from [env.prod.neon] (previews branch from production with branch_from = "prod" '
        "in theirs)"
    ]


def test_two_production_environments_cannot_share_the_default_branch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = PROD.replace("env.prod", "env.prod-eu")
    code, errors, _ = _check(tmp_path, capsys, PROD, second)
    assert code == 1
    assert len(errors) == 2 and all(
        "production environments 'prod', 'prod-eu' would share one Neon project's default branch" in e
        for e in errors
    )
    own = second + '[env.prod-eu.neon]\nproject_id = "shop-eu"\n'
    assert _check(tmp_path, capsys, PROD, own)[:2] == (0, [])


@pytest.fixture
def offline_compute(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The core tests' ``offline`` provider: services that do not say they reach the internet."""
    from stevedore.extension import ExtensionManager

    plugins = Path(__file__).resolve().parents[3] / "core" / "tests" / "fixtures" / "plugins"
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")]))
    registry.load_provider.cache_clear()
    getattr(ExtensionManager, "ENTRY_POINT_CACHE", {}).clear()
    yield
    registry.load_provider.cache_clear()
    getattr(ExtensionManager, "ENTRY_POINT_CACHE", {}).clear()


def test_services_that_cannot_reach_neon_are_refused(
    offline_compute: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, errors, text = _check(tmp_path, capsys, STAGING.replace('"memory"', '"offline"'))
    assert code == 1
    (error,) = errors
    assert error.startswith(
        f"{_at(text, 'env.staging', 'sql')} provider 'neon' serves sql only where the services, and the jobs "
        "and migrations run beside them, open connections to hosts on the public internet (compute.internet), "
        "and this environment's compute provider 'offline' does not say so: set compute in [env.staging] to a "
        "provider that does ("
    )
    assert re.search(r"provider that does \([^)]*\baws\b[^)]*\)", error), error
