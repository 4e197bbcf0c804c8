"""The run configuration: one dataclass of every run key, shared by the Flower App and the CLI.

A key's name is spelt the same everywhere: ``byzantine-fraction`` in ``[tool.flwr.app.config]``, in
``flwr run --run-config``, as the CLI flag ``--byzantine-fraction``, in the results JSON, and as the
field ``byzantine_fraction`` of :class:`RunConfig` (the only rule: ``-`` ↔ ``_``).

Examples
--------
>>> cfg = RunConfig.from_mapping({"strategy": "mean-sgd", "num-clients": 4, "clients-per-round": 2})
>>> cfg.strategy, cfg.num_clients, cfg.lr
('mean-sgd', 4, 0.1)
>>> RunConfig.from_mapping({"lr": 0})
Traceback (most recent call last):
...
fedrobust.core.errors.ConfigError: lr must be > 0, got 0.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .core.errors import ConfigError
from .core.params import parse_params

__all__ = [
    "ConfigError",
    "RunConfig",
    "DEVICES",
    "config_keys",
    "key_of",
    "field_choices",
    "field_type",
    "parse_params",
    "config_warnings",
    "execution_keys",
    "placement_keys",
    "run_compressor_name",
]

DEVICES = ("auto", "cpu", "cuda")
APIS = ("legacy", "message")
NORM_OPTIONS = (1, 2)


# Each library owns its choices; these read them when a config is checked (importing a library
# loads torch, which ``import fedrobust.config`` must not).
def _byzantine_modes() -> tuple[str, ...]:
    from .attacks.selection import BYZANTINE_MODES

    return BYZANTINE_MODES


def _lr_schedules() -> tuple[str, ...]:
    from .optim.schedule import LR_SCHEDULES

    return LR_SCHEDULES


def _memories() -> tuple[str, ...]:
    from .aggregators.bgmd import MEMORIES

    return ("auto", *MEMORIES)


def _memory_weights() -> tuple[str, ...]:
    from .aggregators.bgmd import MEMORY_WEIGHTS

    return MEMORY_WEIGHTS


def _selections() -> tuple[str, ...]:
    from .aggregators.block import SELECTIONS

    return SELECTIONS


def _coord_methods() -> tuple[str, ...]:
    from .optim.rsa import METHODS

    return METHODS


def _attacks() -> tuple[str, ...]:
    from .attacks import ATTACKS

    return tuple(ATTACKS)


def _compressors() -> tuple[str, ...]:
    from .compression import COMPRESSORS

    return ("auto", *COMPRESSORS)


def _strategies() -> tuple[str, ...]:
    from .strategies import STRATEGIES

    return tuple(STRATEGIES)


def _datasets() -> tuple[str, ...]:
    from .data import DATASETS

    return tuple(DATASETS)


def _partitioners() -> tuple[str, ...]:
    from .data import PARTITIONERS

    return tuple(PARTITIONERS)


def _models() -> tuple[str, ...]:
    from .models import MODELS

    return tuple(MODELS)


def _key(
    default: Any,
    help: str,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    *,
    placement: bool = False,
    execution: bool = False,
) -> Any:
    # placement=True: the key says how or where the run executes, not what it computes: it is left
    # out of sweep cell ids and does not split report tables, and a resumed run may change it.
    # placement=True: a resumed run may change it although it changes the results (rounds).
    return field(
        default=default,
        metadata={"help": help, "choices": choices, "placement": placement, "execution": execution or placement},
    )


@dataclass(frozen=True)
class RunConfig:
    """Every key of a run, with its default; construction validates all of them at once.

    Build it from a Flower run config or any mapping of ``key-name`` → value with
    :meth:`from_mapping`; :meth:`to_dict` gives the same keys back.

    Raises
    ------
    ConfigError
        One line per invalid key (unknown names list the known ones).
    """

    strategy: str = _key("fedavg", "server strategy", _strategies)
    api: str = _key(
        "legacy", "Flower API of the server and clients: legacy (flwr.server.strategy.Strategy, NumPyClient) or "
        "message (flwr.serverapp.strategy.Strategy, @app.train()); the same model either way", APIS, placement=True,
    )
    attack: str = _key("none", "attack of the Byzantine clients", _attacks)
    attack_params: str = _key("", "the attack's parameters as name=value pairs, e.g. 'scale=100' or 'variance=10'")
    byzantine_fraction: float = _key(0.0, "fraction psi of Byzantine clients, in [0, 1)")
    byzantine_mode: str = _key("fixed", "fixed: one seeded set of Byzantine clients; dynamic: a fresh set each round", _byzantine_modes)
    dataset: str = _key(
        "mnist5k", "dataset name (fedrobust list), or hf:<name-or-folder>: a Hugging Face dataset (a Hub name or a "
        "local folder) loaded through flwr-datasets' FederatedDataset", _datasets,
    )
    dataset_params: str = _key(
        "", "the dataset's options as name=value pairs: for hf:<...> subset, train_split, test_split (default: test, "
        "else a seeded 80/20 split of train), label_column, feature_columns (several joined by ':'), e.g. "
        "'label_column=fine_label'; for libsvm train_file, test_file, n_features",
    )
    data_dir: str = _key("", "dataset cache directory ('' = the dataset's default)", placement=True)
    partitioner: str = _key("iid", "how the training set is split across clients", _partitioners)
    dirichlet_alpha: float = _key(0.5, "concentration of the 'dirichlet' partitioner")
    partitioner_params: str = _key(
        "", "the partitioner's own parameters as name=value pairs in its own names, e.g. "
        "'num_classes_per_partition=2' (pathological), 'num_shards=80,shards_per_client=8' (label-shards), "
        "'partition_sizes=100:200:300,alpha=0.3' (inner-dirichlet; size: one size per client joined by ':'); "
        "dirichlet's alpha is dirichlet-alpha; docs/simulation.md lists each partitioner's",
    )
    model: str = _key("mlp", "model name", _models)
    num_clients: int = _key(10, "number of clients (= simulated SuperNodes = data partitions)")
    clients_per_round: int = _key(10, "clients sampled each round (seeded, by partition id)")
    rounds: int = _key(20, "number of server rounds", execution=True)
    local_steps: int = _key(10, "local SGD steps per round (local-steps protocol, e.g. fedavg)")
    lr: float = _key(
        0.1, "learning rate: client SGD steps and the server's gradient step (gamma of norm-threshold and "
        "fed-cure, alpha of c-rsa / rsa, the per-coordinate step of signsgd-mv)",
    )
    lr_schedule: str = _key(
        "constant", "lr over the rounds: constant, or cosine (annealed from lr in round 1 towards 0 in the last, "
        "as the BGMD paper anneals its CIFAR-10 runs)", _lr_schedules,
    )
    batch_size: int = _key(32, "client minibatch size")
    weighted: bool = _key(False, "fedavg: weight client updates by their numbers of examples")
    weight_decay: float = _key(
        0.0, "L2 weight decay added to every honest client's gradient (c-rsa / rsa: the master's regulariser "
        "mu, the workers get none)",
    )
    client_momentum: float = _key(
        0.0, "gradient protocols: worker momentum beta in [0, 1); each honest client sends m <- beta*m + (1-beta)*g "
        "(m kept in Context.state, m = g in its first round) instead of g, which shrinks the honest messages' noise "
        "that robust aggregators confuse with attacks; 0: plain g",
    )
    server_lr: float = _key(1.0, "server step size gamma_s (fl-bgmd's error-corrected step)")
    rho: float = _key(0.1, "bgmd / fl-bgmd: block fraction, k = rho * d coordinates per round")
    memory: str = _key("auto", "bgmd: residual memory (auto: mean for bgmd, rows for fl-bgmd)", _memories)
    memory_weights: str = _key(
        "gm", "bgmd: weights of the rows in the mean memory (gm: Weiszfeld weights; uniform: the BGMD "
        "paper's plain mean)", _memory_weights,
    )
    selection: str = _key("sample", "bgmd: block selection, sampled by column norm or top-k", _selections)
    gm_tol: float = _key(1e-7, "geometric median: relative tolerance of the Weiszfeld iteration")
    gm_max_iter: int = _key(200, "geometric median: iteration cap")
    beta: float = _key(
        0.2, "fraction trimmed: from each side (trimmed-mean) or the largest norms (norm-threshold, "
        "norm-threshold-ef, fed-cure)",
    )
    krum_f: int = _key(-1, "krum: assumed Byzantine clients per round (-1: byzantine-fraction x clients-per-round)")
    krum_m: int = _key(1, "krum: rows averaged (1: Krum, >1: multi-Krum)")
    rule_params: str = _key(
        "", "the rule's own parameters without a run key of their own, as name=value pairs, e.g. 'tau=10,iterations=1' "
        "(centered-clipping) or 'f=2' (the Byzantine count of bulyan, mda, ...; -1 = byzantine-fraction x "
        "clients-per-round); docs/strategies.md lists each rule's",
    )
    root_size: int = _key(
        100, "fltrust: training examples the server holds out as its clean root set (drawn, seeded, before the "
        "partitioning, so no client has them; at most half the training split; 100 as in the FLTrust paper)",
    )
    validation_size: int = _key(
        0, "training examples held out as a validation split (drawn, seeded, from the training split before the "
        "root set and the partitioning, so no client and no root set has them; never from the test split; "
        "validation-size + root-size at most half the training split); each round record, and initial, then "
        "get val_accuracy and val_loss of the global model on it; 0 = no validation split",
    )
    pre_aggregation: str = _key(
        "", "what transforms the accepted client vectors before the strategy's rule, applied in order, e.g. 'nnm' or "
        "'bucketing:s=2,nnm' (nnm, bucketing, arc, clipping; each name:key=value with its parameters, a further "
        "key=value after a comma belonging to the same step); '' = none; docs/strategies.md",
    )
    compressor: str = _key(
        "auto", "what clients compress their messages with (auto: the strategy's default: scaled-sign for "
        "norm-threshold and norm-threshold-ef, sign for signsgd-mv, identity otherwise)", _compressors,
    )
    compressor_params: str = _key("", "the compressor's parameters as name=value pairs, e.g. 'ratio=0.01'")
    norm_option: int = _key(
        2, "norm-threshold: rank clients by 1: the uncompressed gradient norm each client reports, "
        "2: the norm of the compressed message the server decodes",
    )
    radius: float = _key(0.0, "norm-threshold(-ef): project the model on the l2 ball of this radius (0 = no projection)")
    lam: float = _key(
        0.002, "c-rsa / rsa: l1 penalty lambda tying the workers' models to the master's (each worker moves each "
        "coordinate of the master's model by at most lr * lam per round)",
    )
    coord_ratio: float = _key(0.5, "c-rsa: fraction l/d of coordinates exchanged per round (rsa: all of them)")
    coord_method: str = _key(
        "rand", "c-rsa: how the l coordinates are drawn: rand (from a per-round seed) or top (largest |x0|)",
        _coord_methods,
    )
    cubic_m: float = _key(10.0, "fed-cure: cubic regularisation M of the clients' sub-problem")
    cubic_steps: int = _key(10, "fed-cure: gradient-descent steps of the clients' cubic solver")
    eta: float = _key(1.0, "fed-cure: server step size, x <- x + eta * mean of the kept steps")
    seed: int = _key(0, "seed of model init, partitions, client sampling and minibatches")
    device: str = _key(
        "auto", "torch device for clients and server: auto picks cuda when present", DEVICES, placement=True
    )
    num_cpus: float = _key(1.0, "CPUs reserved per client actor (Ray client resources)", placement=True)
    num_gpus: float = _key(
        0.0, "GPU fraction per client actor; 0.25 = 4 clients per GPU (0 with cuda: auto)", placement=True
    )
    client_threads: int = _key(1, "torch threads per client actor (0 = torch's default)", placement=True)
    max_server_memory_mb: float = _key(
        0.0, "refuse a run whose server aggregation would need more than this many MB (stacked client vectors, "
        "their temporaries and the strategy's state; docs/performance.md); 0 = no limit", placement=True,
    )
    ray_address: str = _key(
        "", "attach to this running Ray cluster, e.g. '127.0.0.1:6379' or 'auto' ('' = start a private one)",
        placement=True,
    )
    output: str = _key("", "write the results JSON to this path ('' = do not write)", placement=True)
    tensorboard: str = _key(
        "", "write each round's metrics as TensorBoard event files into this folder as the round ends, e.g. next to "
        "the results file (watch a run live: tensorboard --logdir FOLDER; a sweep writes each cell into FOLDER/<cell "
        "id>); needs pip install 'fedrobust[tensorboard]'; '' = none", placement=True,
    )
    round_timeout: float = _key(
        0.0, "seconds the server waits for a round's replies; a client that has not replied by then counts as "
        "failed (0 = wait as long as it takes)", placement=True,
    )
    checkpoint_dir: str = _key(
        "", "save the server's and the clients' state to this folder after every round ('' = no checkpoints)",
        placement=True,
    )
    resume: bool = _key(
        False, "continue from the checkpoint in checkpoint-dir (starts afresh when it holds none)", placement=True
    )
    extensions: str = _key(
        "", "comma-separated modules to import first, in every process of the run: they register attacks, rules, "
        "strategies, datasets, models or compressors (installed 'fedrobust.core.extensions' entry points are imported "
        "too; see docs/extending.md)",
    )

    def __post_init__(self) -> None:
        if isinstance(self.extensions, str):
            from .core.extensions import ExtensionError, load_extensions

            try:
                load_extensions(self.extensions)
            except ExtensionError as err:
                raise ConfigError(str(err)) from None
        problems = _coerce_and_check_types(self)
        if not problems:
            problems = _value_problems(self)
        if problems:
            raise ConfigError("\n".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> RunConfig:
        """Build a config from ``key-name`` (or ``field_name``) → value pairs plus keyword overrides.

        Integers are accepted for float keys; everything else must have the key's type.
        """
        merged: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = []
        for key, value in {**dict(values or {}), **overrides}.items():
            name = str(key).replace("-", "_")
            if name in names:
                merged[name] = value
            else:
                unknown.append(str(key))
        if unknown:
            raise ConfigError(
                "\n".join(f"unknown key {k!r}; known keys: {', '.join(config_keys())}" for k in unknown)
            )
        return cls(**merged)

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed (field names, as in :func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config as ``key-name`` → value (the form of run configs and the results JSON)."""
        return {key_of(f.name): getattr(self, f.name) for f in dataclasses.fields(self)}

    def torch_device(self) -> Any:
        """The torch device ``device`` names here ('auto' → cuda when available, else cpu)."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda' but torch sees no CUDA device here; use device='auto' or 'cpu'")
        return torch.device(self.device)


def key_of(field_name: str) -> str:
    """The run-config key of a field: ``byzantine_fraction`` → ``byzantine-fraction``."""
    return field_name.replace("_", "-")


def config_keys() -> tuple[str, ...]:
    """All run-config keys, in declaration order."""
    return tuple(key_of(f.name) for f in dataclasses.fields(RunConfig))


def field_choices(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The allowed values of a string field, or None when any value of the right type goes."""
    choices = f.metadata.get("choices")
    return choices() if callable(choices) else choices


