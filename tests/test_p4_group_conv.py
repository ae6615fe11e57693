"""p4 group convolution (wally.nn.group_conv): exact equivariance, central differences, a naive
loop reference, and torch (the same construction with torch.rot90/roll/conv2d)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn
from wally.nn.group_conv import p4_filter_bank, p4_filter_index
from wally.testing import gradcheck


def turn_p4(y: np.ndarray, quarters: int = 1) -> np.ndarray:
    """T' on p4 maps (N, 4·C, H, W): turn every map and shift the rotation axis by one per
    quarter turn (f(rot x)[o, r] = rot(f(x)[o, r − 1]))."""
    n, channels = y.shape[:2]
    turned = np.rot90(y, quarters, axes=(-2, -1))
    fields = turned.reshape(n, channels // 4, 4, *turned.shape[-2:])
    return np.roll(fields, quarters, axis=2).reshape(n, channels, *turned.shape[-2:])


def turn(x: np.ndarray, quarters: int = 1) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(x, quarters, axes=(-2, -1)))


def run(layer: nn.Module, x: np.ndarray) -> np.ndarray:
    with wally.no_grad():
        return layer(wally.tensor(x)).numpy()


# ----- exact equivariance ---------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(c_in=st.integers(1, 3), c_out=st.integers(1, 3), k=st.sampled_from([1, 3, 5]),
       h=st.integers(5, 9), w=st.integers(5, 9), quarters=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_lifting_and_group_layers_are_p4_equivariant(c_in, c_out, k, h, w, quarters, seed):
    rng = np.random.default_rng(seed)
    wally.manual_seed(seed)
    lift = nn.P4ConvZ2(c_in, c_out, k, padding=k // 2).double()
    group = nn.P4ConvP4(c_out, 2, k, padding=k // 2).double()
    x = rng.standard_normal((2, c_in, h, w))
    y, y_turned = run(lift, x), run(lift, turn(x, quarters))
    np.testing.assert_allclose(y_turned, turn_p4(y, quarters), atol=1e-12)
    z, z_turned = run(group, y), run(group, y_turned)
    np.testing.assert_allclose(z_turned, turn_p4(z, quarters), atol=1e-12)
    if quarters != 2 and k > 1:  # a plain turn (no shift of the rotation axis) is wrong
        assert np.abs(z_turned - turn(z, quarters)).max() > 1e-6


def test_rotation_pool_and_batch_norm_keep_equivariance():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((3, 8, 6, 7))
    for mode in ("max", "mean"):
        pool = nn.RotationPool(mode)
        np.testing.assert_allclose(run(pool, turn_p4(y)), turn(run(pool, y)), atol=1e-12)
    bn = nn.P4BatchNorm2d(2).double()
    bn.weight.array[:] = [0.5, 2.0]
    np.testing.assert_allclose(run(bn, turn_p4(y)), turn_p4(run(bn, y)), atol=1e-12)
    plain = nn.BatchNorm2d(8).double()  # a γ per map tells the rotations apart
    plain.weight.array[:] = np.arange(1.0, 9.0)
    assert np.abs(run(plain, turn_p4(y)) - turn_p4(run(plain, y))).max() > 1e-3


# ----- the filter bank ------------------------------------------------------------------------
def test_filter_bank_is_rot90_and_cyclic_shift():
    rng = np.random.default_rng(1)
    lifting = rng.standard_normal((2, 3, 3, 3))
    bank = p4_filter_bank(wally.tensor(lifting)).numpy()
    for o in range(2):
        for r in range(4):
            np.testing.assert_array_equal(bank[4 * o + r], np.rot90(lifting[o], r, axes=(1, 2)))
    group = rng.standard_normal((2, 3, 4, 3, 3))
    bank = p4_filter_bank(wally.tensor(group)).numpy()
    for o in range(2):
        for r in range(4):
            for i in range(3):
                for s in range(4):
                    np.testing.assert_array_equal(
                        bank[4 * o + r, 4 * i + s], np.rot90(group[o, i, (s - r) % 4], r))
    assert p4_filter_index(3, 4, (3, 3)).shape == (4, 108)
    with pytest.raises(ValueError, match=r"p4_filter_bank: expected a square-kernel weight"):
        p4_filter_bank(wally.randn(2, 3, 3, 5))


# ----- against a naive loop and against torch -------------------------------------------------
def naive_p4(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int) -> np.ndarray:
    """The definition, one output value at a time: y[o, r](p) = b[o] +
    Σ_i Σ_s Σ_(a, b) x[i, s](p + (a, b)) · rot^r(w[o, i, s − r])(a, b)."""
    group = weight.ndim == 5
    n, channels, h, w = x.shape
    fields = x.reshape(n, channels // 4, 4, h, w) if group else x[:, :, None]
    padded = np.pad(fields, ((0, 0), (0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    k = weight.shape[-1]
    out_h, out_w = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    out = np.zeros((n, weight.shape[0], 4, out_h, out_w))
    for o in range(weight.shape[0]):
        for r in range(4):
            for i in range(fields.shape[1]):
                for s in range(fields.shape[2]):
                    kernel = np.rot90(weight[o, i, (s - r) % 4] if group else weight[o, i], r)
                    for row in range(out_h):
                        for col in range(out_w):
                            window = padded[:, i, s, row:row + k, col:col + k]
                            out[:, o, r, row, col] += (window * kernel).sum(axis=(1, 2))
            out[:, o, r] += bias[o]
    return out.reshape(n, -1, out_h, out_w)


@pytest.mark.parametrize("cls, c_in", [(nn.P4ConvZ2, 2), (nn.P4ConvP4, 8)])
def test_matches_naive_loops(cls, c_in):
    wally.manual_seed(3)
    layer = cls(c_in // (4 if cls is nn.P4ConvP4 else 1), 3, 3, padding=1).double()
    x = np.random.default_rng(3).standard_normal((2, c_in, 5, 6))
    expected = naive_p4(x, layer.weight.detach().numpy(), layer.bias.detach().numpy(), 1)
    np.testing.assert_allclose(run(layer, x), expected, atol=1e-12)


def torch_p4(torch, x, weight, bias, stride, padding, dilation):
    """The same construction in torch: the bank by torch.rot90 and torch.roll."""
    if weight.ndim == 5:
        turned = [torch.rot90(torch.roll(weight, r, dims=2), r, dims=(3, 4)) for r in range(4)]
        bank = torch.stack(turned, 1).reshape(weight.shape[0] * 4, weight.shape[1] * 4,
                                              *weight.shape[-2:])
    else:
        bank = torch.stack([torch.rot90(weight, r, dims=(2, 3)) for r in range(4)], 1)
        bank = bank.reshape(weight.shape[0] * 4, weight.shape[1], *weight.shape[-2:])
    b = None if bias is None else bias.repeat_interleave(4)
    return torch.nn.functional.conv2d(x, bank, b, stride, padding, dilation)


@settings(max_examples=10, deadline=None)
@given(group=st.booleans(), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       k=st.sampled_from([1, 2, 3]), stride=st.integers(1, 2), padding=st.integers(0, 2),
       dilation=st.integers(1, 2), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_matches_torch_values_and_gradients(group, c_in, c_out, k, stride, padding, dilation,
                                            bias, seed):
    torch = pytest.importorskip("torch")
    wally.manual_seed(seed)
    cls = nn.P4ConvP4 if group else nn.P4ConvZ2
    layer = cls(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation,
                bias=bias).double()
    channels = c_in * 4 if group else c_in
    x = np.random.default_rng(seed).standard_normal((2, channels, 7, 8))
    xw = wally.tensor(x, requires_grad=True)
    out = layer(xw)
    grad_out = np.random.default_rng(seed + 1).standard_normal(out.shape)
    out.backward(wally.tensor(grad_out))
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.weight.detach().numpy(), requires_grad=True)
    bt = torch.tensor(layer.bias.detach().numpy(), requires_grad=True) if bias else None
    expected = torch_p4(torch, xt, wt, bt, stride, padding, dilation)
    expected.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(xw.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), wt.grad.numpy(), atol=1e-12)
    if bias:
        np.testing.assert_allclose(layer.bias.grad.numpy(), bt.grad.numpy(), atol=1e-12)


def test_pool_and_batch_norm_match_torch():
    torch = pytest.importorskip("torch")
    y = np.random.default_rng(5).standard_normal((3, 8, 4, 5))
    fields = torch.tensor(y).reshape(3, 2, 4, 4, 5)
    np.testing.assert_allclose(run(nn.RotationPool("max"), y),
                               fields.amax(2).numpy(), atol=1e-15)
    np.testing.assert_allclose(run(nn.RotationPool("mean"), y),
                               fields.mean(2).numpy(), atol=1e-15)
    ours, theirs = nn.P4BatchNorm2d(2).double(), torch.nn.BatchNorm3d(2).double()
    out = ours(wally.tensor(y)).detach().numpy()
    expected = theirs(fields).reshape(3, 8, 4, 5).detach().numpy()
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), atol=1e-12)


# ----- central differences --------------------------------------------------------------------
def test_gradcheck():
    wally.manual_seed(0)
    lift = nn.P4ConvZ2(2, 2, 3, padding=1).double()
    group = nn.P4ConvP4(2, 1, 3, stride=2).double()
    pool = nn.RotationPool("mean")
    x = wally.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)), requires_grad=True)
    assert gradcheck(lambda x, *_: pool(group(lift(x))), x, lift.weight, lift.bias,
                     group.weight, group.bias)
    maxpool = nn.RotationPool("max")
    y = wally.tensor(np.random.default_rng(1).standard_normal((2, 8, 3, 3)), requires_grad=True)
    assert gradcheck(maxpool, y)


# ----- repr, init, errors, export -------------------------------------------------------------
def test_repr_and_parameters():
    lift = nn.P4ConvZ2(3, 8, 3, padding=1)
    assert repr(lift) == "P4ConvZ2(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    group = nn.P4ConvP4(8, 16, 5, stride=2, dilation=2, bias=False)
    assert repr(group) == ("P4ConvP4(8, 16, kernel_size=(5, 5), stride=(2, 2), "
                           "dilation=(2, 2), bias=False)")
    assert repr(nn.RotationPool()) == "RotationPool(mode='max')"
    assert repr(nn.P4BatchNorm2d(4)).startswith("P4BatchNorm2d(4, eps=1e-05")
    assert tuple(lift.weight.shape) == (8, 3, 3, 3) and tuple(lift.bias.shape) == (8,)
    assert tuple(group.weight.shape) == (16, 8, 4, 5, 5) and group.bias is None
    assert list(dict(group.named_parameters())) == ["weight"]  # no index buffers saved
    assert list(group.state_dict()) == ["weight"]


def test_init_is_pytorch_conv_default_with_the_true_fan_in():
    wally.manual_seed(0)
    layer = nn.P4ConvP4(16, 32, 3)
    bound = 1 / math.sqrt(16 * 4 * 9)  # kaiming_uniform(a=√5): U(−1/√fan_in, 1/√fan_in)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound
    assert abs(weight.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert np.abs(bias).max() <= bound


def test_bad_inputs_name_the_layer():
    with pytest.raises(ValueError, match=r"P4ConvZ2: kernel_size must be square"):
        nn.P4ConvZ2(1, 2, (3, 5))
    with pytest.raises(ValueError, match=r"P4ConvP4: in_channels must be a non-negative"):
        nn.P4ConvP4(-1, 2)
    with pytest.raises(ValueError, match=r"P4ConvP4: padding must be a non-negative int"):
        nn.P4ConvP4(1, 2, padding=-1)
    with pytest.raises(ValueError, match=r"P4ConvP4\(2, 3.*expected an input \(N, 4·C_in, H, "
                                         r"W\) with 8 channels, got shape \(1, 2, 5, 5\)"):
        nn.P4ConvP4(2, 3)(wally.randn(1, 2, 5, 5))
    with pytest.raises(TypeError, match=r"P4ConvZ2"):
        nn.P4ConvZ2(1, 2)(wally.randn(1, 1, 5, 5, dtype=wally.float64))
    with pytest.raises(ValueError, match=r"RotationPool: mode must be 'max' or 'mean'"):
        nn.RotationPool("sum")
    with pytest.raises(ValueError, match=r"expected p4 maps \(N, 4·C, H, W\), got shape "
                                         r"\(1, 6, 2, 2\)"):
        nn.RotationPool()(wally.randn(1, 6, 2, 2))
    with pytest.raises(ValueError, match=r"P4BatchNorm2d\(2.*expected p4 maps \(N, 4·2, H, W\)"):
        nn.P4BatchNorm2d(2)(wally.randn(1, 2, 2, 2))


def test_onnx_export_runs_in_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from wally.onnx import export

    wally.manual_seed(0)
    net = nn.Sequential(nn.P4ConvZ2(1, 2, 3, padding=1), nn.P4BatchNorm2d(2), nn.ReLU(),
                        nn.P4ConvP4(2, 3, 3), nn.RotationPool("max"), nn.Conv2d(3, 1, 1),
                        nn.P4ConvZ2(1, 1, 1), nn.RotationPool("mean")).eval()
    x = wally.randn(2, 1, 9, 9)
    export(net, x, tmp_path / "p4.onnx")
    session = ort.InferenceSession(str(tmp_path / "p4.onnx"))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, net(x).detach().numpy(), atol=1e-5)
