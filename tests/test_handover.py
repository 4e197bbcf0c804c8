"""The driver's splits and partitions handed to client processes (fedrobust.run.handover): a fresh
process that takes them over builds the same clients without loading the dataset (no
scikit-learn, no flwr-datasets), and anything else it loads as before."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from fedrobust.config import RunConfig
from fedrobust.run.build import client_data, load_splits
from fedrobust.run.handover import take_over, write_handover

CFG = dict(dataset="digits", num_clients=6, clients_per_round=6, partitioner="dirichlet", dirichlet_alpha=0.3, seed=3)

CHILD = textwrap.dedent(
    """
    import json, sys
    from fedrobust.config import RunConfig
    from fedrobust.run.build import client_data, load_splits
    from fedrobust.run.handover import take_over

    path, cfg = sys.argv[1], RunConfig.from_mapping(json.loads(sys.argv[2]))
    taken = take_over(None if path == "-" else path)
    sums = [float(client_data(cfg, p)[0].double().sum()) for p in range(cfg.num_clients)]
    sizes = [len(client_data(cfg, p)[1]) for p in range(cfg.num_clients)]
    test = float(load_splits(cfg).x_test.astype("float64").sum())
    loaded = [name for name in ("sklearn", "flwr_datasets", "datasets") if name in sys.modules]
    print(json.dumps({"taken": taken, "loaded": loaded, "sums": sums, "sizes": sizes, "test": test}))
    """
)


def _child(path: str, cfg: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, path, json.dumps(cfg)], capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _here(cfg: RunConfig) -> dict:
    return {
        "sums": [float(client_data(cfg, p)[0].double().sum()) for p in range(cfg.num_clients)],
        "sizes": [len(client_data(cfg, p)[1]) for p in range(cfg.num_clients)],
        "test": float(load_splits(cfg).x_test.astype(np.float64).sum()),
    }


def test_a_process_that_takes_the_data_over_builds_the_same_clients_without_loading_anything(tmp_path):
    cfg = RunConfig.from_mapping(CFG)
    path = write_handover(cfg, str(tmp_path))
    got = _child(path, CFG)
    assert got["taken"] and got["loaded"] == []  # neither scikit-learn nor the partitioners were imported
    assert {k: got[k] for k in ("sums", "sizes", "test")} == _here(cfg)


def test_a_run_with_other_data_settings_builds_its_own(tmp_path):
    path = write_handover(RunConfig.from_mapping(CFG), str(tmp_path))
    other = dict(CFG, seed=4)
    got = _child(path, other)
    assert got["taken"] and "sklearn" in got["loaded"]  # the hand-over is for another seed: loaded anew
    assert {k: got[k] for k in ("sums", "sizes", "test")} == _here(RunConfig.from_mapping(other))


def test_a_missing_file_is_no_hand_over(tmp_path):
    assert take_over(None) is False and take_over(str(tmp_path / "absent")) is False


def test_a_hand_over_that_cannot_be_written_is_none(tmp_path):
    assert write_handover(RunConfig.from_mapping(CFG), str(tmp_path / "no" / "such" / "folder")) is None


def test_handover_files_are_one_per_data_setting_within_the_budget(tmp_path):
    from fedrobust.run.handover import HandoverFiles

    base = RunConfig.from_mapping(CFG)
    cfgs = [base, base.replace(strategy="gmd"), base.replace(seed=4), base.replace(num_clients=5, clients_per_round=5),
            base.replace(dataset="mnist", data_dir=str(tmp_path / "absent"))]
    files = HandoverFiles(str(tmp_path))
    paths = [files(c) for c in cfgs]
    assert paths[0] == paths[1] and len(set(paths[:4])) == 3  # another strategy: the same data and file
    assert paths[4] is None  # its data cannot be built here: that run loads (and fails) on its own
    size = max(os.path.getsize(p) for p in paths[:4])
    budget = tmp_path / "budget"
    budget.mkdir()
    small = HandoverFiles(str(budget), max_bytes=size + size // 2)  # room for one file
    cut = [small(c) for c in cfgs[:4]]
    assert cut[0] is not None and cut[0] == cut[1] and cut[2:] == [None, None]
    assert [f.name for f in budget.rglob("*.pickle")] == ["data.pickle"]  # the one over the budget is gone


def test_a_process_that_takes_over_with_replace_keeps_one_hand_over(tmp_path):
    from fedrobust.run import build, handover

    a, b = RunConfig.from_mapping(CFG), RunConfig.from_mapping(CFG).replace(seed=4)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    path_a, path_b = write_handover(a, str(tmp_path / "a")), write_handover(b, str(tmp_path / "b"))
    before = dict(build._handed), set(handover._taken)
    try:
        assert take_over(path_a, replace=True) and set(build._handed) == set(build.handed_keys(a))
        assert take_over(path_b, replace=True) and set(build._handed) == set(build.handed_keys(b))
        assert take_over(path_a, replace=True) and set(build._handed) == set(build.handed_keys(a))  # read again
        assert handover._taken == {path_a}
    finally:
        build._handed.clear(), build._handed.update(before[0])
        handover._taken.clear(), handover._taken.update(before[1])


def test_a_run_whose_data_settings_cannot_be_read_gets_no_hand_over(tmp_path, monkeypatch):
    from fedrobust.run import build
    from fedrobust.run.handover import HandoverFiles

    def broken(cfg):
        raise KeyError("a strategy this process does not know")

    monkeypatch.setattr(build, "handed_keys", broken)
    assert HandoverFiles(str(tmp_path))(RunConfig.from_mapping(CFG)) is None  # the run meets it in its process
    assert list(tmp_path.iterdir()) == []
