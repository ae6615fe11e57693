"""Conv and pooling layers: parameters, initialisation, padding modes, lazy layers, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
LAZY = {1: nn.LazyConv1d, 2: nn.LazyConv2d, 3: nn.LazyConv3d}


def torch_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


@st.composite
def layer_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if draw(st.booleans()):
        padding: object = "same"
        stride: tuple[int, ...] = (1,) * nd
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        lefts = [t // 2 for t in totals]
    else:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
        stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
        totals = [2 * p for p in padding]
        lefts = list(padding)
    spatial = []
    for k, d, total, left in zip(kernel, dilation, totals, lefts, strict=True):
        smallest = max(1, d * (k - 1) + 1 - total)
        if mode == "reflect":  # each pad must be smaller than the input
            smallest = max(smallest, total - left + 1, left + 1)
        elif mode == "circular":
            smallest = max(smallest, total - left, left)
        spatial.append(draw(st.integers(smallest, smallest + (3 if nd == 3 else 4))))
    batch = draw(st.sampled_from([None, 2]))
    shape = ((in_channels,) if batch is None else (batch, in_channels)) + tuple(spatial)
    kwargs = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": draw(st.booleans()),
        "padding_mode": mode,
    }
    seed = draw(st.integers(0, 2**32 - 1))
    return nd, in_channels, out_channels, kernel, kwargs, shape, seed


# ----- parameters and initialisation -----------------------------------------------------------
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("groups, bias", [(1, True), (2, False)])
def test_parameters_match_torch(torch, nd, groups, bias):
    ours = CONV[nd](4, 6, 3, groups=groups, bias=bias)
    theirs = getattr(torch.nn, f"Conv{nd}d")(4, 6, 3, groups=groups, bias=bias)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert ours.state_dict()[name].shape == tuple(value.shape)
        assert ours.state_dict()[name].dtype == wally.float32
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_default_initialisation_bounds():
    wally.manual_seed(0)
    conv = nn.Conv2d(16, 64, 5, groups=2)
    fan_in = (16 // 2) * 5 * 5
    bound = 1 / math.sqrt(fan_in)
    w, b = conv.weight.array, conv.bias.array
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-bound, bound) has standard deviation bound/√3; 12,800 draws pin it within 2%.
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
    assert abs(w.mean()) < 0.02 * bound
    assert np.abs(w).max() > 0.95 * bound


def test_reset_parameters_redraws():
    conv = nn.Conv1d(3, 4, 3)
    before = conv.weight.array.copy()
    conv.reset_parameters()
    assert not np.array_equal(before, conv.weight.array)


# ----- forward and backward against PyTorch ----------------------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=40, deadline=None)
@given(case=layer_cases())
def test_matches_torch(torch, case):
    nd, in_channels, out_channels, kernel, kwargs, shape, seed = case
    theirs = getattr(torch.nn, f"Conv{nd}d")(in_channels, out_channels, kernel, **kwargs)
    ours = CONV[nd](in_channels, out_channels, kernel, **kwargs)
    ours.load_state_dict(torch_state(theirs))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    a = wally.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    y, y_torch = ours(a), theirs(b)
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = rng.standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y.backward(wally.tensor(g))
    y_torch.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, param in theirs.named_parameters():
        np.testing.assert_allclose(
            getattr(ours, name).grad.array,
            param.grad.numpy(),
            rtol=1e-4,
            atol=1e-4,
            err_msg=name,
        )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_mode_is_pad_then_unpadded_conv(mode):
    conv = nn.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1), padding_mode=mode)
    x = wally.randn(2, 2, 7, 8)
    y = conv(x)
    assert y.shape == (2, 3, 7, 8)
    # 'same' with (3, 4) kernel, dilation (2, 1): H needs 4 (2 + 2), W needs 3 (1 left, 2 right)
    padded = F.pad(x, (1, 2, 2, 2), mode=mode)
    expected = F.conv2d(padded, conv.weight, conv.bias, dilation=(2, 1))
    np.testing.assert_allclose(y.array, expected.array, rtol=1e-6)


def test_float64_layer():
    conv = nn.Conv2d(3, 4, 3, padding=1).double()
    x = wally.randn(2, 3, 5, 5, dtype=wally.float64, requires_grad=True)
    y = conv(x)
    assert y.dtype == wally.float64
    y.sum().backward()
    assert conv.weight.grad.dtype == wally.float64 and x.grad.dtype == wally.float64


# ----- lazy layers -----------------------------------------------------------------------------
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lazy_infers_in_channels(torch, nd):
    lazy = LAZY[nd](8, 3, padding=1, groups=2)
    assert "Lazy" in type(lazy).__name__
    x = wally.randn(2, 6, *(5,) * nd)
    y = lazy(x)
    assert type(lazy) is CONV[nd]
    assert lazy.in_channels == 6 and lazy.weight.shape == (8, 3, *(3,) * nd)
    assert y.shape == (2, 8, *(5,) * nd)
    reference = getattr(torch.nn, f"Conv{nd}d")(6, 8, 3, padding=1, groups=2)
    assert repr(lazy) == repr(reference)
    assert lazy.state_dict()["weight"].shape == tuple(reference.weight.shape)


def test_lazy_initialisation_bounds():
    lazy = nn.LazyConv2d(32, 5)
    lazy(wally.randn(1, 4, 8, 8))
    bound = 1 / math.sqrt(4 * 25)
    assert 0.9 * bound < np.abs(lazy.weight.array).max() <= bound
    assert np.abs(lazy.bias.array).max() <= bound


def test_lazy_loads_a_torch_checkpoint(torch):
    theirs = torch.nn.Conv2d(3, 5, 3)
    lazy = nn.LazyConv2d(5, 3)
    lazy.load_state_dict(torch_state(theirs))
    assert type(lazy) is nn.Conv2d and lazy.in_channels == 3
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(np.float32)
    y = lazy(wally.tensor(x))
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y.array, expected, rtol=1e-5, atol=1e-6)


def test_lazy_errors_name_the_layer():
    with pytest.raises(
        ValueError, match=r"LazyConv2d\(4, kernel_size=\(3, 3\)\): expected a 3-D or 4-D input"
    ):
        nn.LazyConv2d(4, 3)(wally.randn(5, 5))
    with pytest.raises(
        ValueError, match=r"LazyConv2d\(4, kernel_size=\(3, 3\)\): input channels \(3,"
    ):
        nn.LazyConv2d(4, 3, groups=2)(wally.randn(1, 3, 5, 5))
    with pytest.raises(
        ValueError, match=r"LazyConv1d: out_channels \(3\) must be divisible by groups \(2\)"
    ):
        nn.LazyConv1d(3, 3, groups=2)


def test_lenet_builds_lazily():
    net = nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.LazyConv2d(16, kernel_size=5),
        nn.ReLU(),
        nn.AvgPool2d(2, 2),
    )
    y = net(wally.randn(4, 1, 28, 28))
    assert y.shape == (4, 16, 5, 5)
    assert [type(m).__name__ for m in net] == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "ReLU",
        "AvgPool2d",
    ]


# ----- repr ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "nd, args, kwargs",
    [
        (2, (3, 16, 3), {}),
        (
            2,
            (3, 16, (3, 5), 2),
            {"padding": 1, "dilation": 2, "bias": False, "padding_mode": "reflect"},
        ),
        (1, (4, 8, 3), {"padding": "same"}),
        (3, (4, 8, 3), {"padding": "valid", "groups": 2}),
        (2, (4, 8, 1), {"stride": (2, 1), "padding": (0, 1), "padding_mode": "circular"}),
    ],
)
def test_conv_repr_matches_torch(torch, nd, args, kwargs):
    assert repr(CONV[nd](*args, **kwargs)) == repr(getattr(torch.nn, f"Conv{nd}d")(*args, **kwargs))


POOLS = [
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((2, 3),), {"stride": 1, "padding": (1, 0), "dilation": 2, "ceil_mode": True}),
    ("MaxPool1d", (3, 2, 1), {"return_indices": True}),
    ("MaxPool3d", (2,), {}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3, 2, 1, True, False, 2), {}),
    ("AvgPool1d", (3,), {}),
    ("AvgPool3d", (3,), {"ceil_mode": True}),
    ("AdaptiveAvgPool1d", (3,), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveAvgPool2d", ((1, None),), {}),
    ("AdaptiveAvgPool3d", ((2, 3, 1),), {}),
    ("AdaptiveMaxPool1d", (3,), {}),
    ("AdaptiveMaxPool2d", ((2, 2),), {"return_indices": True}),
    ("AdaptiveMaxPool3d", (2,), {}),
]


@pytest.mark.parametrize("name, args, kwargs", POOLS)
def test_pool_layers_match_torch(torch, name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    nd = int(name[-2])
    x = np.random.default_rng(0).standard_normal((2, 3, *(7,) * nd)).astype(np.float32)
    a, b = wally.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, y_torch = ours(a), theirs(b)
    if isinstance(y_torch, tuple):
        np.testing.assert_array_equal(y[1].array, y_torch[1].numpy())
        y, y_torch = y[0], y_torch[0]
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=1e-5, atol=1e-6)
    y.sum().backward()
    y_torch.sum().backward()
    np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_pools_have_no_parameters():
    assert list(nn.MaxPool2d(2).parameters()) == []
    assert list(nn.AdaptiveAvgPool2d(1).parameters()) == []


# ----- bad input -------------------------------------------------------------------------------
def test_channel_check_at_call_time():
    conv = nn.Conv2d(3, 16, kernel_size=3)
    message = (
        r"Conv2d\(3, 16, kernel_size=\(3, 3\), stride=\(1, 1\)\): expected input with 3 channels, "
        r"got 1 \(input shape \(8, 1, 28, 28\)\)"
    )
    with pytest.raises(ValueError, match=message):
        conv(wally.randn(8, 1, 28, 28))


def test_rank_and_dtype_at_call_time():
    with pytest.raises(
        ValueError, match=r"Conv1d\(2, 4, .*expected a 2-D or 3-D input .*got shape \(1, 2, 3, 4\)"
    ):
        nn.Conv1d(2, 4, 3)(wally.randn(1, 2, 3, 4))
    with pytest.raises(TypeError, match=r"Conv2d\(2, 4, .*expected a (wally\.)?float32 input, "
                                         r"got (wally\.)?float64"):
        nn.Conv2d(2, 4, 3)(wally.randn(1, 2, 5, 5, dtype=wally.float64))
    with pytest.raises(
        ValueError, match=r"MaxPool2d\(kernel_size=2.*expected a 3-D or 4-D input .*\(5, 5\)"
    ):
        nn.MaxPool2d(2)(wally.randn(5, 5))


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"groups": 2}, ValueError, r"Conv2d: in_channels \(3\) must be divisible by groups \(2\)"),
        ({"groups": 0}, ValueError, r"Conv2d: groups must be a positive integer, got 0"),
        ({"padding": "full"}, ValueError, r"Conv2d: padding must be 'valid', 'same'.*got 'full'"),
        (
            {"padding": "same", "stride": 2},
            ValueError,
            r"Conv2d: padding='same' is not supported for strided convolutions, "
            r"got stride \(2, 2\)",
        ),
        (
            {"padding_mode": "mirror"},
            ValueError,
            r"Conv2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', "
            r"'circular', got 'mirror'",
        ),
        ({"stride": 0}, ValueError, r"Conv2d: stride must be positive, got 0"),
        ({"dilation": (1, -1)}, ValueError, r"Conv2d: dilation must be positive, got \(1, -1\)"),
        ({"padding": -1}, ValueError, r"Conv2d: padding must be non-negative, got -1"),
        ({"kernel_size": 0}, ValueError, r"Conv2d: kernel_size must be positive, got 0"),
        (
            {"kernel_size": (3, 3, 3)},
            ValueError,
            r"Conv2d: expected kernel_size to be an int or a tuple of 2 ints, got \(3, 3, 3\)",
        ),
        (
            {"out_channels": 5, "groups": 3, "in_channels": 3},
            ValueError,
            r"Conv2d: out_channels \(5\) must be divisible by groups \(3\)",
        ),
        (
            {"in_channels": -1},
            ValueError,
            r"Conv2d: in_channels must be a non-negative integer, got -1",
        ),
    ],
)
def test_constructor_errors_name_the_layer(kwargs, error, pattern):
    arguments = {"in_channels": 3, "out_channels": 6, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=pattern):
        nn.Conv2d(**arguments)


def test_pool_constructor_errors_name_the_layer():
    with pytest.raises(
        ValueError,
        match=r"MaxPool2d: padding should be at most half of kernel size, got padding=\(2, 2\)",
    ):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match=r"AvgPool1d: stride must be positive, got 0"):
        nn.AvgPool1d(3, stride=0)
    with pytest.raises(ValueError, match=r"AvgPool2d: divisor_override must be non-zero, got 0"):
        nn.AvgPool2d(2, divisor_override=0)
    with pytest.raises(ValueError, match=r"MaxPool3d: kernel_size must be positive, got 0"):
        nn.MaxPool3d(0)
    with pytest.raises(
        ValueError, match=r"AdaptiveAvgPool2d: output_size must be positive, got \(0, 2\)"
    ):
        nn.AdaptiveAvgPool2d((0, 2))
    with pytest.raises(TypeError, match=r"AdaptiveMaxPool1d: expected output_size .*got 'a'"):
        nn.AdaptiveMaxPool1d("a")
