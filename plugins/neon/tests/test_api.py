"""The Neon API client's rules, against scripted answers (httpx's MockTransport, no server): what is
retried and what is not, how Neon's errors become skyrig's, operations waited for, passwords dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from skyrig.provider import NotFound, ProviderError, ThrottledError, TransientError, UserError
from skyrig_neon.api import CALLS, Conflict, Connection, NeonClient, api_key

URL = "https://neon.example/api/v2"


def client(answer: Callable[[httpx.Request], httpx.Response], **options: Any) -> NeonClient:
    options = {"max_attempts": 3, "wait_delay": 0.001, "wait_timeout": 5.0, **options}
    return NeonClient(URL, "the-key", transport=httpx.MockTransport(answer), **options)


def scripted(*responses: httpx.Response) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """An answerer giving ``responses`` in turn (the last one again after them), and the requests seen."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        assert request.headers["authorization"] == "Bearer the-key"
        return responses[min(len(seen), len(responses)) - 1]

    return answer, seen


def error(status: int, message: str = "no") -> httpx.Response:
    return httpx.Response(status, json={"code": "X", "message": message})


def test_a_locked_project_is_waited_for_and_the_mutation_retried() -> None:
    answer, seen = scripted(
        error(423, "project is locked"), error(423), httpx.Response(200, json={"role": {}})
    )
    client(answer).request(
        "POST", "/projects/{project_id}/branches/{branch_id}/roles", project_id="p", branch_id="b"
    )
    assert len(seen) == 3


def test_what_is_retried_and_what_is_not() -> None:
    answer, seen = scripted(error(503), error(502), httpx.Response(200, json={"project": {"id": "p"}}))
    assert client(answer).project("p") == {"id": "p"}, "a read is retried on 5xx"
    assert len(seen) == 3

    answer, seen = scripted(error(500))
    with pytest.raises(TransientError, match="POST /projects"):
        client(answer).request("POST", "/projects", body={"project": {}})
    assert len(seen) == 1, "a mutation answered 500 may have happened: not retried by the client"

    answer, seen = scripted(error(429))
    with pytest.raises(ThrottledError):
        client(answer).project("p")
    assert len(seen) == 3

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientError, match="cannot reach"):
        client(unreachable).project("p")


@pytest.mark.parametrize(
    ("status", "kind"), [(404, NotFound), (409, Conflict), (400, ProviderError), (401, ProviderError)]
)
def test_errors_name_the_call_and_never_the_key(status: int, kind: type[Exception]) -> None:
    answer, _ = scripted(error(status, "refused here"))
    with pytest.raises(kind) as raised:
        client(answer).project("p")
    text = str(raised.value)
    assert "GET /projects/{project_id}" in text and "refused here" in text and "the-key" not in text
    if status == 401:
        assert "NEON_API_KEY" in text


def test_calls_are_counted_by_template() -> None:
    answer, _ = scripted(httpx.Response(200, json={"project": {"id": "p"}}))
    before = CALLS["GET /projects/{project_id}"]
    client(answer).project("one")
    client(answer).project("two")
    assert CALLS["GET /projects/{project_id}"] == before + 2


def test_a_mutation_returns_once_its_operations_finished_and_fails_with_them() -> None:
    operation = {"id": "0f0f", "project_id": "p", "action": "create_timeline"}
    answer, seen = scripted(
        httpx.Response(201, json={"branch": {"id": "b"}, "operations": [{**operation, "status": "running"}]}),
        httpx.Response(200, json={"operation": {**operation, "status": "running"}}),
        httpx.Response(200, json={"operation": {**operation, "status": "finished"}}),
    )
    made = client(answer).create_branch("p", {"branch": {"name": "x"}}, "branch x")
    assert made["branch"] == {"id": "b"} and seen[-1] == "GET /api/v2/projects/p/operations/0f0f"

    answer, _ = scripted(
        httpx.Response(201, json={"branch": {"id": "b"}, "operations": [{**operation, "status": "running"}]}),
        httpx.Response(200, json={"operation": {**operation, "status": "failed", "error": "disk full"}}),
    )
    with pytest.raises(ProviderError, match=r"branch x: .*create_timeline.*disk full"):
        client(answer).create_branch("p", {"branch": {"name": "x"}}, "branch x")


def test_passwords_are_dropped_and_the_key_is_in_no_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Connection.parse(
        "postgresql://app:s3cret@ep-a-pooler.us-east-2.aws.neon.tech/orders?sslmode=require"
    )
    assert (found.host, found.port, found.sslmode) == ("ep-a-pooler.us-east-2.aws.neon.tech", 5432, "require")
    assert "s3cret" not in repr(found)
    answer, _ = scripted(
        httpx.Response(201, json={"role": {"name": "app", "password": "s3cret"}, "operations": []})
    )
    made = client(answer)
    assert made.create_role("p", "b", "app", "role app") == {"name": "app"}
    assert "the-key" not in repr(made)

    monkeypatch.delenv("NEON_API_KEY", raising=False)
    with pytest.raises(UserError, match="NEON_API_KEY"):
        api_key()
