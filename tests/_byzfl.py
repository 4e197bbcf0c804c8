"""ByzFL 0.0.11's aggregator, pre-aggregator and attack modules, loaded without its package ``__init__``.

ByzFL's package ``__init__`` imports its benchmark and training code (torchvision and more), so the
module files the cross-checks need (``utils/misc.py``, ``utils/torch_tools.py``, ``aggregators/*.py``,
``attacks/attacks.py``, which need only numpy, scipy and torch) are loaded from the installed
distribution under stand-in parent packages, and sys.modules is restored afterwards. ``./dev``
installs it (``pip install --no-deps byzfl==0.0.11``); without it the calling test module is skipped.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import types
from pathlib import Path

import pytest

VERSION = "0.0.11"
INSTALL = f"pip install --no-deps byzfl=={VERSION}"
MODULES = ("utils.torch_tools", "utils.misc", "aggregators.aggregators", "aggregators.preaggregators", "attacks.attacks")


def load_byzfl() -> types.SimpleNamespace:
    """ByzFL's modules for a test module; skips the calling module when ByzFL 0.0.11 is absent."""
    try:
        return load_byzfl_modules()
    except LookupError as error:
        pytest.skip(f"{error} (the cross-check needs it: {INSTALL})", allow_module_level=True)


def load_byzfl_modules() -> types.SimpleNamespace:
    """ByzFL's modules (``.agg``, ``.pre``, ``.attacks``); LookupError when ByzFL 0.0.11 is absent."""
    try:
        dist = importlib.metadata.distribution("byzfl")
    except importlib.metadata.PackageNotFoundError:
        raise LookupError("byzfl is not installed") from None
    if dist.version != VERSION:
        raise LookupError(f"byzfl {dist.version} is installed, not {VERSION}")
    root = Path(str(dist.locate_file("byzfl")))
    loaded = {}
    with pytest.MonkeyPatch.context() as mp:
        for pkg, folder in (("byzfl", root), ("byzfl.utils", root / "utils"), ("byzfl.aggregators", root / "aggregators"),
                            ("byzfl.attacks", root / "attacks")):
            stub = types.ModuleType(pkg)
            stub.__path__ = [str(folder)]
            mp.setitem(sys.modules, pkg, stub)
        for name in MODULES:
            full = f"byzfl.{name}"
            spec = importlib.util.spec_from_file_location(full, root / (name.replace(".", "/") + ".py"))
            module = importlib.util.module_from_spec(spec)
            mp.setitem(sys.modules, full, module)
            parent, _, child = full.rpartition(".")
            setattr(sys.modules[parent], child, module)
            spec.loader.exec_module(module)
            if name.startswith("aggregators."):  # what `from byzfl.aggregators import Average` needs
                for key, value in vars(module).items():
                    if isinstance(value, type):
                        setattr(sys.modules["byzfl.aggregators"], key, value)
            loaded[name] = module
    agg = types.SimpleNamespace(**vars(loaded["aggregators.aggregators"]))
    pre = types.SimpleNamespace(**vars(loaded["aggregators.preaggregators"]))
    return types.SimpleNamespace(attacks=loaded["attacks.attacks"], agg=agg, pre=pre)
