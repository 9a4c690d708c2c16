"""skyrig preview on the memory provider: pr:N derived from the preview template (and taken by every
command), open/close/list and their --json, idempotent re-opens, and clear errors for a missing or unclear
template and an unknown seed. Seeding with real PostgreSQL: tests/test_previews.py."""

from __future__ import annotations

import json

import pytest

from skyrig.config import load_config

APP = {
    "shop/__init__.py": 'from skyrig import Service, SQLDatabase\nservice = Service("api", app="shop.api:app")\n'
    'db = SQLDatabase("orders", migrations="./migrations")\n',
    "shop/api.py": "app = None\n",
    "shop/migrations/0001_orders.up.sql": "CREATE TABLE orders (id serial PRIMARY KEY);\n",
}

CONFIG = """\
app = "shop"

[env.staging]
type = "development"
provider = "memory"

[env.review]
type = "preview"
provider = "memory"

[env.review.memory]
latency_ms = 0
"""


@pytest.fixture
def app(write_app):
    return write_app(APP, CONFIG)


def _no_traceback(result) -> None:
    assert "Traceback" not in result.text


def test_pr_n_is_the_only_preview_environment_renamed_and_every_command_takes_it(app, run) -> None:
    config = load_config(app)
    derived = config.environment("pr:12")
    template = config.environment("review")
    assert (derived.name, derived.type) == ("pr:12", "preview")
    assert derived.providers == template.providers and derived.settings == template.settings
    assert derived.state == template.state
    assert (derived.template, template.template) == ("review", None), "a preview names its template"
    assert "pr:12" not in config.environments, "derived, not declared"

    planned = run("plan", "--env", "pr:12", "-C", str(app))
    assert planned.code == 0, planned.text
    assert "plan for shop/pr:12: 5 to create" in planned.out


def test_open_is_an_apply_reopen_changes_nothing_close_destroys_and_list_follows(app, run) -> None:
    opened = run("preview", "open", "--pr", "7", "--json", "-C", str(app))
    assert opened.code == 0, opened.text
    answer = json.loads(opened.out)
    assert answer == {
        "app": "shop",
        "environment": "pr:7",
        "pr": 7,
        "type": "preview",
        "template": "review",
        "ok": True,
        "seed": None,
        "urls": {"api": answer["urls"]["api"]},
    }
    assert "created compute.service/api" in opened.err

    again = run("preview", "open", "--pr", "7", "-C", str(app))
    assert again.code == 0, again.text
    assert "nothing to do: the cloud matches the app" in again.err and "created" not in again.err
    assert "preview pr:7 of shop is open" in again.out

    status = run("status", "--env", "pr:7", "--json", "-C", str(app))
    assert len(json.loads(status.out)["nodes"]) == 5
    assert json.loads(run("status", "--env", "staging", "--json", "-C", str(app)).out)["nodes"] == []

    assert run("preview", "open", "--pr", "8", "-C", str(app)).code == 0
    listed = json.loads(run("preview", "list", "--json", "-C", str(app)).out)
    assert [(p["environment"], p["pr"], p["state"], p["nodes"]) for p in listed["previews"]] == [
        ("pr:7", 7, "open", 5),
        ("pr:8", 8, "open", 5),
    ]
    assert "pr:7" in run("preview", "list", "-C", str(app)).out

    closed = run("preview", "close", "--pr", "7", "--json", "-C", str(app))
    assert closed.code == 0, closed.text
    assert json.loads(closed.out) == {
        "app": "shop",
        "environment": "pr:7",
        "pr": 7,
        "ok": True,
        "existed": True,
    }
    assert "deleted sql.database/orders" in closed.err, "its data goes too"
    assert json.loads(run("status", "--env", "pr:7", "--json", "-C", str(app)).out)["nodes"] == []
    assert len(json.loads(run("status", "--env", "pr:8", "--json", "-C", str(app)).out)["nodes"]) == 5

    twice = run("preview", "close", "--pr", "7", "-C", str(app))
    assert twice.code == 0 and "pr:7 of shop is not open: nothing to close" in twice.out
    listed = json.loads(run("preview", "list", "--json", "-C", str(app)).out)
    assert [p["environment"] for p in listed["previews"]] == ["pr:8"]


@pytest.mark.parametrize(
    ("config", "expected", "hint"),
    [
        (
            'app = "shop"\n[env.staging]\ntype = "development"\nprovider = "memory"\n',
            "error: skyrig.toml: no preview template",
            'add [preview] template = "ENV" to skyrig.toml',
        ),
        (
            CONFIG + '[env.qa]\ntype = "preview"\nprovider = "memory"\n',
            "error: skyrig.toml: several environments of type preview (qa, review)",
            'add [preview] template = "qa"',
        ),
        (
            CONFIG + '[preview]\ntemplate = "nope"\n',
            "error: skyrig.toml:14: preview.template: names no environment 'nope' (environments: review, "
            "staging)",
            None,
        ),
        (
            CONFIG + '[preview]\nseed_from = "prod"\n',
            "error: skyrig.toml:14: preview.seed_from: names no environment 'prod'",
            None,
        ),
        (
            CONFIG + '[preview]\ntemplat = "review"\n',
            "error: skyrig.toml:14: preview.templat: unknown field",
            None,
        ),
    ],
    ids=["no template", "several", "unknown template", "unknown seed_from", "unknown field"],
)
def test_a_template_that_cannot_be_found_is_a_clear_error_naming_skyrig_toml(
    write_app, run, config, expected, hint
) -> None:
    app = write_app(APP, config)
    for args in (("preview", "open", "--pr", "3"), ("plan", "--env", "pr:3")):
        result = run(*args, "-C", str(app))
        assert result.code == 1, result.text
        assert result.err.startswith(expected), result.err
        assert hint is None or hint in result.err
        _no_traceback(result)
    assert (
        not (app / ".skyrig" / "state.db").exists()
        or "pr:3" not in run("preview", "list", "-C", str(app)).out
    )


