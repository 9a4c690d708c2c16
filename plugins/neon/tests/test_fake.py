"""Tests of the FAKE Neon API (skyrig_neon.fake): this is not Neon.

Neon has no emulator, so skyrig-neon's tests run against a strict fake; these tests drive it over HTTP, as
the provider's client does, to show that it answers as Neon's API describes where the provider relies on
it: requests checked against Neon's OpenAPI description (401, 404, 400 with ``{"code", "message"}``),
operations that finish asynchronously and lock the project meanwhile (423), branches that are real
PostgreSQL servers holding their parent's rows, the rules on deleting branches, and role passwords that are
real (revealed, rotated).
"""

from __future__ import annotations

import datetime
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

URI = re.compile(
    r"^postgresql://(?P<role>[^:]+):(?P<password>[^@]+)@127\.0\.0\.1:(?P<port>\d+)/(?P<db>[^?]+)\?sslmode=disable$"
)


@pytest.fixture
def api(fake_neon: Any) -> Iterator[httpx.Client]:
    """A client with the fake's API key."""
    with httpx.Client(
        base_url=fake_neon.api_url, headers={"Authorization": f"Bearer {fake_neon.api_key}"}, timeout=30
    ) as client:
        yield client


def wait(api: httpx.Client, project_id: str, operations: list[dict[str, Any]]) -> None:
    """Polls each operation until it ends; it must have finished."""
    for operation in operations:
        deadline = time.monotonic() + 30
        while True:
            answer = api.get(f"/projects/{project_id}/operations/{operation['id']}")
            assert answer.status_code == 200, answer.text
            status = answer.json()["operation"]["status"]
            if status not in ("scheduling", "running"):
                break
            assert time.monotonic() < deadline, f"operation {operation['action']} still {status}"
            time.sleep(0.02)
        assert status == "finished", answer.json()


def create_project(api: httpx.Client, name: str = "fake-test", **fields: Any) -> dict[str, Any]:
    """A new project, once its operations finished."""
    answer = api.post("/projects", json={"project": {"name": name, **fields}})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    wait(api, body["project"]["id"], body["operations"])
    return body


