"""Hostile layer inputs (issue 11): huge convolutions stay within their input, their output and
the memory budget; what cannot fit is refused up front, naming the op (and the layer) and the
bytes; empty batches give empty outputs and gradients, as in PyTorch; byte-swapped arrays are
converted when a tensor is made; batch norm's statistics don't overflow float32.

The memory tests run in a subprocess and read its peak resident memory (``VmHWM``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import wally
import wally.nn.functional as F
from wally import _parallel, nn, reference
from wally._windows import ColumnPlan
from wally.backends import accel
from wally.functional import conv as conv_module
from wally.testing import gradcheck

MiB = 1 << 20

# ----- huge convolutions: the padded input is never copied whole ---------------------------------
PEAK = textwrap.dedent(
    """
    import sys
    import numpy as np
    import wally
    import wally.nn.functional as F

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    mode, size = sys.argv[1], int(sys.argv[2])
    groups = int(sys.argv[3]) if len(sys.argv) > 3 else 1  # 3: depthwise
    stride = 2 if mode == "input-gradient, strided" else 1
    x = wally.ones(1, 3, size, size, requires_grad=mode.startswith("input"))
    shape = (3, 1, 3, 3) if groups == 3 else (1, 3, 3, 3)
    w = wally.tensor(np.full(shape, 0.1, np.float32), requires_grad=mode != "forward")
    F.conv2d(wally.ones(1, 3, 8, 8), wally.ones(*shape), padding=1, groups=groups)  # warm
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the high-water mark starts again from here
    before = status("VmRSS:")
    y = F.conv2d(x, w, stride=stride, padding=1, groups=groups)
    if mode != "forward":
        y.backward(wally.ones(*y.shape))
    # What the op must hold besides its input: the output, its gradient and the input's.
    needed = y.array.nbytes * (1 if mode == "forward" else 2)
    if x.grad is not None:
        needed += x.grad.array.nbytes
    print(status("VmHWM:") - before - needed)
    """
)


def _extra_bytes(mode: str, size: int, budget: str, groups: int = 1) -> int:
    env = dict(os.environ, WALLY_CONV_MEMORY_BUDGET=budget, WALLY_NUM_THREADS="2")
    result = subprocess.run(
        [sys.executable, "-c", PEAK, mode, str(size), str(groups)], capture_output=True, text=True,
        env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


@pytest.mark.parametrize(
    "mode", ["forward", "weight gradient", "input gradient", "input-gradient, strided"]
)
def test_a_huge_convolution_needs_its_input_its_output_and_the_budget(mode):
    """1×3×6000×6000 float32 (412 MiB) with padding 1: the whole padded copy (412 MiB more)
    used to be made in forward and in each gradient; now the peak above the input, the output
    and the gradients stays within the 64 MiB budget and a margin for NumPy's temporaries."""
    extra = _extra_bytes(mode, 6000, "64M")
    assert extra < 64 * MiB + 32 * MiB, f"{mode}: {extra / MiB:.0f} MiB above what it needs"


@pytest.mark.parametrize(
    "mode", ["forward", "weight gradient", "input gradient", "input-gradient, strided"]
)
def test_a_huge_depthwise_convolution_needs_its_input_its_output_and_the_budget(mode):
    """The same for a depthwise convolution (groups = C_in = C_out, its own kernels): it used to
    pad each image whole and keep a whole-image product too; now it works on blocks of output
    rows (of input rows for the strided input gradient) within the budget."""
    extra = _extra_bytes(mode, 6000, "64M", groups=3)
    assert extra < 64 * MiB + 32 * MiB, f"{mode}: {extra / MiB:.0f} MiB above what it needs"


