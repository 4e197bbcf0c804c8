"""Tests of fedrobust.attacks: each attack on known inputs, registry, Byzantine selection, backdoor ASR."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fedrobust.attacks import (
    ATTACKS,
    BYZANTINE_MODES,
    Attack,
    Backdoor,
    DataAttack,
    UpdateAttack,
    attack_success_rate,
    byzantine_ids,
    get_attack,
    model_predictor,
    num_byzantine,
    register_attack,
)

UPDATE = ["bit-flip", "gaussian", "gaussian-replace", "sign-flip", "large-number", "negative-update"]
DATA = ["label-flip", "label-shift", "backdoor", "feature-gaussian", "feature-impulse"]
RESOLVED = ["dba"]  # data attacks that need for_client before poisoning (tests/test_dba.py)
SCALED = ["model-replacement"]  # data attacks whose corrupt hook also applies (tests/test_model_replacement.py)
OMNISCIENT = ["alie", "ipm", "min-max", "min-sum", "fang", "mimic", "optimal-alie", "optimal-ipm"]  # every attack of kind "omniscient" (fedrobust.attacks.omniscient)
RANDOM_UPDATE = ["gaussian", "gaussian-replace"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def local_data(n: int = 64, classes: int = 10, seed: int = 0):
    """Toy normalised images (N, 1, 6, 6) in [-0.5, 2.5] and labels."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 2.5, size=(n, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, classes, size=n).astype(np.int64)
    return x, y


# --------------------------------------------------------------------------------------------- registry


def test_registry_holds_exactly_the_documented_attacks():
    # malformed: tests/test_malformed.py; the omniscient ones: tests/test_attacks_omniscient.py
    assert set(ATTACKS) == {"none", *UPDATE, *DATA, *SCALED, *RESOLVED, *OMNISCIENT, "malformed"}
    for name, cls in ATTACKS.items():
        attack = cls()
        assert attack.name == name
        kind = "none" if name == "none" else "update" if name in (*UPDATE, "malformed") else "data"
        assert attack.kind == ("omniscient" if name in OMNISCIENT else kind)
        assert attack.corrupts_messages == (attack.kind == "update" or name in SCALED)


def test_default_is_none_and_it_changes_nothing():
    attack = get_attack()
    assert (attack.name, attack.kind, attack.params) == ("none", "none", {})
    msg = torch.tensor([1.0, -2.0, 3.0])
    out = attack.corrupt(msg)
    assert torch.equal(out, msg) and out is not msg
    x, y = local_data()
    xp, yp = attack.poison(x, y, 10)
    assert np.array_equal(xp, x) and np.array_equal(yp, y)
    assert not np.shares_memory(xp, x) and not np.shares_memory(yp, y)


@pytest.mark.parametrize("name", DATA)
def test_data_attacks_leave_messages_alone(name):
    msg = torch.tensor([1.0, -2.0])
    assert torch.equal(get_attack(name).corrupt(msg, gen()), msg)


@pytest.mark.parametrize("name", UPDATE)
def test_update_attacks_leave_data_alone(name):
    x, y = local_data()
    xp, yp = get_attack(name).poison(x, y, 10, np.random.default_rng(0))
    assert np.array_equal(xp, x) and np.array_equal(yp, y)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("bit-flip", {"scale": 100.0}),
        ("gaussian", {"variance": 100.0}),
        ("gaussian-replace", {"std": 1.0}),
        ("sign-flip", {}),
        ("large-number", {"value": 1e4}),
        ("negative-update", {"c": 0.5}),
        ("label-flip", {}),
        ("label-shift", {}),
        ("backdoor", {"target": 0, "fraction": 1.0, "trigger": False, "trigger_size": 3, "trigger_value": None}),
        ("feature-gaussian", {"variance": 100.0}),
        ("feature-impulse", {"fraction": 0.9}),
    ],
)
def test_default_params_are_reported(name, params):
    attack = get_attack(name)
    assert attack.params == params
    assert get_attack(name, **params) == attack


