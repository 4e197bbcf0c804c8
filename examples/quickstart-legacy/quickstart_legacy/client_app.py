"""quickstart-legacy: a Flower / PyTorch app."""

import torch
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context

from quickstart_legacy.task import Net, get_weights, load_data, set_weights, test, train


class FlowerClient(NumPyClient):
    def __init__(self, net, trainloader, valloader, local_epochs, learning_rate, byzantine):
        self.net = net
        self.trainloader = trainloader
        self.valloader = valloader
        self.local_epochs = local_epochs
        self.lr = learning_rate
        self.byzantine = byzantine
        self.device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")

    def fit(self, parameters, config):
        """Train the model with the global parameters and return the new weights."""
        set_weights(self.net, parameters)
        train_loss = train(self.net, self.trainloader, self.local_epochs, self.lr, self.device)
        weights = get_weights(self.net)
        if self.byzantine:
            # Demo attacker (run config `byzantine-clients`): send the update flipped and scaled by 100.
            weights = [p - 100.0 * (w - p) for p, w in zip(parameters, weights)]
        return weights, len(self.trainloader.dataset), {"train_loss": train_loss}

    def evaluate(self, parameters, config):
        """Evaluate the global model on the local test set."""
        set_weights(self.net, parameters)
        loss, accuracy = test(self.net, self.valloader, self.device)
        return loss, len(self.valloader.dataset), {"accuracy": accuracy}


def client_fn(context: Context):
    net = Net()
    partition_id = context.node_config["partition-id"]
    num_partitions = context.node_config["num-partitions"]
    batch_size = context.run_config["batch-size"]
    trainloader, valloader = load_data(partition_id, num_partitions, batch_size)
    local_epochs = context.run_config["local-epochs"]
    learning_rate = context.run_config["learning-rate"]
    byzantine = partition_id < context.run_config["byzantine-clients"]
    return FlowerClient(net, trainloader, valloader, local_epochs, learning_rate, byzantine).to_client()


# Flower ClientApp
app = ClientApp(client_fn)
