"""``model-replacement``: train on backdoored data, then scale the update so that it replaces the global model.

Bagdasaryan, Veit, Hua, Estrin and Shmatikov (2020), "How To Backdoor Federated Learning" (AISTATS). Under
FedAvg the server steps G ← G + (η / n) Σᵢ (Lᵢ − G) over the n local models Lᵢ of a round. An attacker who
trained a backdoored model X sends L = G + γ (X − G) with γ = n / η: once the model has (nearly) converged
the honest terms nearly cancel and the new global model is X.

fedrobust's clients send Δ = x − y (the model minus the local model) and fedavg steps x ← x − mean(Δ), so
η = 1 there and the attack sends γ · Δ. With f colluding attackers in a round, each sending γ · Δⱼ, the
mean holds (f γ / n) · mean(Δⱼ); fedrobust's default γ = n / (η · f) makes that mean(Δⱼ), so the attackers
together replace the global model by the average of their backdoored models (the paper's γ = n / η is the
case f = 1). f is the expected number of Byzantine clients among the n sampled, floor(ψ · N) · n / N, and
at least 1. The formula assumes the uniform mean (``weighted = false``) or equal-sized partitions.

What differs from the paper: fedrobust ships the plain scaled attack. The paper's constrain-and-scale (an
anomaly-detection term in the attacker's training loss, then a norm bound on the scaled update) and its
schedule (an attacker selected in a single round, with a decaying local learning rate) are not
implemented: the attack scales its update in every round it is Byzantine.
"""

from __future__ import annotations

from ._checks import check_positive
from .backdoor import Backdoor
from .registry import register_attack

__all__ = ["ModelReplacement", "replacement_boost"]


def replacement_boost(clients_per_round: int, attackers: float, server_step: float = 1.0) -> float:
    """γ = n / (η · max(1, f)): the factor by which f attackers among n clients replace the model.

    Examples
    --------
    >>> replacement_boost(10, 2), replacement_boost(10, 1, server_step=0.5), replacement_boost(5, 0.4)
    (5.0, 20.0, 5.0)
    """
    return float(clients_per_round) / (float(server_step) * max(1.0, float(attackers)))


@register_attack("model-replacement")
class ModelReplacement(Backdoor):
    """The ``backdoor`` data attack, with the update trained on the poisoned data scaled by ``boost``.

    A data attack (kind ``data``: the client trains on :meth:`~Backdoor.poison`-ed data) whose
    :meth:`corrupt` hook also applies (:attr:`corrupts_messages`): it sends ``boost`` · Δ.

    Parameters
    ----------
    target, fraction, trigger, trigger_size, trigger_value
        As for ``backdoor``, except the defaults ``fraction=0.5`` and ``trigger=True`` (the paper mixes
        backdoored and clean inputs in the attacker's batches).
    boost : float, optional
        γ > 0; None (default): worked out from the run, n / (η · f) (module docstring).

    Examples
    --------
    >>> import torch
    >>> mr = ModelReplacement(boost=4.0)
    >>> mr.kind, mr.corrupts_messages, mr.corrupt(torch.tensor([1.0, -0.5]))
    ('data', True, tensor([ 4., -2.]))
    >>> mr = ModelReplacement().for_client(partition_id=3, num_clients=10, clients_per_round=10, num_byzantine=2)
    >>> mr.boost
    5.0
    """

    def __init__(
        self,
        target: int = 0,
        fraction: float = 0.5,
        trigger: bool = True,
        trigger_size: int = 3,
        trigger_value: float | None = None,
        boost: float | None = None,
    ) -> None:
        super().__init__(target, fraction, trigger, trigger_size, trigger_value)
        self.boost = None if boost is None else check_positive(boost, "boost")

    @property
    def corrupts_messages(self) -> bool:
        """True: the update trained on the poisoned data is scaled."""
        return True

    def for_client(self, *, partition_id, num_clients, clients_per_round, num_byzantine, byzantine_rank=None,
                   server_step=1.0):
        """A copy with ``boost`` worked out from the run when it is None (itself otherwise)."""
        if self.boost is not None:
            return self
        attackers = num_byzantine * clients_per_round / num_clients
        params = {**self.params, "boost": replacement_boost(clients_per_round, attackers, server_step)}
        return type(self)(**params)

    def _corrupt(self, message, generator):
        if self.boost is None:
            raise ValueError("model-replacement: boost is None; give boost, or build the attack with for_client")
        return message * self.boost