def test_params_round_trip_and_instances_pass_through():
    attack = get_attack("gaussian", variance=10)
    assert attack.params == {"variance": 10.0}
    assert get_attack(attack.name, **attack.params) == attack
    assert get_attack(attack) is attack
    assert repr(attack) == "Gaussian(variance=10.0)"
    with pytest.raises(ValueError, match="params cannot be given"):
        get_attack(attack, variance=1.0)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown attack 'bitflip'; known: .*bit-flip.*sign-flip"):
        get_attack("bitflip")
    with pytest.raises(TypeError, match="name must be a str"):
        get_attack(3)


def test_unknown_param_lists_accepted_ones():
    with pytest.raises(ValueError, match=r"attack 'bit-flip' takes no parameter 'sigma'; it takes: scale"):
        get_attack("bit-flip", sigma=1.0)
    with pytest.raises(ValueError, match=r"'label-shift' takes no parameter 'fraction'; it takes: \(none\)"):
        get_attack("label-shift", fraction=0.5)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("bit-flip", {"scale": 0}, r"scale must be a finite number > 0, got 0"),
        ("bit-flip", {"scale": -100}, r"scale must be a finite number > 0"),
        ("bit-flip", {"scale": float("inf")}, r"scale must be a finite number"),
        ("gaussian", {"variance": 0.0}, r"variance must be a finite number > 0"),
        ("gaussian-replace", {"std": -1.0}, r"std must be a finite number > 0"),
        ("large-number", {"value": float("nan")}, r"value must be a finite number"),
        ("negative-update", {"c": 0.0}, r"c must lie in \(0, 1\), got 0.0"),
        ("negative-update", {"c": 1.0}, r"c must lie in \(0, 1\)"),
        ("negative-update", {"c": 1.5}, r"c must lie in \(0, 1\)"),
        ("backdoor", {"target": -1}, r"target must lie in \[0, inf\]"),
        ("backdoor", {"fraction": 1.5}, r"fraction must lie in \[0, 1.0\]"),
        ("backdoor", {"trigger_size": 0}, r"trigger_size must lie in \[1, inf\]"),
        ("backdoor", {"trigger_value": float("inf")}, r"trigger_value must be a finite number"),
        ("feature-gaussian", {"variance": -1}, r"variance must be a finite number > 0"),
        ("feature-impulse", {"fraction": 1.1}, r"fraction must lie in \[0, 1.0\]"),
        ("feature-impulse", {"fraction": -0.1}, r"fraction must lie in \[0, 1.0\]"),
    ],
)
def test_bad_params_name_the_param_and_range(name, params, message):
    with pytest.raises(ValueError, match=rf"attack '{name}': {message}"):
        get_attack(name, **params)


@pytest.mark.parametrize(
    ("name", "params"),
    [("bit-flip", {"scale": "big"}), ("backdoor", {"trigger": "yes"}), ("backdoor", {"target": 1.5})],
)
def test_wrongly_typed_params_raise_type_error(name, params):
    with pytest.raises(TypeError, match=rf"attack '{name}': {next(iter(params))} must be"):
        get_attack(name, **params)


def test_user_defined_update_attack_plugs_in():
    @register_attack("test-zero")
    class Zero(UpdateAttack):
        def __init__(self, level: float = 0.0):
            self.level = level

        def _corrupt(self, message, generator):
            return torch.full_like(message, self.level)

    try:
        attack = get_attack("test-zero", level=2.0)
        assert (attack.name, attack.kind, attack.params) == ("test-zero", "update", {"level": 2.0})
        msg = torch.tensor([1.0, 2.0], dtype=torch.float64)
        out = attack.corrupt(msg)
        assert out.dtype == torch.float64 and torch.equal(out, torch.tensor([2.0, 2.0], dtype=torch.float64))
        x, y = local_data()
        assert np.array_equal(attack.poison(x, y, 10)[1], y)  # an update attack keeps the data
        with pytest.raises(ValueError, match="already registered"):
            register_attack("test-zero", Zero.__base__)
        assert "test-zero" in str(pytest.raises(ValueError, get_attack, "nope").value)
    finally:
        ATTACKS.pop("test-zero")


def test_user_defined_data_attack_plugs_in():
    class AllOnes(DataAttack):
        def _poison(self, x, y, num_classes, rng):
            return x.copy(), np.ones_like(y)

    register_attack("test-ones", AllOnes)
    try:
        x, y = local_data()
        _, yp = get_attack("test-ones").poison(x, y, 10)
        assert (yp == 1).all() and get_attack("test-ones").kind == "data"
    finally:
        ATTACKS.pop("test-ones")


