"""The Flower App: ``server_app`` and ``client_app`` (the components ``pyproject.toml`` names).

``flwr run .`` loads the module-level apps, which read their :class:`~fedrobust.config.RunConfig`
from ``context.run_config`` (``[tool.flwr.app.config]`` plus ``--run-config`` overrides).
:func:`fedrobust.simulate` builds apps bound to a given config with :func:`make_server_app` and
:func:`make_client_app`.

- Server: the strategy named by ``strategy`` (:data:`fedrobust.strategies.STRATEGIES`), the
  model built from the run seed, centralised evaluation on the test split (plus the attack success
  rate under ``attack = backdoor``, and the validation split's ``val_accuracy`` and ``val_loss``
  under ``validation-size > 0``), and, when ``output`` is set, the results JSON written after
  the last round (with ``tensorboard``, every round's metrics as TensorBoard event files, written
  as the round ends: :mod:`fedrobust.run.tensorboard_log`). With ``checkpoint-dir`` it saves a
  checkpoint after every round and, with ``resume``, starts from the last one
  (:mod:`fedrobust.run.checkpoint`); ``round-timeout`` bounds how long a round waits for its replies.
- Client: the honest client for the strategy's protocol (:data:`fedrobust.clients.CLIENTS`) on
  the partition ``context.node_config["partition-id"]``, with its state in ``context.state``;
  wrapped in a :class:`~fedrobust.clients.ByzantineClient` when the partition can be Byzantine
  (``attack``, ``attack-params``, ``byzantine-fraction``, ``byzantine-mode``), and in a
  :class:`~fedrobust.clients.round.RoundClient` (seeded RNG, state saved for checkpoints).
"""

from __future__ import annotations

import copy

from collections.abc import Callable
from logging import INFO, WARNING

import torch
from flwr.client import Client, ClientApp
from flwr.common import Context
from flwr.common.logger import log
from flwr.common.constant import PARTITION_ID_KEY
from flwr.server import ServerApp, ServerAppComponents, ServerConfig

from ..attacks import Attack, Backdoor, num_byzantine
from ..clients import CLIENTS, ByzantineClient
from .checkpoint import (
    clear_client_states, load_client_state, load_server, restore_server, resume_round, save_client_state, save_server,
)
from ..clients.round import RoundClient
from ..config import ConfigError, RunConfig, config_warnings, parse_params, run_compressor_name
from .evaluation import make_attack_success_fn, make_evaluate_fn
from .handover import take_over
from .polling_grid import PollingServerApp
from ..models import flat_params
from ..core.results import RoundRecord, write_results
from ..strategies import STRATEGIES, VectorStrategy
from .build import (
    build_attack, build_model, byzantine_clients, client_data, client_model, load_splits, model_template,
    poisoned_client_data, root_data, validation_data,
)

__all__ = [
    "make_strategy",
    "check_model_size",
    "make_client",
    "may_be_byzantine",
    "make_server_app",
    "make_client_app",
    "server_app",
    "client_app",
]


