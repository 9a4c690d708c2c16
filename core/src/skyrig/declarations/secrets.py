"""Secrets: values the app reads at runtime, set out of band and never stored by skyrig."""

from __future__ import annotations

from skyrig.declarations._base import Declaration, Spec
from skyrig.declarations.types import Name


class SecretSpec(Spec):
    """Settings of a :class:`Secret`."""

    name: Name


class Secret(Declaration):
    """A secret value, set out of band for each environment (never in code, state or plans) and read
    as ``secret.value``::

    stripe_key = Secret("stripe-api-key")
    """

    kind = "secret"
    spec_model = SecretSpec
    operations = {"value": "read"}

    def __init__(self, name: str) -> None:
        self._declare(name=name)

    @property
    def value(self) -> str:
        """The secret's value in this environment, from the provider's secret store (not cached by skyrig)."""
        from skyrig.runtime.binding import client

        return client(self, "read").value(self.name)
