"""The base of every declaration: a name, a validated spec, and what the static parser needs to know."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

ReferenceKind = Literal["topic", "function", "type"]


class DeclarationError(ValueError):
    """A declaration was given a value it does not accept (raised when the app is imported)."""


class Spec(BaseModel):
    """Validated settings of one declaration, as written in code, with defaults filled in.

    Strict: ``public="yes"`` is refused rather than coerced, exactly as the static parser refuses it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def spec_errors(error: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` pairs for a spec validation error, in a form fit for users."""
    pairs = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "value"
        message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        pairs.append((field, message))
    return pairs


class Declaration:
    """A piece of infrastructure declared in application code.

    Subclasses are the user-facing types (``Topic``, ``Bucket``, ...). Their ``__init__`` signature is the
    declaration's signature for the static parser too, so keep every parameter after the positional
    ones keyword-only.
    """

    kind: ClassVar[str]
    """The resource kind in the Application Model, e.g. ``"topic"`` (described in :mod:`skyrig.kinds`)."""
    spec_model: ClassVar[type[Spec]]
    """The pydantic model that validates the declaration's settings."""
    references: ClassVar[Mapping[str, ReferenceKind]] = {}
    """Parameters that take a code object (a topic, a function, a type) rather than a literal."""
    operations: ClassVar[Mapping[str, str]] = {}
    """Attributes used on the object in app code, mapped to the operation they perform."""
    metadata: ClassVar[frozenset[str]] = frozenset({"name", "spec", "kind"})
    """Attributes that read the declaration itself and need no access to the resource."""

    spec: Spec

    def _declare(self, **values: Any) -> None:
        try:
            self.spec = self.spec_model(**values)
        except ValidationError as error:
            name = values.get("name")
            details = "; ".join(f"{field}: {message}" for field, message in spec_errors(error))
            raise DeclarationError(f"{type(self).__name__}({name!r}): {details}") from None

    @property
    def name(self) -> str:
        """The declared name."""
        return self.spec.name  # type: ignore[attr-defined]

    @classmethod
    def all_operations(cls) -> frozenset[str]:
        """Every operation this kind supports (granted when a use cannot be narrowed statically)."""
        return frozenset(cls.operations.values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def qualified_name(obj: Any) -> str:
    """``"module:qualname"`` of a function or type, as the Application Model records it."""
    return f"{obj.__module__}:{obj.__qualname__}"
