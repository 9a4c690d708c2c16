"""Errors a user can cause. The CLI prints them without a traceback and exits with their code."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: a message that says where and what, and a hint on what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text shown to the user."""
        text = f"error: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text
