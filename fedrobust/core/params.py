"""``name=value`` parameter strings: how an attack's or a compressor's own parameters travel in a
Flower run config, which holds only scalars (a leaf module)."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

__all__ = ["parse_params"]


def parse_params(text: str, key: str = "params") -> dict[str, Any]:
    """Parse ``"name=value,name=value"`` into keyword arguments (numbers and booleans converted).

    Flower run configs hold only scalars, so an attack's or a compressor's own parameters travel
    as one string.

    Examples
    --------
    >>> parse_params("scale=10, trigger=true,target=3,mode=x")
    {'scale': 10, 'trigger': True, 'target': 3, 'mode': 'x'}
    >>> parse_params("")
    {}
    >>> parse_params("scale")
    Traceback (most recent call last):
    ...
    fedrobust.core.errors.ConfigError: params: expected name=value pairs separated by commas, got 'scale'
    """
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name:
            raise ConfigError(f"{key}: expected name=value pairs separated by commas, got {item!r}")
        out[name.replace("-", "_")] = _scalar(raw)
    return out


def _scalar(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw
