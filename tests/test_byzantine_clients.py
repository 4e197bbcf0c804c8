"""Byzantine clients: update attacks applied once in wire format, data attacks poison, honest rounds untouched.

Unit tests wrap the honest clients on small synthetic data; the "through the app" tests build the
clients the ClientApp builds (``fedrobust.run.app.make_client``) on the offline ``digits`` dataset and
read who attacked from their Flower replies.
"""

import functools

import numpy as np
import pytest
import torch
from flwr.common import Code, Context, FitIns, RecordDict, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.constant import PARTITION_ID_KEY

from fedrobust.run.app import make_client, may_be_byzantine
from fedrobust.attacks import ATTACKS, UpdateAttack, byzantine_ids, get_attack, register_attack
from fedrobust.clients import CLIENTS, ByzantineClient, GradientClient, LocalStepsClient, attack_generator
from fedrobust.config import RunConfig
from fedrobust.models import flat_params, get_model
from fedrobust.core.ndarrays import flatten, to_ndarrays
from fedrobust import workload
from fedrobust.run.build import build_model, byzantine_clients, client_data, poisoned_client_data

CLASSES = 3


def _data(n=40, f=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, f, generator=g), torch.randint(CLASSES, (n,), generator=g)


def _honest(cls=GradientClient, partition_id=0, data=None, **kw):
    x, y = data if data is not None else _data()
    model = get_model("mlp", input_shape=(5,), num_classes=CLASSES, seed=1, hidden=7)
    return cls(model, x, y, partition_id=partition_id, **kw)


def _config(server_round=1, **kw):
    return {"server-round": server_round, "lr": 0.1, "local-steps": 3, "batch-size": 8, "seed": 0, **kw}


def _params():
    """The global model sent to the clients (a fresh model, shifted: never a client's local state)."""
    client = _honest()
    return to_ndarrays(flat_params(client.model) + 0.01, client.shapes)


def _wrap(honest, attack, **kw):
    """``honest`` as one of 2 clients, ψ = 0.5, fixed: Byzantine every round iff its id is _byzantine_partition()."""
    return ByzantineClient(honest, attack, num_clients=2, fraction=0.5, mode="fixed", **kw)


def _byzantine_partition():
    (pid,) = byzantine_ids(2, 0.5, "fixed", seed=0)
    return pid


class CountingFlip(UpdateAttack):
    """A user-defined update attack: −g, counting its calls (to see it is applied exactly once)."""

    def __init__(self):
        self.calls = 0

    def _corrupt(self, message, generator):
        self.calls += 1
        return -message


@pytest.fixture
def user_attack():
    register_attack("counting-flip", CountingFlip)
    yield "counting-flip"
    ATTACKS.pop("counting-flip")


# ---------------------------------------------------------------------------------------- update attacks
@pytest.mark.parametrize("cls", [GradientClient, LocalStepsClient])
def test_bit_flip_sends_minus_100_times_the_honest_message_in_wire_format(cls, device):
    pid = _byzantine_partition()
    honest_out, honest_n, honest_metrics = _honest(cls, pid, device=device).fit(_params(), _config())
    client = _wrap(_honest(cls, pid, device=device), get_attack("bit-flip"))
    out, n, metrics = client.fit(_params(), _config())

    assert [(a.shape, a.dtype) for a in out] == [(a.shape, a.dtype) for a in honest_out]
    assert all(a.dtype == np.float32 for a in out)
    torch.testing.assert_close(flatten(out), -100 * flatten(honest_out))
    assert n == honest_n
    assert set(metrics) == set(honest_metrics) and metrics["bytes_sent"] == honest_metrics["bytes_sent"]


def test_update_attacks_corrupt_before_compression_so_replies_keep_the_compressed_format():
    cls = CLIENTS["compressed-gradient"]
    pid = _byzantine_partition()
    config = {**_config(), "compressor": "top-k", "compressor-params": "k=4"}
    honest_out, _, honest_metrics = _honest(cls, pid).fit(_params(), config)
    out, _, metrics = _wrap(_honest(cls, pid), get_attack("sign-flip")).fit(_params(), config)
    assert [(a.dtype, a.shape) for a in out] == [(a.dtype, a.shape) for a in honest_out]
    assert metrics["bytes_sent"] == honest_metrics["bytes_sent"]
    # top-k payload of −g: the coordinates of the top-k of g (int arrays), its values negated (float arrays)
    kinds = [a.dtype.kind for a in out]
    assert "i" in kinds and "f" in kinds
    for a, b in zip(out, honest_out):
        np.testing.assert_array_equal(a, b if a.dtype.kind == "i" else -b)


def test_a_user_defined_update_attack_is_applied_exactly_once_per_byzantine_round(user_attack):
    attack = get_attack(user_attack)
    pid = _byzantine_partition()
    client = _wrap(_honest(partition_id=pid), attack)
    honest_out, _, _ = _honest(partition_id=pid).fit(_params(), _config())
    out, _, _ = client.fit(_params(), _config())
    assert attack.calls == 1
    torch.testing.assert_close(flatten(out), -flatten(honest_out))
    client.fit(_params(), _config(server_round=2))
    assert attack.calls == 2
    assert client.honest.corrupt_message is None  # the honest client is left as it was


