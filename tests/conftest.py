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
