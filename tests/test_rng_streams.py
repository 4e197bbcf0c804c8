"""Pins every seeded random stream: the same keys must keep giving the same words and draws.

The values below were recorded with the stream code as it stood before the streams moved into one
table (fedrobust/core/rng.py); a change to a stream's tag, key order or word packing breaks a run's
reproducibility against earlier runs and checkpoints, and fails here.
"""

import numpy as np
import pytest
import torch

import fedrobust.aggregators.rules as rules
from fedrobust import workload
from fedrobust.attacks import byzantine_ids
from fedrobust.clients import attack_generator, batch_generator
from fedrobust.clients.compressed import compression_generator
from fedrobust.clients.round import round_seed
from fedrobust.config import RunConfig
from fedrobust.strategies import BGMD
from fedrobust.strategies.base import select_partitions
from fedrobust.strategies.c_rsa import coordinate_seed

#: (seed, partition id, round) triples the pins are recorded for.
KEYS = [(0, 1, 2), (7, 3, 11), (2**31, 0, 0)]

#: (seed, round) pairs taken from KEYS.
ROUND_KEYS = [(s, r) for s, _, r in KEYS]

TORCH_STREAMS = {
    # function -> (initial_seed for each of KEYS, torch.randint(1000, (4,)) on KEYS[0])
    batch_generator: ([16681889381969129775, 12934854479077429665, 13551543737259158364], [832, 756, 85, 524]),
    attack_generator: ([5924368369270683597, 5972031891502526822, 6437948300524857305], [634, 805, 774, 830]),
    compression_generator: ([11183713775046923882, 7978413993479598942, 8638715666096072619], [628, 289, 63, 670]),
}

#: The block draw's generator seed for ROUND_KEYS, alike in the bgmd strategy and the plugin rule.
BLOCK_SEEDS = [2967687301689204585, 101150882994841387, 5739183755393315132]


@pytest.mark.parametrize("fn", list(TORCH_STREAMS), ids=lambda f: f.__name__)
def test_client_torch_streams_are_pinned(fn):
    seeds, draws = TORCH_STREAMS[fn]
    assert [fn(*k).initial_seed() for k in KEYS] == seeds
    assert torch.randint(1000, (4,), generator=fn(*KEYS[0])).tolist() == draws
    assert fn(*KEYS[0]).device == torch.device("cpu")


def test_round_seed_is_pinned():
    assert [round_seed(*k) for k in KEYS] == [1889859601539252919, 1444499289390708676, 2949141397178020797]


def test_coordinate_seed_is_pinned():
    assert [coordinate_seed(*k) for k in ROUND_KEYS] == [1562811545549390749, 7301570587721035490, 1858878132336692236]


def test_client_sampling_is_pinned():
    assert [select_partitions(20, 5, s, r) for s, r in ROUND_KEYS] == [
        [1, 4, 5, 7, 15], [2, 9, 10, 11, 15], [1, 2, 4, 13, 15],
    ]


def test_byzantine_sets_are_pinned():
    assert [sorted(byzantine_ids(20, 0.3, "fixed", s)) for s, _ in ROUND_KEYS] == [
        [3, 6, 10, 14, 15, 19], [1, 4, 8, 15, 16, 19], [0, 2, 7, 11, 16, 18],
    ]
    assert [sorted(byzantine_ids(20, 0.3, "dynamic", s, r)) for s, r in ROUND_KEYS] == [
        [0, 2, 7, 12, 15, 16], [3, 4, 11, 15, 17, 19], [5, 7, 10, 12, 15, 16],
    ]


def test_bgmd_block_draw_is_pinned():
    got = []
    for s, r in ROUND_KEYS:
        strategy = BGMD(RunConfig(strategy="bgmd", seed=s, device="cpu"), torch.ones(3), [(3,)])
        got.append(strategy.rule.generator(r, strategy.device).initial_seed())  # the strategy's own rule
    assert got == BLOCK_SEEDS


def test_plugin_bgmd_rule_block_draw_is_pinned(monkeypatch):
    """The plugin's BGMD rule is the same rule object class: the same draw for the same (seed, round)."""
    seen = []

    class Stop(Exception):
        pass

    def capture(deltas, k, generator=None, **kwargs):
        seen.append(generator.initial_seed())
        raise Stop

    monkeypatch.setattr(rules, "block_geometric_median", capture)
    for s, r in ROUND_KEYS:
        with pytest.raises(Stop):
            rules.BGMDRule(seed=s)(torch.ones(3, 4), None, r)
    assert seen == BLOCK_SEEDS


#: The coordinate draws' generator seeds of the clustering rules for ROUND_KEYS.
DNC_SEEDS = [16461385906078602551, 11778261710433110711, 9900677240020084864]
SIGNGUARD_SEEDS = [18252385822868156015, 10070598134250543915, 7528755550540608182]


