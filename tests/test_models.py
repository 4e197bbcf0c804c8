"""Models: parameter counts, forward shapes, loss/predict behaviour, flat parameter views, registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedrobust.models import (
    MODELS,
    FedModel,
    flat_grad,
    flat_params,
    get_model,
    num_params,
    register_model,
    set_flat_params,
)

SHAPES = {
    "lenet": (1, 28, 28),
    "mlp": (1, 28, 28),
    "cifar-cnn": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "logistic": (123,),
    "robust-regression": (300,),
}


def test_registry_names():
    assert set(MODELS) >= set(SHAPES)


def test_lenet_parameter_count():
    n = num_params(get_model("lenet", input_shape=(1, 28, 28), num_classes=10))
    assert abs(n - 1.16e6) / 1.16e6 < 0.05
    assert n == 1_163_978


def test_cifar_cnn_parameter_count_matches_c_rsa():
    model = get_model("cifar-cnn", input_shape=(3, 32, 32), num_classes=10)
    assert num_params(model) == 368_052
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 2 and len(fcs) == 3


@pytest.mark.parametrize("input_shape, num_classes", [((1, 28, 28), 10), ((64,), 10), ((30,), 2), ((123,), 2)])
def test_mlp_parameter_count(input_shape, num_classes):
    f = 1
    for d in input_shape:
        f *= d
    model = get_model("mlp", input_shape=input_shape, num_classes=num_classes)
    assert num_params(model) == (f * 1000 + 1000) + (1000 * num_classes + num_classes)


@pytest.mark.parametrize("norm", ["group", "batch", "none"])
def test_resnet18_variants(norm):
    model = get_model("resnet18", input_shape=(3, 32, 32), num_classes=10, norm=norm)
    n = num_params(model)
    if norm == "none":
        assert 11.0e6 < n < 11.2e6
    else:
        assert n == 11_173_962
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    has_gn = any(isinstance(m, nn.GroupNorm) for m in model.modules())
    assert has_bn == (norm == "batch") and has_gn == (norm == "group")
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.stem.kernel_size == (3, 3)
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_default_is_groupnorm():
    model = get_model("resnet18", input_shape=(3, 32, 32), num_classes=10)
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    assert not list(model.buffers())
    with pytest.raises(ValueError, match="norm"):
        get_model("resnet18", input_shape=(3, 32, 32), num_classes=10, norm="layer")


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_forward_loss_predict(name):
    num_classes = 2 if name in ("logistic", "robust-regression") else 10
    model = get_model(name, input_shape=SHAPES[name], num_classes=num_classes, seed=0)
    assert isinstance(model, FedModel)
    model.eval()
    x = torch.randn(4, *SHAPES[name])
    y = torch.tensor([0, 1, 1, 0])
    out = model(x)
    assert out.shape[0] == 4
    loss = model.loss(out, y)
    assert loss.dim() == 0 and torch.isfinite(loss)
    pred = model.predict(out)
    assert pred.dtype == torch.int64 and pred.shape == (4,)
    assert set(pred.tolist()) <= set(range(num_classes))
    loss.backward()
    g = flat_grad(model)
    assert g.shape == (num_params(model),) and torch.count_nonzero(g) > 0


def test_classifier_loss_is_mean_cross_entropy_and_argmax():
    model = get_model("mlp", input_shape=(3,), num_classes=3)
    out = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    assert model.predict(out).tolist() == [0, 2]
    expected = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1]))
    assert torch.allclose(model.loss(out, torch.tensor([0, 1])), expected)


def test_logistic_binary_and_multiclass():
    binary = get_model("logistic", input_shape=(5,), num_classes=2)
    assert binary(torch.zeros(3, 5)).shape == (3, 1) and num_params(binary) == 6
    out = torch.tensor([[2.0], [-3.0]])
    assert binary.predict(out).tolist() == [1, 0]
    expected = torch.log1p(torch.exp(torch.tensor([-2.0, -3.0]))).mean()  # labels 1 and 0: both right
    assert torch.allclose(binary.loss(out, torch.tensor([1, 0])), expected)
    no_bias = get_model("logistic", input_shape=(123,), num_classes=2, bias=False)
    assert num_params(no_bias) == 123  # d = 123 on a9a, as in FED-CURE
    multi = get_model("logistic", input_shape=(1, 2, 2), num_classes=4)
    assert multi(torch.zeros(3, 1, 2, 2)).shape == (3, 4) and num_params(multi) == 4 * 4 + 4
    assert multi.predict(torch.eye(4)[[2, 0]]).tolist() == [2, 0]


def test_robust_regression_loss():
    model = get_model("robust-regression", input_shape=(4,), num_classes=2)
    out = torch.tensor([[1.0], [-1.0], [0.5], [3.0]])
    y = torch.tensor([1, 0, 0, 1])  # targets +1, -1, -1, +1
    residual = torch.tensor([0.0, 0.0, -1.5, -2.0])
    expected = torch.log(residual**2 / 2 + 1).mean()
    assert torch.allclose(model.loss(out, y), expected)
    assert model.predict(out).tolist() == [1, 0, 1, 1]
    with pytest.raises(ValueError, match="num_classes"):
        get_model("robust-regression", input_shape=(4,), num_classes=3)


def test_linear_model_learns_trivial_batch():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).long()
    for name in ("logistic", "robust-regression"):
        model = get_model(name, input_shape=(3,), num_classes=2)
        first = float(model.loss(model(x), y).detach())
        for _ in range(100):  # plain gradient descent (no torch.optim: its first import is slow)
            model.zero_grad()
            model.loss(model(x), y).backward()
            set_flat_params(model, flat_params(model) - 0.5 * flat_grad(model))
        with torch.no_grad():
            assert float(model.loss(model(x), y)) < first
            assert (model.predict(model(x)) == y).float().mean() > 0.9


def test_flat_params_roundtrip():
    model = get_model("cifar-cnn", input_shape=(3, 32, 32), num_classes=10, seed=1)
    vec = flat_params(model)
    assert vec.dtype == torch.float32 and vec.shape == (368_052,)
    expected = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert torch.equal(vec, expected)
    vec[0] += 1.0  # a copy: the model is untouched
    assert not torch.equal(flat_params(model), vec)
    new = torch.randn(num_params(model))
    set_flat_params(model, new)
    assert torch.equal(flat_params(model), new)
    assert torch.equal(model.conv1.weight.reshape(-1), new[: model.conv1.weight.numel()])
    with pytest.raises(ValueError, match="368052"):
        set_flat_params(model, torch.zeros(10))
    with pytest.raises(TypeError):
        set_flat_params(model, [0.0] * 368_052)


def test_flat_grad_zeros_where_no_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[1](torch.ones(1, 2)).sum().backward()  # only the second layer gets gradients
    g = flat_grad(model)
    assert g.shape == (9,)
    assert torch.equal(g[:6], torch.zeros(6)) and torch.equal(g[6:], torch.ones(3))


def test_seeded_init_is_reproducible_and_leaves_global_rng():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = flat_params(get_model("lenet", input_shape=(1, 28, 28), num_classes=10, seed=5))
    assert torch.equal(torch.random.get_rng_state(), state)
    b = flat_params(get_model("lenet", input_shape=(1, 28, 28), num_classes=10, seed=5))
    c = flat_params(get_model("lenet", input_shape=(1, 28, 28), num_classes=10, seed=6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_get_model_argument_checks():
    with pytest.raises(ValueError, match="unknown model"):
        get_model("vgg", input_shape=(3, 32, 32), num_classes=10)
    with pytest.raises(ValueError, match="num_classes"):
        get_model("mlp", input_shape=(4,), num_classes=1)
    with pytest.raises(ValueError, match="input_shape"):
        get_model("lenet", input_shape=(784,), num_classes=10)
    with pytest.raises(ValueError, match="16x16"):
        get_model("lenet", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match="seed"):
        get_model("mlp", input_shape=(4,), num_classes=2, seed=-1)


def test_register_model():
    @register_model("test-linear")
    class TestLinear(FedModel):
        def __init__(self, input_shape, num_classes, width=1):
            super().__init__()
            self.fc = nn.Linear(input_shape[0], num_classes * width)

        def forward(self, x):
            return self.fc(x)

    try:
        model = get_model("test-linear", input_shape=(3,), num_classes=2, width=2)
        assert isinstance(model, TestLinear) and model(torch.zeros(1, 3)).shape == (1, 4)
        with pytest.raises(ValueError, match="already registered"):
            register_model("test-linear", TestLinear)
    finally:
        del MODELS["test-linear"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_models_run_on_cuda():
    for name, shape in SHAPES.items():
        num_classes = 2 if name in ("logistic", "robust-regression") else 10
        model = get_model(name, input_shape=shape, num_classes=num_classes).cuda()
        out = model(torch.randn(2, *shape, device="cuda"))
        model.loss(out, torch.tensor([0, 1], device="cuda")).backward()
        assert flat_params(model).is_cuda and flat_grad(model).is_cuda
        set_flat_params(model, torch.zeros(num_params(model)))  # a CPU vector into a CUDA model
        assert float(flat_params(model).abs().sum()) == 0.0
