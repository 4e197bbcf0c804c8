"""The scale-safe Gram matrix and central row of ``fedrobust.aggregators._gram``.

Both were made faster without changing a bit of what they return (one centring buffer reused for
every column block, the sketch gathered once and its median found by the compiled sorting network);
these tests hold them to straightforward references of the same arithmetic.
"""

from __future__ import annotations

import pytest
import torch

from fedrobust.aggregators import _gram
from fedrobust.aggregators._chunks import column_blocks
from fedrobust.core.checks import all_finite


def reference_gram(x: torch.Tensor, reference: int, block_elements: int) -> torch.Tensor:
    """Block by block: a fresh centred block in the compute dtype, its product summed in float64,
    a block whose product overflows redone in float64."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    gram = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)
    for _, block in column_blocks(x, block_elements):
        b = block.to(compute)
        b = b - b[reference : reference + 1]
        product = (b @ b.T).to(torch.float64)
        if not all_finite(product):
            b = block.to(torch.float64)
            b = b - b[reference : reference + 1]
            product = b @ b.T
        gram += product
    return gram


def reference_central_row(x: torch.Tensor) -> int:
    s = _gram.sketch(x).to(torch.float64)
    s = s - s.median(dim=0, keepdim=True).values
    return int(_gram.squared_distances(s @ s.T).sqrt_().sum(dim=1).argmin())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n, d, block_elements", [(5, 1_003, 256), (12, 4_097, 1_000), (40, 300, 1 << 20)])
def test_centred_gram_is_the_blockwise_float64_sum(dtype, n, d, block_elements):
    gen = torch.Generator().manual_seed(n + d)
    x = (3.0 + 0.1 * torch.randn(n, d, generator=gen)).to(dtype)
    got = _gram.centred_gram(x, reference=1, block_elements=block_elements)
    assert torch.equal(got, reference_gram(x, 1, block_elements))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_centred_gram_redoes_only_the_blocks_that_overflow(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2_000, generator=gen, dtype=dtype)
    x[4, 700:720] = 3e38 if dtype == torch.float32 else 1e300  # one block's squares overflow
    got = _gram.centred_gram(x, reference=0, block_elements=6 * 256)
    want = reference_gram(x, 0, 6 * 256)
    if dtype == torch.float32:
        assert all_finite(got)
        assert torch.equal(got, want)
        # The overflowing block in float64, every other block exactly as float32 gives it.
        assert float(got[4, 4]) == pytest.approx(20 * 3e38**2, rel=1e-6)
    else:  # float64 squares of 1e300 overflow float64 itself: both give the same Inf
        assert torch.equal(got, want)


def test_lower_median_is_torch_median():
    gen = torch.Generator().manual_seed(1)
    for n in (1, 2, 3, 10, 31, 32, 33, 64, 65, 130):
        for dtype in (torch.float32, torch.float64, torch.float16):
            s = torch.randn(n, 517, generator=gen).to(dtype)
            s[:, :40] = 0.0
            s[: n // 2, :20] = -0.0  # signed zeros
            s[:, 50:60] = s[:1, 50:60]  # ties
            s[:, 70:80] = torch.randint(-2, 3, (n, 10), generator=gen).to(dtype)
            got = _gram._lower_median(s)
            want = s.median(dim=0, keepdim=True).values
            assert got.dtype == want.dtype and got.shape == want.shape
            assert torch.equal(got, want), (n, dtype)
    # A strided sketch (not contiguous) gives the same.
    x = torch.randn(9, 10_000, generator=gen)
    assert torch.equal(_gram._lower_median(x[:, ::7]), x[:, ::7].median(dim=0, keepdim=True).values)


def test_central_row_is_the_sketch_medoid():
    gen = torch.Generator().manual_seed(2)
    for n in (3, 10, 32, 70):
        x = torch.randn(n, 9_000, generator=gen)
        x[: n // 4] *= -100.0
        x[n // 4] = 3e38
        assert _gram.central_row(x) == reference_central_row(x)
