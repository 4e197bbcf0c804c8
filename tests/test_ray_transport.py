"""A round's parameters put into Ray's object store once (fedrobust.run.ray_transport): the
instruction is copied with references in place of its large arrays, the original and the records
other messages share are left as they are, an actor gets the same bytes back; a reply's large
arrays go back out of band and are the same bytes at the driver; and a simulation through it
gives the records of Flower's own backend."""

import contextlib
import pickle

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict

import fedrobust.run.ray_actor as ra
import fedrobust.run.ray_transport as rt

BIG = np.arange(rt.MIN_SHARED_BYTES // 4 + 10, dtype=np.float32)  # just over the threshold
SMALL = np.ones(5, dtype=np.float32)


class _Puts:
    """The driver's object store, without Ray: one token per distinct payload (by identity)."""

    def __init__(self):
        self.stored = {}

    def get(self, data, instruction_bytes=0):
        for token, held in self.stored.items():
            if held is data:
                return token, f"ref-{token}"
        token = f"t{len(self.stored)}"
        self.stored[token] = data
        return token, f"ref-{token}"


pytestmark = pytest.mark.usefixtures("task_identity")  # Flower asks it of a process that builds messages


def _message(record):
    content = RecordDict({"arrays": record, "config": ConfigRecord({"lr": 0.1})})
    return Message(content, dst_node_id=1, message_type="train")


def test_large_arrays_travel_as_references_and_the_original_is_left_as_it_is():
    record = ArrayRecord({"w": Array(BIG), "b": Array(SMALL)})
    data = record["w"].data
    first, second = _message(record), _message(record)  # two messages sharing one record
    puts = _Puts()
    light, (where, refs) = rt.lighten(first, puts)
    light2, (where2, _) = rt.lighten(second, puts)
    assert where == [("arrays", "w", "t0")] and where2 == where and refs == {"t0": "ref-t0"}
    assert len(puts.stored) == 1  # the shared payload is put once
    assert light.content["arrays"]["w"].data == b"" and light.content["arrays"]["b"].data == record["b"].data
    assert light.content["config"]["lr"] == 0.1 and light.metadata is first.metadata
    assert first.content["arrays"] is record and record["w"].data is data  # nothing shared was changed


def test_an_actor_gets_the_same_bytes_back_and_copies_a_payload_out_once(monkeypatch):
    record = ArrayRecord({"w": Array(BIG), "b": Array(SMALL)})
    light, shared = rt.lighten(_message(record), _Puts())
    fetched = []
    monkeypatch.setattr(ra.ray, "get", lambda ref: fetched.append(ref) or np.frombuffer(record["w"].data, np.uint8))
    payloads = ra.actor_payloads()
    again, shared_again = rt.lighten(_message(record), _Puts())
    for message, sh in ((light, shared), (again, shared_again)):
        out = ra.restore(message, sh, payloads)
        assert out.content["arrays"]["w"].data == record["w"].data
        assert np.array_equal(out.content["arrays"]["w"].numpy(), BIG)
    assert fetched == ["ref-t0"]  # the second message found it in the actor's copies


def test_the_driver_keeps_two_instructions_worth_of_payloads_however_many_arrays_they_have(monkeypatch):
    monkeypatch.setattr(rt.ray, "put", lambda value: object())
    puts = rt._Puts()
    rounds = [[bytes(rt.MIN_SHARED_BYTES) + bytes([r, i]) for i in range(20)] for r in range(3)]  # 20 arrays a model
    for arrays in rounds:
        record = ArrayRecord({f"a{i}": Array("float32", (len(a) // 4,), "numpy.ndarray", a[: len(a) // 4 * 4])
                              for i, a in enumerate(arrays)})
        for _ in range(5):  # five clients a round: the model is put once
            rt.lighten(_message(record), puts)
    assert puts.puts == 60  # each round's 20 arrays once, not once per client
    held = {id(data) for data, _, _ in puts._held.values()}
    assert len(held) == 40  # this round's and the one before: a bounded store, no thrashing


def test_a_message_without_large_arrays_travels_as_it_is():
    message = _message(ArrayRecord({"b": Array(SMALL)}))
    assert rt.lighten(message, _Puts()) == (message, ([], {}))


def _context(record):
    return Context(run_id=1, node_id=1, node_config={}, state=RecordDict({"momentum": record}), run_config={})


def _pickled(*objects):
    """``objects`` pickled as Ray pickles them (protocol 5): the pickle and its out-of-band buffers."""
    buffers = []
    return pickle.dumps(objects, protocol=5, buffer_callback=buffers.append), buffers


def test_a_replys_large_arrays_go_out_of_band_and_are_the_same_bytes_at_the_driver():
    reply, context = _message(ArrayRecord({"w": Array(BIG), "b": Array(SMALL)})), _context(ArrayRecord({"m": Array(BIG)}))
    w, b, m = reply.content["arrays"]["w"].data, reply.content["arrays"]["b"].data, context.state["momentum"]["m"].data
    in_pickle, buffers = _pickled(reply, context)
    assert not buffers and len(in_pickle) > 2 * len(w)  # bytes are copied into the pickle

    ra.out_of_band(reply, context)  # in the actor
    sent = reply.content["arrays"]["w"].data
    assert isinstance(sent, np.ndarray) and sent.base is w  # a view of the reply's bytes, not a copy
    assert context.state["momentum"]["m"].data.base is m
    assert reply.content["arrays"]["b"].data is b  # a small array stays in the pickle
    out_of_band, buffers = _pickled(reply, context)
    assert sorted(len(buffer.raw()) for buffer in buffers) == [len(w), len(m)] and len(out_of_band) < rt.MIN_SHARED_BYTES

    got, got_context = pickle.loads(out_of_band, buffers=buffers)  # at the driver
    rt.in_band(got, got_context)
    arrays = got.content["arrays"]
    assert type(arrays["w"].data) is bytes and arrays["w"].data == w and arrays["b"].data == b
    assert type(got_context.state["momentum"]["m"].data) is bytes and got_context.state["momentum"]["m"].data == m
    assert np.array_equal(arrays["w"].numpy(), BIG) and got.content["config"]["lr"] == 0.1


def test_an_error_reply_goes_back_as_it_is():
    error = Message(Error(code=0, reason="the client failed"), reply_to=_message(ArrayRecord({"w": Array(BIG)})))
    context = _context(ArrayRecord({"m": Array(BIG)}))
    ra.out_of_band(error, context)
    assert type(context.state["momentum"]["m"].data) is bytes and error.error.reason == "the client failed"


def test_the_backend_is_swapped_within_the_block_and_restored_after():
    original = rt.raybackend.RayBackend
    with rt.shared_parameters() as used:
        assert used and rt.raybackend.RayBackend is rt.SharedParametersBackend
    assert rt.raybackend.RayBackend is original


@pytest.mark.slow
def test_a_simulation_gives_the_records_of_flowers_own_backend(monkeypatch):
    from fedrobust import simulate

    cfg = dict(strategy="bgmd", dataset="digits", model="mlp", num_clients=4, clients_per_round=4, rounds=2,
               lr=0.1, batch_size=16, seed=1, attack="alie", byzantine_fraction=0.25)
    puts = []
    get = rt._Puts.get

    def counted(self, data, *rest):
        puts.append(len(data))
        return get(self, data, *rest)

    monkeypatch.setattr(rt._Puts, "get", counted)
    back = []
    in_band = rt.in_band

    def received(reply, context):
        back.extend(len(a.data) for r in reply.content.array_records.values() for a in r.values()
                    if isinstance(a.data, np.ndarray))
        in_band(reply, context)

    monkeypatch.setattr(rt, "in_band", received)
    shared = simulate(cfg, warn=False)
    assert puts and min(puts) >= rt.MIN_SHARED_BYTES  # the instructions went through the shared objects
    assert back and min(back) >= rt.MIN_SHARED_BYTES  # and the replies came back out of band

    @contextlib.contextmanager
    def flowers():
        yield False

    monkeypatch.setattr(rt, "shared_parameters", flowers)
    plain = simulate(cfg, warn=False)
    keys = ("accuracy", "loss", "bytes_up", "bytes_down", "accepted_clients", "relative_residual")
    assert [{k: r.get(k) for k in keys} for r in shared["rounds"]] == [{k: r.get(k) for k in keys} for r in plain["rounds"]]


def _backend_without_init():
    backend = object.__new__(rt.SharedParametersBackend)
    backend.init_args_key = "init_args"
    return backend


def test_a_private_ray_starts_without_a_job_runtime_env_and_with_the_drivers_path(monkeypatch):
    calls = []
    monkeypatch.setattr(rt.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(rt.ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.syspath_prepend("/only/in/memory")
    _backend_without_init().init_ray({"init_args": {"logging_level": "ERROR"}})
    assert calls == [{"logging_level": "ERROR", "include_dashboard": False}]
    path = rt.os.environ["PYTHONPATH"].split(rt.os.pathsep)
    assert path[0] == "/only/in/memory" and path[-1] == "/somewhere/else"


@pytest.mark.parametrize("by_env", [False, True])
def test_a_cluster_to_attach_to_gets_flowers_own_start_with_its_runtime_env(monkeypatch, by_env):
    calls = []
    monkeypatch.setattr(rt.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(rt.ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("PYTHONPATH", "")
    if by_env:
        monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    _backend_without_init().init_ray({"init_args": {} if by_env else {"address": "10.0.0.1:6379"}})
    assert len(calls) == 1 and calls[0].get("address") == (None if by_env else "10.0.0.1:6379")
    assert "PYTHONPATH" in calls[0]["runtime_env"]["env_vars"]


def test_an_initialised_ray_is_left_as_it_is(monkeypatch):
    monkeypatch.setattr(rt.ray, "is_initialized", lambda: True)
    monkeypatch.setattr(rt.ray, "init", lambda **kwargs: pytest.fail("ray.init called again"))
    _backend_without_init().init_ray({"init_args": {}})


@pytest.mark.slow
def test_the_workers_of_a_private_ray_import_from_the_drivers_in_memory_path(tmp_path, monkeypatch):
    import ray

    (tmp_path / "fedrobust_path_probe.py").write_text("VALUE = 41 + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    _backend_without_init().init_ray({"init_args": {"logging_level": "ERROR", "num_cpus": 1}})
    try:
        @ray.remote(num_cpus=1)
        def probe():
            import fedrobust_path_probe

            return fedrobust_path_probe.VALUE

        assert ray.get(probe.remote(), timeout=120) == 42
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_private_rays_monitor_is_ended_before_ray_shuts_down(monkeypatch):
    """Ray's own shutdown waits a second for the monitor, which tries to report its end to the
    GCS already stopped; the backend ends it first."""
    import ray
    from ray._private import worker

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    backend = _backend_without_init()
    backend.pool = None
    backend.init_ray({"init_args": {"logging_level": "ERROR", "num_cpus": 1}})
    monitor = [info.process for info in worker._global_node.all_processes["monitor"]]
    at_shutdown = []
    shutdown = ray.shutdown

    def observed(*args, **kwargs):
        at_shutdown.append([p.poll() for p in monitor])
        return shutdown(*args, **kwargs)

    monkeypatch.setattr(ray, "shutdown", observed)
    assert backend.private and len(monitor) == 1 and monitor[0].poll() is None
    backend.terminate()
    assert len(at_shutdown) == 1 and all(code is not None for code in at_shutdown[0])  # ended before the shutdown
    assert not ray.is_initialized()


def test_an_attached_backend_leaves_the_clusters_monitor_alone(monkeypatch):
    monkeypatch.setattr(rt, "end_monitor", lambda: pytest.fail("a cluster's monitor is not this run's"))
    monkeypatch.setattr(rt.ray, "shutdown", lambda: None)
    backend = _backend_without_init()
    backend.pool = None
    assert not backend.private  # init_ray attached (or never ran)
    backend.terminate()


def test_end_monitor_does_nothing_without_a_private_ray(monkeypatch):
    from ray._private import worker

    monkeypatch.setattr(worker, "_global_node", None)
    assert rt.end_monitor() is False
