"""The grids shipped with fedrobust, usable by name wherever a ``GRID.toml`` is expected.

``fedrobust sweep demo --output results/demo`` runs this package's ``demo.toml``; a name is the file's
path in this folder without ``.toml`` (``benchmark``, ``benchmark-full``, ``psi04/momentum``, ...).
They are package data, so an installed wheel has them too (``fedrobust list`` prints them).

Examples
--------
>>> "demo" in names() and "benchmark" in names()
True
>>> resolve("demo").name
'demo.toml'
>>> resolve("no-such-grid")
Traceback (most recent call last):
...
FileNotFoundError: no-such-grid: no such file, and no grid of that name ships with fedrobust (benchmark, benchmark-full, demo, psi04/long-cosine, psi04/momentum, psi04/whole-local-sets)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FOLDER", "names", "resolve", "describe"]

#: The folder of the shipped grids.
FOLDER = Path(__file__).resolve().parent


def names() -> list[str]:
    """The shipped grids' names, sorted (``psi04/momentum`` for ``psi04/momentum.toml``)."""
    return sorted(p.relative_to(FOLDER).with_suffix("").as_posix() for p in FOLDER.rglob("*.toml"))


def resolve(grid: str | Path) -> Path:
    """The file of ``grid``: an existing path as it is, else the shipped grid of that name.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a shipped grid (the message lists the shipped names).
    """
    path = Path(grid)
    if path.is_file():
        return path
    name = str(grid).removesuffix(".toml")
    if name in names():
        return FOLDER / f"{name}.toml"
    raise FileNotFoundError(
        f"{grid}: no such file, and no grid of that name ships with fedrobust ({', '.join(names())})"
    )


def describe(name: str) -> str:
    """What a shipped grid is for: its leading comment up to the first colon.

    >>> describe("demo")
    'The main demo (`fedrobust demo` runs exactly this grid, then its report)'
    """
    words: list[str] = []
    for line in resolve(name).read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or not text or text.startswith("fedrobust "):
            break
        words.append(text)
    return " ".join(words).split(": ")[0].rstrip(":")
