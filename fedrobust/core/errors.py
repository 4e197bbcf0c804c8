"""The errors fedrobust reports to its users in one line (a leaf module: it imports nothing)."""

from __future__ import annotations

__all__ = ["ConfigError", "CheckpointError", "RunStopped"]


class ConfigError(ValueError):
    """A run configuration is invalid; the message has one line per problem."""


class CheckpointError(ConfigError):
    """A checkpoint file that cannot be used: damaged, truncated, of another format, or unreadable.

    A :class:`ConfigError`, so ``fedrobust run`` prints it as one ``fedrobust: error:`` line and
    exits 2; the message names the file (:mod:`fedrobust.run.checkpoint_file`).
    """


class RunStopped(Exception):
    """Raised in the server thread by a strategy (or a grid) that was stopped after an interrupt."""
