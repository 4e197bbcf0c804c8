"""fedrobust.clients.adapter.as_client answers every message as Flower's ``NumPyClient.to_client()`` does."""

import numpy as np
import pytest
from flwr.client import NumPyClient
from flwr.common import (
    Code,
    Context,
    EvaluateIns,
    FitIns,
    GetParametersIns,
    GetPropertiesIns,
    RecordDict,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.constant import PARTITION_ID_KEY
from flwr.compat.client.client import maybe_call_evaluate, maybe_call_fit, maybe_call_get_parameters, maybe_call_get_properties

from fedrobust.clients.adapter import NumPyClientAdapter, as_client
from fedrobust.config import RunConfig
from fedrobust.run.app import make_client


class Full(NumPyClient):
    def get_properties(self, config):
        return {"k": 1, **config}

    def get_parameters(self, config):
        return [np.arange(3, dtype=np.float32), np.ones((2, 2))]

    def fit(self, parameters, config):
        return [p * 2 for p in parameters], 5, {"seen": len(parameters)}

    def evaluate(self, parameters, config):
        return float(sum(p.sum() for p in parameters)), 4, {"a": 1.0}


class FitOnly(NumPyClient):
    def fit(self, parameters, config):
        return parameters, 1, {}


class BadReturns(NumPyClient):
    def fit(self, parameters, config):
        return parameters, 1.0, {}

    def evaluate(self, parameters, config):
        return 1, 1, {}


PARAMS = ndarrays_to_parameters([np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), np.arange(4)])
MESSAGES = [
    (maybe_call_get_properties, GetPropertiesIns({"x": 2})),
    (maybe_call_get_parameters, GetParametersIns({})),
    (maybe_call_fit, FitIns(PARAMS, {"lr": 0.1})),
    (maybe_call_evaluate, EvaluateIns(PARAMS, {})),
]


def same_reply(ours, theirs):
    assert type(ours) is type(theirs)
    assert ours.status == theirs.status
    for field in ("parameters", "num_examples", "metrics", "loss", "properties"):
        if hasattr(theirs, field):
            assert getattr(ours, field) == getattr(theirs, field), field


@pytest.mark.parametrize("client_cls", [Full, FitOnly])
@pytest.mark.parametrize("call, ins", MESSAGES, ids=["get_properties", "get_parameters", "fit", "evaluate"])
def test_replies_are_flowers(client_cls, call, ins):
    """Through Flower's message handler (``maybe_call_*``) and called directly."""
    same_reply(call(as_client(client_cls()), ins), call(client_cls().to_client(), ins))
    method = call.__name__.removeprefix("maybe_call_")
    same_reply(getattr(as_client(client_cls()), method)(ins), getattr(client_cls().to_client(), method)(ins))


def test_fit_reply_decodes_to_the_fitted_arrays():
    res = as_client(Full()).fit(FitIns(PARAMS, {}))
    assert res.status.code == Code.OK and res.status.message == "Success"
    for got, sent in zip(parameters_to_ndarrays(res.parameters), parameters_to_ndarrays(PARAMS)):
        np.testing.assert_array_equal(got, 2 * sent)


@pytest.mark.parametrize("method, ins", [("fit", FitIns(PARAMS, {})), ("evaluate", EvaluateIns(PARAMS, {}))])
def test_wrong_return_types_raise_flowers_type_error(method, ins):
    with pytest.raises(TypeError) as theirs:
        getattr(BadReturns().to_client(), method)(ins)
    with pytest.raises(TypeError) as ours:
        getattr(as_client(BadReturns()), method)(ins)
    assert str(ours.value) == str(theirs.value)


def test_classes_are_shared_per_set_of_methods():
    assert type(as_client(Full())) is type(as_client(Full())) is not type(as_client(FitOnly()))
    assert isinstance(as_client(FitOnly()), NumPyClientAdapter)


def test_run_clients_use_the_adapter():
    cfg = RunConfig(dataset="digits", model="logistic", num_clients=4, clients_per_round=4, attack="bit-flip", byzantine_fraction=0.25)
    for partition in range(4):
        context = Context(run_id=0, node_id=partition, node_config={PARTITION_ID_KEY: partition}, state=RecordDict(),
                          run_config={})
        assert isinstance(make_client(cfg, context).inner, NumPyClientAdapter)
