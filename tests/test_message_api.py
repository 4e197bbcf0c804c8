"""The Message API (fedrobust.messageapi): wire format, partition mapping, failures, parity with the legacy API.

Fast tests run both Flower Apps on :class:`~fedrobust.messageapi.LocalGrid` (the ServerApp and
ClientApp objects as Flower calls them, in this process, no Ray); the slow ones run both on
Flower's simulation engine.
"""

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.common import Code, FitIns, FitRes, Parameters, Status, ndarrays_to_parameters, parameters_to_ndarrays

from fedrobust import app as legacy_app
from fedrobust import messageapi
from fedrobust.config import ConfigError, RunConfig
from fedrobust.core import wire
from fedrobust.messageapi import LocalGrid, MessageStrategy
from fedrobust.messageapi.records import (
    MalformedContent,
    content_to_fitins,
    content_to_fitres,
    content_to_properties,
    fitins_to_content,
    fitres_to_content,
    properties_to_content,
)
from fedrobust.core.results import read_results
from fedrobust.strategies import STRATEGIES, select_partitions

TIMING = {"aggregation_seconds", "round_seconds"}


def small(strategy="mean-sgd", **keys):
    """A tiny run: 5 logistic-regression clients on breast-cancer, 3 sampled per round."""
    base = dict(
        strategy=strategy, dataset="breast-cancer", model="logistic", num_clients=5, clients_per_round=3, rounds=3,
        lr=0.1, batch_size=16, device="cpu", client_threads=0,
    )
    return RunConfig(**{**base, **keys})


def run_local(cfg, client_app=None, grid_cls=LocalGrid):
    """Run ``cfg`` through its API's ServerApp on a LocalGrid; return (strategy, grid)."""
    apps = messageapi if cfg.api == "message" else legacy_app
    built = []
    grid = grid_cls(client_app or apps.make_client_app(cfg), cfg.num_clients, seed=7)
    server = apps.make_server_app(cfg, on_strategy=built.append)
    server(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    return built[-1], grid


def core_of(strategy):
    return strategy.core if isinstance(strategy, MessageStrategy) else strategy


def comparable(results):
    """A results document without what may differ between two equal runs (timings, the api key)."""
    rounds = [{k: v for k, v in r.items() if k not in TIMING} for r in results["rounds"]]
    config = {k: v for k, v in results["config"].items() if k != "api"}
    return config, results["initial"], rounds


def assert_same_run(cfg):
    legacy, _ = run_local(cfg)
    message, grid = run_local(cfg.replace(api="message"))
    x_legacy, x_message = core_of(legacy).x, core_of(message).x
    assert torch.equal(x_legacy, x_message), (cfg.strategy, (x_legacy - x_message).abs().max())
    assert comparable(legacy.results()) == comparable(message.results())
    return message, grid


# ------------------------------------------------------------------------------------- records
def test_train_records_round_trip_keep_the_wire_bytes():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2, np.float32)]
    ins = FitIns(ndarrays_to_parameters(arrays), {"server-round": 3, "lr": 0.1, "seed": 0})
    content = fitins_to_content(ins, extra_config={"lr": 9.0, "note": "from the caller"})
    assert set(content) == {"arrays", "config"}
    assert isinstance(content["arrays"], ArrayRecord) and isinstance(content["config"], ConfigRecord)
    back = content_to_fitins(content)
    assert back.parameters.tensors == ins.parameters.tensors  # numpy.save bytes, unchanged
    assert back.config == {"server-round": 3, "lr": 0.1, "seed": 0, "note": "from the caller"}  # core keys win

    res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), 17, {"bytes_sent": 32, "tag": "x", "ok": True})
    content = fitres_to_content(res)
    assert set(content) == {"arrays", "metrics"} and content["metrics"]["num-examples"] == 17
    got = content_to_fitres(content)
    assert got.num_examples == 17 and got.metrics == {"bytes_sent": 32, "tag": "x", "ok": True}
    assert got.parameters.tensors == res.parameters.tensors
    assert [a.dtype for a in parameters_to_ndarrays(got.parameters)] == [np.float32, np.float32]


