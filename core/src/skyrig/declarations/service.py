"""Services: deployable units of an app."""

from __future__ import annotations

from skyrig.declarations._base import Declaration, Spec
from skyrig.declarations.types import Name, Reference


class ServiceSpec(Spec):
    """Settings of a :class:`Service`."""

    name: Name
    app: Reference
    """The ASGI application that serves the service, as ``"package.module:attribute"``."""


class Service(Declaration):
    """A deployable unit serving an ASGI application (FastAPI, Starlette, anything ASGI).

    The Python package that declares a service owns every resource declared inside it::

        service = Service("orders", app="orders.api:app")
    """

    kind = "service"
    spec_model = ServiceSpec

    def __init__(self, name: str, *, app: str) -> None:
        self._declare(name=name, app=app)