def test_register_rejects_non_attacks_duplicates_and_bad_kinds():
    with pytest.raises(TypeError, match="only Attack subclasses"):
        register_attack("test-bad", int)
    with pytest.raises(ValueError, match="'sign-flip' is already registered"):
        register_attack("sign-flip", type("Other", (UpdateAttack,), {}))

    class Weird(Attack):
        kind = "sideways"

    with pytest.raises(ValueError, match="kind must be one of none, update, data"):
        register_attack("test-weird", Weird)
    assert "test-weird" not in ATTACKS


def test_overwrite_replaces_an_entry():
    class A(UpdateAttack):
        def _corrupt(self, message, generator):
            return message

    class B(UpdateAttack):
        def _corrupt(self, message, generator):
            return message * 2

    register_attack("test-over", A)
    try:
        register_attack("test-over", B, overwrite=True)
        assert torch.equal(get_attack("test-over").corrupt(torch.tensor([1.0])), torch.tensor([2.0]))
    finally:
        ATTACKS.pop("test-over")


def test_bad_hook_output_is_caught():
    class WrongShape(UpdateAttack):
        def _corrupt(self, message, generator):
            return message[:1]

    class InPlace(DataAttack):
        def _poison(self, x, y, num_classes, rng):
            return x, y

    with pytest.raises(ValueError, match="must return a tensor of shape"):
        WrongShape().corrupt(torch.zeros(3))
    x, y = local_data()
    with pytest.raises(ValueError, match="must return new arrays"):
        InPlace().poison(x, y, 10)


# --------------------------------------------------------------------------------------- update attacks


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("bit-flip", {}, [-100.0, 50.0, -300.0, 0.0]),
        ("bit-flip", {"scale": 2}, [-2.0, 1.0, -6.0, 0.0]),
        ("sign-flip", {}, [-1.0, 0.5, -3.0, 0.0]),
        ("large-number", {}, [1e4, 1e4, 1e4, 1e4]),
        ("large-number", {"value": -7}, [-7.0, -7.0, -7.0, -7.0]),
        ("negative-update", {}, [-0.5, 0.25, -1.5, 0.0]),
        ("negative-update", {"c": 0.1}, [-0.1, 0.05, -0.3, 0.0]),
    ],
)
def test_deterministic_update_attacks_exact(name, params, expected, device):
    msg = torch.tensor([1.0, -0.5, 3.0, 0.0], device=device)
    before = msg.clone()
    out = get_attack(name, **params).corrupt(msg, gen())
    assert out.device == msg.device and out.dtype == msg.dtype and out.shape == msg.shape
    torch.testing.assert_close(out.cpu(), torch.tensor(expected), rtol=1e-6, atol=0)
    assert torch.equal(msg, before)


@pytest.mark.parametrize("name", UPDATE)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_update_attacks_keep_shape_dtype_device_and_input(name, dtype, device):
    msg = torch.linspace(-1, 1, 12, dtype=dtype, device=device).reshape(3, 4)
    before = msg.clone()
    out = get_attack(name).corrupt(msg, gen(1))
    assert out.shape == (3, 4) and out.dtype == dtype and out.device == msg.device
    assert torch.isfinite(out).all()
    assert torch.equal(msg, before)
    assert not torch.equal(out, msg)


def test_gradients_do_not_flow_through_corrupt():
    msg = torch.ones(3, requires_grad=True)
    assert not get_attack("sign-flip").corrupt(msg).requires_grad


