"""Finding the app's code that the model names: handlers, endpoints and message types."""

from __future__ import annotations

import importlib
from typing import Any


def load_reference(reference: str) -> Any:
    """The object ``"package.module:Name"`` (or ``"package.module:Class.method"``) names, imported now."""
    module, _, qualname = reference.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found