def test_row_padding_matches_the_loops_and_torch(torch, monkeypatch):
    """With a tiny budget every image is padded one chunk of output rows at a time (forward,
    both gradients, 1-3 spatial axes, strides, dilation, uneven padding): the results are the
    loops' and PyTorch's."""
    calls = []
    rows_block = ColumnPlan.rows_block
    monkeypatch.setattr(
        ColumnPlan, "rows_block", lambda self, *a: calls.append(1) or rows_block(self, *a)
    )
    rng = np.random.default_rng(0)
    cases = [
        ((2, 3, 41), (4, 3, 3), {"padding": 1}),
        ((2, 3, 40, 23), (4, 3, 3, 3), {"padding": 1}),
        ((1, 3, 33, 20), (4, 3, 3, 2), {"stride": 2, "padding": (1, 0)}),
        ((2, 2, 30, 21), (3, 2, 5, 3), {"dilation": 2, "padding": 3}),
        ((1, 2, 9, 10, 11), (3, 2, 3, 3, 3), {"padding": 1}),
    ]
    functions = {3: (F.conv1d, torch.nn.functional.conv1d),
                 4: (F.conv2d, torch.nn.functional.conv2d),
                 5: (F.conv3d, torch.nn.functional.conv3d)}
    for x_shape, w_shape, kwargs in cases:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        ours, theirs = functions[len(x_shape)]
        xs, ws, bs = (wally.tensor(a, requires_grad=True) for a in (x, w, b))
        with conv_module.im2col_budget(4096):
            y = ours(xs, ws, bs, **kwargs)
            g = rng.standard_normal(y.shape)
            y.backward(wally.tensor(g))
        np.testing.assert_allclose(
            y.detach().numpy(), reference.conv_nd_loops(x, w, b, **kwargs), atol=1e-10
        )
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        theirs(tx, tw, tb, **kwargs).backward(torch.tensor(g))
        for mine, torch_grad in ((xs, tx), (ws, tw), (bs, tb)):
            np.testing.assert_allclose(mine.grad.numpy(), torch_grad.grad.numpy(), atol=1e-10)
    assert calls, "no convolution took the row padding"
    x = wally.tensor(rng.standard_normal((1, 2, 12, 7)), requires_grad=True)
    w = wally.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    with conv_module.im2col_budget(256):
        assert gradcheck(lambda a, b: F.conv2d(a, b, stride=(2, 1), padding=1), x, w)


def test_depthwise_row_blocks_match_the_loops_and_torch(torch, monkeypatch):
    """With a tiny budget a depthwise convolution works on blocks of a few rows of one image
    (forward, both gradients; strides 1 and 2, dilation 2, padding 0-2): the results are the
    loops' and PyTorch's, and forward and the input gradient are the whole-image path's bits."""
    calls = []
    step = conv_module._depthwise_row_step
    monkeypatch.setattr(
        conv_module, "_depthwise_row_step", lambda *a: calls.append(step(*a)) or calls[-1]
    )
    rng = np.random.default_rng(0)
    for stride, dilation, padding in [
        (1, 1, 0), (1, 1, 1), (1, 1, 2), (2, 1, 0), (2, 1, 1), (2, 1, 2),
        (1, 2, 1), (1, 2, 2), (2, 2, 2), ((2, 1), (2, 1), (1, 2)),
    ]:
        kwargs = {"stride": stride, "dilation": dilation, "padding": padding, "groups": 3}
        x, w = rng.standard_normal((2, 3, 23, 11)), rng.standard_normal((3, 1, 3, 3))
        b = rng.standard_normal(3)
        results = []
        for budget in (1 << 30, 6000):
            xs, ws, bs = (wally.tensor(a, requires_grad=True) for a in (x, w, b))
            # NumPy's depthwise kernels both times (with numba, stride 1 would run compiled)
            with conv_module.im2col_budget(budget), accel.flags(False):
                y = F.conv2d(xs, ws, bs, **kwargs)
                g = np.linspace(-1, 1, y.array.size).reshape(y.shape)
                y.backward(wally.tensor(g))
            results.append((y.detach().numpy(), xs, ws, bs))
        (y_whole, x_whole, *_), (y, xs, ws, bs) = results
        np.testing.assert_array_equal(y, y_whole)
        np.testing.assert_array_equal(xs.grad.numpy(), x_whole.grad.numpy())
        np.testing.assert_allclose(y, reference.conv_nd_loops(x, w, b, **kwargs), atol=1e-10)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        torch.nn.functional.conv2d(tx, tw, tb, **kwargs).backward(torch.tensor(g))
        for mine, torch_grad in ((xs, tx), (ws, tw), (bs, tb)):
            np.testing.assert_allclose(mine.grad.numpy(), torch_grad.grad.numpy(), atol=1e-10)
    assert calls and max(calls) < 23, "the row blocks were not taken"
    assert max(calls) > 1, "every block was a single row"
    x = wally.tensor(rng.standard_normal((1, 3, 12, 7)), requires_grad=True)
    w = wally.tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    with conv_module.im2col_budget(256):
        for stride in (1, 2):
            assert gradcheck(
                lambda a, b, s=stride: F.conv2d(a, b, stride=s, padding=1, groups=3), x, w
            )


