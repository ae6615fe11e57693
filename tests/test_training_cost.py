"""The cost of a training step: summary(training=True)'s backward figures, verified against
the matrix products the kernels actually run during one real training step
(wally.analysis.training_cost.count_step), kernel by kernel."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import wally
from wally import nn
from wally.analysis.training_cost import (
    backward_macs,
    count_products,
    count_step,
    kernel_products,
)
from wally.backends import accel
from wally.backends import conv as dispatch
from wally.data.digits import _load_digits
from wally.nn import functional as F


def _digits(n: int, size: int, channels: int = 1) -> tuple[wally.Tensor, wally.Tensor]:
    """``n`` real scikit-learn digits, 8×8 blown up 4× (32×32) and centre-cropped to
    ``size``, in ``channels`` channels, with their labels."""
    images, labels = _load_digits()
    x = np.kron(images[:n].astype(np.float32) / 16, np.ones((4, 4), np.float32))
    lo = (32 - size) // 2
    x = x[:, None, lo : lo + size, lo : lo + size].repeat(channels, axis=1)
    return wally.tensor(np.ascontiguousarray(x)), wally.tensor(labels[:n].astype(np.int64))


def _pairs(padding, nd):
    p = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    return tuple((int(q), int(q)) for q in p)


def _geometry(module, input_shape):
    return dispatch.Geometry(
        input_shape,
        module.weight.shape,
        tuple(module.stride),
        _pairs(module.padding, 2),
        tuple(module.dilation),
        module.groups,
        np.dtype(np.float32),
    )


def _rows(model, x):
    s = wally.summary(model, input_data=x, training=True, verbose=0, depth=None)
    return s, {row.name: row for row in s.layers if row.kind == "layer"}


def _expected(row):
    return {
        p: v
        for p, v in (
            ("forward", row.macs),
            ("input-grad", row.input_grad_macs),
            ("weight-grad", row.weight_grad_macs),
        )
        if v
    }


def _gemm_layers(model):
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear | nn.ConvTranspose2d)
    }


# ----- the rules --------------------------------------------------------------------------------
def test_lenet_figures():
    """LeNet at batch 1: dW equals the forward count, dX skips the first convolution."""
    s = wally.summary(wally.models.lenet(), input_size=(1, 1, 28, 28), training=True, verbose=0)
    t = s.totals
    assert (t["macs"], t["input_grad_macs"], t["weight_grad_macs"]) == (416520, 298920, 416520)
    assert t["step_macs"] == 416520 + 298920 + 416520
    first = next(r for r in s.layers if r.name == "0")
    assert (first.macs, first.input_grad_macs, first.weight_grad_macs) == (117600, 0, 117600)
    assert "dX MACs" in str(s) and "training mode" in str(s)


def test_frozen_layers_have_no_weight_gradient_and_nothing_below_them_needs_one():
    model = wally.models.lenet()
    for p in model[0].parameters():
        p.requires_grad_(False)
    s, rows = _rows(model, _digits(2, 28)[0])
    assert rows["0"].weight_grad_macs == 0 and rows["0"].input_grad_macs == 0
    assert rows["3"].input_grad_macs == 0  # its input comes from a frozen layer
    assert rows["3"].weight_grad_macs == rows["3"].macs
    for p in model[3].parameters():
        p.requires_grad_(False)
    s, rows = _rows(model, _digits(2, 28)[0])
    assert rows["3"].weight_grad_macs == 0 and rows["7"].input_grad_macs == 0
    assert rows["9"].input_grad_macs == rows["9"].macs


def test_the_summary_leaves_state_as_it_found_it():
    model = wally.models.resnet18(in_channels=1, input_size=32)
    before = [b.array.copy() for b in model.buffers()]
    state = wally.random.get_rng_state()
    model.eval()
    wally.summary(model, input_size=(2, 1, 32, 32), training=True, verbose=0)
    assert not model.training
    assert all(np.array_equal(a, b.array) for a, b in zip(before, model.buffers(), strict=True))
    assert wally.random.get_rng_state() == state


def test_training_must_be_a_bool():
    with pytest.raises(TypeError, match="training must be True or False"):
        wally.summary(wally.models.lenet(), input_size=(1, 1, 28, 28), training="yes", verbose=0)


def test_batch_norm_rule():
    x = wally.randn(2, 3, 4, 4)
    bn = nn.BatchNorm2d(3)
    y = bn(x.requires_grad_())
    assert backward_macs(y._ctx, y) == (2 * y.numel(), y.numel())
    bn.weight.requires_grad_(False)
    bn.bias.requires_grad_(False)
    y = bn(x)
    assert backward_macs(y._ctx, y) == (3 * y.numel(), 0)


# ----- the counting point -----------------------------------------------------------------------
def test_count_products_sees_a_product_and_restores_numpy():
    with count_products() as products:
        F.linear(wally.ones(4, 3), wally.ones(2, 3))
    assert [p.shape for p in products] == [(1, 4, 3, 2)]
    assert wally.backend.matmul is np.matmul and wally.backend.dot is np.dot
    assert wally.backend.multiply is np.multiply


def _check_step(model, x, y, exact_kernels):
    """Every GEMM layer's counted m·k·n per pass equals what its kernel runs; for the kernels
    that run the direct count, equals the summary's figure exactly."""
    _, rows = _rows(model, x)
    count = count_step(model, x, y)
    assert math.isfinite(count.loss)
    for name, module in _gemm_layers(model).items():
        expected = _expected(rows[name])
        got = count.by_layer.get(name, {})
        if isinstance(module, nn.Linear):
            assert got == expected, name
            continue
        kernels = count.kernels[name]
        g = _geometry(module, rows[name].input_shape[0])
        for pass_, macs in expected.items():
            (kernel,) = kernels[pass_]
            if kernel in exact_kernels:
                assert got[pass_] == macs, (name, pass_, kernel)
            else:
                assert got[pass_] == kernel_products(kernel, g, pass_), (name, pass_, kernel)
        assert set(got) == set(expected), name
    # nothing counted outside the layers (cross-entropy runs no product)
    assert set(count.by_layer) <= set(_gemm_layers(model))
    return count


