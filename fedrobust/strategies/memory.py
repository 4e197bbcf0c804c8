"""The server's aggregation memory: an estimate per strategy, and the ``max-server-memory-mb`` check.

A round stacks the n accepted replies of length L (the model's d, or C-RSA's l coordinates) into
one (n, L) float32 matrix and aggregates it. What the server then holds for aggregation is
estimated as

    memory_factor · 4nL  +  memory_vectors · 4d  +  state

- ``memory_factor`` (a class attribute of each strategy, ``memory_factor_for(cfg)``): the peak of
  ``aggregate_fit`` in units of the stacked matrix, the matrix included (1.0: no copy of it; 1 + rho
  for the block-GM strategies, which copy the k selected columns; measured per strategy by
  ``scripts/bench_server_memory.py``, see docs/performance.md);
- ``memory_vectors``: d-sized temporaries (the aggregate, the new model, BGMD's scores, ...),
  which matter only for small n;
- ``state``: what the strategy keeps between rounds (``x``; BGMD's mean memory, one d-vector;
  FL-BGMD's per-client residual rows, ``num-clients`` x d floats).

The stacked matrix's buffer is kept from one round to the next and stacked into again (a fresh
one would cost the first touch of all its pages), so it is held between rounds, during the central
evaluation too; the peak of a round is the same.

The replies Flower holds while the server aggregates (at most one more n x L float32 matrix for
uncompressed messages, far less for compressed ones) and the process's own baseline (Python,
torch, the test split) come on top and are not counted.

With ``max-server-memory-mb`` > 0 a strategy whose estimate for ``clients-per-round`` replies
exceeds the limit is refused when it is built (a :class:`ServerMemoryError`, a
:class:`~fedrobust.core.errors.ConfigError`, so ``fedrobust run`` and ``fedrobust.simulate`` stop before
Ray starts). A round that receives more replies than that (possible only through direct calls of
``aggregate_fit``) rejects all of them with the same reason instead of stacking them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig


__all__ = ["ServerMemoryError", "server_memory_estimate", "server_memory_problem", "check_server_memory"]

_MB = 2**20


class ServerMemoryError(ConfigError):
    """The server's aggregation would need more memory than ``max-server-memory-mb`` allows."""


def server_memory_estimate(strategy_cls: Any, cfg: RunConfig, d: int, n: int | None = None) -> dict[str, int]:
    """Bytes the server needs to aggregate ``n`` replies (default ``clients-per-round``) of a model of ``d``.

    Parameters
    ----------
    strategy_cls : type
        A :class:`~fedrobust.strategies.VectorStrategy` subclass (its ``memory_factor_for``,
        ``memory_vectors``, ``reply_length_for`` and ``state_bytes_for``).
    cfg : RunConfig
        The run.
    d : int
        The model's number of parameters.
    n : int, optional
        Replies stacked; default ``cfg.clients_per_round``.

    Returns
    -------
    dict
        ``matrix`` (4nL), ``aggregation`` (``memory_factor`` x matrix + the d-vectors, + 4nd for a
        ``pre-aggregation``'s rows), ``state``
        and ``total`` (aggregation + state), in bytes.

    Examples
    --------
    >>> from fedrobust.strategies import STRATEGIES
    >>> from fedrobust.config import RunConfig
    >>> est = server_memory_estimate(STRATEGIES["mean-sgd"], RunConfig(clients_per_round=10), d=1000)
    >>> est["matrix"], est["total"]
    (40000, 60000)
    """
    n = cfg.clients_per_round if n is None else int(n)
    length = int(strategy_cls.reply_length_for(cfg, d))
    matrix = 4 * n * length
    aggregation = int(strategy_cls.memory_factor_for(cfg) * matrix) + 4 * int(strategy_cls.memory_vectors) * d
    if str(getattr(cfg, "pre_aggregation", "")).strip(" ,"):  # the pre-aggregated (n, d) rows
        aggregation += 4 * n * d
    state = int(strategy_cls.state_bytes_for(cfg, d))
    return {"matrix": matrix, "aggregation": aggregation, "state": state, "total": aggregation + state}


def server_memory_problem(strategy_cls: Any, cfg: RunConfig, d: int, n: int | None = None) -> str | None:
    """Why aggregating ``n`` replies would exceed ``max-server-memory-mb`` (None: within it, or no limit)."""
    limit = cfg.max_server_memory_mb
    if not limit:
        return None
    n = cfg.clients_per_round if n is None else int(n)
    est = server_memory_estimate(strategy_cls, cfg, d, n)
    if est["total"] <= limit * _MB:
        return None
    length = strategy_cls.reply_length_for(cfg, d)
    text = (
        f"max-server-memory-mb={limit:g}: {strategy_cls.name} needs about {est['total'] / _MB:,.1f} MB to aggregate "
        f"{n} replies of {length:,} values (the {est['matrix'] / _MB:,.1f} MB float32 matrix x "
        f"{strategy_cls.memory_factor_for(cfg):g} plus {strategy_cls.memory_vectors} vectors of d={d:,}, and "
        f"{est['state'] / _MB:,.1f} MB of server state); lower clients-per-round, use a smaller model or raise "
        "max-server-memory-mb"
    )
    rows = getattr(strategy_cls, "residual_rows_bytes", None)
    if rows is not None and rows(cfg, d):
        text += (
            f" (memory='mean' keeps one residual vector of {4 * d / _MB:,.1f} MB in place of "
            f"{rows(cfg, d) / _MB:,.1f} MB of per-client rows)"
        )
    return text


def check_server_memory(strategy_cls: Any, cfg: RunConfig, d: int, n: int | None = None) -> None:
    """Raise :class:`ServerMemoryError` when :func:`server_memory_problem` finds one.

    Examples
    --------
    >>> from fedrobust.strategies import STRATEGIES
    >>> from fedrobust.config import RunConfig
    >>> cfg = RunConfig(strategy="bgmd", clients_per_round=10, max_server_memory_mb=1)
    >>> check_server_memory(STRATEGIES["bgmd"], cfg, d=1000)
    >>> check_server_memory(STRATEGIES["bgmd"], cfg, d=100_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fedrobust.strategies.memory.ServerMemoryError: max-server-memory-mb=1: bgmd needs about 6.5 MB to aggregate ...
    """
    problem = server_memory_problem(strategy_cls, cfg, d, n)
    if problem is not None:
        raise ServerMemoryError(problem)
