"""The errors skyrig's parts raise to each other: those a user can cause (:class:`UserError`, which the
CLI prints without a traceback and exits with its code), and a cloud's failures as a provider reports
them (:class:`ProviderError` and its transient kinds, which the engine retries)."""

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


class ProviderError(Exception):
    """A call to a cloud failed for good (bad request, permission denied): the node fails."""


class TransientError(ProviderError):
    """A call failed in a way that may pass (a 5xx, a timeout, not yet consistent): retried."""


class ThrottledError(TransientError):
    """The cloud asked us to slow down (429, RequestLimitExceeded): retried with a longer backoff."""