def test_gaussian_noise_is_seeded_by_seed_partition_and_round(device):
    pid = _byzantine_partition()
    attack = get_attack("gaussian", variance=10)
    client = _wrap(_honest(LocalStepsClient, pid, device=device), attack)
    out, _, _ = client.fit(_params(), _config(server_round=3))
    honest_out, _, _ = _honest(LocalStepsClient, pid, device=device).fit(_params(), _config(server_round=3))
    expected = attack.corrupt(flatten(honest_out), attack_generator(0, pid, 3))
    torch.testing.assert_close(flatten(out), expected)
    again, _, _ = client.fit(_params(), _config(server_round=3))
    torch.testing.assert_close(flatten(again), flatten(out))
    other, _, _ = client.fit(_params(), _config(server_round=4))
    assert not torch.allclose(flatten(other) - flatten(out), torch.zeros(1), atol=1e-2)


def test_honest_partitions_and_non_attack_rounds_send_the_honest_message():
    byzantine = _byzantine_partition()
    honest_pid = 1 - byzantine
    client = _wrap(_honest(partition_id=honest_pid), get_attack("large-number"))
    out, _, metrics = client.fit(_params(), _config())
    ref, _, ref_metrics = _honest(partition_id=honest_pid).fit(_params(), _config())
    assert not client.is_byzantine(seed=0, server_round=1)
    torch.testing.assert_close(flatten(out), flatten(ref))
    assert metrics == ref_metrics


# ------------------------------------------------------------------------------------------ data attacks
def test_label_shift_client_trains_on_shifted_labels_and_keeps_its_clean_copy(device):
    pid = _byzantine_partition()
    x, y = _data()
    attack = get_attack("label-shift")
    xp, yp = (torch.from_numpy(a) for a in attack.poison(x.numpy(), y.numpy(), CLASSES))
    assert torch.equal(yp, CLASSES - 1 - y)
    client = _wrap(_honest(LocalStepsClient, pid, (x, y), device=device), attack, poisoned=(xp, yp))
    assert client.poisoned[1].device.type == device.type  # the poisoned copy lives where the client computes
    out, _, _ = client.fit(_params(), _config())
    ref, _, _ = _honest(LocalStepsClient, pid, (xp, yp), device=device).fit(_params(), _config())
    clean, _, _ = _honest(LocalStepsClient, pid, (x, y), device=device).fit(_params(), _config())
    torch.testing.assert_close(flatten(out), flatten(ref))
    assert not torch.allclose(flatten(out), flatten(clean))
    assert torch.equal(client.honest.y.cpu(), y) and torch.equal(client.honest.x.cpu(), x)  # clean data back


def test_dynamic_data_attack_uses_the_poisoned_copy_only_in_its_byzantine_rounds():
    x, y = _data()
    attack = get_attack("label-flip")
    xp, yp = (torch.from_numpy(a) for a in attack.poison(x.numpy(), y.numpy(), CLASSES, np.random.default_rng(0)))
    client = ByzantineClient(_honest(partition_id=0, data=(x, y)), attack, num_clients=4, fraction=0.5,
                             mode="dynamic", poisoned=(xp, yp))
    rounds = range(1, 9)
    flags = [client.is_byzantine(0, r) for r in rounds]
    assert any(flags) and not all(flags)
    for r, bad in zip(rounds, flags):
        out, _, _ = client.fit(_params(), _config(server_round=r))
        data = (xp, yp) if bad else (x, y)
        ref, _, _ = _honest(partition_id=0, data=data).fit(_params(), _config(server_round=r))
        torch.testing.assert_close(flatten(out), flatten(ref))


def test_bad_arguments_are_refused_with_clear_messages():
    honest = _honest()
    with pytest.raises(TypeError, match="honest must be a HonestClient"):
        ByzantineClient(object(), get_attack("sign-flip"), num_clients=2, fraction=0.5)
    with pytest.raises(TypeError, match="attack must be an Attack"):
        ByzantineClient(honest, "sign-flip", num_clients=2, fraction=0.5)
    with pytest.raises(ValueError, match="mode must be one of fixed, dynamic"):
        ByzantineClient(honest, get_attack("sign-flip"), num_clients=2, fraction=0.5, mode="sometimes")
    with pytest.raises(ValueError, match="fraction"):
        ByzantineClient(honest, get_attack("sign-flip"), num_clients=2, fraction=1.0)
    with pytest.raises(ValueError, match=r"partition_id must lie in \[0, num_clients=1\)"):
        ByzantineClient(_honest(partition_id=3), get_attack("sign-flip"), num_clients=1, fraction=0.0)
    with pytest.raises(ValueError, match="poisoned data is required for the data attack 'label-flip'"):
        ByzantineClient(honest, get_attack("label-flip"), num_clients=2, fraction=0.5)
    x, y = _data(n=10)
    with pytest.raises(ValueError, match="poisoned data must have the shapes of the clean data"):
        ByzantineClient(honest, get_attack("label-flip"), num_clients=2, fraction=0.5, poisoned=(x, y))


