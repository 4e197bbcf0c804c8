"""The example apps (examples/quickstart-*): ordinary Flower quickstarts whose only change is a
fedrobust plugin strategy in place of FedAvg, run end to end with `flwr run`, offline.

Two of the ten simulated nodes are Byzantine (the examples' `byzantine-clients` run key: they send
their update flipped and scaled by 100). The robust strategy still learns; the plain quickstart
(the README's diff undone) collapses.
"""

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from _flwr_cli import ROOT, flwr, flwr_env, flwr_json, pids_with_env, stop, wait_for_run  # noqa: F401 - flwr_env: fixture

pytestmark = pytest.mark.slow

ROUNDS = 5
NODES = 10
# (directory, the robust lines, the plain quickstart's lines, how the final accuracy is logged)
EXAMPLES = {
    "legacy": (
        "quickstart-legacy",
        ["from fedrobust.plugin.legacy import FedGMD", "strategy = FedGMD("],
        ["from flwr.server.strategy import FedAvg", "strategy = FedAvg("],
    ),
    "message-api": (
        "quickstart-message-api",
        ["from fedrobust.plugin.message import FedGMD", "strategy = FedGMD("],
        ["from flwr.serverapp.strategy import FedAvg", "strategy = FedAvg("],
    ),
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def final_accuracy(logs: str, api: str) -> float:
    """The clients' weighted evaluation accuracy after the last round, from the run's Flower log."""
    logs = ANSI.sub("", logs)
    if api == "legacy":  # History (metrics, distributed, evaluate): {'accuracy': [(1, 0.8), ..., (5, 0.9)]}
        history = logs[logs.index("History (metrics, distributed, evaluate)"):]
        pairs = dict(re.findall(r"\((\d+), ([-+0-9.eE]+|nan)\)", history))
        return float(pairs[str(ROUNDS)])
    values = re.findall(r"'eval_acc': '([-+0-9.eE]+|nan)'", logs)  # Message API: the final results' last round
    return float(values[-1])


def run_app(app: Path, env: dict, api: str) -> float:
    """`flwr run` the app with 2 Byzantine nodes of 10; check it completed; return its final accuracy."""
    run_id = flwr_json(
        [
            "run", str(app), "--format", "json",
            "--run-config", f"num-server-rounds={ROUNDS} byzantine-clients=2",
            "--federation-config", f"num-supernodes={NODES} client-resources-num-cpus=1",
        ],
        env,
    )["run-id"]
    status = wait_for_run(run_id, env, 480)
    logs = flwr(["log", str(run_id), "--show"], env).stdout
    assert status == "finished:completed", f"{status}\n{logs[-5000:]}"
    accuracy = final_accuracy(logs, api)
    print(f"{app.name}: final accuracy {accuracy:.3f}")
    return accuracy


@pytest.mark.parametrize("api", sorted(EXAMPLES))
def test_example_learns_with_byzantine_nodes(api, flwr_env):
    directory, robust, plain = EXAMPLES[api]
    app = ROOT / "examples" / directory
    server = next(app.glob("*/server_app.py")).read_text()
    assert all(line in server for line in robust) and not any(line in server for line in plain)
    readme = (app / "README.md").read_text()
    for old, new in zip(plain, robust):  # the README's diff shows the swap
        assert re.search(rf"^-\s*{re.escape(old)}", readme, re.M) and re.search(rf"^\+\s*{re.escape(new)}", readme, re.M)
    assert len(re.findall(r"^[-+][^-+]", readme, re.M)) == 2 * len(robust)  # and nothing else
    accuracy = run_app(app.relative_to(ROOT), flwr_env, api)
    assert accuracy >= 0.8, accuracy
    assert not list(app.rglob("*.fab")) and not (app / "final_model.pt").exists()


def test_plain_quickstart_collapses_with_byzantine_nodes(flwr_env, tmp_path):
    """The same app with Flower's FedAvg (the README's diff undone) does not survive the attack."""
    directory, robust, plain = EXAMPLES["message-api"]
    app = tmp_path / directory
    shutil.copytree(ROOT / "examples" / directory, app, ignore=shutil.ignore_patterns("__pycache__"))
    server = next(app.glob("*/server_app.py"))
    text = server.read_text()
    for old, new in zip(robust, plain):
        assert text.count(old) == 1
        text = text.replace(old, new)
    server.write_text(text)
    accuracy = run_app(app, flwr_env, "message-api")
    assert accuracy < 0.3, accuracy
