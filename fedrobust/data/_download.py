"""Optional downloads through torchvision, imported lazily (never at module import time)."""

from __future__ import annotations

from pathlib import Path

#: fedrobust dataset name -> (torchvision dataset class name, sub-folder torchvision writes under root).
TORCHVISION_CLASSES = {
    "mnist": ("MNIST", "MNIST/raw"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}


def torchvision_download(name: str, root: Path) -> None:
    """Download dataset ``name`` into ``root`` with torchvision (train and test splits).

    Raises
    ------
    ValueError
        If ``name`` has no torchvision download.
    ImportError
        If torchvision cannot be imported; the message says which files to place where instead.
    """
    if name not in TORCHVISION_CLASSES:
        raise ValueError(f"download=True is only available for {sorted(TORCHVISION_CLASSES)}, not {name!r}")
    try:
        import torchvision.datasets as tvd
    except Exception as exc:  # noqa: BLE001 - any import failure means "no torchvision here"
        raise ImportError(
            f"download=True needs torchvision, which cannot be imported here ({type(exc).__name__}); "
            f"place the {name} files under {root} yourself and call again with download=False"
        ) from exc
    cls = getattr(tvd, TORCHVISION_CLASSES[name][0])
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        cls(root=str(root), train=train, download=True)