@pytest.mark.parametrize("encode", [ndarrays_to_parameters, wire.ndarrays_to_parameters], ids=["flower", "fedrobust"])
def test_a_replys_record_is_flowers_own_for_its_arrays_and_keeps_the_bytes_it_was_given(encode):
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(3, dtype=">f4"), np.array(5, dtype=np.int64),
              np.zeros((0, 4), np.float32), np.asfortranarray(np.ones((2, 3)))]
    res = FitRes(Status(Code.OK, ""), encode(arrays), 1, {})
    record = fitres_to_content(res)["arrays"]
    flowers = ArrayRecord([np.asarray(a) for a in parameters_to_ndarrays(res.parameters)])
    assert list(record) == list(flowers)
    assert [(a.dtype, a.shape, a.stype, a.data) for a in record.values()] == [
        (a.dtype, a.shape, a.stype, a.data) for a in flowers.values()]
    kept = [a.data is t for a, t in zip(record.values(), res.parameters.tensors)]
    assert kept == [True, True, True, True, False]  # passed on as they are; the Fortran-order one is encoded again
    odd = res.parameters.tensors[0][:-1]  # shorter than its header says: the same error as decoding it
    with pytest.raises(ValueError, match="EOF"):
        fitres_to_content(FitRes(Status(Code.OK, ""), Parameters([odd], "numpy.ndarray"), 1, {}))


def test_reply_records_that_are_missing_or_of_the_wrong_kind_are_malformed():
    arrays = ArrayRecord([np.zeros(2, np.float32)])
    with pytest.raises(MalformedContent, match="no ArrayRecord 'arrays'"):
        content_to_fitres(RecordDict({"metrics": ConfigRecord({"num-examples": 1})}))
    with pytest.raises(MalformedContent, match="'metrics' .*found ArrayRecord"):
        content_to_fitres(RecordDict({"arrays": arrays, "metrics": ArrayRecord()}))
    # A MetricRecord (what Flower's own clients send) is read too; a missing num-examples is left to the core.
    res = content_to_fitres(RecordDict({"arrays": arrays, "metrics": MetricRecord({"norm": 2.0})}))
    assert res.num_examples is None and res.metrics == {"norm": 2.0}
    # A dtype the model does not have still arrives as sent: the core's validator judges it.
    odd = content_to_fitres(RecordDict({"arrays": ArrayRecord([np.zeros(2, np.float64)]), "metrics": ConfigRecord()}))
    assert parameters_to_ndarrays(odd.parameters)[0].dtype == np.float64
    with pytest.raises(RuntimeError, match="status FIT_NOT_IMPLEMENTED"):
        fitres_to_content(FitRes(Status(Code.FIT_NOT_IMPLEMENTED, "no"), ndarrays_to_parameters([]), 0, {}))
    assert content_to_properties(properties_to_content({"partition-id": 3})) == {"partition-id": 3}
    with pytest.raises(MalformedContent):
        content_to_properties(RecordDict())