@pytest.mark.parametrize("name", RANDOM_UPDATE)
def test_random_update_attacks_are_seeded(name, device):
    msg = torch.arange(1000, dtype=torch.float32, device=device)
    attack = get_attack(name)
    a, b = attack.corrupt(msg, gen(5)), attack.corrupt(msg, gen(5))
    c = attack.corrupt(msg, gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # a seeded CPU generator gives the same draws whatever the message's device
    torch.testing.assert_close(a.cpu(), attack.corrupt(msg.cpu(), gen(5)))


def test_random_update_attacks_use_torch_default_generator_without_one():
    msg = torch.zeros(100)
    torch.manual_seed(3)
    a = get_attack("gaussian").corrupt(msg)
    torch.manual_seed(3)
    assert torch.equal(a, get_attack("gaussian").corrupt(msg))


@pytest.mark.parametrize("variance", [100.0, 10.0])
def test_gaussian_adds_noise_of_the_given_variance(variance):
    msg = torch.linspace(-5, 5, 400_000, dtype=torch.float64)
    noise = get_attack("gaussian", variance=variance).corrupt(msg, gen(0)) - msg
    assert abs(float(noise.mean())) < 4 * (variance / len(msg)) ** 0.5
    assert float(noise.var()) == pytest.approx(variance, rel=0.01)
    assert abs(stats.skew(noise.numpy())) < 0.02 and abs(stats.kurtosis(noise.numpy())) < 0.05


@pytest.mark.parametrize("std", [1.0, 3.0])
def test_gaussian_replace_ignores_the_message(std):
    msg = torch.full((400_000,), 1e3)
    out = get_attack("gaussian-replace", std=std).corrupt(msg, gen(0))
    assert abs(float(out.mean())) < 4 * std / len(msg) ** 0.5
    assert float(out.std()) == pytest.approx(std, rel=0.01)
    # the draws do not depend on the honest message
    assert torch.equal(out, get_attack("gaussian-replace", std=std).corrupt(-msg, gen(0)))


def test_corrupt_rejects_bad_messages_and_generators():
    attack = get_attack("sign-flip")
    with pytest.raises(TypeError, match="message must be a floating-point torch.Tensor"):
        attack.corrupt(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point tensor, got dtype torch.int64"):
        attack.corrupt(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least one entry"):
        attack.corrupt(torch.zeros(0))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        attack.corrupt(torch.zeros(3), np.random.default_rng(0))


# ----------------------------------------------------------------------------------------- data attacks


@pytest.mark.parametrize("name", DATA + ["none"])
def test_data_attacks_return_new_arrays_and_never_mutate(name):
    x, y = local_data()
    x0, y0 = x.copy(), y.copy()
    params = {"trigger": True, "fraction": 0.5} if name == "backdoor" else {}
    xp, yp = get_attack(name, **params).poison(x, y, 10, np.random.default_rng(0))
    assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert xp.shape == x.shape and xp.dtype == x.dtype and yp.shape == y.shape and yp.dtype == y.dtype
    assert not np.shares_memory(xp, x) and not np.shares_memory(yp, y)


@pytest.mark.parametrize("name", DATA)
def test_data_attacks_are_seeded(name):
    x, y = local_data()
    params = {"trigger": True, "fraction": 0.5} if name == "backdoor" else {}
    attack = get_attack(name, **params)
    a = attack.poison(x, y, 10, np.random.default_rng(4))
    b = attack.poison(x, y, 10, np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    if name not in ("label-shift",):  # every other data attack draws something
        c = attack.poison(x, y, 10, np.random.default_rng(5))
        assert not (np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1]))


def test_label_shift_exact():
    x, _ = local_data(n=10)
    y = np.arange(10, dtype=np.int64)
    xp, yp = get_attack("label-shift").poison(x, y, 10)
    assert yp.tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert np.array_equal(xp, x)
    _, yb = get_attack("label-shift").poison(x[:4], np.array([0, 1, 1, 0]), 2)
    assert yb.tolist() == [1, 0, 0, 1]


def test_label_flip_is_uniform_over_the_classes():
    n, classes = 50_000, 10
    x = np.zeros((n, 1), np.float32)
    y = np.full(n, 3, np.int64)
    xp, yp = get_attack("label-flip").poison(x, y, classes, np.random.default_rng(0))
    counts = np.bincount(yp, minlength=classes)
    assert counts.shape == (classes,)  # no label outside 0..C-1
    assert stats.chisquare(counts).pvalue > 1e-3
    assert np.array_equal(xp, x)
    # labels are independent of the true ones: about 1/C keep their class
    assert abs(float((yp == y).mean()) - 1 / classes) < 0.01


def test_feature_gaussian_adds_variance_100_noise_and_keeps_labels():
    x = np.random.default_rng(1).normal(size=(2000, 1, 10, 10)).astype(np.float32)
    y = np.arange(2000, dtype=np.int64) % 10
    xp, yp = get_attack("feature-gaussian").poison(x, y, 10, np.random.default_rng(0))
    noise = (xp.astype(np.float64) - x).ravel()
    assert xp.dtype == np.float32 and np.array_equal(yp, y)
    assert abs(noise.mean()) < 4 * 10 / len(noise) ** 0.5
    assert noise.var() == pytest.approx(100.0, rel=0.01)


def test_feature_gaussian_float64_stays_float64():
    x = np.zeros((4, 3), np.float64)
    xp, _ = get_attack("feature-gaussian", variance=1.0).poison(x, np.zeros(4, np.int64), 2, np.random.default_rng(0))
    assert xp.dtype == np.float64 and (xp != 0).all()


@pytest.mark.parametrize("fraction", [0.9, 0.3])
def test_feature_impulse_hits_the_fraction_with_min_max(fraction):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, size=(500, 1, 20, 20)).astype(np.float32)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = -1.0, 3.0  # the data's pepper and salt levels
    xp, yp = get_attack("feature-impulse", fraction=fraction).poison(x, np.zeros(500, np.int64), 2, rng)
    changed = xp != x
    salt, pepper = xp == 3.0, xp == -1.0
    assert np.array_equal(yp, np.zeros(500))
    assert (salt | pepper)[changed].all()  # every hit entry became min or max
    assert np.array_equal(xp[~changed], x[~changed])
    hit = (salt | pepper).mean()
    assert hit == pytest.approx(fraction, abs=0.005)
    assert salt.sum() / (salt | pepper).sum() == pytest.approx(0.5, abs=0.01)


def test_feature_impulse_fraction_zero_and_one():
    x, y = local_data()
    same, _ = get_attack("feature-impulse", fraction=0.0).poison(x, y, 10, np.random.default_rng(0))
    assert np.array_equal(same, x)
    full, _ = get_attack("feature-impulse", fraction=1.0).poison(x, y, 10, np.random.default_rng(0))
    assert set(np.unique(full)) == {x.min(), x.max()}


@pytest.mark.parametrize(
    ("x", "y", "classes", "error", "message"),
    [
        (np.zeros(4, np.float32), np.zeros(4, np.int64), 2, ValueError, r"x must have shape \(N, F\)"),
        (np.zeros((4, 2), np.int64), np.zeros(4, np.int64), 2, TypeError, "x must be a floating-point"),
        (np.zeros((4, 2), np.float32), np.zeros(3, np.int64), 2, ValueError, r"y must have shape \(4,\)"),
        (np.zeros((4, 2), np.float32), np.zeros(4, np.float32), 2, TypeError, "y must be an integer"),
        (np.zeros((4, 2), np.float32), np.array([0, 1, 2, 0]), 2, ValueError, r"y must lie in \[0, 1\]"),
        (np.zeros((4, 2), np.float32), np.zeros(4, np.int64), 1, ValueError, r"num_classes must lie in \[2, inf\]"),
    ],
)
def test_poison_rejects_bad_data(x, y, classes, error, message):
    with pytest.raises(error, match=message):
        get_attack("label-flip").poison(x, y, classes, np.random.default_rng(0))


def test_poison_rejects_a_bad_rng():
    x, y = local_data()
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        get_attack("label-flip").poison(x, y, 10, 0)


# --------------------------------------------------------------------------------------------- backdoor


def test_backdoor_default_relabels_everything_to_class_0_and_keeps_x():
    x, y = local_data()
    xp, yp = get_attack("backdoor").poison(x, y, 10, np.random.default_rng(0))
    assert (yp == 0).all() and np.array_equal(xp, x)


def test_backdoor_fraction_relabels_floor_of_the_samples_with_a_trigger_exactly_there():
    n = 50
    x, _ = local_data(n=n)
    x = np.concatenate([x, x], axis=1)  # two channels
    y = np.full(n, 2, np.int64)  # no sample already in the target class
    attack = get_attack("backdoor", target=8, fraction=0.3, trigger=True)
    xp, yp = attack.poison(x, y, 10, np.random.default_rng(0))
    poisoned = yp == 8
    assert poisoned.sum() == 15 and (yp[~poisoned] == 2).all()
    # the trigger: a 3x3 square at the data's max in the bottom-right corner of every channel ...
    assert (xp[poisoned][:, :, -3:, -3:] == x.max()).all()
    # ... and nothing else changes, on the poisoned samples or the others
    mask = np.zeros(x.shape[1:], bool)
    mask[:, -3:, -3:] = True
    assert np.array_equal(xp[poisoned][:, ~mask], x[poisoned][:, ~mask])
    assert np.array_equal(xp[~poisoned], x[~poisoned])


def test_backdoor_trigger_settings_and_tabular_data():
    x = np.zeros((3, 5), np.float32)
    x[0, 0] = 4.0
    attack = get_attack("backdoor", target=1, trigger=True, trigger_size=2)
    xp, yp = attack.poison(x, np.zeros(3, np.int64), 2, np.random.default_rng(0))
    assert yp.tolist() == [1, 1, 1]
    expected = np.zeros((3, 5), np.float32)
    expected[0, 0] = 4.0
    expected[:, -2:] = 4.0  # the last trigger_size features at the data's max
    assert np.array_equal(xp, expected)
    custom = get_attack("backdoor", trigger=True, trigger_size=1, trigger_value=-2.5)
    assert custom.stamp(np.zeros((1, 1, 3, 3), np.float32))[0, 0].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, -2.5]]


