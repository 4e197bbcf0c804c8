"""The driver's dataset splits and partitions, handed to the client processes of a Ray simulation.

Every Ray actor that runs clients loads the dataset and partitions it once, as the driver did
before the run started: on 2 CPU cores that is about 3.4 s per actor for mnist5k (importing
scikit-learn for the stratified split, then flwr-datasets and Hugging Face ``datasets`` for the
partitioner), while the actors start side by side. :func:`simulate` instead writes what the
driver built (:func:`~fedrobust.run.build.handed_data`) into a private temporary folder for the
duration of the run, and each actor reads it back at its first client (:func:`take_over`): the
same arrays, so the same clients and the same results, without the loading.

An actor that cannot read the file (a node of a Ray cluster on another machine, where the
driver's folder does not exist) builds its data itself, as it always did.

A sweep's worker processes (``fedrobust sweep --jobs N``) take their cells' data over the same
way: the sweep has built it while checking the cells (:class:`HandoverFiles`: one file per
distinct dataset and partitioning), and a worker keeps one hand-over at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading

from ..config import RunConfig
from . import build

log = logging.getLogger(__name__)

FILE_NAME = "data.pickle"

#: At most this many bytes of files per :class:`HandoverFiles`; the runs beyond them load their own data.
MAX_HANDOVER_BYTES = 1 << 30

_taken: set[str] = set()
_lock = threading.Lock()


def write_handover(cfg: RunConfig, folder: str) -> str | None:
    """Write ``cfg``'s splits and partitions (built here when not yet cached) into ``folder``.

    Returns the file's path, or None when it cannot be written (a full disk, say): the actors then
    load their data themselves.
    """
    items = build.handed_data(cfg)
    path = os.path.join(folder, FILE_NAME)
    try:
        with open(path, "wb") as file:
            pickle.dump(items, file, protocol=pickle.HIGHEST_PROTOCOL)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as err:
        log.warning("the client actors load their own data: the hand-over could not be written to %s (%s)", path, err)
        with contextlib.suppress(OSError):
            os.remove(path)
        return None
    return path


class HandoverFiles:
    """Hand-over files in ``folder``, one per distinct data setting, each written when a run of
    that setting first asks for it (so a caller can start the first runs while the later files
    are still to be written), up to ``max_bytes`` in all.

    ``files(cfg)`` is the file for ``cfg``'s splits and partitions, or None when they cannot be
    built here or the budget is spent: that run's process then loads its data itself (and reports
    what fails, as it would have).
    """

    def __init__(self, folder: str, max_bytes: int = MAX_HANDOVER_BYTES) -> None:
        self.folder, self.max_bytes = folder, max_bytes
        self.paths: dict[tuple, str | None] = {}
        self.written = 0

    def __call__(self, cfg: RunConfig) -> str | None:
        try:
            key = build.handed_keys(cfg)
        except Exception as err:  # noqa: BLE001 - that run meets the error in its own process
            log.debug("no hand-over for %s (%s)", cfg, err)
            return None
        if key not in self.paths:
            self.paths[key] = self._write(cfg, key)
        return self.paths[key]

    def _write(self, cfg: RunConfig, key: tuple) -> str | None:
        if self.written >= self.max_bytes:
            return None
        sub = os.path.join(self.folder, str(len(self.paths)))
        try:
            os.mkdir(sub)
            path = write_handover(cfg, sub)
        except Exception as err:  # noqa: BLE001 - that run loads its own data and meets the error there
            log.debug("no hand-over for %s (%s)", key, err)
            return None
        if path is not None:
            self.written += os.path.getsize(path)
            if self.written > self.max_bytes:  # the budget is spent: this one and the rest load their own
                os.remove(path)
                return None
        return path


def take_over(path: str | None, *, replace: bool = False) -> bool:
    """Use the splits and partitions at ``path`` in this process (read once per path).

    With ``replace`` they take the place of any taken over before (a process that runs one run
    after the other on other data keeps one hand-over in memory, and reads a file again when it
    comes back to it).

    Returns whether they are in use; False when ``path`` is None or cannot be read (the process
    then loads and partitions the dataset itself).
    """
    if path is None:
        return False
    with _lock:
        if path in _taken:
            return True
        try:
            with open(path, "rb") as file:
                items = pickle.load(file)
        except OSError as err:
            log.debug("no hand-over at %s (%s): this process loads its own data", path, err)
            return False
        build.take_over(items, replace=replace)
        if replace:
            _taken.clear()
        _taken.add(path)
        return True
