"""Shared helpers of the Strategies II tests: the comparison script as a module, replies by hand."""

import importlib.util
from pathlib import Path

from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "compare_strategies_ii.py"


def load_script(path=SCRIPT):
    """A script under scripts/ as a module; by default compare_strategies_ii.py (its in-process engine)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reply(arrays, n=8, metrics=None, proxy=None):
    """A (proxy, FitRes) pair as a strategy's aggregate_fit receives it."""
    return (proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, dict(metrics or {})))
