"""skyrig.toml: field-by-field errors with where they come from, SKYRIG_ overrides, masked secrets."""

from __future__ import annotations

import json

import pytest

APP = {
    "svc/__init__.py": 'from skyrig import Service, Bucket\nservice = Service("svc", app="svc.api:app")\n'
    'files = Bucket("files", public=True)\n',
    "svc/api.py": "app = None\n",
}

GOOD = """\
app = "testapp"

[env.local]
type = "local"
provider = "memory"

[env.local.memory]
latency_ms = 5
"""

# (skyrig.toml, expected first line of the error), each also must exit 1 with no traceback
CASES = {
    "TOML syntax": (
        'app = "testapp"\n[env.local]\ntype = local\n',
        "skyrig.toml:3:8: invalid TOML: Invalid value",
    ),
    "missing app": (
        "[env.local]\ntype='local'\nprovider='memory'\n",
        "skyrig.toml: app: missing: this field is required",
    ),
    "invalid app name": ('app = "Test App"\n', "skyrig.toml:1: app: invalid name 'Test App'"),
    "unknown top-level field": (
        'app = "testapp"\nstat = "sqlite://"\n',
        "skyrig.toml:2: stat: unknown field",
    ),
    "unknown environment type": (
        GOOD.replace('type = "local"', 'type = "prodution"'),
        "skyrig.toml:4: env.local.type: Input should be 'local', 'preview', 'development' or 'production'",
    ),
    "missing provider": (
        'app = "testapp"\n[env.local]\ntype = "local"\n',
        "skyrig.toml:2: env.local.provider: missing: this field is required",
    ),
    "provider not installed": (
        GOOD.replace('provider = "memory"', 'provider = "nimbus"'),
        "skyrig.toml:5: env.local.provider: provider 'nimbus' is not installed: pip install skyrig-nimbus",
    ),
    "override provider not installed": (
        GOOD.replace('provider = "memory"\n', 'provider = "memory"\nsql = "nimbus"\n'),
        "skyrig.toml:6: env.local.sql: provider 'nimbus' is not installed: pip install skyrig-nimbus",
    ),
    "invalid provider setting": (
        GOOD.replace("latency_ms = 5", "latency_ms = -5"),
        "skyrig.toml:8: env.local.memory.latency_ms: Input should be greater than or equal to 0",
    ),
    "unknown provider setting": (
        GOOD.replace("latency_ms = 5", "latency = 5"),
        "skyrig.toml:8: env.local.memory.latency: unknown field",
    ),
    "unknown environment field": (
        GOOD.replace('provider = "memory"\n', 'provider = "memory"\nregion = "eu"\n'),
        "skyrig.toml:6: env.local.region: unknown field: an environment has type, provider",
    ),
    "settings for a provider the environment does not use": (
        GOOD + '\n[env.local.aws]\nregion = "eu-west-1"\n',
        "skyrig.toml:10: env.local.aws: settings for provider 'aws', which environment 'local' does not use",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_configuration_is_reported_field_by_field(case, write_app, run):
    config, expected = CASES[case]
    root = write_app(APP, config=config)

    result = run("config", str(root))

    assert result.code == 1, result
    assert result.err.splitlines()[0] == f"error: {expected}" or result.err.startswith(
        f"error: {expected}"
    ), result.err
    assert "Traceback" not in result.err


def test_every_problem_is_reported_at_once(write_app, run):
    config = (
        GOOD.replace('type = "local"', 'type = "nope"')
        + '\n[env.prod]\ntype = "production"\nprovider = "x"\n'
    )
    root = write_app(APP, config=config)
    result = run("check", str(root))
    # pydantic reports the schema error first; provider problems need a valid schema, so they follow a fix
    assert "env.local.type" in result.err and result.code == 1
    root = write_app(
        APP,
        config=GOOD
        + '\n[env.prod]\ntype = "production"\nprovider = "x"\n[env.dev]\ntype="development"\nprovider="y"\n',
    )
    result = run("check", str(root))
    from skyrig.plugins import registry

    installed = ", ".join(p.name for p in registry.installed(registry.PROVIDERS))
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: skyrig.toml:15: env.dev.provider: provider 'y' is not installed: pip install skyrig-y "
        f"(installed providers: {installed})",
        "error: skyrig.toml:12: env.prod.provider: provider 'x' is not installed: pip install skyrig-x "
        f"(installed providers: {installed})",
    ]
    assert "local, memory" in installed


def test_environment_variables_override_the_file(write_app, run, monkeypatch):
    root = write_app(APP, config=GOOD)
    monkeypatch.setenv("SKYRIG_ENV__LOCAL__MEMORY__LATENCY_MS", "250")
    monkeypatch.setenv("SKYRIG_STATE", "sqlite:///elsewhere.db")

    result = run("config", str(root), "--json")

    data = json.loads(result.out)
    assert data["env"]["local"]["settings"]["memory"]["latency_ms"] == 250.0
    assert data["state"] == "sqlite:///elsewhere.db"


def test_a_bad_environment_variable_is_named(write_app, run, monkeypatch):
    root = write_app(APP, config=GOOD)
    monkeypatch.setenv("SKYRIG_ENV__LOCAL__TYPE", "prodution")

    result = run("config", str(root))

    assert result.code == 1
    assert result.err.startswith("error: SKYRIG_ENV__LOCAL__TYPE: env.local.type: Input should be 'local'")


def test_secrets_are_masked(write_app, run, test_plugins, monkeypatch):
    config = (
        'app = "testapp"\n'
        '[env.prod]\ntype = "production"\nprovider = "memory"\nsql = "partial"\n'
        '[env.prod.partial]\ntoken = "tok-canary-value"\n'
    )
    monkeypatch.setenv("SKYRIG_STATE", "postgresql://skyrig:hunter2-canary@db.internal/state")
    root = write_app(APP, config=config)
    for args in (("config", str(root)), ("config", str(root), "--json")):
        result = run(*args)
        assert result.code == 0, result.err
        assert "canary" not in result.out + result.err
    data = json.loads(run("config", str(root), "--json").out)
    assert data["state"] == "postgresql://skyrig:****@db.internal/state"
    assert data["env"]["prod"]["state"] == "postgresql://skyrig:****@db.internal/state"
    assert data["env"]["prod"]["settings"]["partial"]["token"] == "**********"


STATES = """\
app = "testapp"
state = "s3://team-state/testapp"

[env.local]
type = "local"
provider = "memory"
state = "sqlite:///.skyrig/state.db"

[env.dev]
type = "development"
provider = "memory"
"""


def test_the_state_url_is_the_apps_unless_an_environment_has_its_own(write_app, run, monkeypatch):
    root = write_app(APP, config=STATES)
    states = lambda: {  # noqa: E731
        name: env["state"] for name, env in json.loads(run("config", str(root), "--json").out)["env"].items()
    }
    assert states() == {"local": "sqlite:///.skyrig/state.db", "dev": "s3://team-state/testapp"}
    tree = run("config", str(root)).out
    assert "state: s3://team-state/testapp" in tree and "state: sqlite:///.skyrig/state.db" in tree
    monkeypatch.setenv("SKYRIG_STATE", "s3://ci-state/testapp")  # the app's, not an environment's own
    assert states() == {"local": "sqlite:///.skyrig/state.db", "dev": "s3://ci-state/testapp"}
    monkeypatch.setenv("SKYRIG_ENV__LOCAL__STATE", "sqlite:////tmp/elsewhere.db")
    assert states()["local"] == "sqlite:////tmp/elsewhere.db"


@pytest.mark.parametrize(
    "config, line, field",
    [
        ('app = "testapp"\nstate = "postgresql://skyrig:hunter2-canary@db.internal/state"\n', 2, "state"),
        (STATES + 'state = "s3://AKIA:hunter2-canary@team-state/testapp"\n', 12, "env.dev.state"),
        ('app = "testapp"\nstate = "postgresql://db/state?password=hunter2-canary"\n', 2, "state"),
    ],
)
def test_a_password_in_a_state_url_in_the_file_is_refused(write_app, run, monkeypatch, config, line, field):
    root = write_app(APP, config=config)
    monkeypatch.setenv("SKYRIG_STATE", "sqlite:///.skyrig/state.db")  # the file is refused all the same
    result = run("config", str(root))
    assert result.code == 1
    assert result.err.startswith(f"error: skyrig.toml:{line}: {field}: the URL holds a password"), result.err
    assert "PGPASSWORD" in result.err and "the AWS chain" in result.err
    assert "canary" not in result.err


def test_a_state_url_without_a_password_is_no_secret(write_app, run):
    config = 'app = "testapp"\nstate = "postgresql://skyrig@db.internal:5432/state?schema=shop"\n'
    assert run("config", str(write_app(APP, config=config))).code == 0


def test_an_unknown_environment_lists_the_known_ones(write_app, run):
    root = write_app(APP, config=GOOD)
    result = run("config", str(root), "--env", "prod")
    assert result.code == 1
    assert "no environment 'prod' (environments: local)" in result.err
    assert "add a table [env.prod]" in result.err


def test_no_config_file_says_what_to_do(tmp_path, run):
    result = run("config", str(tmp_path))
    assert result.code == 1
    assert "no skyrig.toml" in result.err and "skyrig init" in result.err


def test_provider_that_serves_no_such_environment_type(write_app, run, test_plugins):
    root = write_app(APP, config='app = "testapp"\n[env.local]\ntype = "local"\nprovider = "partial"\n')
    result = run("config", str(root))
    assert result.code == 1
    assert result.err == (
        "error: skyrig.toml:4: env.local.provider: provider 'partial' does not serve local environments "
        "(it serves: development, production)\n"
    ), "said once, though the provider serves every family"


def test_override_with_a_provider_that_lacks_the_family(write_app, run, test_plugins):
    root = write_app(
        APP, config=GOOD.replace('provider = "memory"\n', 'provider = "memory"\ncache = "sqlonly"\n')
    )
    result = run("config", str(root))
    assert result.code == 1
    assert "env.local.cache: provider 'sqlonly' does not provision cache (providers that do: " in result.err
    assert "local, memory" in result.err, "the installed providers that could, for a local environment"


def test_a_provider_that_fails_to_import_is_named(write_app, run, test_plugins):
    root = write_app(APP, config=GOOD.replace('provider = "memory"', 'provider = "broken"'))
    result = run("config", str(root))
    assert result.code == 1
    assert "env.local.provider: provider 'broken' failed to load: ModuleNotFoundError" in result.err


def test_schema_errors_are_reported_together(write_app, run):
    config = (
        GOOD.replace('type = "local"', 'type = "nope"\nregion = "eu"')
        + '\n[env.Prod]\ntype = "local"\nprovider = "memory"\n'
    )
    result = run("config", str(write_app(APP, config=config)))
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, result.err
    assert any("env.Prod: invalid environment name 'Prod'" in e for e in errors)
    assert any("env.local.region: unknown field" in e for e in errors)
    assert any("env.local.type: Input should be" in e for e in errors)


def test_the_app_name_can_be_overridden_for_every_command(write_app, run, monkeypatch):
    root = write_app(APP, config=GOOD)
    monkeypatch.setenv("SKYRIG_APP", "renamed")
    assert json.loads(run("model", str(root), "--json").out)["app"] == "renamed"
    assert json.loads(run("config", str(root), "--json").out)["app"] == "renamed"
    monkeypatch.setenv("SKYRIG_APP", "Not Valid")
    result = run("model", str(root))
    assert result.code == 1 and "SKYRIG_APP: app: invalid name 'Not Valid'" in result.err