_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def field_type(f: dataclasses.Field) -> type:
    """The Python type of a field (the annotation is a string under postponed evaluation)."""
    return _TYPES[f.type] if isinstance(f.type, str) else f.type


def _coerce_and_check_types(cfg: RunConfig) -> list[str]:
    problems = []
    for f in dataclasses.fields(cfg):
        want, value = field_type(f), getattr(cfg, f.name)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            # TOML and the CLI may give 1 for 1.0; the dataclass is frozen, so set it once, here.
            object.__setattr__(cfg, f.name, float(value))
            continue
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            problems.append(f"{key_of(f.name)} must be of type {want.__name__}, got {value!r} ({type(value).__name__})")
    return problems


def _value_problems(cfg: RunConfig) -> list[str]:
    problems = []
    for f in dataclasses.fields(cfg):
        choices = field_choices(f)
        value = getattr(cfg, f.name)
        if f.name == "dataset":  # a registered name, or a family member such as hf:<name-or-folder>
            problems.extend(_dataset_problems(value, choices))
        elif choices is not None and value not in choices:
            problems.append(f"{key_of(f.name)} must be one of {', '.join(choices)}; got {value!r}")

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    for name in ("byzantine_fraction", "dirichlet_alpha", "lr", "num_cpus", "num_gpus", "weight_decay",
                 "client_momentum", "server_lr", "rho", "gm_tol", "beta", "radius", "lam", "coord_ratio", "cubic_m", "eta"):
        need(math.isfinite(getattr(cfg, name)), f"{key_of(name)} must be finite, got {getattr(cfg, name)}")
    need(0.0 <= cfg.byzantine_fraction < 1.0, f"byzantine-fraction must lie in [0, 1), got {cfg.byzantine_fraction}")
    need(cfg.weight_decay >= 0, f"weight-decay must be >= 0, got {cfg.weight_decay}")
    need(0.0 <= cfg.client_momentum < 1.0, f"client-momentum must lie in [0, 1), got {cfg.client_momentum}")
    need(cfg.server_lr > 0, f"server-lr must be > 0, got {cfg.server_lr}")
    need(0.0 < cfg.rho <= 1.0, f"rho must lie in (0, 1], got {cfg.rho}")
    need(cfg.gm_tol > 0, f"gm-tol must be > 0, got {cfg.gm_tol}")
    need(cfg.gm_max_iter >= 1, f"gm-max-iter must be >= 1, got {cfg.gm_max_iter}")
    need(0.0 <= cfg.beta < 1.0, f"beta must lie in [0, 1), got {cfg.beta}")
    need(cfg.krum_f >= -1, f"krum-f must be >= 0, or -1 to derive it from byzantine-fraction, got {cfg.krum_f}")
    need(cfg.krum_m >= 1, f"krum-m must be >= 1, got {cfg.krum_m}")
    need(cfg.root_size >= 1, f"root-size must be >= 1 (root examples the fltrust server holds out), got {cfg.root_size}")
    need(cfg.validation_size >= 0,
         f"validation-size must be >= 0 (0 = no validation split), got {cfg.validation_size}")
    need(cfg.norm_option in NORM_OPTIONS, f"norm-option must be 1 or 2, got {cfg.norm_option}")
    need(cfg.radius >= 0, f"radius must be >= 0 (0 = no projection), got {cfg.radius}")
    need(cfg.lam >= 0, f"lam must be >= 0, got {cfg.lam}")
    need(0.0 < cfg.coord_ratio <= 1.0, f"coord-ratio must lie in (0, 1], got {cfg.coord_ratio}")
    need(cfg.cubic_m > 0, f"cubic-m must be > 0, got {cfg.cubic_m}")
    need(cfg.cubic_steps >= 0, f"cubic-steps must be >= 0, got {cfg.cubic_steps}")
    need(cfg.eta > 0, f"eta must be > 0, got {cfg.eta}")
    for key, text in (("attack-params", cfg.attack_params), ("compressor-params", cfg.compressor_params)):
        try:
            parse_params(text, key)
        except ConfigError as err:
            problems.append(str(err))
        else:
            problems.extend(_params_problem(cfg, key))
    problems.extend(_data_params_problems(cfg))
    need(math.isfinite(cfg.round_timeout) and cfg.round_timeout >= 0,
         f"round-timeout must be a finite number of seconds >= 0 (0 = no timeout), got {cfg.round_timeout}")
    need(not cfg.resume or bool(cfg.checkpoint_dir),
         "resume needs checkpoint-dir (the folder whose checkpoint the run continues)")
    need(cfg.dirichlet_alpha > 0, f"dirichlet-alpha must be > 0, got {cfg.dirichlet_alpha}")
    need(cfg.num_clients >= 1, f"num-clients must be >= 1, got {cfg.num_clients}")
    need(
        1 <= cfg.clients_per_round <= max(cfg.num_clients, 1),
        f"clients-per-round must lie in [1, num-clients={cfg.num_clients}], got {cfg.clients_per_round}",
    )
    need(cfg.rounds >= 1, f"rounds must be >= 1, got {cfg.rounds}")
    need(cfg.local_steps >= 1, f"local-steps must be >= 1, got {cfg.local_steps}")
    need(cfg.lr > 0, f"lr must be > 0, got {cfg.lr}")
    need(cfg.batch_size >= 1, f"batch-size must be >= 1, got {cfg.batch_size}")
    need(cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}")
    need(cfg.num_cpus > 0, f"num-cpus must be > 0, got {cfg.num_cpus}")
    need(cfg.num_gpus >= 0, f"num-gpus must be >= 0, got {cfg.num_gpus}")
    need(cfg.client_threads >= 0, f"client-threads must be >= 0, got {cfg.client_threads}")
    need(math.isfinite(cfg.max_server_memory_mb) and cfg.max_server_memory_mb >= 0,
         f"max-server-memory-mb must be a finite number >= 0 (0 = no limit), got {cfg.max_server_memory_mb}")
    need(not any(c.isspace() for c in cfg.ray_address),
         f"ray-address must be an address without spaces, got {cfg.ray_address!r}")
    if cfg.strategy in _strategies():  # what the strategy's constructor would refuse, refused here
        from .strategies import STRATEGIES

        problems.extend(STRATEGIES[cfg.strategy].config_problems(cfg))
        problems.extend(STRATEGIES[cfg.strategy].pre_aggregation_problems(cfg))
        from .strategies import RuleStrategy

        if cfg.rule_params.strip(" ,") and not issubclass(STRATEGIES[cfg.strategy], RuleStrategy):
            problems.append(f"rule-params: {cfg.strategy} reads none (its parameters are run keys of their own); "
                            "leave rule-params empty")
        if cfg.attack in _attacks():
            problems.extend(STRATEGIES[cfg.strategy].adversary_problems(cfg))
    return problems


