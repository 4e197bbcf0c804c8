"""What every client's fit runs inside: a seeded torch RNG, and its state restored and saved.

:class:`RoundClient` wraps the client the App builds (honest or Byzantine) as a Flower ``Client``.
For each fit of ``server-round`` r, on partition p with run seed s:

- torch's global RNG is forked and seeded from (s, p, r) for the fit (:func:`round_seed`), so
  anything that draws from it (LeNet's dropout) is reproducible, whichever process or actor
  serves the client and whatever it ran before; the caller's RNG is left as it was;
- with a checkpoint folder: the first fit of this client in this run (``Context.state`` not yet
  restored) loads the state saved after the last round before r it took part in
  (:func:`fedrobust.checkpoint.load_client_state`), and every fit saves the state it leaves
  (:func:`~fedrobust.checkpoint.save_client_state`). A resumed run's clients so continue with
  their error-feedback memories and C-RSA/RSA worker models;
- the reply's metrics get ``fit_seconds`` (:data:`FIT_SECONDS_KEY`), the fit's wall time.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from flwr.client import Client
from flwr.common import (
    ConfigRecord,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    RecordDict,
)

from .._rng import seeded_global_rng, stream_seed

__all__ = ["RoundClient", "round_seed", "RESTORED_KEY", "FIT_SECONDS_KEY"]

FIT_SECONDS_KEY = "fit_seconds"
"""Reply metric: the client's wall time for the fit, from receiving the instruction to the encoded
reply (its Flower (de)serialisation and state restore/save included; scripts/bench_simulation.py)."""

RESTORED_KEY = "fedrobust-restored"
"""``Context.state`` key set once a client's saved state was looked for in this run."""


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
    checkpoint_dir : str or Path, optional
        The run's ``checkpoint-dir``; no state is loaded or saved when empty or None.
    """

    def __init__(
        self,
        inner: Client,
        state: RecordDict,
        partition_id: int,
        device: torch.device,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.inner = inner
        self.state = state
        self.partition_id = int(partition_id)
        self.device = torch.device(device)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None

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
        if self.checkpoint_dir is not None:
            self._restore(server_round)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with seeded_global_rng(round_seed(int(ins.config["seed"]), self.partition_id, server_round), devices):
            res = self.inner.fit(ins)
        if self.checkpoint_dir is not None:
            from ..checkpoint import save_client_state

            save_client_state(self.checkpoint_dir, self.partition_id, server_round, self.state)
        if isinstance(res.metrics, dict):
            res.metrics[FIT_SECONDS_KEY] = time.perf_counter() - started
        return res

    def _restore(self, server_round: int) -> None:
        if RESTORED_KEY in self.state:
            return
        from ..checkpoint import load_client_state

        saved = load_client_state(self.checkpoint_dir, self.partition_id, server_round)
        for key, record in (saved or {}).items():
            self.state[key] = record
        self.state[RESTORED_KEY] = ConfigRecord({"from-round": server_round})
