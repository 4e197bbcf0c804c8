"""The Flower App: ``server_app`` and ``client_app`` (the components ``pyproject.toml`` names).

``flwr run .`` loads the module-level apps, which read their :class:`~fedrobust.config.RunConfig`
from ``context.run_config`` (``[tool.flwr.app.config]`` plus ``--run-config`` overrides).
:func:`fedrobust.simulate` builds apps bound to a given config with :func:`make_server_app` and
:func:`make_client_app`.

- Server: the strategy named by ``strategy`` (:data:`fedrobust.strategies.STRATEGIES`), the
  model built from the run seed, centralised evaluation on the test split, and, when ``output``
  is set, the results JSON written after the last round.
- Client: the honest client for the strategy's protocol (:data:`fedrobust.clients.CLIENTS`) on
  the partition ``context.node_config["partition-id"]``, with its state in ``context.state``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from flwr.client import Client, ClientApp
from flwr.common import Context
from flwr.common.constant import PARTITION_ID_KEY
from flwr.server import ServerApp, ServerAppComponents, ServerConfig

from .clients import CLIENTS
from .config import RunConfig
from .evaluation import make_evaluate_fn
from .models import flat_params
from .results import RoundRecord, write_results
from .strategies import STRATEGIES, VectorStrategy
from .workload import build_model, client_data, load_splits

__all__ = ["make_strategy", "make_client", "make_server_app", "make_client_app", "server_app", "client_app"]

def make_strategy(cfg: RunConfig, on_round: Callable[[RoundRecord], None] | None = None) -> VectorStrategy:
    """The run's strategy, with x0 from the seeded model and evaluation on the test split.

    When ``cfg.output`` is set, the results JSON is written once the last round is recorded.
    """
    splits = load_splits(cfg)
    device = cfg.torch_device()
    model = build_model(cfg, splits).to(device)
    evaluate_fn = make_evaluate_fn(model, torch.from_numpy(splits.x_test), torch.from_numpy(splits.y_test))
    shapes = [tuple(p.shape) for p in model.parameters()]
    strategy: VectorStrategy

    def finish_round(record: RoundRecord) -> None:
        if on_round is not None:
            on_round(record)
        if cfg.output and record.round == cfg.rounds:
            write_results(cfg.output, strategy.results())

    strategy = STRATEGIES[cfg.strategy](cfg, flat_params(model), shapes, evaluate_fn=evaluate_fn, on_round=finish_round)
    return strategy


def make_client(cfg: RunConfig, context: Context) -> Client:
    """The honest client of this node: its partition, the run's model, the strategy's protocol."""
    if cfg.client_threads:
        torch.set_num_threads(cfg.client_threads)
    partition_id = int(context.node_config[PARTITION_ID_KEY])
    x, y = client_data(cfg, partition_id)
    client_cls = CLIENTS[STRATEGIES[cfg.strategy].protocol]
    client = client_cls(
        build_model(cfg), x, y, partition_id=partition_id, device=cfg.torch_device(), state=context.state
    )
    return client.to_client()


def make_server_app(
    cfg: RunConfig | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_strategy: Callable[[VectorStrategy], None] | None = None,
) -> ServerApp:
    """A ServerApp for ``cfg`` (None: read it from ``context.run_config``).

    ``on_round`` receives every finished round record; ``on_strategy`` receives the strategy once built
    (so an in-process caller can read its results after the run).
    """

    def server_fn(context: Context) -> ServerAppComponents:
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        strategy = make_strategy(run_cfg, on_round)
        if on_strategy is not None:
            on_strategy(strategy)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=run_cfg.rounds))

    return ServerApp(server_fn=server_fn)


def make_client_app(cfg: RunConfig | None = None) -> ClientApp:
    """A ClientApp for ``cfg`` (None: read it from ``context.run_config``)."""

    def client_fn(context: Context) -> Client:
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        return make_client(run_cfg, context)

    return ClientApp(client_fn=client_fn)


server_app = make_server_app()
client_app = make_client_app()