def _dataset_problems(value: str, choices: tuple[str, ...]) -> list[str]:
    """``dataset``: one of ``choices`` (:data:`fedrobust.data.DATASETS`), or a member of a family there
    (a choice ending in ``:``, such as ``hf:``) with a name after the prefix."""
    from .data.registry import dataset_problem

    if dataset_problem(value) is None:
        return []
    families = [c for c in choices if c.endswith(":")]
    family = next((p for p in families if value.startswith(p)), None)
    if family is not None:
        example = "<name-or-folder>, e.g. hf:ylecun/mnist" if family == "hf:" else "<name>"
        return [f"dataset {value!r} names no dataset after {family!r}; write {family}{example}"]
    plain = [c for c in choices if not c.endswith(":")]
    alternatives = "".join(f", or {p}<name-or-folder>" if p == "hf:" else f", or {p}<name>" for p in families)
    return [f"dataset must be one of {', '.join(plain)}{alternatives}; got {value!r}"]


def _data_params_problems(cfg: RunConfig) -> list[str]:
    """``partitioner-params`` and ``dataset-params``: parameters the named partitioner and dataset take,
    with values of the right type and range (what the data alone decides is checked when it loads)."""
    from .data.partition import check_partitioner_params
    from .data.registry import check_dataset_options, dataset_problem

    problems = []
    try:
        params = parse_params(cfg.partitioner_params, "partitioner-params")
        if cfg.partitioner in _partitioners() and cfg.num_clients >= 1:
            check_partitioner_params(cfg.partitioner, params, cfg.num_clients, run=True)
    except ConfigError as err:
        problems.append(str(err))
    except (ValueError, TypeError) as err:
        problems.append(f"partitioner-params: {err}")
    try:
        options = parse_params(cfg.dataset_params, "dataset-params")
        if dataset_problem(cfg.dataset) is None:
            check_dataset_options(cfg.dataset, options)
    except ConfigError as err:
        problems.append(str(err))
    except (ValueError, TypeError) as err:
        problems.append(f"dataset-params: {err}")
    return problems