def test_clustering_rule_draws_are_pinned(monkeypatch):
    """DnC's and SignGuard's coordinate draws: their streams, and the generators the rules hand on."""
    from fedrobust.aggregators import rules_clustering

    assert [rules_clustering.DnCRule(seed=s).generator(r, "cpu").initial_seed() for s, r in ROUND_KEYS] == DNC_SEEDS
    assert [rules_clustering.SignGuardRule(seed=s).generator(r, "cpu").initial_seed() for s, r in ROUND_KEYS] == SIGNGUARD_SEEDS
    seen = []

    class Stop(Exception):
        pass

    def capture(rows, *args, generator=None, **kwargs):
        seen.append(generator.initial_seed())
        raise Stop

    for name in ("dnc", "signguard"):
        monkeypatch.setattr(rules_clustering, name, capture)
    for s, r in ROUND_KEYS:
        for rule in (rules_clustering.DnCRule(seed=s), rules_clustering.SignGuardRule(seed=s)):
            with pytest.raises(Stop):
                rule(torch.ones(3, 4), None, r)
    assert seen[0::2] == DNC_SEEDS and seen[1::2] == SIGNGUARD_SEEDS


class _DrawLabels:
    """A data attack that replaces the labels with draws of the rng it is given (hashable: a cache key)."""

    def poison(self, x, y, num_classes, rng):
        return x.copy(), rng.integers(0, 1000, len(y))


@pytest.mark.parametrize(
    ("seed", "partition_id", "labels"),
    [(0, 1, [81, 566, 357, 500]), (7, 3, [147, 52, 20, 960]), (648, 0, [236, 793, 286, 400])],
)
def test_poisoning_rng_is_pinned(seed, partition_id, labels):
    cfg = RunConfig(dataset="breast-cancer", seed=seed, num_clients=5, clients_per_round=5)
    _, y = workload.poisoned_client_data(cfg, partition_id, _DrawLabels())
    assert y[:4].tolist() == labels


#: The streams added with the defenses: stream_words(name, seed[, round]) for ROUND_KEYS.
DEFENSE_STREAM_WORDS = {
    "bucketing": [[2151266711, 817893861], [3714086575, 1746269491], [222536640, 1001328899]],
    "root-set": [[3698439324, 742363199], [3540417355, 639884276], [2822875924, 2389021714]],
    "root-minibatch": [[2172606720, 3619380620], [3827831491, 743865404], [3810725914, 810142539]],
    "root-fit": [[2975441607, 656230722], [3661738730, 3884264273], [2820115450, 1733234166]],
}


@pytest.mark.parametrize("name", list(DEFENSE_STREAM_WORDS))
def test_defense_streams_are_pinned(name):
    from fedrobust.core.rng import STREAMS, stream_words

    with_round = bool(STREAMS[name].keys)
    got = [stream_words(name, s, *([r] if with_round else [])).tolist() for s, r in ROUND_KEYS]
    assert got == DEFENSE_STREAM_WORDS[name]


#: The validation split's stream: stream_words("validation", seed) for the seeds of ROUND_KEYS, and
#: the holdout it draws, holdout_split(100, 5, seed, "validation").held_out.
VALIDATION_WORDS = [[2776503247, 2219816083], [1674682682, 1948316670], [992897413, 2431674795]]
VALIDATION_HELD_OUT = [[39, 43, 62, 63, 78], [13, 29, 50, 71, 76], [7, 21, 24, 62, 66]]


def test_validation_stream_is_pinned():
    from fedrobust.core.rng import stream_words
    from fedrobust.data.holdout import holdout_split

    assert [stream_words("validation", s).tolist() for s, _ in ROUND_KEYS] == VALIDATION_WORDS
    assert [holdout_split(100, 5, s, "validation").held_out.tolist() for s, _ in ROUND_KEYS] == VALIDATION_HELD_OUT


# ---------------------------------------------------------------------------- the table itself
def test_streams_have_distinct_entropy_layouts():
    from fedrobust.core.rng import STREAMS

    layouts = {(s.tag, len(s.keys)) for s in STREAMS.values()}
    assert len(layouts) == len(STREAMS)


def test_stream_helpers_check_name_and_key_count():
    from fedrobust.core.rng import stream_generator, stream_rng

    with pytest.raises(ValueError, match="unknown random stream"):
        stream_rng("no-such-stream", 0)
    with pytest.raises(TypeError, match=r"takes \(seed, partition_id, server_round\)"):
        stream_generator("minibatch", 0, 1)


def test_rng_stays_a_leaf_module():
    import ast

    import fedrobust.core.rng

    tree = ast.parse(open(fedrobust.core.rng.__file__, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("fedrobust"), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("fedrobust") for a in node.names), ast.dump(node)
