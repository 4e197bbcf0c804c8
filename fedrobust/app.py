"""The Flower App: ``server_app`` and ``client_app`` (the components ``pyproject.toml`` names).

``flwr run .`` loads the module-level apps, which read their :class:`~fedrobust.config.RunConfig`
from ``context.run_config`` (``[tool.flwr.app.config]`` plus ``--run-config`` overrides).
:func:`fedrobust.simulate` builds apps bound to a given config with :func:`make_server_app` and
:func:`make_client_app`.

- Server: the strategy named by ``strategy`` (:data:`fedrobust.strategies.STRATEGIES`), the
  model built from the run seed, centralised evaluation on the test split (plus the attack success
  rate under ``attack = backdoor``), and, when ``output`` is set, the results JSON written after
  the last round.
- Client: the honest client for the strategy's protocol (:data:`fedrobust.clients.CLIENTS`) on
  the partition ``context.node_config["partition-id"]``, with its state in ``context.state``;
  wrapped in a :class:`~fedrobust.clients.ByzantineClient` when the partition can be Byzantine
  (``attack``, ``attack-params``, ``byzantine-fraction``, ``byzantine-mode``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from flwr.client import Client, ClientApp
from flwr.common import Context
from flwr.common.constant import PARTITION_ID_KEY
from flwr.server import ServerApp, ServerAppComponents, ServerConfig

from .attacks import Attack, Backdoor, num_byzantine
from .clients import CLIENTS, ByzantineClient
from .config import RunConfig
from .evaluation import make_attack_success_fn, make_evaluate_fn
from .models import flat_params
from .results import RoundRecord, write_results
from .strategies import STRATEGIES, VectorStrategy
from .workload import build_attack, build_model, byzantine_clients, client_data, load_splits, poisoned_client_data

__all__ = [
    "make_strategy",
    "make_client",
    "may_be_byzantine",
    "make_server_app",
    "make_client_app",
    "server_app",
    "client_app",
]


def make_strategy(cfg: RunConfig, on_round: Callable[[RoundRecord], None] | None = None) -> VectorStrategy:
    """The run's strategy, with x0 from the seeded model and evaluation on the test split.

    Under the ``backdoor`` attack each round record also gets ``attack_success_rate`` (on the test
    split, with the run's Backdoor parameters). When ``cfg.output`` is set, the results JSON is
    written once the last round is recorded.
    """
    splits = load_splits(cfg)
    device = cfg.torch_device()
    model = build_model(cfg, splits).to(device)
    evaluate_fn = make_evaluate_fn(model, torch.from_numpy(splits.x_test), torch.from_numpy(splits.y_test))
    attack = build_attack(cfg)
    success_rate = (
        make_attack_success_fn(model, splits.x_test, splits.y_test, attack) if isinstance(attack, Backdoor) else None
    )
    shapes = [tuple(p.shape) for p in model.parameters()]
    strategy: VectorStrategy

    def finish_round(record: RoundRecord) -> None:
        if success_rate is not None:  # the strategy's x is the model this record evaluated
            record.extra["attack_success_rate"] = success_rate(strategy.x)
        if on_round is not None:
            on_round(record)
        if cfg.output and record.round == cfg.rounds:
            write_results(cfg.output, strategy.results())

    strategy = STRATEGIES[cfg.strategy](cfg, flat_params(model), shapes, evaluate_fn=evaluate_fn, on_round=finish_round)
    return strategy


def may_be_byzantine(cfg: RunConfig, partition_id: int) -> bool:
    """Whether the client of ``partition_id`` attacks in some round of the run.

    True for every client under ``byzantine-mode = dynamic`` (with an attack and ψ·N >= 1), and
    for the seeded set under ``fixed``.

    Examples
    --------
    >>> cfg = RunConfig(attack="bit-flip", byzantine_fraction=0.2, num_clients=10)
    >>> [p for p in range(10) if may_be_byzantine(cfg, p)] == sorted(byzantine_clients(cfg, 1))
    True
    >>> may_be_byzantine(cfg.replace(byzantine_mode="dynamic"), 0), may_be_byzantine(cfg.replace(attack="none"), 6)
    (True, False)
    """
    if cfg.attack == "none" or num_byzantine(cfg.num_clients, cfg.byzantine_fraction) == 0:
        return False
    return cfg.byzantine_mode == "dynamic" or partition_id in byzantine_clients(cfg, 0)


def make_client(cfg: RunConfig, context: Context, attack: Attack | None = None) -> Client:
    """The client of this node: its partition, the run's model, the strategy's protocol.

    A partition that can be Byzantine (:func:`may_be_byzantine`) gets a
    :class:`~fedrobust.clients.ByzantineClient` around the honest client, with its poisoned data
    for a data attack (poisoned once per process, seeded); every other one the honest client.
    ``attack`` is the run's attack when already built (default: built here from ``cfg``).
    """
    if cfg.client_threads:
        torch.set_num_threads(cfg.client_threads)
    partition_id = int(context.node_config[PARTITION_ID_KEY])
    x, y = client_data(cfg, partition_id)
    client_cls = CLIENTS[STRATEGIES[cfg.strategy].protocol]
    client = client_cls(
        build_model(cfg), x, y, partition_id=partition_id, device=cfg.torch_device(), state=context.state
    )
    if not may_be_byzantine(cfg, partition_id):
        return client.to_client()
    attack = build_attack(cfg) if attack is None else attack
    poisoned = poisoned_client_data(cfg, partition_id, attack) if attack.kind == "data" else None
    byzantine = ByzantineClient(
        client, attack, num_clients=cfg.num_clients, fraction=cfg.byzantine_fraction, mode=cfg.byzantine_mode,
        poisoned=poisoned,
    )
    return byzantine.to_client()


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
    """A ClientApp for ``cfg`` (None: read it from ``context.run_config``).

    With ``cfg`` given, its attack is built here, once, and travels with the app to the client
    processes, so an attack registered only in the calling process (a script, a notebook) works too.
    """
    attack = build_attack(cfg) if cfg is not None else None

    def client_fn(context: Context) -> Client:
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        return make_client(run_cfg, context, attack)

    return ClientApp(client_fn=client_fn)


server_app = make_server_app()
client_app = make_client_app()