def _params_problem(cfg: RunConfig, key: str) -> list[str]:
    """Build the attack (``attack-params``) or the compressor (``compressor-params``) the config names,
    so that a parameter they do not take, or a value out of their range, is a config error here."""
    try:
        if key == "attack-params":
            if cfg.attack not in _attacks():
                return []
            from .attacks import get_attack

            get_attack(cfg.attack, **parse_params(cfg.attack_params, key))
        else:
            name = run_compressor_name(cfg) if cfg.compressor in _compressors() else None
            if name is None:
                return []
            from .compression import get_compressor

            get_compressor(name, **parse_params(cfg.compressor_params, key))
    except (ValueError, TypeError) as err:
        return [f"{key}: {err}"]
    return []


def run_compressor_name(cfg: RunConfig) -> str | None:
    """The compressor a run's clients use (``compressor``, or for ``auto`` the strategy's default),
    or None when the strategy compresses nothing (its protocol ignores ``compressor``).

    Examples
    --------
    >>> run_compressor_name(RunConfig(strategy="norm-threshold")), run_compressor_name(RunConfig(compressor="qsgd"))
    ('scaled-sign', None)
    """
    from .strategies import STRATEGIES

    strategy = STRATEGIES.get(cfg.strategy)
    return None if strategy is None else strategy.compressor_name(cfg)


