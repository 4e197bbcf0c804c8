"""The benchmark protocol's choices: worst case over attacks, tuned values chosen on validation only."""

import math

import pytest

from fedrobust.experiments.selection import attack_label, choose_tuned, heterogeneity, heterogeneity_order, worst_case


def rec(attack="alie", val=0.5, test=0.5, *, strategy="gmd", psi=0.2, seed=0, **config):
    cfg = {"strategy": strategy, "attack": attack, "attack-params": "", "byzantine-fraction": psi, "seed": seed,
           **config}
    rounds = [{"round": 1, "accuracy": 0.1, "val_accuracy": 0.1},
              {"round": 2, "accuracy": test, "val_accuracy": val}]
    return {"config": cfg, "results": {"rounds": rounds}}


def test_the_worst_case_is_the_attack_with_the_lowest_mean_over_seeds():
    records = [rec("alie", test=0.6, seed=0), rec("alie", test=0.2, seed=1),  # mean 0.4
               rec("ipm", test=0.45, seed=0), rec("ipm", test=0.45, seed=1)]  # mean 0.45
    worst = worst_case(records)
    assert (worst.attack, worst.seeds) == ("alie", 2)
    assert worst.mean == pytest.approx(0.4) and worst.std == pytest.approx(math.sqrt(0.08))


def test_a_run_that_blew_up_is_the_worst_case_and_ties_go_to_the_first_attack():
    assert worst_case([rec("alie", test=0.3), rec("ipm", test=math.nan)]).attack == "ipm"
    assert worst_case([rec("alie", test=0.3), rec("ipm", test=None)]).mean == 0.0
    assert worst_case([rec("ipm", test=0.3), rec("alie", test=0.3)]).attack == "ipm"
    with pytest.raises(ValueError, match="at least one record"):
        worst_case([])


def test_the_choice_maximises_the_worst_validation_attack_and_never_reads_test():
    records = [rec("alie", val=0.9, test=0.1, lr=0.1), rec("ipm", val=0.5, test=0.1, lr=0.1),
               rec("alie", val=0.6, test=0.9, lr=0.3), rec("ipm", val=0.7, test=0.9, lr=0.3)]
    (choice,) = choose_tuned(records, {"lr": [0.1, 0.3]}).values()
    assert choice.values == {"lr": 0.3} and choice.score == pytest.approx(0.6)
    assert choice.worst_attack == "alie" and choice.candidates == 2
    # scrambling every test accuracy changes nothing about the choice
    for r, test in zip(records, (0.99, 0.98, 0.01, 0.02)):
        r["results"]["rounds"][-1]["accuracy"] = test
    (again,) = choose_tuned(records, {"lr": [0.1, 0.3]}).values()
    assert again.values == {"lr": 0.3}
    assert {id(r) for r in again.records} == {id(records[2]), id(records[3])}


def test_ties_go_to_the_candidate_first_in_grid_order_whatever_the_record_order():
    records = [rec("alie", val=0.7, lr=0.3), rec("alie", val=0.7, lr=0.1), rec("alie", val=0.7, lr=1.0)]
    assert next(iter(choose_tuned(records, {"lr": [0.1, 0.3, 1.0]}).values())).values == {"lr": 0.1}
    assert next(iter(choose_tuned(records, {"lr": [1.0, 0.3, 0.1]}).values())).values == {"lr": 1.0}


def test_two_tuned_axes_and_one_choice_per_setting():
    records = []
    for psi, best in ((0.2, (0.1, 0.9)), (0.4, (0.3, 0.0))):
        for lr in (0.1, 0.3):
            for momentum in (0.0, 0.9):
                val = 0.8 if (lr, momentum) == best else 0.4
                records += [rec(a, val=val, psi=psi, lr=lr, **{"client-momentum": momentum}) for a in ("alie", "ipm")]
    choices = choose_tuned(records, {"lr": [0.1, 0.3], "client-momentum": [0.0, 0.9]})
    picked = {s[3]: c.values for s, c in choices.items()}
    assert picked == {0.2: {"lr": 0.1, "client-momentum": 0.9}, 0.4: {"lr": 0.3, "client-momentum": 0.0}}


def test_a_candidate_missing_an_attack_is_not_eligible():
    records = [rec("alie", val=0.5, lr=0.1), rec("ipm", val=0.5, lr=0.1),
               rec("alie", val=0.9, lr=0.3)]  # lr = 0.3 never met ipm
    (choice,) = choose_tuned(records, {"lr": [0.1, 0.3]}).values()
    assert choice.values == {"lr": 0.1} and choice.candidates == 1


def test_tuning_without_a_validation_split_is_refused():
    records = [rec("alie", lr=0.1)]
    del records[0]["results"]["rounds"][-1]["val_accuracy"]
    with pytest.raises(ValueError, match="validation-size > 0"):
        choose_tuned(records, {"lr": [0.1]})
    assert len(choose_tuned(records, {})) == 1  # nothing tuned: no validation needed


def test_settings_split_by_strategy_heterogeneity_and_other_keys():
    records = [rec(strategy=s, partitioner=p, **{"dirichlet-alpha": 0.1}, rounds=r)
               for s in ("gmd", "cmd") for p in ("iid", "dirichlet") for r in (10, 20)]
    settings = set(choose_tuned(records, {}))
    assert len(settings) == 8
    assert ((("rounds", 10),), "cmd", "dirichlet α=0.1", 0.2) in settings


def test_heterogeneity_labels_and_their_order():
    labels = [heterogeneity({"partitioner": p, "dirichlet-alpha": a})
              for p, a in (("label-shards", 1), ("dirichlet", 0.1), ("iid", 1), ("dirichlet", 1.0))]
    assert sorted(labels, key=heterogeneity_order) == ["iid", "dirichlet α=1", "dirichlet α=0.1", "label-shards"]
    assert attack_label({"attack": "gaussian", "attack-params": "sigma=200"}) == "gaussian (sigma=200)"
