"""``fedrobust new-app DIR``: a Flower App folder that ``flwr run DIR`` runs with an installed fedrobust.

The folder holds one ``pyproject.toml``: the App's components are fedrobust's own
(:mod:`fedrobust.run.app`), so it needs no code of its own, and its ``[tool.flwr.app.config]``
lists every run key (:class:`~fedrobust.config.RunConfig`) with its help as a comment, at its
default or at the value given to ``new-app``. Edit the keys, or override them per run with
``flwr run DIR --run-config "strategy='bgmd' rounds=5"``.

Examples
--------
>>> import tomllib
>>> text = app_pyproject("my-app", {"strategy": "bgmd", "rounds": 5})
>>> app = tomllib.loads(text)["tool"]["flwr"]["app"]
>>> app["components"]["serverapp"], app["config"]["strategy"], app["config"]["rounds"]
('fedrobust.run.app:server_app', 'bgmd', 5)
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from ..config import ConfigError, RunConfig, key_of

__all__ = ["app_pyproject", "write_app"]

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's


def app_pyproject(name: str, values: Mapping[str, Any] | None = None) -> str:
    """The ``pyproject.toml`` of a Flower App named ``name`` running fedrobust with ``values``.

    Parameters
    ----------
    name : str
        The App's (and project's) name: lower-case letters, digits and ``-``, starting with a letter.
    values : mapping, optional
        Run keys → values that differ from the defaults (validated as :class:`RunConfig`).

    Raises
    ------
    ConfigError
        A bad name or an invalid run key or value.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"app name {name!r}: use lower-case letters, digits and '-', starting with a letter")
    config = RunConfig.from_mapping(dict(values or {})).to_dict()
    lines = [
        f"# A Flower App running fedrobust {__version__} (written by `fedrobust new-app`).",
        "#   flwr run .                                 # one simulation with the keys below",
        "#   flwr run . --run-config \"rounds=5 strategy='bgmd'\"",
        "#   flwr run . --federation-config \"num-supernodes=10\"   # one SuperNode per client (num-clients)",
        "# Every key is a fedrobust run key: `fedrobust run --help` and `fedrobust list` describe them.",
        "",
        "[build-system]",
        'requires = ["hatchling"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        f"name = {json.dumps(name)}",
        'version = "1.0.0"',
        f'description = "fedrobust {config["strategy"]} on {config["dataset"]} ({config["model"]})"',
        f'dependencies = ["fedrobust=={__version__}"]',
        "",
        "[tool.hatch.build.targets.wheel]",
        'packages = ["."]',
        "",
        "[tool.flwr.app]",
        'publisher = "fedrobust"',
        "",
        "[tool.flwr.app.components]",
        'serverapp = "fedrobust.run.app:server_app"',
        'clientapp = "fedrobust.run.app:client_app"',
        "",
        "[tool.flwr.app.config]",
    ]
    for f in dataclasses.fields(RunConfig):
        key = key_of(f.name)
        lines += textwrap.wrap(f.metadata["help"], 98, initial_indent="# ", subsequent_indent="# ")
        lines.append(f"{key} = {_toml_value(config[key])}")
    return "\n".join(lines) + "\n"


def write_app(folder: str | Path, values: Mapping[str, Any] | None = None, *, name: str | None = None) -> Path:
    """Write :func:`app_pyproject` into ``folder`` (created; it must not hold a ``pyproject.toml`` yet).

    ``name`` defaults to the folder's name, lower-cased, with ``_`` and spaces as ``-``.
    Returns the file written.
    """
    folder = Path(folder)
    name = re.sub(r"[_\s]+", "-", folder.resolve().name.lower()) if name is None else name
    text = app_pyproject(name, values)
    target = folder / "pyproject.toml"
    if target.exists():
        raise ConfigError(f"{target} exists already; choose a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
