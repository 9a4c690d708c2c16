"""The SDK's JsonApiClient against scripted answers (httpx's MockTransport, no server): the request it
makes, what it counts, what it retries, how statuses become skyrig's errors, and the hooks a provider
overrides."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from skyrig.provider import (
    JsonApiClient,
    NotFound,
    ProviderError,
    ThrottledError,
    TransientError,
)

httpx = pytest.importorskip("httpx")

URL = "https://api.example/v1"


class Conflict(ProviderError):
    """The example API's 409."""


class ExampleClient(JsonApiClient):
    api_name = "Example"
    credential = "the token in EXAMPLE_TOKEN"
    calls: Counter[str] = Counter()
    conflict = Conflict


class NestedClient(ExampleClient):
    """An API answering ``{"error": {...}}``, not retrying 429, waiting out 423 twice."""

    retry_throttled = False

    def error_body(self, data: Any) -> Any:
        return data.get("error")

    def waited(self, status: int, attempt: int, elapsed: float) -> bool:
        return status == 423 and attempt <= 2


Answer = Callable[[Any], Any]


def scripted(*responses: Any) -> tuple[Answer, list[Any]]:
    """An answerer giving ``responses`` in turn (the last one again after them), and the requests seen."""
    seen: list[Any] = []

    def answer(request: Any) -> Any:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return answer, seen


def client(answer: Answer, kind: type[ExampleClient] = ExampleClient) -> ExampleClient:
    return kind(URL, "the-token", max_attempts=3, wait_delay=0.001, transport=httpx.MockTransport(answer))


def error(status: int, message: str = "no", code: str = "X") -> Any:
    return httpx.Response(status, json={"code": code, "message": message})


def test_the_request_fills_the_template_sends_query_and_body_and_counts_by_template() -> None:
    answer, seen = scripted(httpx.Response(200, json={"ok": True}), httpx.Response(204))
    made = client(answer)
    before = ExampleClient.calls["POST /things/{name}"]
    got = made.request(
        "POST", "/things/{name}", params={"deep": True, "skip": None, "n": 2}, body={"a": 1}, name="a b/c"
    )
    assert got == {"ok": True}
    request = seen[0]
    assert request.url.raw_path == b"/v1/things/a%20b%2Fc?deep=true&n=2"
    assert request.headers["authorization"] == "Bearer the-token"
    assert request.read() == b'{"a":1}'
    assert made.request("DELETE", "/things/{name}", name="x") == {}, "an empty answer is {}"
    assert ExampleClient.calls["POST /things/{name}"] == before + 1
    assert ExampleClient.mutating_calls(Counter({"GET /a": 2, "PUT /b": 1})) == Counter({"PUT /b": 1})
    assert "the-token" not in repr(made) and URL in repr(made)


def test_reads_are_retried_on_5xx_and_transport_errors_mutations_on_503_only() -> None:
    answer, seen = scripted(error(500), error(502), httpx.Response(200, json={"id": "t"}))
    assert client(answer).request("GET", "/things") == {"id": "t"}
    assert len(seen) == 3

    answer, seen = scripted(error(500))
    with pytest.raises(TransientError, match=r"Example POST /things: 500 no \(X\)"):
        client(answer).request("POST", "/things")
    assert len(seen) == 1, "a mutation answered 500 may have happened: not retried"

    answer, seen = scripted(error(503), httpx.Response(201, json={}))
    client(answer).request("POST", "/things")
    assert len(seen) == 2, "503: the mutation was not taken, asked again"

    def unreachable(request: Any) -> Any:
        seen.append(request)
        raise httpx.ConnectError("refused", request=request)

    seen = []
    with pytest.raises(TransientError, match=f"Example GET /things: cannot reach {URL}"):
        client(unreachable).request("GET", "/things")
    assert len(seen) == 3


def test_throttling_is_retried_with_retry_after_unless_the_client_leaves_it_to_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    throttled = httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "slow"})
    answer, seen = scripted(throttled, httpx.Response(200, json={}))
    client(answer).request("POST", "/things")
    assert len(seen) == 2 and slept == [2.0]

    answer, seen = scripted(throttled)
    with pytest.raises(ThrottledError, match="throttled: slow"):
        client(answer).request("GET", "/things")
    assert len(seen) == 3

    answer, seen = scripted(throttled)
    with pytest.raises(ThrottledError):
        client(answer, NestedClient).request("GET", "/things")
    assert len(seen) == 1, "retry_throttled = False: the engine's backoff retries it"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, NotFound), (409, Conflict), (400, ProviderError), (401, ProviderError), (403, ProviderError)],
)
def test_statuses_become_errors_naming_the_call_and_never_the_token(status: int, kind: type) -> None:
    answer, _ = scripted(error(status, "refused here"))
    with pytest.raises(kind) as raised:
        client(answer).request("GET", "/things/{name}", name="t")
    text = str(raised.value)
    assert "Example GET /things/{name}" in text and "refused here (X)" in text and "the-token" not in text
    assert ("check the token in EXAMPLE_TOKEN" in text) == (status in (401, 403))


def test_the_hooks_where_the_error_stands_and_answers_waited_out() -> None:
    nested = httpx.Response(400, json={"error": {"code": "bad", "message": "nested text"}})
    answer, _ = scripted(nested)
    with pytest.raises(ProviderError, match=r"400 nested text \(bad\)"):
        client(answer, NestedClient).request("GET", "/things")

    answer, _ = scripted(httpx.Response(400, text="plain words"))
    with pytest.raises(ProviderError, match="400 plain words"):
        client(answer).request("GET", "/things")

    answer, seen = scripted(error(423), error(423), error(423))
    with pytest.raises(ProviderError, match="423"):
        client(answer, NestedClient).request("PUT", "/things")
    assert len(seen) == 3, "waited out twice, then an error"
