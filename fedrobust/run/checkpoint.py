"""Checkpoints: a run's state after every round, and resuming from it (``checkpoint-dir``, ``resume``).

With ``checkpoint-dir`` set, the server writes after every round the file ``server.pt`` in that
folder: the run config, the last finished round R, the strategy's
:meth:`~fedrobust.strategies.VectorStrategy.state_dict` (the model and every server memory:
BGMD's mean memory, FL-BGMD's residual rows, C-RSA's set of initialised workers), the round
records and the initial evaluation. Each client writes its ``Context.state`` (error-feedback
memory, a C-RSA/RSA worker's model x_k, rounds taken part in) after each round it takes part in
to ``clients/<partition id>/round-<r>.bin`` (Flower's ``RecordDict`` protobuf), keeping its last
two; this needs the clients to see the same folder, as they do in a simulation.

Every one of these files is written atomically behind a header with the format and the
payload's SHA-256 (:mod:`fedrobust.run.checkpoint_file`) and checked when read: a damaged, truncated
or older (format 1, no checksum) file is a :class:`~fedrobust.core.errors.CheckpointError`
naming it. ``resume`` checks ``server.pt`` and every client state file before the first round
(:func:`check_client_states`).

No random-number state is saved because none is carried between rounds: client sampling,
Byzantine selection, minibatches, attack draws, BGMD's block draws and C-RSA's coordinates are
all drawn from generators seeded by (``seed``, round, partition id). So a run resumed from round R
(``resume = true``; Flower numbers the resumed rounds from 1 again, the strategy adds R) gives on
the same device the same final model, bit for bit, as an uninterrupted run.

A resumed run must have the checkpoint's config except in :func:`~fedrobust.config.execution_keys`
(``rounds``, ``device``, ``output``, ...); anything else is a :class:`~fedrobust.core.errors.ConfigError`
naming the keys. A run without ``resume`` refuses a folder that already holds a checkpoint.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from flwr.common import RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict

from .checkpoint_file import FORMAT, atomic_write, read_checkpoint_file, write_checkpoint_file
from ..config import ConfigError, RunConfig, execution_keys, run_compressor_name
from ..core.errors import CheckpointError
from ..core.results import RoundRecord

if TYPE_CHECKING:  # pragma: no cover
    from ..strategies import VectorStrategy

__all__ = [
    "SERVER_FILE",
    "CLIENTS_DIR",
    "CheckpointError",
    "atomic_write",
    "server_checkpoint",
    "save_server",
    "load_server",
    "resume_round",
    "restore_server",
    "save_client_state",
    "load_client_state",
    "check_client_states",
    "clear_client_states",
]

SERVER_FILE = "server.pt"
CLIENTS_DIR = "clients"
_ROUND_FILE = re.compile(r"^round-(\d+)\.bin$")


# ------------------------------------------------------------------------------------ server
def server_checkpoint(strategy: VectorStrategy) -> dict[str, Any]:
    """What :func:`save_server` writes for ``strategy`` after its last finished round."""
    records = [json.loads(json.dumps(_record_dict(r))) for r in strategy.records]
    return {
        "format": FORMAT,
        "config": strategy.cfg.to_dict(),
        "round": int(strategy.server_round),
        "strategy": strategy.state_dict(),
        "initial": json.loads(json.dumps(strategy.initial)),
        "records": records,
    }


def save_server(directory: str | Path, strategy: VectorStrategy) -> Path:
    """Write ``strategy``'s checkpoint to ``directory/server.pt`` (atomically); return the path."""
    buffer = io.BytesIO()
    torch.save(server_checkpoint(strategy), buffer)
    return write_checkpoint_file(Path(directory) / SERVER_FILE, buffer.getvalue())


def load_server(directory: str | Path) -> dict[str, Any] | None:
    """The checkpoint in ``directory``, or None when it holds none.

    Raises
    ------
    CheckpointError
        If the file is damaged, truncated, of another format or not a fedrobust checkpoint
        (:func:`~fedrobust.run.checkpoint_file.read_checkpoint_file`); one line naming the file.
    """
    path = Path(directory) / SERVER_FILE
    if not path.is_file():
        return None
    payload = read_checkpoint_file(path)
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable payload gets the same clear message
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint: {path} is not a readable fedrobust checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint: {path} is not a fedrobust server checkpoint of format {FORMAT}")
    return state