def create_branch(api: httpx.Client, project_id: str, **fields: Any) -> dict[str, Any]:
    """A new branch with a read-write endpoint, once its operations finished."""
    answer = api.post(
        f"/projects/{project_id}/branches", json={"branch": fields, "endpoints": [{"type": "read_write"}]}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    wait(api, project_id, body["operations"])
    return body


def uri(api: httpx.Client, project_id: str, branch_id: str, role: str = "neondb_owner", **more: Any) -> str:
    """The branch's connection URI for ``role`` on neondb."""
    params = {"branch_id": branch_id, "database_name": "neondb", "role_name": role, **more}
    answer = api.get(f"/projects/{project_id}/connection_uri", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["uri"]


def rows(connection_uri: str) -> list[int]:
    """The values of table ``t`` behind ``connection_uri``."""
    with psycopg.connect(connection_uri) as connection:
        return [v for (v,) in connection.execute("SELECT v FROM t ORDER BY v").fetchall()]


def insert(connection_uri: str, *values: int) -> None:
    """Adds ``values`` to table ``t`` (made if missing)."""
    with psycopg.connect(connection_uri) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS t (v int)")
        for value in values:
            connection.execute("INSERT INTO t VALUES (%s)", (value,))


def refuses(port: int) -> bool:
    """Whether nothing listens on ``port`` of 127.0.0.1 any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture(scope="module")
def project(fake_neon: Any) -> dict[str, Any]:
    """One project the read-mostly tests share (its creation answer)."""
    with httpx.Client(
        base_url=fake_neon.api_url, headers={"Authorization": f"Bearer {fake_neon.api_key}"}, timeout=30
    ) as client:
        return create_project(client, "fake-shared")


def test_requests_are_checked_against_neons_openapi_description(fake_neon: Any, api: httpx.Client) -> None:
    anonymous = httpx.post(f"{fake_neon.api_url}/projects", json={"project": {"name": "x"}})
    assert anonymous.status_code == 401
    assert set(anonymous.json()) >= {"code", "message"}
    wrong_key = httpx.get(f"{fake_neon.api_url}/projects", headers={"Authorization": "Bearer nope"})
    assert wrong_key.status_code == 401

    unknown_field = api.post("/projects", json={"project": {"name": "x", "colour": "blue"}})
    assert unknown_field.status_code == 400
    assert "project.colour" in unknown_field.json()["message"]
    assert unknown_field.json()["code"]

    bad_type = api.post("/projects", json={"project": {"name": "x", "pg_version": 12}})
    assert bad_type.status_code == 400 and "pg_version" in bad_type.json()["message"]
    bad_pattern = api.get("/projects/Not_A_Project")
    assert bad_pattern.status_code == 400 and "project_id" in bad_pattern.json()["message"]
    bad_query = api.get("/projects", params={"limit": 0})
    assert bad_query.status_code == 400
    unknown_query = api.get("/projects", params={"colour": "blue"})
    assert unknown_query.status_code == 400 and "colour" in unknown_query.json()["message"]
    bad_uuid = api.get("/projects/some-project-12345678/operations/not-a-uuid")
    assert bad_uuid.status_code == 400

    assert api.get("/no/such/path").status_code == 404
    assert api.put("/projects", json={}).status_code == 404  # a method the document lacks
    assert httpx.get(fake_neon.api_url.replace("/api/v2", "/api/v1/projects")).status_code == 404
    unknown = api.get("/projects/unknown-project-12345678")
    assert unknown.status_code == 404 and set(unknown.json()) >= {"code", "message"}
    assert ("PUT", "/projects") not in fake_neon.calls  # not an operation of the document
    assert ("GET", "/projects/{project_id}") in fake_neon.calls


def test_answers_are_checked_against_the_documents_response_schemas(api: httpx.Client) -> None:
    from skyrig_neon.fake.spec import load

    spec = load()
    with pytest.raises(ValueError, match="consumption_period_end"):
        spec.check_response(spec.by_id["getProject"], 200, {"project": {"id": "x"}})
    with pytest.raises(ValueError, match="documents no body"):
        spec.check_response(spec.by_id["deleteProjectBranch"], 204, {"branch": {}})
    spec.check_response(spec.by_id["deleteProjectBranch"], 204, None)
    served_elsewhere = api.get("/projects/shared")  # an operation of the document the fake does not serve
    assert served_elsewhere.status_code == 501 and "listSharedProjects" in served_elsewhere.json()["message"]


def test_creating_a_project_answers_the_documented_shape(fake_neon: Any, api: httpx.Client) -> None:
    from skyrig_neon.fake.spec import load

    answer = api.post("/projects", json={"project": {"name": "fake-shape", "region_id": "aws-eu-central-1"}})
    assert answer.status_code == 201
    body = answer.json()
    load().check_response(load().by_id["createProject"], 201, body)
    project_id = body["project"]["id"]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}", project_id)
    assert body["branch"]["name"] == "main" and body["branch"]["default"] is True
    assert body["branch"]["id"].startswith("br-")
    [endpoint] = body["endpoints"]
    assert endpoint["type"] == "read_write" and endpoint["id"].startswith("ep-")
    assert endpoint["branch_id"] == body["branch"]["id"]
    assert [d["name"] for d in body["databases"]] == ["neondb"]
    assert [(r["name"], bool(r["password"])) for r in body["roles"]] == [("neondb_owner", True)]
    [details] = body["connection_uris"]
    match = URI.match(details["connection_uri"])
    assert match and match["role"] == "neondb_owner" and match["db"] == "neondb"
    assert details["connection_parameters"]["password"] == body["roles"][0]["password"]
    assert {op["action"] for op in body["operations"]} == {"create_timeline", "start_compute"}
    assert {op["status"] for op in body["operations"]} <= {"running", "scheduling"}

    wait(api, project_id, body["operations"])
    with psycopg.connect(details["connection_uri"]) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchone() == (
            "neondb_owner",
            "neondb",
        )
        assert connection.execute("SHOW server_version_num").fetchone()[0].startswith("18")
    branch = api.get(f"/projects/{project_id}/branches/{body['branch']['id']}").json()["branch"]
    assert branch["current_state"] == "ready"
    endpoint = api.get(f"/projects/{project_id}/endpoints/{endpoint['id']}").json()["endpoint"]
    assert endpoint["current_state"] == "active"
    assert api.delete(f"/projects/{project_id}").status_code == 200


def test_a_mutation_while_an_operation_runs_is_locked(
    fake_neon: Any, api: httpx.Client, project: dict[str, Any]
) -> None:
    project_id = project["project"]["id"]
    branch_id = project["branch"]["id"]
    delay = fake_neon.operation_delay
    fake_neon.operation_delay = 1.0  # the operation surely still runs when the second request comes
    try:
        first = api.post(
            f"/projects/{project_id}/branches/{branch_id}/roles", json={"role": {"name": "locked_one"}}
        )
        assert first.status_code == 201
        [operation] = first.json()["operations"]
        assert operation["status"] == "running" and operation["action"] == "apply_config"

        second = api.post(
            f"/projects/{project_id}/branches/{branch_id}/roles", json={"role": {"name": "locked_two"}}
        )
        assert second.status_code == 423
        assert set(second.json()) >= {"code", "message"}
        assert api.get(f"/projects/{project_id}").status_code == 200  # reads are never locked
        polled = api.get(f"/projects/{project_id}/operations/{operation['id']}").json()["operation"]
        assert polled["status"] == "running"
    finally:
        fake_neon.operation_delay = delay
    wait(api, project_id, [operation])
    listed = api.get(f"/projects/{project_id}/operations").json()
    assert listed["operations"][0]["id"] == operation["id"]  # newest first
    assert listed["operations"][0]["status"] == "finished"
    again = api.post(
        f"/projects/{project_id}/branches/{branch_id}/roles", json={"role": {"name": "locked_two"}}
    )
    assert again.status_code == 201
    wait(api, project_id, again.json()["operations"])


def test_a_child_branch_holds_its_parents_rows_and_keeps_its_writes(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    project_id = project["project"]["id"]
    parent = project["branch"]["id"]
    parent_uri = uri(api, project_id, parent)
    insert(parent_uri, 1, 2)

    child = create_branch(api, project_id, name="fake-child", parent_id=parent)
    child_id = child["branch"]["id"]
    branch = api.get(f"/projects/{project_id}/branches/{child_id}").json()["branch"]
    assert branch["parent_id"] == parent and re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", branch["parent_lsn"])
    assert {r["name"] for r in child["roles"]} >= {"neondb_owner"}  # inherited, as on Neon
    child_uri = uri(api, project_id, child_id)
    assert child_uri != parent_uri

    assert rows(child_uri) == [1, 2]
    insert(child_uri, 3)
    insert(parent_uri, 4)
    assert rows(child_uri) == [1, 2, 3]
    assert rows(parent_uri) == [1, 2, 4]

    deleted = api.delete(f"/projects/{project_id}/branches/{child_id}")
    assert deleted.status_code == 200
    wait(api, project_id, deleted.json()["operations"])
    assert refuses(int(URI.match(child_uri)["port"]))
    assert rows(parent_uri) == [1, 2, 4]
    assert api.get(f"/projects/{project_id}/branches/{child_id}").status_code == 404


def test_connection_uris_name_the_branch_server_and_are_pooled_alike(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    project_id = project["project"]["id"]
    branch_id = project["branch"]["id"]
    direct = uri(api, project_id, branch_id)
    match = URI.match(direct)
    assert match, direct
    password = api.get(
        f"/projects/{project_id}/branches/{branch_id}/roles/neondb_owner/reveal_password"
    ).json()["password"]
    assert urllib.parse.unquote(match["password"]) == password
    assert uri(api, project_id, branch_id, pooled="true") == direct  # no PgBouncer in the fake
    default = api.get(
        f"/projects/{project_id}/connection_uri",
        params={"database_name": "neondb", "role_name": "neondb_owner"},
    )
    assert default.json()["uri"] == direct  # the default branch's read-write endpoint
    missing = api.get(
        f"/projects/{project_id}/connection_uri",
        params={"database_name": "nope", "role_name": "neondb_owner"},
    )
    assert missing.status_code == 404
    no_role = api.get(f"/projects/{project_id}/connection_uri", params={"database_name": "neondb"})
    assert no_role.status_code == 400  # role_name is required


def test_the_default_a_protected_and_a_parent_branch_cannot_be_deleted(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    project_id = project["project"]["id"]
    default = api.delete(f"/projects/{project_id}/branches/{project['branch']['id']}")
    assert default.status_code == 400 and "default" in default.json()["message"]

    kept = create_branch(api, project_id, name="fake-protected", protected=True)["branch"]
    protected = api.delete(f"/projects/{project_id}/branches/{kept['id']}")
    assert protected.status_code == 400 and "protected" in protected.json()["message"]

    child = create_branch(api, project_id, name="fake-grandchild", parent_id=kept["id"])["branch"]
    unprotected = api.patch(
        f"/projects/{project_id}/branches/{kept['id']}", json={"branch": {"protected": False}}
    )
    assert unprotected.status_code == 200 and unprotected.json()["branch"]["protected"] is False
    parent = api.delete(f"/projects/{project_id}/branches/{kept['id']}")
    assert parent.status_code == 400 and child["id"] in parent.json()["message"]

    duplicate = api.post(f"/projects/{project_id}/branches", json={"branch": {"name": "fake-grandchild"}})
    assert duplicate.status_code == 409

    for branch in (child, kept):
        deleted = api.delete(f"/projects/{project_id}/branches/{branch['id']}")
        assert deleted.status_code == 200
        wait(api, project_id, deleted.json()["operations"])
    assert api.delete(f"/projects/{project_id}/branches/{kept['id']}").status_code == 204


def test_parent_timestamp_must_lie_between_the_parents_creation_and_now(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    project_id = project["project"]["id"]
    created = datetime.datetime.fromisoformat(project["branch"]["created_at"].replace("Z", "+00:00"))
    for moment in (
        created - datetime.timedelta(hours=1),
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    ):
        answer = api.post(
            f"/projects/{project_id}/branches",
            json={"branch": {"parent_timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}},
        )
        assert answer.status_code == 400, answer.text
        assert "parent_timestamp" in answer.json()["message"]
    at = create_branch(api, project_id, name="fake-at", parent_timestamp=project["branch"]["created_at"])
    assert at["branch"]["parent_timestamp"] == project["branch"]["created_at"]
    deleted = api.delete(f"/projects/{project_id}/branches/{at['branch']['id']}")
    wait(api, project_id, deleted.json()["operations"])


def test_a_branch_at_a_past_time_holds_the_parents_rows_of_that_time(api: httpx.Client) -> None:
    body = create_project(api, "fake-history")
    project_id = body["project"]["id"]
    parent_uri = body["connection_uris"][0]["connection_uri"]
    insert(parent_uri, 1)
    time.sleep(1.1)  # Neon's times are whole seconds
    then = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    insert(parent_uri, 2)

    past = create_branch(api, project_id, name="fake-past", parent_timestamp=then)
    past_uri = uri(api, project_id, past["branch"]["id"])
    assert rows(past_uri) == [1]  # point-in-time recovery of the parent
    insert(past_uri, 3)
    assert rows(past_uri) == [1, 3]
    assert rows(parent_uri) == [1, 2]

    now = create_branch(api, project_id, name="fake-now", parent_id=past["branch"]["id"])
    assert rows(uri(api, project_id, now["branch"]["id"])) == [1, 3]  # a branch of a point-in-time branch
    # the parent wrote no WAL since the last copy of it: the copy at that time again must not wait for it
    again = create_branch(api, project_id, name="fake-again", parent_timestamp=then)
    assert rows(uri(api, project_id, again["branch"]["id"])) == [1]
    assert api.delete(f"/projects/{project_id}").status_code == 200


def test_role_passwords_are_real_revealed_and_rotated(api: httpx.Client, project: dict[str, Any]) -> None:
    project_id = project["project"]["id"]
    branch_id = project["branch"]["id"]
    base = f"/projects/{project_id}/branches/{branch_id}"
    created = api.post(f"{base}/roles", json={"role": {"name": "fake_app"}})
    assert created.status_code == 201
    first = created.json()["role"]["password"]
    wait(api, project_id, created.json()["operations"])
    database = api.post(
        f"{base}/databases", json={"database": {"name": "fake_app_db", "owner_name": "fake_app"}}
    )
    assert database.status_code == 201
    wait(api, project_id, database.json()["operations"])

    assert api.get(f"{base}/roles/fake_app/reveal_password").json() == {"password": first}
    assert "password" not in api.get(f"{base}/roles/fake_app").json()["role"]
    old_uri = uri(api, project_id, branch_id, role="fake_app").replace("/neondb?", "/fake_app_db?")
    with psycopg.connect(old_uri) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("fake_app",)

    reset = api.post(f"{base}/roles/fake_app/reset_password")
    assert reset.status_code == 200
    second = reset.json()["role"]["password"]
    assert second != first
    wait(api, project_id, reset.json()["operations"])
    assert api.get(f"{base}/roles/fake_app/reveal_password").json() == {"password": second}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(old_uri).close()
    new_uri = uri(api, project_id, branch_id, role="fake_app").replace("/neondb?", "/fake_app_db?")
    with psycopg.connect(new_uri) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("fake_app_db",)

    owner = api.delete(f"{base}/roles/fake_app")
    assert owner.status_code == 400 and "fake_app_db" in owner.json()["message"]
    assert api.post(f"{base}/roles", json={"role": {"name": "pg_monitor"}}).status_code == 400
    assert api.post(f"{base}/roles", json={"role": {"name": "fake_app"}}).status_code == 409
    assert api.get(f"{base}/roles/nobody/reveal_password").status_code == 404


def test_databases_and_roles_are_made_renamed_and_dropped_for_real(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    project_id = project["project"]["id"]
    branch_id = project["branch"]["id"]
    base = f"/projects/{project_id}/branches/{branch_id}"

    def done(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert answer.status_code == status, answer.text
        wait(api, project_id, answer.json()["operations"])
        return answer.json()

    first = done(api.post(f"{base}/roles", json={"role": {"name": "fake_first"}}), 201)["role"]
    second = done(api.post(f"{base}/roles", json={"role": {"name": "fake_second"}}), 201)["role"]
    done(
        api.post(f"{base}/databases", json={"database": {"name": "fake_db", "owner_name": "fake_first"}}), 201
    )
    assert (
        api.post(
            f"{base}/databases", json={"database": {"name": "fake_db", "owner_name": "fake_first"}}
        ).status_code
        == 409
    )
    assert (
        api.post(
            f"{base}/databases", json={"database": {"name": "other", "owner_name": "nobody"}}
        ).status_code
        == 400
    )
    assert (
        api.post(
            f"{base}/databases", json={"database": {"name": "postgres", "owner_name": "fake_first"}}
        ).status_code
        == 400
    )

    renamed = done(
        api.patch(
            f"{base}/databases/fake_db",
            json={"database": {"name": "fake_renamed", "owner_name": "fake_second"}},
        )
    )["database"]
    assert (renamed["name"], renamed["owner_name"]) == ("fake_renamed", "fake_second")
    assert api.get(f"{base}/databases/fake_db").status_code == 404
    port = URI.match(uri(api, project_id, branch_id))["port"]
    as_second = f"postgresql://fake_second:{second['password']}@127.0.0.1:{port}/fake_renamed?sslmode=disable"
    with psycopg.connect(as_second) as connection:
        owner = connection.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == ("fake_second",)

    done(api.delete(f"{base}/databases/fake_renamed"))
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(as_second).close()
    assert api.delete(f"{base}/databases/fake_renamed").status_code == 204

    done(api.delete(f"{base}/roles/fake_first"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            f"postgresql://fake_first:{first['password']}@127.0.0.1:{port}/neondb?sslmode=disable"
        ).close()
    assert api.get(f"{base}/roles/fake_first").status_code == 404
    assert [r["name"] for r in api.get(f"{base}/roles").json()["roles"]].count("fake_second") == 1
    done(api.delete(f"{base}/roles/fake_second"))


def test_endpoints_keep_neons_rules(api: httpx.Client, project: dict[str, Any]) -> None:
    project_id = project["project"]["id"]
    endpoint = project["endpoints"][0]
    second = api.post(
        f"/projects/{project_id}/endpoints",
        json={"endpoint": {"branch_id": project["branch"]["id"], "type": "read_write"}},
    )
    assert second.status_code == 409
    path = f"/projects/{project_id}/endpoints/{endpoint['id']}"
    inverted = api.patch(
        path, json={"endpoint": {"autoscaling_limit_min_cu": 4, "autoscaling_limit_max_cu": 1}}
    )
    assert inverted.status_code == 400
    too_short = api.patch(path, json={"endpoint": {"suspend_timeout_seconds": 30}})
    assert too_short.status_code == 400
    below = api.patch(path, json={"endpoint": {"autoscaling_limit_min_cu": 0.1}})
    assert below.status_code == 400  # the document's ComputeUnit minimum

    changed = api.patch(
        path,
        json={
            "endpoint": {
                "autoscaling_limit_min_cu": 0.5,
                "autoscaling_limit_max_cu": 3,
                "suspend_timeout_seconds": 600,
            }
        },
    )
    assert changed.status_code == 200
    wait(api, project_id, changed.json()["operations"])
    read = api.get(path).json()["endpoint"]
    assert (
        read["autoscaling_limit_min_cu"],
        read["autoscaling_limit_max_cu"],
        read["suspend_timeout_seconds"],
    ) == (
        0.5,
        3,
        600,
    )
    reader = api.post(
        f"/projects/{project_id}/endpoints",
        json={"endpoint": {"branch_id": project["branch"]["id"], "type": "read_only"}},
    )
    assert reader.status_code == 201
    wait(api, project_id, reader.json()["operations"])
    read_only = uri(api, project_id, project["branch"]["id"], endpoint_id=reader.json()["endpoint"]["id"])
    with psycopg.connect(read_only) as connection, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connection.execute("CREATE TABLE written (v int)")
    listed = api.get(f"/projects/{project_id}/branches/{project['branch']['id']}/endpoints").json()
    assert {e["id"] for e in listed["endpoints"]} == {endpoint["id"], reader.json()["endpoint"]["id"]}
    deleted = api.delete(f"/projects/{project_id}/endpoints/{reader.json()['endpoint']['id']}")
    assert deleted.status_code == 200
    wait(api, project_id, deleted.json()["operations"])
    assert (
        api.delete(f"/projects/{project_id}/endpoints/{reader.json()['endpoint']['id']}").status_code == 204
    )


def test_projects_are_listed_by_search_and_cursor(api: httpx.Client, project: dict[str, Any]) -> None:
    found = api.get("/projects", params={"search": "fake-shared"}).json()
    assert project["project"]["id"] in [p["id"] for p in found["projects"]]
    everything = api.get("/projects", params={"limit": 400}).json()["projects"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = api.get("/projects", params=params).json()
        if not page["projects"]:
            break
        assert len(page["projects"]) == 1
        seen += [p["id"] for p in page["projects"]]
        cursor = page["pagination"]["cursor"]
    assert seen == [p["id"] for p in everything]
    assert api.get("/projects", params={"search": "no-such-project-name"}).json()["projects"] == []


def test_deleting_a_project_stops_its_servers_and_removes_their_files(
    fake_neon: Any, api: httpx.Client
) -> None:
    body = create_project(api, "fake-doomed")
    project_id = body["project"]["id"]
    child = create_branch(api, project_id, name="fake-doomed-child")
    ports = [
        int(URI.match(uri(api, project_id, branch_id))["port"])
        for branch_id in (body["branch"]["id"], child["branch"]["id"])
    ]
    assert not any(refuses(port) for port in ports)
    folder = fake_neon.folder / project_id
    assert folder.is_dir()

    assert api.delete(f"/projects/{project_id}").status_code == 200
    assert all(refuses(port) for port in ports)
    assert not folder.exists()
    assert api.get(f"/projects/{project_id}").status_code == 404


KILLED = """
import sys, httpx
from skyrig_neon.fake import FakeNeon
neon = FakeNeon(operation_delay=0.01).start()
api = httpx.Client(base_url=neon.api_url, headers={"Authorization": f"Bearer {neon.api_key}"})
body = api.post("/projects", json={"project": {"name": "fake-killed"}}).json()
neon.settle()
print(neon.folder, body["connection_uris"][0]["connection_uri"], flush=True)
sys.stdin.read()
"""


def test_no_server_outlives_a_killed_test_process() -> None:
    import subprocess
    import sys
    from pathlib import Path

    process = subprocess.Popen(
        [sys.executable, "-c", KILLED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        folder, connection_uri = process.stdout.readline().split()
        port = int(URI.match(connection_uri)["port"])
        assert not refuses(port) and Path(folder).is_dir()
    finally:
        process.kill()
        process.wait(10)
    deadline = time.monotonic() + 10
    while not (refuses(port) and not Path(folder).exists()):
        assert time.monotonic() < deadline, "the branch server outlived its FakeNeon's process"
        time.sleep(0.1)