# ------------------------------------------------------------------------ partitions and rounds
def test_nodes_are_asked_their_partition_once_and_sampled_by_it():
    cfg = small(api="message", rounds=4)
    sent = []  # (message type, partition id, server round) of every message a node received

    client = messageapi.make_client_app(cfg)

    def recording(message, context):
        sent.append((message.metadata.message_type, context.node_config["partition-id"], message.metadata.group_id))
        return client(message, context)

    strategy, grid = run_local(cfg, client_app=recording)
    assert sorted(grid.get_node_ids()) != list(grid.get_node_ids())  # random node ids, in no useful order
    queries = [p for kind, p, _ in sent if kind == "query"]
    assert sorted(queries) == list(range(cfg.num_clients))  # one query per node, ever
    for rnd in range(1, cfg.rounds + 1):
        trained = sorted(p for kind, p, group in sent if kind == "train" and group == str(rnd))
        assert trained == select_partitions(cfg.num_clients, cfg.clients_per_round, cfg.seed, rnd)
    assert {p.node_id: p.properties["partition-id"] for p in strategy._proxies.values()} == {
        node: ctx.node_config["partition-id"] for node, ctx in grid.contexts.items()
    }
    rounds = strategy.results()["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3, 4] and strategy.results()["config"]["api"] == "message"
    assert all(r["failed_clients"] == r["rejected_clients"] == 0 and r["num_clients"] == 3 for r in rounds)


def test_train_messages_carry_the_model_and_the_core_config():
    cfg = small(api="message")
    seen = []
    client = messageapi.make_client_app(cfg)

    def recording(message, context):
        if message.metadata.message_type == "train":
            seen.append(message)
        return client(message, context)

    grid = LocalGrid(recording, cfg.num_clients)
    strategy = MessageStrategy(legacy_app.make_strategy(cfg))
    x0 = strategy.core.x.clone()
    result = strategy.start(grid=grid, num_rounds=1, train_config=ConfigRecord({"lr": 5.0, "extra": 1}))
    assert len(seen) == 3
    for message in seen:
        config = message.content["config"]
        assert config["server-round"] == 1 and config["lr"] == cfg.lr and config["extra"] == 1
        arrays = message.content["arrays"].to_numpy_ndarrays()
        assert [a.shape for a in arrays] == strategy.core.shapes
        assert torch.equal(torch.cat([torch.from_numpy(a).reshape(-1) for a in arrays]), x0)
    # Flower's Result holds the core's model and metrics, and the central evaluation of rounds 0 and 1.
    final = torch.cat([torch.from_numpy(a).reshape(-1) for a in result.arrays.to_numpy_ndarrays()])
    assert torch.equal(final, strategy.core.x) and not torch.equal(final, x0)
    assert dict(result.train_metrics_clientapp[1]) == {
        "accepted_clients": 3, "rejected_clients": 0, "failed_clients": 0,
        "bytes_up": strategy.results()["rounds"][0]["bytes_up"],
    }
    assert set(result.evaluate_metrics_serverapp) == {0, 1}
    assert result.evaluate_metrics_serverapp[1]["loss"] == strategy.results()["rounds"][0]["loss"]


def test_start_checks_its_arguments_and_loads_initial_arrays():
    cfg = small(api="message")
    strategy = MessageStrategy(legacy_app.make_strategy(cfg))
    grid = LocalGrid(messageapi.make_client_app(cfg), cfg.num_clients)
    with pytest.raises(ValueError, match="initial_arrays do not fit the model"):
        strategy.start(grid=grid, initial_arrays=ArrayRecord([np.zeros(3, np.float32)]))
    with pytest.raises(ValueError, match="num_rounds must be"):
        strategy.start(grid=grid, num_rounds=-1)
    with pytest.raises(TypeError, match="VectorStrategy"):
        MessageStrategy(object())
    start = [np.full(s, 0.5, np.float32) for s in strategy.core.shapes]
    strategy.start(grid=grid, initial_arrays=ArrayRecord(start), num_rounds=0)
    assert torch.equal(strategy.core.x, torch.full_like(strategy.core.x, 0.5))


def test_the_module_level_components_read_the_run_config(tmp_path):
    out = tmp_path / "results.json"
    run_config = small(api="message", rounds=2, output=str(out)).to_dict()  # as flwr run passes it
    grid = LocalGrid(messageapi.client_app, 5, run_config=run_config)
    messageapi.server_app(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=run_config))
    results = read_results(out)
    assert [r["round"] for r in results["rounds"]] == [1, 2] and results["config"] == run_config