def test_backdoor_rejects_impossible_targets_and_triggers():
    x, y = local_data()
    with pytest.raises(ValueError, match=r"target must lie in \[0, 9\] \(num_classes=10\), got 10"):
        get_attack("backdoor", target=10).poison(x, y, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="trigger_size=7 exceeds the image size"):
        get_attack("backdoor", trigger=True, trigger_size=7).poison(x, y, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="trigger_size=3 exceeds the number of features 2"):
        Backdoor().stamp(np.zeros((2, 2), np.float32))


def label_coded_inputs(n: int = 40, classes: int = 4):
    """Images whose top-left pixel holds their label, so a 'perfect' predictor can read it back."""
    y = np.arange(n, dtype=np.int64) % classes
    x = np.zeros((n, 1, 8, 8), np.float32)
    x[:, 0, 0, 0] = y
    x[:, 0, 1, 1] = 5.0  # the data's max, i.e. the trigger value
    return x, y


def test_asr_is_one_for_a_backdoored_and_zero_for_a_clean_predictor():
    x, y = label_coded_inputs()
    attack = get_attack("backdoor", target=2, trigger=True)

    def backdoored(xb):  # the target when the bottom-right 3x3 square is at the max, else the truth
        triggered = (xb[:, 0, -3:, -3:] == 5.0).all(axis=(1, 2))
        return np.where(triggered, 2, xb[:, 0, 0, 0].astype(np.int64))

    def clean(xb):  # reads the label and ignores the trigger
        return xb[:, 0, 0, 0].astype(np.int64)

    assert attack_success_rate(backdoored, x, y, attack) == 1.0
    assert attack_success_rate(clean, x, y, attack) == 0.0
    assert (backdoored(x) == y).all()  # the backdoored model is still accurate on clean inputs
    seen = []
    attack_success_rate(lambda xb: seen.append(xb.copy()) or clean(xb), x, y, attack)
    assert (np.concatenate(seen)[:, 0, 0, 0] != 2).all()  # target-class inputs are left out


