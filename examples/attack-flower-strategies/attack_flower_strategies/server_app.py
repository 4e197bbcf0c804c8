"""attack-flower-strategies: Flower's own FedAvg or Krum, wrapped by fedrobust's Attacked."""

import json
import math
from logging import INFO

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, Krum

from attack_flower_strategies.task import Net, load_centralized_testset
from attack_flower_strategies.task import test as test_fn
from fedrobust.plugin import Attacked

app = ServerApp()


def attack_params(text: str) -> dict:
    """ "epsilon=100,tau=2" -> {"epsilon": 100.0, "tau": 2.0} (numbers as floats, the rest as strings)."""
    params = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            params[key.strip()] = value.strip()
    return params


def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """The global model's loss and accuracy on the whole digits set (a non-finite loss is reported as 1e30)."""
    model = Net()
    model.load_state_dict(arrays.to_torch_state_dict())
    loss, accuracy = test_fn(model, load_centralized_testset(), "cpu")
    return MetricRecord({"loss": loss if math.isfinite(loss) else 1e30, "accuracy": accuracy})


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    fraction_train = config["fraction-train"]
    if config["strategy"] == "krum":
        strategy = Krum(fraction_train=fraction_train, fraction_evaluate=0.0, num_malicious_nodes=config["num-malicious"])
    elif config["strategy"] == "fedavg":
        strategy = FedAvg(fraction_train=fraction_train, fraction_evaluate=0.0)
    else:
        raise ValueError(f"strategy must be 'fedavg' or 'krum', got {config['strategy']!r}")

    if config["byzantine-fraction"] > 0:
        strategy = Attacked(strategy, attack=config["attack"], attack_params=attack_params(config["attack-params"]),
                            byzantine=config["byzantine-fraction"])

    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(Net().state_dict()),
        train_config=ConfigRecord({"lr": config["learning-rate"]}),
        num_rounds=config["num-server-rounds"],
        evaluate_fn=central_evaluate,
    )
    if isinstance(strategy, Attacked):
        log(INFO, "attack-history %s", json.dumps(strategy.history, default=str))