# ----- what cannot fit is refused up front -----------------------------------------------------
def test_an_output_that_cannot_fit_is_refused_naming_the_layer_and_the_bytes(monkeypatch):
    monkeypatch.setattr(_parallel, "available_memory", lambda: 100 * MiB)
    layer = nn.Conv2d(3, 1, 3, padding=1)
    with pytest.raises(MemoryError) as caught:
        layer(wally.zeros(1, 3, 6000, 6000))
    message = str(caught.value)
    for words in ("Conv2d(3, 1", "conv2d", "output", "(1, 1, 6000, 6000)", "144000000 bytes",
                  "104857600 bytes"):
        assert words in message, message
    # In backward: the input gradient (144 MB) no longer fits.
    x = wally.zeros(1, 3, 2000, 6000, requires_grad=True)
    monkeypatch.setattr(_parallel, "available_memory", lambda: 1 << 40)
    y = F.conv2d(x, wally.zeros(1, 3, 3, 3), stride=2, padding=1)
    monkeypatch.setattr(_parallel, "available_memory", lambda: 100 * MiB)
    with pytest.raises(MemoryError, match=r"conv2d: the input gradient of shape \(1, 3, 2000"):
        y.sum().backward()


def test_numpys_memory_error_is_given_the_ops_name(monkeypatch):
    with open("/proc/sys/vm/overcommit_memory") as f:
        if f.read().strip() == "1":
            pytest.skip("the kernel hands out any allocation (vm.overcommit_memory=1)")
    monkeypatch.setattr(_parallel, "available_memory", lambda: None)
    with pytest.raises(MemoryError, match=r"conv2d: the output of shape \(1, 1, 524288, 524288\)"):
        _parallel.allocate("conv2d", "output", (1, 1, 1 << 19, 1 << 19), np.float32)


# ----- empty batches ---------------------------------------------------------------------------
EMPTY = [
    ("conv1d", lambda x: nn.Conv1d(3, 4, 3, stride=2), (0, 3, 9)),
    ("conv2d", lambda x: nn.Conv2d(3, 4, 3, padding=1), (0, 3, 8, 8)),
    ("conv2d depthwise", lambda x: nn.Conv2d(3, 3, 3, groups=3), (0, 3, 8, 8)),
    ("conv3d", lambda x: nn.Conv3d(3, 2, 2), (0, 3, 4, 4, 4)),
    ("max_pool2d", lambda x: nn.MaxPool2d(3, 2, 1), (0, 3, 8, 8)),
    ("avg_pool2d", lambda x: nn.AvgPool2d(2), (0, 3, 8, 8)),
    ("adaptive_avg_pool2d", lambda x: nn.AdaptiveAvgPool2d(3), (0, 3, 8, 8)),
    ("adaptive_max_pool2d", lambda x: nn.AdaptiveMaxPool2d(3), (0, 3, 8, 8)),
    ("linear", lambda x: nn.Linear(3, 4), (0, 3)),
    ("linear of 3-D input", lambda x: nn.Linear(3, 4), (2, 0, 3)),
]