def make_strategy(
    cfg: RunConfig, on_round: Callable[[RoundRecord], None] | None = None, *, warn: bool = True
) -> VectorStrategy:
    """The run's strategy, with x0 from the seeded model and evaluation on the test split.

    Under the ``backdoor`` attack each round record also gets ``attack_success_rate`` (on the test
    split, with the run's Backdoor parameters). A strategy that trains on the server
    (``uses_root_data``: fltrust) also gets ``server_update_fn`` on its own model and the run's
    root set (:func:`~fedrobust.run.build.root_data`, held out of every client's partition). With
    ``validation-size > 0`` every round record, and the results' ``initial``, also get
    ``val_accuracy`` and ``val_loss``: the evaluation of the same model on the run's validation
    split (:func:`~fedrobust.run.build.validation_data`, held out of every partition and of the
    root set). When ``cfg.output`` is set, the results JSON is
    written once the last round is recorded. With ``cfg.tensorboard``, the initial evaluation and
    every round record are also written as TensorBoard scalars as each finishes
    (:mod:`fedrobust.run.tensorboard_log`), and the strategy is closed after the last round
    (:meth:`~fedrobust.strategies.VectorStrategy.close`: the event file). With ``warn``, the run's
    :func:`~fedrobust.config.config_warnings` are logged (False: the caller reported them).
    """
    splits = load_splits(cfg)
    device = cfg.torch_device()
    model = build_model(cfg, splits).to(device)
    evaluate_fn = make_evaluate_fn(model, torch.from_numpy(splits.x_test), torch.from_numpy(splits.y_test))
    attack = build_attack(cfg)
    success_rate = (
        make_attack_success_fn(model, splits.x_test, splits.y_test, attack) if isinstance(attack, Backdoor) else None
    )
    validate = _validation_metrics_fn(cfg, model)
    shapes = [tuple(p.shape) for p in model.parameters()]
    strategy: VectorStrategy
    board = None  # the tensorboard log, opened once the rounds to run are known

    def finish_round(record: RoundRecord) -> None:
        if success_rate is not None:  # the strategy's x is the model this record evaluated
            record.extra["attack_success_rate"] = success_rate(strategy.x)
        if validate is not None:
            record.extra.update(validate(strategy.x))
        if cfg.checkpoint_dir:
            save_server(cfg.checkpoint_dir, strategy)
        if board is not None:  # after the checkpoint: a resumed run never writes a round twice
            board.write_round(record)
        if on_round is not None:
            on_round(record)
        if cfg.output and record.round == cfg.rounds:
            write_results(cfg.output, strategy.results())
        if record.round == cfg.rounds:
            strategy.close()

    cls = STRATEGIES[cfg.strategy]
    extra = {}
    if cls.uses_root_data:  # the server trains on its root set (fltrust), with a model of its own
        extra["server_update_fn"] = cls.server_update_from_root(cfg, build_model(cfg, splits), *root_data(cfg))
    if cfg.tensorboard:  # imported before the strategy's clock starts: not part of startup_seconds
        from .tensorboard_log import summary_writer

        summary_writer()
    strategy = cls(cfg, flat_params(model), shapes, evaluate_fn=evaluate_fn, on_round=finish_round, **extra)
    strategy.initial_metrics_fn = validate  # the initial model's validation metrics, in the results' initial
    check_model_size(cfg, strategy.x.numel())
    strategy.warnings = config_warnings(cfg)
    for line in strategy.warnings if warn else ():
        log(WARNING, "%s", line)
    if cfg.checkpoint_dir:
        saved = load_server(cfg.checkpoint_dir) if resume_round(cfg) else None
        if saved is not None:
            restore_server(strategy, saved)
            log(INFO, "resuming from round %s of the checkpoint in %s", strategy.round_offset, cfg.checkpoint_dir)
            if cfg.output and strategy.round_offset == cfg.rounds:
                write_results(cfg.output, strategy.results())
        else:
            if cfg.resume:
                log(WARNING, "resume: %s holds no checkpoint yet; starting at round 1", cfg.checkpoint_dir)
            clear_client_states(cfg.checkpoint_dir)
    if cfg.tensorboard and strategy.round_offset < cfg.rounds:
        from .tensorboard_log import TensorBoardLog

        board = TensorBoardLog(cfg.tensorboard, first_round=strategy.round_offset and strategy.round_offset + 1)
        strategy.on_initial = board.write_initial
        strategy.closers.append(board.close)
    return strategy


def _validation_metrics_fn(
    cfg: RunConfig, model: torch.nn.Module
) -> Callable[[torch.Tensor], dict[str, float]] | None:
    """``fn(vec) -> {"val_accuracy", "val_loss"}`` of the flat model ``vec`` on the run's validation
    split (evaluated on ``model``), or None when ``validation-size = 0``.

    Raises
    ------
    ConfigError
        If the validation split (with the root set) would take more than half the training split.
    """
    if not cfg.validation_size:
        return None
    evaluate = make_evaluate_fn(model, *validation_data(cfg))

    def validate(vec: torch.Tensor) -> dict[str, float]:
        loss, accuracy = evaluate(vec)
        return {"val_accuracy": float(accuracy), "val_loss": float(loss)}

    return validate


def check_model_size(cfg: RunConfig, d: int) -> None:
    """Raise :class:`~fedrobust.core.errors.ConfigError` when ``compressor-params`` asks for more
    coordinates (``k``) than the model's ``d`` parameters.

    Examples
    --------
    >>> check_model_size(RunConfig(strategy="qbgmd", compressor="top-k", compressor_params="k=10"), 100)
    >>> check_model_size(RunConfig(strategy="qbgmd", compressor="top-k", compressor_params="k=1000"), 100)
    Traceback (most recent call last):
    ...
    fedrobust.core.errors.ConfigError: compressor-params: k=1000 is larger than the model's d=100 parameters
    """
    name = run_compressor_name(cfg)
    k = parse_params(cfg.compressor_params, "compressor-params").get("k") if name else None
    if isinstance(k, int) and k > d:
        raise ConfigError(f"compressor-params: k={k} is larger than the model's d={d} parameters")


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
        client_model(cfg, parameters=False), x, y, partition_id=partition_id, device=cfg.torch_device(),
        state=context.state, parameters_from=model_template(cfg),  # the template's values only if fit does not load
    )
    if not may_be_byzantine(cfg, partition_id):
        return _round_client(cfg, context, client.to_client())
    # A fresh attack per client build (per message, in every engine): an attack keeps what it must
    # remember in the client's Context.state (Attack.state), never in the shared object.
    attack = build_attack(cfg) if attack is None else copy.deepcopy(attack)
    attack = attack.for_client(**_attack_facts(cfg, partition_id))
    poisoned = poisoned_client_data(cfg, partition_id, attack) if attack.kind == "data" else None
    byzantine = ByzantineClient(
        client, attack, num_clients=cfg.num_clients, fraction=cfg.byzantine_fraction, mode=cfg.byzantine_mode,
        poisoned=poisoned,
    )
    return _round_client(cfg, context, byzantine.to_client())


