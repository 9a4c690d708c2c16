"""How the Azure provider talks to Azure: what a request is counted as, and Azure's errors in skyrig's
terms (no server needed)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from skyrig.provider import NotFound, ProviderError, ThrottledError, TransientError
from skyrig_azure.api import Conflict, GroupNotFound, call_key, is_mutating, translate

SUB = "/subscriptions/00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "url", "key"),
    [
        ("PUT", f"{SUB}/resourceGroups/app-dev?api-version=2024-03-01", "Microsoft.Resources/resourceGroups"),
        (
            "PUT",
            f"{SUB}/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/app?api-version=1",
            "Microsoft.Network/virtualNetworks/subnets",
        ),
        (
            "POST",
            f"{SUB}/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/s/listKeys?api-version=1",
            "Microsoft.Storage/storageAccounts/listKeys",
        ),
        (
            "PUT",
            f"{SUB}/resourceGroups/g/providers/Microsoft.ServiceBus/namespaces/n/topics/t/providers/"
            "Microsoft.Authorization/roleAssignments/0f2c?api-version=1",
            "Microsoft.Authorization/roleAssignments",
        ),
        (
            "GET",
            f"{SUB}/providers/Microsoft.Network/locations/eastus/operations/abc?api-version=1",
            "operations",
        ),
    ],
)
def test_a_request_is_counted_by_its_resource_type(method: str, url: str, key: str) -> None:
    assert call_key(method, "https://management.azure.com" + url) == (key, method)


def test_reads_and_key_listings_change_nothing() -> None:
    assert not is_mutating(("Microsoft.Network/virtualNetworks", "GET"))
    assert not is_mutating(("Microsoft.Storage/storageAccounts/listKeys", "POST"))
    assert is_mutating(("Microsoft.Network/virtualNetworks", "PUT"))
    assert is_mutating(("Microsoft.Web/sites/restart", "POST"))


def _http_error(status: int, code: str, message: str = "boom") -> HttpResponseError:
    class Response:
        status_code = status
        reason = "x"
        headers: dict[str, str] = {}

        def text(self) -> str:
            return f'{{"error": {{"code": "{code}", "message": "{message}"}}}}'

    return HttpResponseError(message=message, response=Response())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "ResourceNotFound", NotFound),
        (404, "ResourceGroupNotFound", GroupNotFound),
        (409, "Conflict", Conflict),
        (409, "AnotherOperationInProgress", TransientError),
        (412, "PreconditionFailed", Conflict),
        (429, "TooManyRequests", ThrottledError),
        (503, "ServiceUnavailable", TransientError),
        (403, "AuthorizationFailed", ProviderError),
        (400, "InvalidRequestContent", ProviderError),
    ],
)
def test_azure_errors_become_skyrig_errors_naming_the_call(status: int, code: str, kind: type) -> None:
    error = translate(_http_error(status, code), "network.virtual_networks.get")
    assert type(error) is kind
    assert "Azure network.virtual_networks.get" in str(error)


def test_permission_and_credential_errors_say_what_to_do() -> None:
    denied = translate(_http_error(403, "AuthorizationFailed"), "web.web_apps.get")
    assert "docs/providers/azure.md" in str(denied)
    missing = translate(ClientAuthenticationError("no token"), "web.web_apps.get")
    assert "no usable Azure credentials" in str(missing) and "az login" in str(missing)


def test_unreachable_azure_is_transient_and_other_errors_pass_through() -> None:
    assert isinstance(translate(ServiceRequestError("refused"), "x.y"), TransientError)
    assert isinstance(translate(ResourceNotFoundError("gone"), "x.y"), ProviderError)
    odd = ValueError("a bug")
    assert translate(odd, "x.y") is odd


def test_a_kept_listing_serves_the_next_read_only() -> None:
    from skyrig_azure.api import AzureClient
    from skyrig_azure.settings import AzureSettings

    settings = AzureSettings(subscription_id="00000000-0000-4000-8000-000000000001")
    client = AzureClient("shop", "dev", settings)
    fetched: list[str] = []

    def fetch() -> list[str]:
        fetched.append("listed")
        return ["now"]

    client.keep_listing("postgresql.servers", ["kept"])
    assert client.listing("postgresql.servers", fetch) == ["kept"] and fetched == []
    # a later read lists again: what changed since the kept listing shows
    assert client.listing("postgresql.servers", fetch) == ["now"] and fetched == ["listed"]
