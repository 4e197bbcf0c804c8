"""User extensions: modules that register attacks, rules, strategies, datasets, models, compressors.

fedrobust knows a part by name once the module that registers it has been imported. Under Flower's
engine every client runs in its own process (a Ray worker, a SuperNode) that builds its parts by
name, so registering in the driver script is not enough. Extensions are imported wherever a run's
configuration is built (:class:`~fedrobust.config.RunConfig`), so in the CLI, in ``flwr run``'s
ServerApp and ClientApps, in the in-process engine and in every worker. Two ways to name them:

- an **entry point** of the group ``fedrobust.core.extensions`` in your package's metadata; every
  installed one is imported (the name is free, the value a module)::

      [project.entry-points."fedrobust.core.extensions"]
      my-attacks = "my_package.attacks"

- the run key ``extensions``: comma-separated module names, e.g. ``--extensions my_rules``
  (the modules must be importable in every process of the run).

An extension that fails to import stops the run before it starts, with one line naming it.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

__all__ = ["ENTRY_POINT_GROUP", "ExtensionError", "load_extensions"]

ENTRY_POINT_GROUP = "fedrobust.core.extensions"
"""The entry-point group whose modules fedrobust imports."""

_loaded: set[str] = set()
_entry_points_loaded = False


class ExtensionError(ImportError):
    """An extension module that cannot be imported; the message names it."""


def _import(module: str, origin: str) -> None:
    if module in _loaded:
        return
    try:
        importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - any failure of user code is reported in one line
        raise ExtensionError(f"{origin} {module!r} failed to import: {type(err).__name__}: {err}") from err
    _loaded.add(module)


def load_extensions(modules: str = "") -> list[str]:
    """Import every ``fedrobust.core.extensions`` entry point (once per process) and ``modules``.

    Parameters
    ----------
    modules : str
        Comma-separated module names (the run key ``extensions``); blanks are ignored.

    Returns
    -------
    list of str
        The modules imported so far in this process.

    Raises
    ------
    ExtensionError
        When one of them fails to import.

    Examples
    --------
    >>> "json" in load_extensions("json, ")
    True
    """
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _import(ep.value.split(":")[0].strip(), f"extension entry point {ep.name!r}:")
    for module in (m.strip() for m in modules.split(",")):
        if module:
            _import(module, "extension")
    return sorted(_loaded)
