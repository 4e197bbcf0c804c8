"""User extensions are known to the CLI, to the in-process engine and to Flower's engine.

A tiny package is installed into a temporary site directory (a module plus a dist-info with a
``fedrobust.core.extensions`` entry point), and runs in subprocesses find its stateful attack by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.common import RecordDict

from fedrobust.attacks import ATTACKS, Attack, byzantine_ids, register_attack
from fedrobust.clients import ByzantineClient, GradientClient
from fedrobust.clients.byzantine import ATTACK_STATE_KEY
from fedrobust.config import ConfigError, RunConfig
from fedrobust.models import get_model

REPO = Path(__file__).resolve().parents[1]

EXTENSION = '''
import torch
from fedrobust.attacks import Attack, register_attack


@register_attack("escalate")
class Escalate(Attack):
    """Sends -(k + 1) times the honest message in the k-th round it attacks (k from 0)."""

    kind = "update"

    def __init__(self):
        self.count = 0

    def _corrupt(self, message, generator):
        out = -(self.count + 1.0) * message
        self.count += 1
        return out

    def state(self):
        return {"count": self.count}

    def load_state(self, state):
        self.count = int(state["count"])
'''


def _site(tmp_path: Path, entry_point: bool = True) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "escalate_ext.py").write_text(EXTENSION)
    if entry_point:
        info = site / "escalate_ext-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: escalate-ext\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[fedrobust.core.extensions]\nescalate = escalate_ext\n")
    return site


def _fedrobust(args: list[str], site: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
           "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1"}
    return subprocess.run([sys.executable, "-m", "fedrobust", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


RUN = ["--strategy", "gmd", "--dataset", "digits", "--model", "logistic", "--num-clients", "5",
       "--clients-per-round", "5", "--rounds", "3", "--attack", "escalate", "--byzantine-fraction", "0.2"]


def test_an_entry_point_extension_is_known_to_the_cli_and_the_in_process_engine(tmp_path):
    site = _site(tmp_path)
    grid = tmp_path / "grid.toml"
    grid.write_text('strategy = "gmd"\ndataset = "digits"\nmodel = "logistic"\nnum-clients = 5\n'
                    'clients-per-round = 5\nrounds = 3\nattack = "escalate"\nbyzantine-fraction = 0.2\n')
    done = _fedrobust(["sweep", str(grid), "--output", str(tmp_path / "sweep"), "--engine", "inprocess", "--quiet"],
                      site, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "sweep" / "results.jsonl").read_text().splitlines()[0])
    assert record["config"]["attack"] == "escalate"
    # Without the extension installed the same grid is refused in one line, before anything runs.
    plain = tmp_path / "plain"
    plain.mkdir()
    refused = _fedrobust(["sweep", str(grid), "--output", str(tmp_path / "s2"), "--engine", "inprocess"], plain, tmp_path)
    assert refused.returncode == 2 and "escalate" in refused.stderr and "Traceback" not in refused.stderr


def test_the_extensions_run_key_imports_modules_and_a_broken_one_is_one_line(tmp_path):
    site = _site(tmp_path, entry_point=False)
    done = _fedrobust(["run", *RUN, "--extensions", "escalate_ext", "--engine", "inprocess", "--quiet",
                       "--output", str(tmp_path / "r.json")], site, tmp_path)
    if "unrecognized arguments: --engine" in done.stderr:  # the CLI's run has no in-process engine
        done = _fedrobust(["run", *RUN, "--extensions", "escalate_ext", "--quiet", "--output",
                           str(tmp_path / "r.json")], site, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "r.json").read_text())["config"]["extensions"] == "escalate_ext"
    broken = _fedrobust(["run", *RUN, "--extensions", "no_such_module_here"], site, tmp_path)
    assert broken.returncode == 2
    assert "extension 'no_such_module_here' failed to import" in broken.stderr and "Traceback" not in broken.stderr


@pytest.mark.slow
def test_flowers_engine_knows_the_extension_and_agrees_with_the_in_process_engine(tmp_path):
    """Every Ray worker imports the entry point; the stateful attack behaves alike in both engines."""
    site = _site(tmp_path)
    ray = _fedrobust(["run", *RUN, "--quiet", "--output", str(tmp_path / "ray.json")], site, tmp_path)
    assert ray.returncode == 0, ray.stderr[-3000:]
    script = ("import json, sys; from fedrobust.config import RunConfig; from fedrobust.run.inprocess import run_inprocess;"
              "cfg = RunConfig(strategy='gmd', dataset='digits', model='logistic', num_clients=5, clients_per_round=5,"
              " rounds=3, attack='escalate', byzantine_fraction=0.2);"
              "print(json.dumps([r['accuracy'] for r in run_inprocess(cfg)['rounds']]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    local = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr[-2000:]
    on_ray = [r["accuracy"] for r in json.loads((tmp_path / "ray.json").read_text())["rounds"]]
    assert on_ray == json.loads(local.stdout.strip().splitlines()[-1])


class _Escalate(Attack):
    kind = "update"

    def __init__(self):
        self.count = 0

    def _corrupt(self, message, generator):
        self.count += 1
        return -float(self.count) * message

    def state(self):
        return {"count": self.count}

    def load_state(self, state):
        self.count = int(state["count"])


@pytest.fixture
def escalate_local():
    register_attack("escalate-local", _Escalate)
    yield
    del ATTACKS["escalate-local"]


def test_an_attack_keeps_its_state_in_the_clients_context_not_in_the_object(escalate_local):
    """A fresh attack object per message (what every engine does) still counts across rounds."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)

    bad = sorted(byzantine_ids(2, 0.5, "fixed", seed=0, server_round=1))[0]

    def honest(state):
        model = get_model("logistic", input_shape=(4,), num_classes=2, seed=1)
        return GradientClient(model, x, y, partition_id=bad, state=state)

    params = [p.detach().numpy().copy() for p in get_model("logistic", input_shape=(4,), num_classes=2, seed=2).parameters()]
    state = RecordDict()
    scales = []
    for rnd in range(1, 7):
        client = ByzantineClient(honest(state), ATTACKS["escalate-local"](), num_clients=2, fraction=0.5)
        if not client.is_byzantine(0, rnd):
            continue
        config = {"seed": 0, "server-round": rnd, "lr": 0.1, "batch-size": 4, "local-steps": 1}
        attacked, _, _ = client.fit(params, config)
        clean, _, _ = honest(RecordDict()).fit(params, config)
        a, c = (np.concatenate([v.ravel() for v in arrays]) for arrays in (attacked, clean))
        scales.append(round(float(a @ c / (c @ c)), 4))
    assert len(scales) >= 2 and scales == [-float(k) for k in range(1, len(scales) + 1)]
    assert json.loads(str(state[ATTACK_STATE_KEY]["json"])) == {"count": len(scales)}


def test_a_config_naming_a_missing_extension_is_a_config_error():
    with pytest.raises(ConfigError, match="extension 'surely_missing_mod' failed to import"):
        RunConfig(extensions="surely_missing_mod")