@pytest.mark.parametrize("name, make, shape", EMPTY, ids=[row[0] for row in EMPTY])
def test_an_empty_batch_gives_an_empty_output_and_gradients_as_in_pytorch(torch, name, make,
                                                                           shape):
    layer = make(None)
    ours = layer.__class__.__name__
    torch_layer = getattr(torch.nn, ours)(*_torch_args(layer))
    x = wally.zeros(*shape, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    tx = torch.zeros(*shape, requires_grad=True)
    ty = torch_layer(tx)
    ty.sum().backward()
    assert y.shape == tuple(ty.shape)
    assert x.grad.shape == tuple(tx.grad.shape)
    for param, torch_param in zip(layer.parameters(), torch_layer.parameters(), strict=True):
        assert param.grad is not None and param.grad.shape == tuple(torch_param.grad.shape)
        np.testing.assert_array_equal(param.grad.numpy(), torch_param.grad.numpy())


def _torch_args(layer):
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                layer.padding, layer.dilation, layer.groups)
    if isinstance(layer, nn.MaxPool2d):
        return layer.kernel_size, layer.stride, layer.padding
    if isinstance(layer, nn.AvgPool2d):
        return (layer.kernel_size,)
    return (layer.output_size,)


def test_unfold_and_fold_of_an_empty_batch(torch):
    x = wally.zeros(0, 3, 8, 8, requires_grad=True)
    y = F.unfold(x, 2)
    y.sum().backward()
    assert y.shape == tuple(torch.nn.functional.unfold(torch.zeros(0, 3, 8, 8), 2).shape)
    assert x.grad.shape == (0, 3, 8, 8)
    cols = wally.zeros(0, 12, 49, requires_grad=True)
    folded = F.fold(cols, (8, 8), 2)
    folded.sum().backward()
    assert folded.shape == (0, 3, 8, 8) and cols.grad.shape == (0, 12, 49)


def test_layers_without_inputs_give_their_bias(torch):
    """``Linear(0, 5)`` and a convolution of 0 input channels sum over nothing: the output is
    the bias (PyTorch: the same for Linear; for the convolution it returns a 0-channel output,
    which its own shape formula contradicts), and no ZeroDivisionError anywhere."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear = nn.Linear(0, 5)
        conv = nn.Conv2d(0, 4, 3)
        torch_linear = torch.nn.Linear(0, 5)
    torch_linear.bias.data = torch.tensor(linear.bias.detach().numpy())
    y = linear(wally.zeros(2, 0))
    np.testing.assert_array_equal(y.detach().numpy(),
                                  torch_linear(torch.zeros(2, 0)).detach().numpy())
    x = wally.zeros(2, 0, 8, 8, requires_grad=True)
    out = conv(x)
    assert out.shape == (2, 4, 6, 6)
    bias = conv.bias.detach().numpy()[:, None, None]
    np.testing.assert_array_equal(out.detach().numpy(), np.broadcast_to(bias, (2, 4, 6, 6)))
    out.sum().backward()
    np.testing.assert_array_equal(conv.bias.grad.numpy(), np.full(4, 72.0))
    assert x.grad.shape == (2, 0, 8, 8)


# ----- byte order, batch norm's overflow --------------------------------------------------------
def test_big_endian_arrays_are_converted_when_a_tensor_is_made():
    data = np.arange(16, dtype=">f4").reshape(1, 1, 4, 4)
    for made in (wally.tensor(data), wally.from_numpy(data), wally.as_tensor(data)):
        assert made.dtype == wally.float32 and made.array.dtype.isnative
        np.testing.assert_array_equal(made.numpy(), data.astype(np.float32))
    y = nn.Conv2d(1, 1, 1)(wally.tensor(data))
    assert y.dtype == wally.float32


def test_batch_norm_of_huge_values_normalises_them(torch):
    """±3e38 (float32's edge): Σx² overflowed and the output was 0 with running_var inf;
    now the output is ±1 as in float64, and the running variance, which float32 cannot hold,
    is flagged: a warning, or an AnomalyError under detect_anomaly."""
    values = np.array([[3e38, -3e38], [-3e38, 3e38]], dtype=np.float32)
    layer = nn.BatchNorm1d(2)
    x = wally.tensor(values, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="running_var became inf"):
        y = layer(x)
    expected = torch.nn.BatchNorm1d(2).double()(torch.tensor(values, dtype=torch.float64))
    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    y.backward(wally.tensor(np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)))
    assert np.isfinite(x.grad.numpy()).all()
    with wally.autograd.detect_anomaly(), pytest.raises(wally.autograd.AnomalyError,
                                                        match="running_var became inf"):
        nn.BatchNorm1d(2)(wally.tensor(values))