def test_each_app_refuses_the_other_api():
    grid = LocalGrid(messageapi.make_client_app(small()), 5)
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(ConfigError, match="api='legacy', but this is the Message-API ServerApp"):
        messageapi.make_server_app(small(api="legacy"))(grid, context)
    with pytest.raises(ConfigError, match="api='message', but this is the legacy ServerApp"):
        legacy_app.make_server_app(small(api="message"))(grid, context)


# ------------------------------------------------------------------------------------- failures
class LossyGrid(LocalGrid):
    """Loses the train replies of the nodes in ``lost`` (as if they had timed out)."""

    lost: set[int] = set()

    def pull_messages(self, message_ids):
        replies = super().pull_messages(message_ids)
        return [
            m for m in replies
            if not (m.metadata.message_type == "train"
                    and self.contexts[m.metadata.src_node_id].node_config["partition-id"] in self.lost)
        ]


def test_failed_and_bad_replies_are_counted_and_the_run_goes_on(caplog):
    cfg = small(api="message", clients_per_round=5, rounds=2)
    client = messageapi.make_client_app(cfg)

    def faulty(message, context):
        partition = context.node_config["partition-id"]
        if message.metadata.message_type != "train":
            return client(message, context)
        if partition == 0:
            raise RuntimeError("the client crashed")
        if partition == 1:  # no arrays record: a failed client, as a reply the legacy API cannot convert
            return Message(RecordDict({"metrics": ConfigRecord({"num-examples": 3})}), reply_to=message)
        reply = client(message, context)
        if partition == 2:  # non-finite values: rejected by the validator, with the reason
            bad = [np.full_like(a, np.nan) for a in reply.content["arrays"].to_numpy_ndarrays()]
            return Message(RecordDict({"arrays": ArrayRecord(bad), "metrics": reply.content["metrics"]}), reply_to=message)
        return reply

    class Lossy(LossyGrid):
        lost = {3}

    strategy, _ = run_local(cfg, client_app=faulty, grid_cls=Lossy)
    x_before = legacy_app.make_strategy(cfg).x
    for record in strategy.results()["rounds"]:
        assert record["failed_clients"] == 3 and record["rejected_clients"] == 1 and record["num_clients"] == 5
        assert [p for p, _ in record["rejections"]] == [2] and "finite" in record["rejections"][0][1]
    assert torch.isfinite(strategy.core.x).all() and not torch.equal(strategy.core.x, x_before)
    assert "the client crashed" in caplog.text and "no ArrayRecord 'arrays'" in caplog.text
    assert "no reply before the timeout" in caplog.text


def test_a_node_that_fails_its_query_is_asked_again():
    cfg = small(api="message", rounds=3)
    round_one = select_partitions(cfg.num_clients, cfg.clients_per_round, cfg.seed, 1)
    shy = next(p for p in range(cfg.num_clients) if p not in round_one)
    client = messageapi.make_client_app(cfg)
    queries = []

    def flaky(message, context):
        if message.metadata.message_type == "query" and context.node_config["partition-id"] == shy:
            queries.append(message.metadata.group_id)
            if len(queries) == 1:
                raise RuntimeError("not ready")
        return client(message, context)

    strategy, _ = run_local(cfg, client_app=flaky)
    assert queries == ["1", "2"]
    assert len(strategy.results()["rounds"]) == 3


def test_malformed_byzantine_replies_are_judged_the_same_through_both_apis():
    cfg = small(
        "norm-threshold", norm_option=1, clients_per_round=5, rounds=4, attack="malformed",
        attack_params="fault=cycle", byzantine_fraction=0.4, beta=0.45,
    )
    message, _ = assert_same_run(cfg)
    rounds = message.results()["rounds"]
    assert sum(r["rejected_clients"] + r["failed_clients"] for r in rounds) > 0