def test_asr_without_trigger_is_the_target_confusion():
    x, y = label_coded_inputs(n=40, classes=4)  # 30 non-target inputs
    attack = get_attack("backdoor", target=0)

    def confused(xb):  # predicts the target for labels 1 and 2 only
        labels = xb[:, 0, 0, 0].astype(np.int64)
        return np.where(np.isin(labels, [1, 2]), 0, labels)

    assert attack_success_rate(confused, x, y, attack) == pytest.approx(20 / 30)
    assert attack_success_rate(confused, x, y, attack, batch_size=7) == pytest.approx(20 / 30)
    as_tensor = attack_success_rate(lambda xb: torch.from_numpy(confused(xb)), x, y, attack)
    assert as_tensor == pytest.approx(20 / 30)


def test_asr_argument_errors():
    x, y = label_coded_inputs()
    with pytest.raises(TypeError, match="attack must be a Backdoor"):
        attack_success_rate(lambda xb: np.zeros(len(xb)), x, y, get_attack("label-flip"))
    with pytest.raises(ValueError, match="no input outside the target class 0"):
        attack_success_rate(lambda xb: np.zeros(len(xb)), x[y == 0], y[y == 0], Backdoor())
    with pytest.raises(ValueError, match="one label per input"):
        attack_success_rate(lambda xb: np.zeros((len(xb), 2)), x, y, Backdoor())