def placement_keys() -> tuple[str, ...]:
    """The run keys that say how or where a run executes, not what it computes (``output``,
    ``device``, ``num-cpus``, ``checkpoint-dir``, ...): sweep cell ids leave them out and reports do
    not split tables by them.

    Examples
    --------
    >>> "output" in placement_keys(), "rounds" in placement_keys(), "lr" in placement_keys()
    (True, False, False)
    """
    return tuple(key_of(f.name) for f in dataclasses.fields(RunConfig) if f.metadata.get("placement"))


def execution_keys() -> tuple[str, ...]:
    """The keys a resumed run may change: :func:`placement_keys` and ``rounds`` (a run can be
    resumed to go further)."""
    return tuple(key_of(f.name) for f in dataclasses.fields(RunConfig) if f.metadata.get("execution"))


def config_warnings(cfg: RunConfig) -> list[str]:
    """Valid but doubtful settings, one line each: what the run silently caps or ignores, or a
    robust rule told to expect fewer Byzantine clients than the run has.

    - ``client-momentum`` for clients that do not send gradients;
    - ``compressor`` / ``compressor-params`` for a strategy that compresses nothing;
    - ``byzantine-fraction`` > 0 with ``attack = none`` (every client is honest), or an attack with
      ``byzantine-fraction x num-clients < 1`` (no client attacks);
    - the strategy's own (its ``config_warnings(cfg)`` hook): ``beta`` < ``byzantine-fraction``
      for the trimming strategies; Krum's ``krum-f`` below the expected Byzantine count of a round,
      or ``krum-f`` / ``krum-m`` above what ``clients-per-round`` replies allow (capped).

    The CLI prints them as ``fedrobust: warning: ...`` before the run, the apps log them, and the
    results document lists them under ``warnings``.

    Examples
    --------
    >>> config_warnings(RunConfig(strategy="trimmed-mean", attack="bit-flip", byzantine_fraction=0.3, beta=0.2))
    ['beta=0.2 < byzantine-fraction=0.3: trimmed-mean drops fewer values than there may be Byzantine clients; set beta >= byzantine-fraction']
    >>> config_warnings(RunConfig(strategy="fedavg", client_momentum=0.9))
    ["client-momentum=0.9 is ignored: fedavg's clients (local-steps protocol) do not send gradients"]
    >>> config_warnings(RunConfig(byzantine_fraction=0.2))
    ['byzantine-fraction=0.2 with attack=none: every client is honest; name an attack, or set byzantine-fraction=0']
    """
    from .attacks import num_byzantine
    from .clients import CLIENTS, GradientClient
    from .strategies import STRATEGIES

    strategy = STRATEGIES[cfg.strategy]
    protocol = strategy.protocol
    out = []
    if cfg.client_momentum and not issubclass(CLIENTS[protocol], GradientClient):
        out.append(
            f"client-momentum={cfg.client_momentum} is ignored: {cfg.strategy}'s clients ({protocol} protocol) "
            "do not send gradients"
        )
    ignored = [f"{key}={value!r}" for key, value, unset in (
        ("compressor", cfg.compressor, "auto"), ("compressor-params", cfg.compressor_params, "")) if value != unset]
    if ignored and run_compressor_name(cfg) is None:
        out.append(
            f"{' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored: {cfg.strategy}'s clients "
            f"({protocol} protocol) do not use the run's compressor"
        )
    psi = cfg.byzantine_fraction
    if psi > 0 and cfg.attack == "none":
        out.append(f"byzantine-fraction={psi} with attack=none: every client is honest; name an attack, or set "
                   "byzantine-fraction=0")
    elif psi > 0 and num_byzantine(cfg.num_clients, psi) == 0:
        out.append(
            f"byzantine-fraction={psi} x num-clients={cfg.num_clients} < 1: no client attacks, so attack="
            f"{cfg.attack} has no effect; use byzantine-fraction >= {1 / cfg.num_clients:g}"
        )
    out.extend(strategy.config_warnings(cfg))
    return out
