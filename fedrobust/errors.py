"""The errors fedrobust reports to its users in one line (a leaf module: it imports nothing)."""

from __future__ import annotations

__all__ = ["ConfigError", "RunStopped"]


class ConfigError(ValueError):
    """A run configuration is invalid; the message has one line per problem."""


class RunStopped(Exception):
    """Raised in the server thread by a strategy (or a grid) that was stopped after an interrupt."""
