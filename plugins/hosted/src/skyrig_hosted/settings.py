"""Settings of the hosted provider: ``[env.NAME.hosted]`` in ``skyrig.toml``.

The app's token is not among them: it comes from the environment variable ``SKYRIG_HOSTED_TOKEN`` only,
never from ``skyrig.toml`` (which is committed and read by everyone who reads the code).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

TOKEN_VARIABLE = "SKYRIG_HOSTED_TOKEN"
"""The environment variable that holds the token: the app's (made by the host's admin) on the applying
machine, the environment's runtime token in the services the host runs (their data plane reads their
credentials with it)."""

API_PREFIX = "/v1"
"""Where the host serves its API under its address."""


class HostedSettings(BaseModel):
    """Where the host is, and how patiently to talk to it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://\S+$")
    """The host's API, as ``skyrig-hosted serve`` prints it (``https://host.example.com/v1``; the
    ``/v1`` may be left out)."""
    max_attempts: int = Field(4, ge=1, le=20)
    """Attempts of each read on 5xx answers and unreachable hosts, before skyrig's own retries."""
    wait_delay: float = Field(0.5, gt=0, le=60)
    """Seconds between two attempts (growing with each)."""
    timeout: float = Field(60.0, gt=0, le=600)
    """Seconds one request may take."""
    deploy: bool = True
    """Deploy the services after each apply (the app's source and each service's runtime config), which
    the host then runs. ``false``: the services and their addresses are provisioned and nothing runs
    them (the conformance suite drives the app's subscriptions with consumers of its own)."""

    @field_validator("url")
    @classmethod
    def _api(cls, value: str) -> str:
        return api_url(value)


def api_url(url: str) -> str:
    """``url`` as the API's base: without a trailing slash, ending with ``/v1``."""
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX
