"""Module paths from before the layered layout, kept importable.

``import fedrobust.sweep`` (say) gives the module :mod:`fedrobust.experiments.sweep` itself, the
same object, so code and configs written for the old paths keep working (``fedrobust.app:server_app``
in a Flower app's ``pyproject.toml``, ``monkeypatch.setattr("fedrobust.simulation.simulate", ...)``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

OLD_PATHS = {
    "fedrobust._checks": "fedrobust.core.checks",
    "fedrobust._registry": "fedrobust.core.registry",
    "fedrobust._rng": "fedrobust.core.rng",
    "fedrobust.errors": "fedrobust.core.errors",
    "fedrobust.params": "fedrobust.core.params",
    "fedrobust.ndarrays": "fedrobust.core.ndarrays",
    "fedrobust.validation": "fedrobust.core.validation",
    "fedrobust.extensions": "fedrobust.core.extensions",
    "fedrobust.paths": "fedrobust.core.paths",
    "fedrobust.processes": "fedrobust.core.processes",
    "fedrobust.results": "fedrobust.core.results",
    "fedrobust.workload": "fedrobust.run.build",
    "fedrobust.evaluation": "fedrobust.run.evaluation",
    "fedrobust.checkpoint": "fedrobust.run.checkpoint",
    "fedrobust.checkpoint_file": "fedrobust.run.checkpoint_file",
    "fedrobust.simulation": "fedrobust.run.simulation",
    "fedrobust.inprocess": "fedrobust.run.inprocess",
    "fedrobust.interrupt": "fedrobust.run.interrupt",
    "fedrobust.app": "fedrobust.run.app",
    "fedrobust.warm_executor": "fedrobust.run.warm_executor",
    "fedrobust.cellrecord": "fedrobust.experiments.cellrecord",
    "fedrobust.sweep": "fedrobust.experiments.sweep",
    "fedrobust.report": "fedrobust.experiments.report",
}
"""Old module path → the module it now is."""


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands out the new module object under it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in OLD_PATHS:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def create_module(self, spec):
        module = importlib.import_module(OLD_PATHS[spec.name])
        self._own_specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        # The new module is imported already. The import machinery has just set its __spec__ to
        # the old path's (which has no origin): give it its own back, or importlib.util.find_spec
        # of the new path (Flower's check of an App's components, say) would find no file.
        spec = module.__spec__
        module.__spec__ = self._own_specs.pop(spec.name, spec)


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())
