"""A fake Flower ClientProxy for strategy tests that never reach fit."""

from flwr.common import Code, GetPropertiesRes, Status
from flwr.server.client_proxy import ClientProxy


class PartitionOnlyProxy(ClientProxy):
    """Answers get_properties with its partition id (all a strategy asks before fit) and counts the calls."""

    def __init__(self, partition_id, cid=None):
        super().__init__(cid if cid is not None else f"node-{partition_id}")
        self.partition_id = partition_id
        self.asked = 0

    def get_properties(self, ins, timeout, group_id):
        self.asked += 1
        return GetPropertiesRes(Status(Code.OK, ""), {"partition-id": self.partition_id})

    def get_parameters(self, ins, timeout, group_id):  # pragma: no cover - unused
        raise NotImplementedError

    def fit(self, ins, timeout, group_id):  # pragma: no cover - unused
        raise NotImplementedError

    def evaluate(self, ins, timeout, group_id):  # pragma: no cover - unused
        raise NotImplementedError

    def reconnect(self, ins, timeout, group_id):  # pragma: no cover - unused
        raise NotImplementedError