# --------------------------------------------------------------------------------------- parity
def test_a_legacy_run_resumed_through_the_message_api_continues_where_it_stopped(tmp_path):
    from fedrobust.run.inprocess import run_inprocess

    cfg = small("c-rsa", api="message", rounds=4)  # server state (who holds x0) and client state (x_k)
    models = {}
    full = run_inprocess(cfg, after_round=lambda core, rnd: models.__setitem__("full", core.x.clone()))
    run_inprocess(cfg.replace(rounds=2, checkpoint_dir=str(tmp_path), api="legacy"))  # api may change on resume
    resumed = run_inprocess(
        cfg.replace(checkpoint_dir=str(tmp_path), resume=True),
        after_round=lambda core, rnd: models.__setitem__("resumed", core.x.clone()),
    )
    assert [r["round"] for r in resumed["rounds"]] == [1, 2, 3, 4]
    assert torch.equal(models["full"], models["resumed"])
    assert [r["loss"] for r in full["rounds"]] == [r["loss"] for r in resumed["rounds"]]


def test_the_inprocess_engine_runs_the_message_api_with_the_same_results():
    from fedrobust.run.inprocess import run_inprocess

    cfg = small("bgmd", rounds=2, attack="gaussian", byzantine_fraction=0.2)
    seen = []
    legacy = run_inprocess(cfg)
    message = run_inprocess(cfg.replace(api="message"), after_round=lambda core, rnd: seen.append((rnd, core.x.clone())))
    assert message["config"]["api"] == "message" and comparable(legacy) == comparable(message)
    assert [rnd for rnd, _ in seen] == [1, 2] and not torch.equal(seen[0][1], seen[1][1])


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_runs_through_the_message_api_with_the_legacy_result(strategy):
    keys = {"norm_option": 1} if strategy == "norm-threshold" else {}
    cfg = small(strategy, num_clients=4, rounds=2, local_steps=2, attack="bit-flip", byzantine_fraction=0.25, **keys)
    message, grid = assert_same_run(cfg)
    rounds = message.results()["rounds"]
    assert len(rounds) == 2 and all(r["failed_clients"] == 0 for r in rounds)
    assert torch.isfinite(message.core.x).all()
    assert grid.messages_handled == cfg.num_clients + 2 * cfg.clients_per_round  # queries + train messages


def _simulate_model(cfg):
    """Run ``cfg`` on Flower's simulation engine (Ray), as fedrobust.simulate does; return (x, results)."""
    from flwr.simulation import run_simulation

    from fedrobust.run.simulation import backend_config

    apps = messageapi if cfg.api == "message" else legacy_app
    built = []
    run_simulation(
        server_app=apps.make_server_app(cfg, on_strategy=built.append), client_app=apps.make_client_app(cfg),
        num_supernodes=cfg.num_clients, backend_name="ray", backend_config=backend_config(cfg),
    )
    return core_of(built[-1]).x.clone(), built[-1].results()


@pytest.mark.slow
@pytest.mark.parametrize(
    "keys",
    [
        dict(strategy="bgmd", dataset="digits", model="mlp", attack="bit-flip", byzantine_fraction=0.2, rounds=4),
        dict(strategy="c-rsa", rounds=4, lr=0.05, coord_ratio=0.3),  # server and client state
    ],
    ids=["bgmd", "c-rsa"],
)
def test_legacy_and_message_api_give_the_same_model_on_flowers_engine(keys):
    cfg = small(**{"num_clients": 6, "clients_per_round": 4, "client_threads": 1, **keys})
    x_legacy, legacy = _simulate_model(cfg)
    x_message, message = _simulate_model(cfg.replace(api="message"))
    assert torch.equal(x_legacy, x_message), (x_legacy - x_message).abs().max()
    assert comparable(legacy) == comparable(message)
    assert len(message["rounds"]) == cfg.rounds and message["config"]["api"] == "message"


@pytest.mark.slow
def test_simulate_runs_the_message_api():
    import fedrobust

    results = fedrobust.simulate(small(api="message", rounds=2, num_clients=3, clients_per_round=2))
    assert [r["round"] for r in results["rounds"]] == [1, 2] and results["config"]["api"] == "message"
    assert all(r["failed_clients"] == 0 and r["num_clients"] == 2 for r in results["rounds"])
