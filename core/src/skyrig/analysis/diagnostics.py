"""Compiler-style diagnostics: ``path:line:col: error: message`` with a hint on what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from skyrig.errors import UserError


class Where(NamedTuple):
    """A place in a file, for diagnostics and (as ``file:line:column``) for the model."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in app code, at a place in a file."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def render(self) -> str:
        """``path:line:col: error: message`` and, on the next line, the hint."""
        text = f"{self.file}:{self.line}:{self.column}: error: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class Problems(list[Diagnostic]):
    """The diagnostics found so far in one run, in the order they are found."""

    def add(self, where: Where, message: str, hint: str | None = None) -> None:
        """Report ``message`` (and what to do about it) at ``where``."""
        self.append(Diagnostic(where.file, where.line, where.column, message, hint))


class AppCodeError(UserError):
    """App code declares something skyrig cannot accept; carries every diagnostic of the run."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics))
        count = len(self.diagnostics)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in app code")

    def render(self) -> str:
        lines = [d.render() for d in self.diagnostics]
        return "\n".join([*lines, f"found {self.message}; nothing was changed"])