def test_an_unknown_seed_is_refused_before_anything_is_made(app, run) -> None:
    refused = run("preview", "open", "--pr", "4", "--seed-from", "prod", "-C", str(app))
    assert refused.code == 1
    assert refused.err.startswith("error: skyrig.toml: no environment 'prod' (environments: review, staging)")
    _no_traceback(refused)
    itself = run("preview", "open", "--pr", "4", "--seed-from", "pr:4", "-C", str(app))
    assert itself.code == 1 and "preview pr:4 cannot be seeded from itself" in itself.err
    assert json.loads(run("preview", "list", "--json", "-C", str(app)).out)["previews"] == []
    assert json.loads(run("status", "--env", "pr:4", "--json", "-C", str(app)).out)["nodes"] == []


NEON = """\
app = "shop"

[env.staging]
type = "development"
provider = "memory"
sql = "neon"

[env.review]
type = "preview"
provider = "memory"
sql = "neon"

[preview]
seed_from = "staging"
"""


def test_where_sql_branches_the_preview_branches_from_the_seed_and_another_seed_is_refused(
    write_app, run
) -> None:
    app = write_app(APP, NEON)
    derived = load_config(app).environment("pr:9")
    assert derived.settings["neon"].branch_from == "staging"
    assert load_config(app).environment("review").settings["neon"].branch_from is None

    other = run("preview", "open", "--pr", "9", "--seed-from", "review", "-C", str(app))
    assert other.code == 1
    assert "its SQL provider 'neon' branches" in other.err
    assert 'set seed_from = "review" in [preview] of skyrig.toml' in other.err
    _no_traceback(other)

    elsewhere = write_app(APP, NEON.replace('sql = "neon"\n', "", 1))  # staging's sql is memory's
    refused = run("plan", "--env", "pr:9", "-C", str(elsewhere))
    assert refused.code == 1
    assert "env.pr:9.neon.branch_from: names environment 'staging', whose sql is on 'memory'" in refused.err
    assert "pr:9's neon branch_from is the seed ('staging'" in refused.err
    _no_traceback(refused)


def test_a_template_whose_provider_serves_no_preview_is_refused(write_app, run, test_plugins) -> None:
    config = (
        'app = "shop"\n[env.dev]\ntype = "development"\nprovider = "partial"\n[preview]\ntemplate = "dev"\n'
    )
    app = write_app(APP, config)
    refused = run("plan", "--env", "pr:2", "-C", str(app))
    assert refused.code == 1
    assert refused.err.startswith(
        "error: skyrig.toml:2: env.dev: environment 'dev' is the preview template, and its provider 'partial' "
        "does not serve preview environments (it serves: development, production)"
    ), refused.err
    assert '[preview] template = "ENV"' in refused.err
    _no_traceback(refused)


def test_a_local_template_makes_local_previews(write_app) -> None:
    app = write_app(
        APP, 'app = "shop"\n[env.box]\ntype = "local"\nprovider = "memory"\n[preview]\ntemplate = "box"\n'
    )
    assert load_config(app).environment("pr:2").type == "local"


def test_check_checks_the_previews_the_template_makes(write_app, run) -> None:
    app = write_app(APP, CONFIG)
    checked = run("check", "-C", str(app))
    assert checked.code == 0 and "check out for review, staging, pr:N" in checked.out
    bare = write_app(APP, 'app = "shop"\n[env.staging]\ntype = "development"\nprovider = "memory"\n')
    assert "check out for staging\n" in run("check", "-C", str(bare)).out, "no template: no previews"
    neon = write_app(APP, NEON.replace('sql = "neon"\n', "", 1))
    refused = run("check", "-C", str(neon))
    assert refused.code == 1 and "env.pr:N.neon.branch_from: names environment 'staging'" in refused.err


def test_a_preview_declared_in_env_is_taken_as_declared(write_app, run) -> None:
    config = 'app = "shop"\n[env."pr:7"]\ntype = "development"\nprovider = "memory"\n'
    app = write_app(APP, config)
    assert load_config(app).environment("pr:7").type == "development"
    opened = run("preview", "open", "--pr", "7", "--json", "-C", str(app))
    assert opened.code == 0, opened.text
    assert json.loads(opened.out)["template"] is None and json.loads(opened.out)["type"] == "development"
    assert run("preview", "close", "--pr", "7", "-C", str(app)).code == 0
    other = run("preview", "open", "--pr", "8", "-C", str(app))
    assert other.code == 1 and "no preview template" in other.err