def _attack_facts(cfg: RunConfig, partition_id: int) -> dict[str, int | float | None]:
    """What :meth:`Attack.for_client <fedrobust.attacks.Attack.for_client>` is told about the run.

    The server step η is ``server-lr`` for the rule that scales its step by it (fl-bgmd, on the
    compressed-local-steps protocol) and 1 for every other one (fedavg: x ← x − mean(Δ)).

    Examples
    --------
    >>> cfg = RunConfig(attack="bit-flip", byzantine_fraction=0.2, num_clients=10, clients_per_round=5)
    >>> facts = _attack_facts(cfg, 8)
    >>> facts["clients_per_round"], facts["num_byzantine"], facts["byzantine_rank"], facts["server_step"]
    (5, 2, 1, 1.0)
    """
    fixed = sorted(byzantine_clients(cfg, 0)) if cfg.byzantine_mode == "fixed" else []
    scaled = STRATEGIES[cfg.strategy].protocol == "compressed-local-steps"
    return {
        "partition_id": partition_id, "num_clients": cfg.num_clients, "clients_per_round": cfg.clients_per_round,
        "num_byzantine": num_byzantine(cfg.num_clients, cfg.byzantine_fraction),
        "byzantine_rank": fixed.index(partition_id) if partition_id in fixed else None,
        "server_step": cfg.server_lr if scaled else 1.0,
    }


def _round_client(cfg: RunConfig, context: Context, client: Client) -> Client:
    """``client`` under a seeded RNG, its state saved to (and restored from) ``checkpoint-dir``."""
    partition_id = int(context.node_config[PARTITION_ID_KEY])
    store = _CheckpointFiles(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    return RoundClient(client, context.state, partition_id, cfg.torch_device(), store)


class _CheckpointFiles:
    """The run's checkpoint folder as a client's :class:`~fedrobust.clients.round.ClientStateStore`."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def save(self, partition_id: int, server_round: int, state):
        return save_client_state(self.directory, partition_id, server_round, state)

    def load(self, partition_id: int, before_round: int):
        return load_client_state(self.directory, partition_id, before_round)


def make_server_app(
    cfg: RunConfig | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_strategy: Callable[[VectorStrategy], None] | None = None,
    *,
    warn: bool = True,
) -> ServerApp:
    """A ServerApp for ``cfg`` (None: read it from ``context.run_config``).

    ``on_round`` receives every finished round record; ``on_strategy`` receives the strategy once built
    (so an in-process caller can read its results after the run); ``warn``: see :func:`make_strategy`.
    """

    def server_fn(context: Context) -> ServerAppComponents:
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        if run_cfg.api != "legacy":
            raise ConfigError(
                f"api={run_cfg.api!r}, but this is the legacy ServerApp (fedrobust.run.app:server_app); use the "
                "components fedrobust.messageapi:server_app and fedrobust.messageapi:client_app (docs/message-api.md)"
            )
        strategy = make_strategy(run_cfg, on_round, warn=warn)
        if on_strategy is not None:
            on_strategy(strategy)
        server_config = ServerConfig(
            num_rounds=strategy.rounds_left, round_timeout=run_cfg.round_timeout or None
        )
        return ServerAppComponents(strategy=strategy, config=server_config)

    return PollingServerApp(server_fn=server_fn)


def make_client_app(cfg: RunConfig | None = None, handover: str | None = None) -> ClientApp:
    """A ClientApp for ``cfg`` (None: read it from ``context.run_config``).

    With ``cfg`` given, its attack is built here, once, and travels with the app to the client
    processes, so an attack registered only in the calling process (a script, a notebook) works too.
    ``handover`` is a file of :func:`fedrobust.run.handover.write_handover`: the client processes
    that can read it use its splits and partitions instead of loading the dataset again.
    """
    attack = build_attack(cfg) if cfg is not None else None

    def client_fn(context: Context) -> Client:
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        take_over(handover)
        return make_client(run_cfg, context, attack)

    return ClientApp(client_fn=client_fn)


server_app = make_server_app()
client_app = make_client_app()