def resume_round(cfg: RunConfig) -> int:
    """The round a run of ``cfg`` starts after: R of the checkpoint it resumes, else 0.

    Raises
    ------
    ConfigError
        ``resume`` with a checkpoint whose config differs in a key other than
        :func:`~fedrobust.config.execution_keys` (the message names the keys and both values), or
        whose round is past ``rounds``; a run without ``resume`` whose ``checkpoint-dir`` already
        holds a checkpoint.
    CheckpointError
        ``server.pt`` or, with ``resume``, any client state file is damaged, truncated or of
        another format (:func:`check_client_states`), before any round runs.
    """
    if not cfg.checkpoint_dir:
        return 0
    state = load_server(cfg.checkpoint_dir)
    if state is None:
        return 0
    done = int(state["round"])
    if not cfg.resume:
        raise ConfigError(
            f"checkpoint-dir {cfg.checkpoint_dir!r} already holds a checkpoint (round {done} of a "
            f"{state['config'].get('strategy')!r} run); pass resume=true (--resume) to continue it, or use another folder"
        )
    ignored = set(execution_keys())
    current = cfg.to_dict()
    current["compressor"] = run_compressor_name(cfg) or cfg.compressor  # strategies save 'auto' resolved
    # A key the checkpoint lacks came after it was made: that run had the key's default.
    saved, defaults = state["config"], RunConfig().to_dict()
    changed = [
        f"{key}={value!r} (checkpoint: {saved[key]!r})" if key in saved
        else f"{key}={value!r} (checkpoint: made before {key} existed, so the default {defaults[key]!r})"
        for key, value in current.items()
        if key not in ignored and value != saved.get(key, defaults.get(key))
    ]
    if changed:
        raise ConfigError(
            f"resume: the checkpoint in {cfg.checkpoint_dir!r} was made with another config; "
            f"changed: {', '.join(changed)}; only {', '.join(sorted(ignored))} may change"
        )
    if done > cfg.rounds:
        raise ConfigError(f"resume: the checkpoint is at round {done}, past rounds={cfg.rounds}")
    check_client_states(cfg.checkpoint_dir)
    return done


def restore_server(strategy: VectorStrategy, state: dict[str, Any]) -> None:
    """Load a checkpoint (from :func:`load_server`) into a freshly built ``strategy``: its state,
    its records and initial evaluation, and the round offset Flower's restarted numbering needs."""
    strategy.load_state_dict(state["strategy"])
    strategy.records = [_record_from_dict(r) for r in state["records"]]
    strategy.initial = dict(state["initial"])
    strategy.round_offset = int(state["round"])


def _record_dict(record: RoundRecord) -> dict[str, Any]:
    out = {name: getattr(record, name) for name in record.__dataclass_fields__ if name != "extra"}
    out["extra"] = dict(record.extra)
    return out


def _record_from_dict(values: dict[str, Any]) -> RoundRecord:
    return RoundRecord(**{k: v for k, v in values.items() if k != "extra"}, extra=dict(values.get("extra", {})))


# ------------------------------------------------------------------------------------ clients
def _client_dir(directory: str | Path, partition_id: int) -> Path:
    return Path(directory) / CLIENTS_DIR / str(int(partition_id))


def _client_files(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _ROUND_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def save_client_state(directory: str | Path, partition_id: int, server_round: int, state: RecordDict) -> Path:
    """Write a client's ``Context.state`` after its fit in ``server_round``; keep only that file and
    the newest older one (the state a rerun of ``server_round`` starts from)."""
    folder = _client_dir(directory, partition_id)
    payload = recorddict_to_proto(state).SerializeToString()
    path = write_checkpoint_file(folder / f"round-{int(server_round)}.bin", payload)
    older = sorted(r for r in _client_files(folder) if r < server_round)
    for r in older[:-1]:
        (folder / f"round-{r}.bin").unlink(missing_ok=True)
    for r in (r for r in _client_files(folder) if r > server_round):  # left by a run that went further
        (folder / f"round-{r}.bin").unlink(missing_ok=True)
    return path


def load_client_state(directory: str | Path, partition_id: int, before_round: int) -> RecordDict | None:
    """A client's ``Context.state`` as saved after the last round before ``before_round`` it took
    part in, or None when it has none.

    Raises
    ------
    CheckpointError
        The file is damaged, truncated, of another format or does not hold a ``RecordDict``.
    """
    files = _client_files(_client_dir(directory, partition_id))
    rounds = [r for r in files if r < before_round]
    if not rounds:
        return None
    return _read_client_file(files[max(rounds)])


def check_client_states(directory: str | Path) -> int:
    """Check every client state file under ``directory`` as :func:`load_client_state` reads it;
    return how many there are.

    Raises
    ------
    CheckpointError
        For the first file (in partition and round order) that is damaged, truncated, of another
        format or does not hold a ``RecordDict``.
    """
    root = Path(directory) / CLIENTS_DIR
    folders = [p for p in root.iterdir() if p.is_dir() and p.name.isdigit()] if root.is_dir() else []
    checked = 0
    for folder in sorted(folders, key=lambda p: int(p.name)):
        for _, path in sorted(_client_files(folder).items()):
            _read_client_file(path)
            checked += 1
    return checked


def _read_client_file(path: Path) -> RecordDict:
    payload = read_checkpoint_file(path)
    try:
        return recorddict_from_proto(ProtoRecordDict.FromString(payload))
    except Exception:  # noqa: BLE001 - a checked payload that is not a RecordDict
        raise CheckpointError(f"checkpoint: {path} does not hold a client state (a Flower RecordDict)") from None


def clear_client_states(directory: str | Path) -> None:
    """Remove every client's saved state (a fresh run must not pick up an older run's)."""
    shutil.rmtree(Path(directory) / CLIENTS_DIR, ignore_errors=True)