@pytest.mark.parametrize("kernel", ["reference", "rows", "im2col", "direct", None])
def test_lenet_step_on_real_digits(kernel):
    """(``None``: the table's own choice, which takes the compiled ``direct`` kernel for the
    first layer's forward pass where numba is installed.)"""
    if kernel == "direct" and not accel.is_available():
        pytest.skip("numba is not installed (pip install wally-cnn[accel])")
    x, y = _digits(8, 28)
    model = wally.models.lenet()
    forced = dispatch.algorithm(kernel) if kernel else contextlib.nullcontext()
    with forced:
        count = _check_step(model, x, y, exact_kernels={"reference", "rows"})
    if kernel == "im2col":
        # conv1: 28 + 2·2 = 32 padded columns per 28 outputs: wide rows run 32/28 the direct
        # count, junk columns included
        assert count.by_layer["0"]["forward"] * 28 == 940800 * 32
    if kernel in ("reference", "rows"):
        _, rows = _rows(model, x)
        assert count.total() == sum(
            r.macs + r.input_grad_macs + r.weight_grad_macs for r in rows.values()
        )


@pytest.mark.parametrize("kernel", ["reference", "im2col", None])
def test_resnet18_step_on_real_digits(kernel):
    """Strided 3×3 and 1×1 convolutions, batch norm in training mode, a linear head."""
    x, y = _digits(2, 32)
    model = wally.models.resnet18(in_channels=1, input_size=32)
    forced = dispatch.algorithm(kernel) if kernel else contextlib.nullcontext()
    with forced:
        _check_step(model, x, y, exact_kernels={"reference", "rows"})


def test_groups_dilation_stride_transposed_and_frozen_by_reference():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2),
        nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
        nn.Conv2d(4, 4, 1),
        nn.Flatten(),
        nn.Linear(4 * 16 * 16, 10),
    )
    model[4].weight.requires_grad_(False)
    x = wally.tensor(_digits(3, 16, channels=2)[0].array)
    y = wally.tensor(np.array([0, 1, 2]))
    _, rows = _rows(model, x)
    with dispatch.algorithm("reference"):
        count = count_step(model, x, y)
    for name in ("0", "2", "3", "4", "6"):
        assert count.by_layer[name] == _expected(rows[name]), name
    assert "weight-grad" not in count.by_layer["4"]
    assert "input-grad" not in count.by_layer["0"]
    # the grouped, dilated layer: 3·3·(4/2)·6 per output position
    assert rows["2"].macs == 9 * 2 * 6 * 3 * 8 * 8


def test_winograd_runs_fewer_multiplications():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),
    )
    x, y = _digits(2, 16)
    _, rows = _rows(model, x)
    with dispatch.algorithm("winograd"):
        count = count_step(model, x, y)
    g = _geometry(model[1], rows["1"].input_shape[0])
    direct, run = rows["1"].macs, count.by_layer["1"]["forward"]
    assert run == kernel_products("winograd", g) == 16 * 8 * 8 * 2 * 8 * 8 + 16 * 9 * 64
    assert run < direct  # 16 products per 2×2 tile against 36, plus the weight transform
    # the gradient passes have no Winograd kernel: they choose as usual (here wide-row im2col)
    (kernel,) = count.kernels["1"]["weight-grad"]
    assert count.by_layer["1"]["weight-grad"] == kernel_products(kernel, g, "weight-grad")


