"""The driver's splits and partitions handed to client processes (fedrobust.run.handover): a fresh
process that takes them over builds the same clients without loading the dataset (no
scikit-learn, no flwr-datasets), and anything else it loads as before."""

import json
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