def test_model_predictor_matches_the_model_argmax():
    from fedrobust.models import get_model

    torch.manual_seed(0)
    model = get_model("mlp", input_shape=(1, 8, 8), num_classes=4)
    x, _ = label_coded_inputs()
    predict = model_predictor(model, batch_size=16)
    expected = model(torch.from_numpy(x)).argmax(dim=-1).numpy()
    assert np.array_equal(predict(x), expected)
    assert model.training  # mode restored


# -------------------------------------------------------------------------------------------- selection


def test_num_byzantine_is_the_floor():
    assert [num_byzantine(10, f) for f in (0.0, 0.1, 0.19, 0.2, 0.25, 0.3, 0.99)] == [0, 1, 1, 2, 2, 3, 9]
    assert num_byzantine(100, 0.29) == 29  # not 28 through float round-off


def test_fixed_set_is_the_same_every_round():
    ids = byzantine_ids(20, 0.25, "fixed", seed=3)
    assert len(ids) == 5 and ids <= set(range(20)) and isinstance(ids, frozenset)
    assert all(byzantine_ids(20, 0.25, "fixed", seed=3, server_round=r) == ids for r in range(1, 30))
    assert len({byzantine_ids(20, 0.25, "fixed", seed=s) for s in range(10)}) > 1  # depends on the seed


def test_dynamic_set_changes_across_rounds_but_is_reproducible():
    rounds = [byzantine_ids(20, 0.25, "dynamic", seed=3, server_round=r) for r in range(1, 31)]
    assert all(len(ids) == 5 and ids <= set(range(20)) for ids in rounds)
    assert len(set(rounds)) > 20
    again = [byzantine_ids(20, 0.25, "dynamic", seed=3, server_round=r) for r in range(1, 31)]
    assert rounds == again
    other_seed = [byzantine_ids(20, 0.25, "dynamic", seed=4, server_round=r) for r in range(1, 31)]
    assert rounds != other_seed


def test_dynamic_sets_cover_clients_evenly():
    counts = np.zeros(10)
    for r in range(2000):
        for i in byzantine_ids(10, 0.3, "dynamic", seed=0, server_round=r):
            counts[i] += 1
    assert np.allclose(counts / 2000, 0.3, atol=0.04)


@pytest.mark.parametrize("mode", BYZANTINE_MODES)
def test_zero_fraction_is_empty(mode):
    assert byzantine_ids(10, 0.0, mode, seed=0, server_round=1) == frozenset()


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 200),
    fraction=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**32),
    r=st.integers(0, 1000),
    mode=st.sampled_from(BYZANTINE_MODES),
)
def test_selection_size_and_range(n, fraction, seed, r, mode):
    ids = byzantine_ids(n, fraction, mode, seed=seed, server_round=r)
    assert len(ids) == num_byzantine(n, fraction) <= fraction * n + 1e-6
    assert all(0 <= i < n for i in ids)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fraction": 1.0}, ValueError, r"fraction must lie in \[0, 1.0\)"),
        ({"fraction": -0.1}, ValueError, r"fraction must lie in \[0, 1.0\)"),
        ({"mode": "random"}, ValueError, "mode must be one of fixed, dynamic, got 'random'"),
        ({"mode": "dynamic"}, ValueError, "server_round is required when mode='dynamic'"),
        ({"num_clients": 0}, ValueError, r"num_clients must lie in \[1, inf\]"),
        ({"seed": -1}, ValueError, r"seed must lie in \[0, inf\]"),
        ({"server_round": -1, "mode": "dynamic"}, ValueError, r"server_round must lie in \[0, inf\]"),
    ],
)
def test_selection_argument_errors(kwargs, error, message):
    args = {"num_clients": 10, "fraction": 0.2, "mode": "fixed", "seed": 0, **kwargs}
    with pytest.raises(error, match=message):
        byzantine_ids(**args)