def test_depthwise_counts_its_per_tap_products():
    """The depthwise kernel multiplies per tap (element-wise, ``backend.multiply``): counted,
    its products are exactly the summary's direct count, on every pass."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Conv2d(4, 4, 3, padding=1, groups=4),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 10),
    )
    x, y = _digits(2, 12)
    _, rows = _rows(model, x)
    with accel.flags(False):  # NumPy's depthwise kernels (compiled: the test below)
        count = count_step(model, x, y)
    # stride 1, 'same': dX is the flipped convolution, itself depthwise, over as many positions
    assert count.kernels["1"]["input-grad"] == {"flipped/depthwise"}
    assert count.kernels["2"]["input-grad"] == {"depthwise"}
    for name in ("1", "2"):
        assert count.kernels[name]["forward"] == {"depthwise"}, name
        assert count.kernels[name]["weight-grad"] == {"depthwise"}, name
        assert count.by_layer[name] == _expected(rows[name]), name
    assert rows["1"].macs == 9 * 4 * 2 * 12 * 12 == rows["1"].weight_grad_macs


@pytest.mark.skipif(not accel.is_enabled(), reason="numba is not installed or switched off")
def test_compiled_depthwise_kernels_count_their_multiply_adds():
    """With numba, a stride-1 depthwise layer runs ``direct`` forward (every weight over the
    wide rows) and ``depthwise-direct`` for its weight gradient (the direct count)."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                          nn.Flatten(), nn.Linear(4 * 12 * 12, 10))
    x, y = _digits(2, 12)
    _, rows = _rows(model, x)
    count = count_step(model, x, y)
    assert count.kernels["1"]["forward"] == {"direct"}
    assert count.kernels["1"]["weight-grad"] == {"depthwise-direct"}
    assert count.kernels["1"]["input-grad"] == {"flipped/direct"}
    assert count.by_layer["1"]["weight-grad"] == rows["1"].weight_grad_macs == 9 * 4 * 2 * 144


def test_flipped_input_gradient_runs_over_the_input_positions():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3), nn.Flatten(), nn.Linear(6 * 12 * 12, 10)
    )
    x, y = _digits(2, 14)
    _, rows = _rows(model, x)
    with dispatch.algorithm("reference"), dispatch.algorithm("flipped", "input-grad"):
        count = count_step(model, x, y)
    assert count.kernels["1"]["input-grad"] == {"flipped/reference"}
    # dY (6 channels, padded by 2) ⋆ flip(W)ᵀ over the 14×14 input: 3·3·6·4 per position
    assert count.by_layer["1"]["input-grad"] == 9 * 6 * 4 * 2 * 14 * 14
    assert rows["1"].input_grad_macs == 9 * 4 * 6 * 2 * 12 * 12  # the direct count


def test_cli_training(capsys):
    from wally.cli import main

    assert main(["summary", "lenet", "--training", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "dX MACs" in out and "Training step MACs (forward + backward): 1,131,960" in out


def test_saved_memory_follows_what_backward_computes():
    """The Saved column of a training summary: the first convolution keeps its input for dW
    (the images need no dX, so not the weight); frozen, with nothing below needing a
    gradient, it keeps nothing (autograd records no node)."""
    x = _digits(2, 28)[0]
    model = wally.models.lenet()
    _, rows = _rows(model, x)
    assert rows["0"].saved_bytes == x.array.nbytes
    for p in model[0].parameters():
        p.requires_grad_(False)
    _, rows = _rows(model, x)
    assert rows["0"].saved_bytes == 0 and rows["0"].macs == 2 * 117600


def _fashion_mnist(n: int):
    from wally.vision.datasets import FashionMNIST

    for root in ("/usr/share/datasets/fashion-mnist", "/usr/share/datasets"):
        try:
            data = FashionMNIST(root, train=False)
        except (OSError, ValueError, RuntimeError):
            continue
        x = data.data.array[:n].astype(np.float32)[:, None] / 255
        return wally.tensor(x), wally.tensor(data.targets.array[:n].astype(np.int64))
    pytest.skip("Fashion-MNIST is not in /usr/share/datasets/fashion-mnist")


def test_lenet_step_on_fashion_mnist_when_present():
    x, y = _fashion_mnist(8)
    with dispatch.algorithm("reference"):
        _check_step(wally.models.lenet(), x, y, exact_kernels={"reference"})


def test_cli_training_batch_norm_at_batch_one_says_what_to_do(capsys):
    from wally.cli import main

    assert main(["summary", "lenet_modern", "--training"]) != 0
    err = capsys.readouterr().err
    assert "pass --input-size 2 1 28 28" in err and "Traceback" not in err
    assert err.count("\n") == 1