# ------------------------------------------------------------------------------------- through the app
def _cfg(**kw):
    base = {"strategy": "mean-sgd", "dataset": "digits", "model": "logistic", "num_clients": 5,
            "clients_per_round": 5, "batch_size": 16, "device": "cpu", "client_threads": 0}
    return RunConfig(**{**base, **kw})


@functools.cache
def _global_arrays(cfg):
    model = build_model(cfg)
    return to_ndarrays(flat_params(model), [tuple(p.shape) for p in model.parameters()])


def _reply(cfg, partition_id, server_round):
    client = make_client(cfg, Context(0, partition_id, {PARTITION_ID_KEY: partition_id}, RecordDict(), {}))
    arrays = _global_arrays(cfg)
    config = {"server-round": server_round, "lr": cfg.lr, "local-steps": cfg.local_steps,
              "batch-size": cfg.batch_size, "seed": cfg.seed}
    res = client.fit(FitIns(ndarrays_to_parameters(arrays), config))
    assert res.status.code == Code.OK
    return flatten(parameters_to_ndarrays(res.parameters))


def _attackers_seen(cfg, server_round):
    """Partition ids whose reply is the negated honest reply (sign-flip), read from the Flower replies."""
    honest_cfg = cfg.replace(attack="none")
    seen = set()
    for pid in range(cfg.num_clients):
        got, ref = _reply(cfg, pid, server_round), _reply(honest_cfg, pid, server_round)
        if torch.allclose(got, -ref) and not torch.allclose(got, ref):
            seen.add(pid)
        else:
            torch.testing.assert_close(got, ref)
    return seen


def test_fixed_mode_clients_attack_as_one_set_every_round():
    cfg = _cfg(attack="sign-flip", byzantine_fraction=0.4, byzantine_mode="fixed")
    seen = [_attackers_seen(cfg, r) for r in (1, 2, 3)]
    assert len(seen[0]) == 2 and seen[0] == seen[1] == seen[2] == set(byzantine_clients(cfg, 1))
    assert [p for p in range(5) if may_be_byzantine(cfg, p)] == sorted(seen[0])


def test_dynamic_mode_clients_attack_as_a_fresh_set_each_round():
    cfg = _cfg(attack="sign-flip", byzantine_fraction=0.4, byzantine_mode="dynamic")
    seen = [_attackers_seen(cfg, r) for r in (1, 2, 3, 4)]
    assert all(len(s) == 2 for s in seen)
    assert seen == [set(byzantine_clients(cfg, r)) for r in (1, 2, 3, 4)]
    assert len({frozenset(s) for s in seen}) > 1
    assert all(may_be_byzantine(cfg, p) for p in range(5))


def test_no_attack_or_no_byzantine_share_builds_honest_clients_only():
    for cfg in (_cfg(attack="none", byzantine_fraction=0.4), _cfg(attack="sign-flip", byzantine_fraction=0.1)):
        assert not any(may_be_byzantine(cfg, p) for p in range(5)) and not byzantine_clients(cfg, 1)


def test_a_user_defined_attack_plugs_into_the_run_config_and_the_app(user_attack):
    cfg = _cfg(attack=user_attack, byzantine_fraction=0.2)
    (pid,) = byzantine_clients(cfg, 1)
    torch.testing.assert_close(_reply(cfg, pid, 1), -_reply(cfg.replace(attack="none"), pid, 1))


def test_data_attack_clients_are_poisoned_once_per_process_with_a_seeded_rng():
    cfg = _cfg(strategy="fedavg", attack="label-shift", byzantine_fraction=0.2)
    (pid,) = byzantine_clients(cfg, 1)
    x, y = client_data(cfg, pid)
    xp, yp = poisoned_client_data(cfg, pid)
    assert torch.equal(xp, x) and torch.equal(yp, 9 - y)
    assert poisoned_client_data(cfg, pid)[1].data_ptr() == yp.data_ptr()  # cached, not poisoned again
    flip = cfg.replace(attack="label-flip")
    labels = poisoned_client_data(flip, pid)[1].clone()
    assert (labels != y).float().mean() > 0.5  # uniform random labels: ~90% change on 10 classes
    workload._poisoned.cache_clear()  # a fresh process poisons alike
    assert torch.equal(poisoned_client_data(flip, pid)[1], labels)
    with pytest.raises(ValueError, match="partition_id must lie in"):
        poisoned_client_data(cfg, 5)
    honest, poisoned = _reply(cfg.replace(attack="none"), pid, 1), _reply(cfg, pid, 1)
    assert not torch.allclose(honest, poisoned)
