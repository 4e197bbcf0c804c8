"""Checkpoints: a run's state after every round, and resuming from it (``checkpoint-dir``, ``resume``).

With ``checkpoint-dir`` set, the server writes after every round, atomically (a temporary file,
then :func:`os.replace`), the file ``server.pt`` in that folder: the run config, the last
finished round R, the strategy's :meth:`~fedrobust.strategies.VectorStrategy.state_dict` (the
model and every server memory: BGMD's mean memory, FL-BGMD's residual rows, C-RSA's set of
initialised workers), the round records and the initial evaluation. Each client writes its
``Context.state`` (error-feedback memory, a C-RSA/RSA worker's model x_k, rounds taken part in)
after each round it takes part in to ``clients/<partition id>/round-<r>.bin`` (Flower's
``RecordDict`` protobuf), keeping its last two; this needs the clients to see the same folder,
as they do in a simulation.

No random-number state is saved because none is carried between rounds: client sampling,
Byzantine selection, minibatches, attack draws, BGMD's block draws and C-RSA's coordinates are
all drawn from generators seeded by (``seed``, round, partition id). So a run resumed from round R
(``resume = true``; Flower numbers the resumed rounds from 1 again, the strategy adds R) gives on
the same device the same final model, bit for bit, as an uninterrupted run.

A resumed run must have the checkpoint's config except in :func:`~fedrobust.config.execution_keys`
(``rounds``, ``device``, ``output``, ...); anything else is a :class:`~fedrobust.errors.ConfigError`
naming the keys. A run without ``resume`` refuses a folder that already holds a checkpoint.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from flwr.common import RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict

from .config import ConfigError, RunConfig, execution_keys, run_compressor_name
from .results import RoundRecord

if TYPE_CHECKING:  # pragma: no cover
    from .strategies import VectorStrategy

__all__ = [
    "SERVER_FILE",
    "CLIENTS_DIR",
    "atomic_write",
    "server_checkpoint",
    "save_server",
    "load_server",
    "resume_round",
    "restore_server",
    "save_client_state",
    "load_client_state",
    "clear_client_states",
]

FORMAT = 1
"""Version of the checkpoint layout."""
SERVER_FILE = "server.pt"
CLIENTS_DIR = "clients"
_ROUND_FILE = re.compile(r"^round-(\d+)\.bin$")


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace ``path``
    in one :func:`os.replace`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    return atomic_write(Path(directory) / SERVER_FILE, buffer.getvalue())


def load_server(directory: str | Path) -> dict[str, Any] | None:
    """The checkpoint in ``directory``, or None when it holds none.

    Raises
    ------
    ConfigError
        If the file is not a fedrobust checkpoint of this format.
    """
    path = Path(directory) / SERVER_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ConfigError(f"checkpoint-dir: {path} is not a readable fedrobust checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"checkpoint-dir: {path} is not a fedrobust checkpoint of format {FORMAT}")
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
    changed = [
        f"{key}={current[key]!r} (checkpoint: {value!r})"
        for key, value in state["config"].items()
        if key not in ignored and key in current and current[key] != value
    ]
    if changed:
        raise ConfigError(
            f"resume: the checkpoint in {cfg.checkpoint_dir!r} was made with another config; "
            f"changed: {', '.join(changed)}; only {', '.join(sorted(ignored))} may change"
        )
    if done > cfg.rounds:
        raise ConfigError(f"resume: the checkpoint is at round {done}, past rounds={cfg.rounds}")
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
    path = atomic_write(folder / f"round-{int(server_round)}.bin", recorddict_to_proto(state).SerializeToString())
    older = sorted(r for r in _client_files(folder) if r < server_round)
    for r in older[:-1]:
        (folder / f"round-{r}.bin").unlink(missing_ok=True)
    for r in (r for r in _client_files(folder) if r > server_round):  # left by a run that went further
        (folder / f"round-{r}.bin").unlink(missing_ok=True)
    return path


def load_client_state(directory: str | Path, partition_id: int, before_round: int) -> RecordDict | None:
    """A client's ``Context.state`` as saved after the last round before ``before_round`` it took
    part in, or None when it has none."""
    files = _client_files(_client_dir(directory, partition_id))
    rounds = [r for r in files if r < before_round]
    if not rounds:
        return None
    proto = ProtoRecordDict.FromString(files[max(rounds)].read_bytes())
    return recorddict_from_proto(proto)


def clear_client_states(directory: str | Path) -> None:
    """Remove every client's saved state (a fresh run must not pick up an older run's)."""
    shutil.rmtree(Path(directory) / CLIENTS_DIR, ignore_errors=True)
