"""fedrobust's client actor (fedrobust.run.ray_actor): it runs a ClientApp as Flower's actor does
(the reply, or the app's error as a ClientAppException, a load error as it is), and a worker that
imports it does not import Flower's simulation engine."""

import inspect
import subprocess
import sys

import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp.client_app import ClientAppException, LoadClientAppError

import fedrobust.run.ray_actor as ra


pytestmark = pytest.mark.usefixtures("task_identity")  # Flower asks it of a process that builds messages


def _context():
    return Context(run_id=1, node_id=3, node_config={}, state=RecordDict(), run_config={})


def _message():
    return Message(RecordDict({"config": ConfigRecord({"lr": 0.1})}), dst_node_id=3, message_type="train")


def test_the_client_app_gets_the_message_and_context_and_its_reply_comes_back_with_the_cid():
    seen = []

    def app(message, context):
        seen.append((message, context))
        return "reply"

    message, context = _message(), _context()
    assert ra.run_client_app(lambda: app, message, "7", context) == ("7", "reply", context)
    assert seen == [(message, context)]


def test_an_error_in_the_client_app_comes_out_as_a_client_app_exception():
    def app(message, context):
        raise ValueError("a client failed")

    with pytest.raises(ClientAppException, match="a client failed") as caught:
        ra.run_client_app(lambda: app, _message(), "0", _context())
    assert isinstance(caught.value.__cause__, ValueError)


def test_an_app_that_cannot_be_loaded_raises_its_load_error():
    def load():
        raise LoadClientAppError("no such app")

    with pytest.raises(LoadClientAppError, match="no such app"):
        ra.run_client_app(load, _message(), "0", _context())


def test_the_actor_has_the_methods_flowers_actor_pool_calls_with_their_parameters():
    from flwr.simulation.ray_transport.ray_actor import VirtualClientEngineActor

    def parameters(method):  # Ray's tracing may add a _ray_trace_ctx parameter to actor methods
        return [p for p in inspect.signature(method).parameters if p != "_ray_trace_ctx"]

    actor_class = ra.SharedParametersActor.__ray_metadata__.modified_class
    for method in ("run", "terminate"):
        assert parameters(getattr(actor_class, method)) == parameters(getattr(VirtualClientEngineActor, method))


def test_a_worker_that_imports_the_actor_does_not_import_flowers_simulation_engine():
    probe = ("import sys, fedrobust.run.ray_actor; "
             "print(sorted(m for m in sys.modules if m.startswith(('flwr.simulation', 'flwr.server.superlink.linkstate'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class _Ref:
    def __init__(self, key):
        self.key = key

    def hex(self):
        return self.key


def test_an_app_ref_is_fetched_at_its_first_message_only_and_a_loader_passes_as_it_is(monkeypatch):
    fetched = []

    def get(ref):
        fetched.append(ref.key)
        return lambda: f"app of {ref.key}"

    monkeypatch.setattr(ra.ray, "get", get)
    loaded = {}
    first = ra.AppRef((_Ref("a"),))
    assert ra.app_loader(first, loaded)() == "app of a"
    assert ra.app_loader(ra.AppRef((_Ref("a"),)), loaded)() == "app of a"  # the same object, unpickled again
    assert fetched == ["a"]
    assert ra.app_loader(ra.AppRef((_Ref("b"),)), loaded)() == "app of b" and list(loaded) == ["b"]  # one run's
    loader = lambda: "app"  # noqa: E731 - Flower's own backend sends the loader itself
    assert ra.app_loader(loader, loaded) is loader and first.ref.key == "a"
