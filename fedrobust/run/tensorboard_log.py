"""The ``tensorboard`` run key: a run's per-round metrics as TensorBoard event files, written live.

With ``tensorboard = FOLDER`` the server writes, as each round ends, every number of the round's
record (:class:`~fedrobust.core.results.RoundRecord`) as a scalar at step = the server round, and
flushes the file, so ``tensorboard --logdir FOLDER`` shows a long run while it goes. The initial
model's evaluation (the results' ``initial``) is step 0. Tags are grouped by what they measure
(:func:`scalar_tags`): ``test/accuracy``, ``test/loss``, ``val/accuracy``, ``comm/bytes_up``,
``time/round_seconds``, ``clients/rejected_clients``, and ``server/...`` for a strategy's own
numbers (``server/gm_iterations``, ``server/skipped_step`` as 0 or 1, ...). Lists (such as
``byzantine_clients``) are not scalars and are left out.

A fresh run replaces the event files it finds in FOLDER (as it replaces its ``output`` file); a
resumed run (``resume``) adds to them from the round after its checkpoint. A sweep gives each cell
the subfolder ``FOLDER/<cell id>`` (:func:`fedrobust.experiments.sweep.run_sweep`), so TensorBoard
shows the cells side by side. The writer comes from ``torch.utils.tensorboard``, which needs the ``tensorboard`` package
(``pip install 'fedrobust[tensorboard]'``); it is imported only when the key is set.

Examples
--------
>>> scalar_tags({"round": 3, "accuracy": 0.5, "val_loss": 1.5, "bytes_up": 80, "skipped_step": False,
...              "byzantine_clients": [2], "gm_iterations": 7})
{'test/accuracy': 0.5, 'val/loss': 1.5, 'comm/bytes_up': 80.0, 'server/skipped_step': 0.0, 'server/gm_iterations': 7.0}
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.results import RoundRecord

__all__ = ["TensorBoardLog", "scalar_tags", "require_tensorboard", "summary_writer", "EVENT_FILES"]

#: The names of TensorBoard's event files (what a fresh run replaces in its folder).
EVENT_FILES = "events.out.tfevents.*"

#: The group of each record field that is not the strategy's own (``val_*`` fields go to ``val/``).
_GROUPS = {
    "accuracy": "test", "loss": "test", "attack_success_rate": "test",
    "bytes_up": "comm", "bytes_down": "comm",
    "round_seconds": "time", "aggregation_seconds": "time",
    "num_clients": "clients", "rejected_clients": "clients", "failed_clients": "clients",
}

_INSTALL = "pip install 'fedrobust[tensorboard]'"


def scalar_tags(values: Mapping[str, Any]) -> dict[str, float]:
    """The TensorBoard tag → value of every number in a round record (or in ``initial``).

    ``val_<name>`` becomes ``val/<name>``; the test-split evaluation (``accuracy``, ``loss``,
    ``attack_success_rate``) is under ``test/``, bytes under ``comm/``, seconds under ``time/``,
    client counts under ``clients/`` and every other number (the strategy's own) under
    ``server/``. Booleans count as 0 or 1; ``round`` (the step), None, strings and lists are left out.
    """
    out: dict[str, float] = {}
    for name, value in values.items():
        if name == "round" or value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, numbers.Real):
            continue
        tag = f"val/{name[4:]}" if name.startswith("val_") else f"{_GROUPS.get(name, 'server')}/{name}"
        out[tag] = float(value)
    return out


def require_tensorboard() -> None:
    """Raise a one-line :class:`~fedrobust.core.errors.ConfigError` when the ``tensorboard``
    package is not installed (cheap: it is looked up, not imported)."""
    from importlib.util import find_spec

    if find_spec("tensorboard") is None:
        raise ConfigError(f"tensorboard: the tensorboard package is not installed; {_INSTALL}")


def summary_writer() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, imported on first use (that takes seconds).

    Raises
    ------
    ConfigError
        One line naming the extra, when the import fails (the ``tensorboard`` package is missing).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"tensorboard: torch.utils.tensorboard cannot be imported ({reason}); {_INSTALL}") from None
    return SummaryWriter


class TensorBoardLog:
    """One run's event files: :meth:`write_initial`, :meth:`write_round` (each flushed), :meth:`close`.

    Parameters
    ----------
    folder : str or Path
        Where the event files go (created when missing).
    first_round : int
        The first round this run writes. 0 (a fresh run, from the initial model): the event files
        already in ``folder`` are deleted first. R > 0 (a run resumed after round R - 1): they are
        kept, and TensorBoard is told to drop any of their steps >= R (``purge_step``).

    Raises
    ------
    ConfigError
        When ``torch.utils.tensorboard`` cannot be imported (the ``tensorboard`` package is missing).
    """

    def __init__(self, folder: str | Path, first_round: int = 0) -> None:
        writer_cls = summary_writer()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if first_round == 0:
            for old in self.folder.glob(EVENT_FILES):
                if old.is_file():
                    old.unlink()
        self._lock = threading.Lock()  # the server thread writes; the engine may close from another
        self._writer: Any = writer_cls(log_dir=str(self.folder), purge_step=int(first_round))

    def __repr__(self) -> str:
        return f"TensorBoardLog(folder={str(self.folder)!r}, closed={self._writer is None})"

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        """Write the numbers of ``values`` (:func:`scalar_tags`) at ``step`` and flush; a no-op once closed."""
        with self._lock:
            if self._writer is None:
                return
            for tag, value in scalar_tags(values).items():
                self._writer.add_scalar(tag, value, global_step=int(step))
            self._writer.flush()

    def write_initial(self, initial: Mapping[str, Any]) -> None:
        """The initial model's evaluation (the results' ``initial``), at step 0."""
        self.write(0, initial)

    def write_round(self, record: RoundRecord) -> None:
        """A finished round's record, at step = its server round."""
        self.write(record.round, record.to_dict())

    def close(self) -> None:
        """Flush and close the event file (idempotent)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
