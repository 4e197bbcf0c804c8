"""Shared test fixtures and markers."""

import pytest
import torch


def devices():
    """CPU always; CUDA when present (GPU machines)."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


@pytest.fixture(params=devices())
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _sigint_handler_restored():
    """A test that runs the CLI in process through a Ctrl-C leaves SIGINT ignored (the CLI does
    so before it exits); the next test gets Python's own handler back."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def task_identity():
    """The task identity Flower asks of a process that builds a message (restored after the test)."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved
