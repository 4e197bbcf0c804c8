"""Imports point down the layers of the package, and the configuration stays light.

The layers, lowest first (a module imports its own layer and the ones below, never above):

1. leaf helpers that import nothing of fedrobust's libraries (and the shipped grids);
2. the libraries: aggregators (with the rule objects), attacks, compression, optim, data, models;
3. servers and clients: strategies, clients, plugin strategies, results, evaluation, Message-API
   strategies and records;
4. the run configuration;
5. running: building a run, the Flower apps, checkpoints, the engines;
6. experiments (sweeps, reports) and deployment;
7. entry points: the CLI and the package's own ``__init__``.

The import graph is read from the source (``tests/_imports.py``), lazy imports inside functions
included: an import that runs only when a function is called still ties the layers together.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from _imports import graph

LAYERS: list[tuple[str, list[str]]] = [
    ("leaf", ["fedrobust.core", "fedrobust._version", "fedrobust._old_paths", "fedrobust.grids"]),
    ("libraries", ["fedrobust.aggregators", "fedrobust.attacks", "fedrobust.compression", "fedrobust.optim",
                   "fedrobust.data", "fedrobust.models"]),
    ("servers and clients", ["fedrobust.strategies", "fedrobust.clients", "fedrobust.plugin",
                             "fedrobust.messageapi.strategy", "fedrobust.messageapi.records",
                             "fedrobust.messageapi.grid"]),
    ("config", ["fedrobust.config"]),
    ("run", ["fedrobust.run", "fedrobust.messageapi"]),
    ("experiments and deployment", ["fedrobust.experiments", "fedrobust.deploy"]),
    ("entry points", ["fedrobust.cli", "fedrobust.__main__", "fedrobust"]),
]


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the longest prefix naming ``module``."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def test_every_module_has_a_layer():
    assert [m for m in graph() if layer_of(m) is None] == []


def test_imports_point_down():
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in sorted(graph().items())
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert upward == []


def test_no_import_circle_runs_through_the_config():
    edges = graph()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in edges.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    assert sorted(m for m in reachable("fedrobust.config") if "fedrobust.config" in reachable(m)) == []


def test_the_plugin_strategies_do_not_import_fedrobusts_strategies():
    edges = graph()
    assert sorted((m, t) for m, ts in edges.items() if m.startswith("fedrobust.plugin")
                  for t in ts if t.startswith("fedrobust.strategies")) == []


@pytest.mark.parametrize("module", ["fedrobust.config", "fedrobust.core.errors", "fedrobust.core.params", "fedrobust.core.extensions"])
def test_light_modules_import_neither_torch_nor_flower(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'flwr', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip()
    assert "torch" not in loaded and "flwr" not in loaded, loaded


@pytest.mark.parametrize("old", sorted(__import__("fedrobust._old_paths", fromlist=["OLD_PATHS"]).OLD_PATHS))
def test_old_module_paths_are_the_new_modules(old):
    """Code written for the flat layout keeps working: the old path is the same module object."""
    import importlib
    import importlib.util

    from fedrobust._old_paths import OLD_PATHS

    assert importlib.import_module(old) is importlib.import_module(OLD_PATHS[old])
    # and the new module keeps its own spec (Flower's App check finds its file by it)
    spec = importlib.util.find_spec(OLD_PATHS[old])
    assert spec.name == OLD_PATHS[old] and spec.origin.endswith(".py")


def test_the_flower_app_components_load_from_the_old_and_new_paths():
    import importlib

    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

    for path in ("fedrobust.app", "fedrobust.run.app"):
        module = importlib.import_module(path)
        assert isinstance(module.server_app, ServerApp) and type(module.client_app) is ClientApp
