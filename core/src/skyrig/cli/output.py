"""Console output: rich for people, plain JSON for machines."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def console() -> Console:
    """The console for normal output (stdout); colour only on a terminal, wide lines when piped."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON, or ``data`` itself when it is already JSON text."""
    text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=False)
    sys.stdout.write(text + "\n")
