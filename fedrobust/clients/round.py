"""What every client's fit runs inside: a seeded torch RNG, and its state restored and saved.

:class:`RoundClient` wraps the client the App builds (honest or Byzantine) as a Flower ``Client``.
For each fit of ``server-round`` r, on partition p with run seed s:

- torch's global RNG is forked and seeded from (s, p, r) for the fit (:func:`round_seed`), so
  anything that draws from it (LeNet's dropout) is reproducible, whichever process or actor
  serves the client and whatever it ran before; the caller's RNG is left as it was;
- with a state store (the run's checkpoint files, :class:`ClientStateStore`): the first fit of
  this client in this run (``Context.state`` not yet restored) loads the state saved after the
  last round before r it took part in, and every fit saves the state it leaves. A resumed run's
  clients so continue with their error-feedback memories and C-RSA/RSA worker models. A saved
  state that fails its check (:class:`~fedrobust.core.errors.CheckpointError`; ``resume`` checks
  every file before the first round, so this is one damaged during the run) fails the fit
  without raising (:func:`failed_fit`): the reply has a non-OK status whose message is the
  error's one line, so the server counts the client as failed and logs that line, with no
  traceback;
- the reply's metrics get ``fit_seconds`` (:data:`FIT_SECONDS_KEY`), the fit's wall time.
"""

from __future__ import annotations

import time
from typing import Protocol

import torch
from flwr.client import Client
from flwr.common import (
    Code,
    ConfigRecord,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    Parameters,
    RecordDict,
    Status,
)

from ..core.rng import seeded_global_rng, stream_seed
from ..core.errors import CheckpointError

__all__ = ["ClientStateStore", "RoundClient", "round_seed", "failed_fit", "RESTORED_KEY", "FIT_SECONDS_KEY"]


class ClientStateStore(Protocol):
    """Where a client's ``Context.state`` is kept between runs (the run layer supplies it: the
    checkpoint files of :mod:`fedrobust.run.checkpoint`)."""

    def save(self, partition_id: int, server_round: int, state: RecordDict) -> object:
        """Keep ``state`` as this client's state after ``server_round``."""

    def load(self, partition_id: int, before_round: int) -> RecordDict | None:
        """The state saved after the last round before ``before_round``, or None; a
        :class:`~fedrobust.core.errors.CheckpointError` when the saved state fails its check."""

FIT_SECONDS_KEY = "fit_seconds"
"""Reply metric: the client's wall time for the fit, from receiving the instruction to the encoded
reply (its Flower (de)serialisation and state restore/save included; scripts/bench_simulation.py)."""

RESTORED_KEY = "fedrobust-restored"
"""``Context.state`` key set once a client's saved state was looked for in this run."""


def failed_fit(message: str) -> FitRes:
    """A reply that reports a failed fit: not OK, ``message`` as its status message, no arrays.

    Flower's server counts it as a failure of the round (as it does a raising client) without a
    traceback. ``FIT_NOT_IMPLEMENTED`` is the only fit status other than OK that Flower has.

    Examples
    --------
    >>> res = failed_fit("checkpoint: f.bin is damaged")
    >>> res.status.code != Code.OK, res.status.message
    (True, 'checkpoint: f.bin is damaged')
    """
    return FitRes(Status(Code.FIT_NOT_IMPLEMENTED, message), Parameters(tensors=[], tensor_type=""), 0, {})


def round_seed(seed: int, partition_id: int, server_round: int) -> int:
    """The 63-bit seed of torch's global RNG during a client's fit.

    Examples
    --------
    >>> round_seed(0, 1, 2) == round_seed(0, 1, 2) != round_seed(0, 1, 3)
    True
    """
    return stream_seed("fit", seed, partition_id, server_round)


class RoundClient(Client):
    """A Flower ``Client`` around ``inner`` (see the module docstring).

    Parameters
    ----------
    inner : flwr.client.Client
        The client that does the work (``NumPyClient.to_client()``).
    state : flwr.common.RecordDict
        ``Context.state``, the same object ``inner`` keeps its memory in.
    partition_id : int
        The client's partition id.
    device : torch.device
        Where the client computes (its CUDA RNG is forked and seeded too).
    store : ClientStateStore, optional
        Where the state is loaded from and saved to; none is loaded or saved when None.
    """

    def __init__(
        self,
        inner: Client,
        state: RecordDict,
        partition_id: int,
        device: torch.device,
        store: ClientStateStore | None = None,
    ) -> None:
        self.inner = inner
        self.state = state
        self.partition_id = int(partition_id)
        self.device = torch.device(device)
        self.store = store

    def get_properties(self, ins: GetPropertiesIns) -> GetPropertiesRes:
        """The inner client's."""
        return self.inner.get_properties(ins)

    def get_parameters(self, ins: GetParametersIns) -> GetParametersRes:
        """The inner client's."""
        return self.inner.get_parameters(ins)

    def evaluate(self, ins: EvaluateIns) -> EvaluateRes:
        """The inner client's."""
        return self.inner.evaluate(ins)

    def fit(self, ins: FitIns) -> FitRes:
        """The inner fit under a seeded RNG, with the state restored before and saved after."""
        started = time.perf_counter()
        server_round = int(ins.config["server-round"])
        if self.store is not None:
            try:
                self._restore(server_round)
            except CheckpointError as err:
                return failed_fit(str(err))
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with seeded_global_rng(round_seed(int(ins.config["seed"]), self.partition_id, server_round), devices):
            res = self.inner.fit(ins)
        if self.store is not None:
            self.store.save(self.partition_id, server_round, self.state)
        if isinstance(res.metrics, dict):
            res.metrics[FIT_SECONDS_KEY] = time.perf_counter() - started
        return res

    def _restore(self, server_round: int) -> None:
        if RESTORED_KEY in self.state:
            return
        saved = self.store.load(self.partition_id, server_round)
        for key, record in (saved or {}).items():
            self.state[key] = record
        self.state[RESTORED_KEY] = ConfigRecord({"from-round": server_round})
