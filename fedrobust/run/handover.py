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


def take_over(path: str | None) -> bool:
    """Use the splits and partitions at ``path`` in this process (read once per path).

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
        build.take_over(items)
        _taken.add(path)
        return True
