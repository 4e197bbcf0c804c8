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
