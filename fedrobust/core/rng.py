"""fedrobust's seeded random streams, and torch's global RNG seeded for a block, one thread at a time.

:data:`STREAMS` names every random stream that fedrobust derives from the run seed: each stream's
entropy is ``[seed, *tag, *keys]`` (its tag words, then its keys such as the partition id and the
round), so two streams of the same keys draw apart. :func:`stream_words`,
:func:`stream_seed`, :func:`stream_generator` (torch) and :func:`stream_rng` (numpy) are the only
builders of these streams; a stream's outputs are pinned by tests/test_rng_streams.py, since a
change would break reproducibility against earlier runs and checkpoints.

:func:`seeded_global_rng` forks torch's global RNG (CPU, and the given CUDA devices), seeds it,
and restores it afterwards, holding :data:`GLOBAL_RNG_LOCK` throughout. The global RNG is one
per process: two threads seeding it at once would draw from each other's streams (breaking
determinism), and torch's generator mutex taken from two threads around the GIL can deadlock.
Model building (:func:`fedrobust.models.get_model`) and every client fit use it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "GLOBAL_RNG_LOCK",
    "STREAMS",
    "seeded_global_rng",
    "stream_entropy",
    "stream_generator",
    "stream_rng",
    "stream_seed",
    "stream_words",
]


class _Stream(NamedTuple):
    tag: tuple[int, ...]  # the words after the seed in the stream's entropy
    keys: tuple[str, ...]  # what the caller passes after the seed, in order


#: Every seeded random stream: name -> (tag, keys); the entropy is ``[seed, *tag, *keys]``.
#: Tags are ASCII mnemonics ("BLK" = 0x42_4C_4B); the two untagged streams predate the tags.
STREAMS: dict[str, _Stream] = {
    # server: the partition ids taking part in a round (strategies.base.select_partitions)
    "client-sampling": _Stream((), ("server_round",)),
    # client: its minibatch order in a round (clients.batch_generator)
    "minibatch": _Stream((), ("partition_id", "server_round")),
    # "RNG": torch's global RNG during a client's fit (clients.round.round_seed)
    "fit": _Stream((0x52_4E_47,), ("partition_id", "server_round")),
    # "ATK": an update attack's draws on a Byzantine client (clients.attack_generator)
    "attack": _Stream((0x41_54_4B,), ("partition_id", "server_round")),
    # "QZ": a client compressor's draws, e.g. rand-k's coordinates (clients.compression_generator)
    "compression": _Stream((0x51_5A,), ("partition_id", "server_round")),
    # "POIS": a data attack's poisoning of a client's local data (workload.poisoned_client_data)
    "poison": _Stream((0x50_4F_49_53,), ("partition_id",)),
    # "BYZ", 0: the fixed Byzantine set of a run (attacks.byzantine_ids, mode "fixed")
    "byzantine-fixed": _Stream((0x42_59_5A, 0), ()),
    # "BYZ", 1: a round's Byzantine set (attacks.byzantine_ids, mode "dynamic")
    "byzantine-dynamic": _Stream((0x42_59_5A, 1), ("server_round",)),
    # "BLK": a round's block draw, alike in the bgmd strategies and the plugin's bgmd rule
    "block-selection": _Stream((0x42_4C_4B,), ("server_round",)),
    # "CRS": a round's C-RSA rand coordinates, shared by the server and every client (strategies.c_rsa)
    "coordinates": _Stream((0x43_52_53,), ("server_round",)),
    # "BKT": a round's bucketing permutation, server side (aggregators.preaggregation)
    "bucketing": _Stream((0x42_4B_54,), ("server_round",)),
    # "OMN": the colluding adversary's draws in a round, server side (strategies.adversary)
    "adversary": _Stream((0x4F_4D_4E,), ("server_round",)),
    # "OMN", 1: a crafted reply's compressor draws (strategies.adversary)
    "adversary-compression": _Stream((0x4F_4D_4E, 1), ("partition_id", "server_round")),
    # "ROOT", 0: which training examples the server holds out as FLTrust's root set (run.build.root_indices)
    "root-set": _Stream((0x52_4F_4F_54, 0), ()),
    # "ROOT", 1: the server's minibatch of its root set in a round (strategies.fltrust)
    "root-minibatch": _Stream((0x52_4F_4F_54, 1), ("server_round",)),
    # "ROOT", 2: torch's global RNG during the server's root-set gradient (strategies.fltrust)
    "root-fit": _Stream((0x52_4F_4F_54, 2), ("server_round",)),
    # "VAL": which training examples the run holds out as its validation split (run.build.validation_indices)
    "validation": _Stream((0x56_41_4C,), ()),
    # "DNC": a round's coordinate draws of the DnC rule, server side (aggregators.rules_clustering)
    "dnc-coordinates": _Stream((0x44_4E_43,), ("server_round",)),
    # "SGD": a round's coordinates for SignGuard's sign statistics, server side (aggregators.rules_clustering)
    "signguard-coordinates": _Stream((0x53_47_44,), ("server_round",)),
}

#: Held while a block runs on a seeded global RNG (re-entrant: a fit may build a model).
GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_global_rng(seed: int, devices: Sequence[int] = ()) -> Iterator[None]:
    """Run the block with torch's global RNG seeded with ``seed``, then restore it.

    Examples
    --------
    >>> with seeded_global_rng(3):
    ...     a = torch.rand(2)
    >>> with seeded_global_rng(3):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b)
    True
    """
    devices = list(devices)
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices):
        if devices:
            torch.manual_seed(int(seed))
        else:
            # A CPU block: seed the CPU generator alone. torch.manual_seed would also queue a lazy
            # CUDA seeding, with a recorded stack trace, on every call while CUDA is uninitialised
            # (a growing queue, and a third of a 100-client in-process round); the CPU stream
            # drawn here is the same either way.
            torch.default_generator.manual_seed(int(seed))
        yield


def stream_entropy(name: str, seed: int, *keys: int) -> list[int]:
    """The entropy ``[seed, *tag, *keys]`` of stream ``name`` (see :data:`STREAMS`).

    Examples
    --------
    >>> stream_entropy("byzantine-dynamic", 3, 5) == [3, 0x42_59_5A, 1, 5]
    True
    >>> stream_entropy("minibatch", 0, 1, 2)
    [0, 1, 2]
    """
    try:
        stream = STREAMS[name]
    except KeyError:
        raise ValueError(f"unknown random stream {name!r}; one of {', '.join(STREAMS)}") from None
    if len(keys) != len(stream.keys):
        expected = ", ".join(("seed",) + stream.keys)
        raise TypeError(f"stream {name!r} takes ({expected}), got {1 + len(keys)} values")
    return [int(seed), *stream.tag, *(int(k) for k in keys)]


def stream_words(name: str, seed: int, *keys: int, n: int = 2, dtype: type = np.uint32) -> np.ndarray:
    """``n`` words of stream ``name``: its :class:`numpy.random.SeedSequence`'s ``generate_state(n, dtype)``."""
    return np.random.SeedSequence(stream_entropy(name, seed, *keys)).generate_state(n, dtype)


def stream_seed(name: str, seed: int, *keys: int) -> int:
    """A 63-bit seed from stream ``name`` (its first uint64 word, shifted right by one).

    Examples
    --------
    >>> 0 <= stream_seed("fit", 0, 1, 2) < 2**63
    True
    """
    return int(stream_words(name, seed, *keys, n=1, dtype=np.uint64)[0]) >> 1


def stream_generator(name: str, seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch Generator on ``device`` seeded from stream ``name`` (its two uint32 words, first one high).

    Examples
    --------
    >>> a = torch.rand(2, generator=stream_generator("attack", 0, 1, 2))
    >>> torch.equal(a, torch.rand(2, generator=stream_generator("attack", 0, 1, 2)))
    True
    """
    words = stream_words(name, seed, *keys, n=2)
    return torch.Generator(device=device).manual_seed(int(words[0]) << 32 | int(words[1]))


def stream_rng(name: str, seed: int, *keys: int) -> np.random.Generator:
    """A numpy Generator (PCG64) seeded from stream ``name``'s entropy.

    Examples
    --------
    >>> int(stream_rng("poison", 0, 1).integers(1000)) == int(stream_rng("poison", 0, 1).integers(1000))
    True
    """
    return np.random.default_rng(stream_entropy(name, seed, *keys))
