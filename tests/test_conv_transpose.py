"""conv_transpose1d/2d/3d and nn.ConvTranspose*d: gradcheck, the scatter loop, PyTorch, d2l's
transposed-convolution section, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn, reference
from wally.testing import gradcheck

FUNCS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@st.composite
def cases(draw, max_dims=3):
    """A transposed-convolution problem with every option in play (only valid ones)."""
    nd = draw(st.integers(1, max_dims))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    extra = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    limit = 5 if nd < 3 else 3
    spatial = tuple(draw(st.integers(1, limit)) for _ in range(nd))
    pads = []
    for n, k, s, d, e in zip(spatial, kernel, stride, dilation, extra, strict=True):
        full = (n - 1) * s + d * (k - 1) + e + 1
        pads.append(draw(st.integers(0, min(3, (full - 1) // 2))))
    batch = draw(st.sampled_from([None, 1, 2]))
    shape = ((c_in,) if batch is None else (batch, c_in)) + spatial
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    b = rng.standard_normal(c_out) if draw(st.booleans()) else None
    padding = tuple(pads) if draw(st.booleans()) else pads[0] if len(set(pads)) == 1 else pads
    kwargs = {"stride": stride, "padding": padding, "output_padding": extra, "groups": groups,
              "dilation": dilation}
    return nd, x, w, b, kwargs


# ----- 1. gradcheck ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "nd, kwargs",
    [
        (1, {"stride": 2, "padding": 1, "output_padding": 1}),
        (2, {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "dilation": (1, 2)}),
        (2, {"stride": 1, "padding": 0, "output_padding": 1, "dilation": 2, "groups": 2}),
        (3, {"stride": 2, "padding": 1, "dilation": (1, 2, 1)}),
    ],
)
def test_gradcheck(nd, kwargs):
    rng = np.random.default_rng(nd)
    x = wally.tensor(rng.standard_normal((2, 4) + (3,) * nd), requires_grad=True)
    w = wally.tensor(rng.standard_normal((4, 3) + (2,) * nd), requires_grad=True)
    out_channels = 3 * kwargs.get("groups", 1)
    b = wally.tensor(rng.standard_normal(out_channels), requires_grad=True)
    assert gradcheck(lambda x, w, b: FUNCS[nd](x, w, b, **kwargs), x, w, b)


# ----- 2. the scatter loop ---------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(case=cases(max_dims=2))
def test_matches_scatter_loop(case):
    nd, x, w, b, kwargs = case
    y = FUNCS[nd](wally.tensor(x), wally.tensor(w), None if b is None else wally.tensor(b),
                  **kwargs)
    batched = x if x.ndim == nd + 2 else x[None]
    expected = reference.conv_transpose_nd_loops(batched, w, b, **kwargs)
    if x.ndim == nd + 1:
        expected = expected[0]
    np.testing.assert_allclose(y.array, expected, rtol=1e-10, atol=1e-10)


def test_is_the_adjoint_of_conv():
    """<conv2d(z, W), x> = <z, conv_transpose2d(x, W)> for the same stride/padding/dilation."""
    rng = np.random.default_rng(1)
    w = wally.tensor(rng.standard_normal((3, 2, 3, 3)))
    z = wally.tensor(rng.standard_normal((1, 2, 9, 8)))
    y = F.conv2d(z, w, stride=2, padding=1, dilation=1)
    x = wally.tensor(rng.standard_normal(tuple(y.shape)))
    zt = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=(0, 1))
    assert zt.shape == z.shape
    np.testing.assert_allclose(float((y * x).sum().item()), float((z * zt).sum().item()),
                               rtol=1e-10)


# ----- 3. PyTorch ------------------------------------------------------------------------------
def _compare(torch, nd, x, w, b, kwargs, dtype):
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    ours = [None if a is None else wally.tensor(a.astype(dtype), requires_grad=True)
            for a in (x, w, b)]
    theirs = [None if a is None else torch.tensor(a, dtype=tdtype, requires_grad=True)
              for a in (x, w, b)]
    y = FUNCS[nd](*ours, **kwargs)
    y_torch = getattr(torch.nn.functional, f"conv_transpose{nd}d")(*theirs, **kwargs)
    assert y.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(0).standard_normal(tuple(y_torch.shape))
    y.backward(wally.tensor(g.astype(dtype)))
    y_torch.backward(torch.tensor(g, dtype=tdtype))
    for index, (a, t) in enumerate(zip(ours, theirs, strict=True)):
        if a is not None:
            np.testing.assert_allclose(a.grad.array, t.grad.numpy(), rtol=tol, atol=tol,
                                       err_msg=f"gradient of input {index}")


@settings(max_examples=40, deadline=None)
@given(case=cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_matches_torch(torch, case, dtype):
    nd, x, w, b, kwargs = case
    _compare(torch, nd, x, w, b, kwargs, dtype)


def test_large_image_matches_torch(torch):
    """A bigger map, which takes the chunked GEMM paths rather than the tiny-shape ones."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 20, 17))
    w = rng.standard_normal((8, 6, 4, 4))
    _compare(torch, 2, x, w, rng.standard_normal(6), {"stride": 2, "padding": 1}, np.float32)
    w = rng.standard_normal((8, 1, 3, 3))  # depthwise
    _compare(torch, 2, x, w, None, {"stride": 1, "padding": 1, "groups": 8}, np.float32)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_module_matches_torch(torch, nd):
    kwargs = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 1}
    ours = getattr(nn, f"ConvTranspose{nd}d")(4, 6, 3, **kwargs)
    theirs = getattr(torch.nn, f"ConvTranspose{nd}d")(4, 6, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, p in theirs.named_parameters():
        assert tuple(getattr(ours, name).shape) == tuple(p.shape)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(nd).standard_normal((2, 4) + (3,) * nd).astype(np.float32)
    np.testing.assert_allclose(ours(wally.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    # output_size picks the output padding (and overrides the layer's own)
    size = (5,) * nd
    np.testing.assert_allclose(
        ours(wally.tensor(x), output_size=size).detach().numpy(),
        theirs(torch.tensor(x), output_size=size).detach().numpy(), rtol=1e-4, atol=1e-5,
    )
    full = (2, 6) + size
    assert ours(wally.tensor(x), output_size=full).shape == full


def test_repr_variants_match_torch(torch):
    for kwargs in ({}, {"bias": False}, {"dilation": 2, "output_padding": 1},
                   {"padding": (1, 2), "stride": (2, 1)}):
        assert repr(nn.ConvTranspose2d(3, 4, (2, 3), **kwargs)) == repr(
            torch.nn.ConvTranspose2d(3, 4, (2, 3), **kwargs))


def test_initialisation_bound():
    """kaiming_uniform(a=√5): |w| and |b| ≤ 1/√fan_in with fan_in = C_out/groups · ∏k."""
    layer = nn.ConvTranspose2d(64, 8, 3, groups=2)
    bound = 1 / np.sqrt(4 * 9)
    weight = layer.weight.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound
    assert np.abs(layer.bias.detach().numpy()).max() <= bound
    assert layer.weight.dtype == np.float32


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lazy_becomes_plain(nd):
    layer = getattr(nn, f"LazyConvTranspose{nd}d")(4, kernel_size=2, stride=2)
    y = layer(wally.randn(1, 5, *(3,) * nd))
    assert y.shape == (1, 4) + (6,) * nd
    assert type(layer) is getattr(nn, f"ConvTranspose{nd}d")
    assert tuple(layer.weight.shape) == (5, 4) + (2,) * nd and layer.in_channels == 5


# ----- d2l's section, as written there --------------------------------------------------------
def test_d2l_transposed_convolution_section():
    torch = wally

    def trans_conv(X, K):  # noqa: N803
        h, w = K.shape
        Y = torch.zeros((X.shape[0] + h - 1, X.shape[1] + w - 1))  # noqa: N806
        for i in range(X.shape[0]):
            for j in range(X.shape[1]):
                Y[i: i + h, j: j + w] += X[i, j] * K
        return Y

    X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # noqa: N806
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # noqa: N806
    loop = trans_conv(X, K)
    X, K = X.reshape(1, 1, 2, 2), K.reshape(1, 1, 2, 2)  # noqa: N806
    tconv = nn.ConvTranspose2d(1, 1, kernel_size=2, bias=False)
    tconv.weight.data = K
    assert (tconv(X)[0, 0] == loop).all()
    tconv = nn.ConvTranspose2d(1, 1, kernel_size=2, padding=1, bias=False)
    tconv.weight.data = K
    assert tconv(X).shape == (1, 1, 1, 1) and float(tconv(X).item()) == float(loop[1, 1].item())
    tconv = nn.ConvTranspose2d(1, 1, kernel_size=2, stride=2, bias=False)
    tconv.weight.data = K
    expected = np.array([[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]])
    np.testing.assert_array_equal(tconv(X).detach().numpy()[0, 0], expected)
    X = torch.rand(1, 10, 16, 16)  # noqa: N806
    conv = nn.Conv2d(10, 20, kernel_size=5, padding=2, stride=3)
    tconv = nn.ConvTranspose2d(20, 10, kernel_size=5, padding=2, stride=3)
    assert tconv(conv(X)).shape == X.shape
    # the matrix form: conv is W @ x, the transposed convolution Wᵀ @ y
    X = torch.arange(9.0).reshape(3, 3)  # noqa: N806
    K = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # noqa: N806
    Y = reference.corr2d(X, K)  # noqa: N806

    def kernel2matrix(K):  # noqa: N803
        k, W = torch.zeros(5), torch.zeros((4, 9))  # noqa: N806
        k[:2], k[3:5] = K[0, :], K[1, :]
        W[0, :5], W[1, 1:6], W[2, 3:8], W[3, 4:] = k, k, k, k
        return W

    W = kernel2matrix(K)  # noqa: N806
    assert (Y == torch.matmul(W, X.reshape(-1)).reshape(2, 2)).all()
    Z = trans_conv(Y, K)  # noqa: N806
    assert (Z == torch.matmul(W.T, Y.reshape(-1)).reshape(3, 3)).all()
    direct = F.conv_transpose2d(Y.reshape(1, 1, 2, 2), K.reshape(1, 1, 2, 2))
    assert (direct[0, 0] == Z).all()


# ----- 4. bad arguments ------------------------------------------------------------------------
def _x():
    return wally.randn(1, 4, 5, 5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 3, 3), stride=2, output_padding=2),
         r"conv_transpose2d: output_padding must be smaller than either stride or dilation, got "
         r"output_padding \(2, 2\), stride \(2, 2\), dilation \(1, 1\)"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(3, 2, 3, 3)),
         r"conv_transpose2d: expected input with 3 channels .* got 4 channels"),
        (lambda: F.conv_transpose2d(wally.randn(5, 5), wally.randn(4, 2, 3, 3)),
         r"conv_transpose2d: expected a 3-D or 4-D input .* got shape \(5, 5\)"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 3)),
         r"conv_transpose2d: expected a 4-D weight \(in_channels, out_channels/groups, kH, kW\)"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 3, 3), wally.randn(3)),
         r"conv_transpose2d: expected a bias of shape \(2,\).* got shape \(3,\)"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 3, 3), groups=3),
         r"conv_transpose2d: in_channels \(4.*divisible by groups \(3\)"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 3, 3), padding="same"),
         r"conv_transpose2d: padding must be an int.*got 'same'"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 1, 1), padding=3),
         r"conv_transpose2d: output size \(-1, -1\) is too small"),
        (lambda: F.conv_transpose2d(_x(), wally.randn(4, 2, 3, 3), stride=0),
         r"conv_transpose2d: stride must be positive, got 0"),
        (lambda: F.conv_transpose1d(wally.randn(1, 4, 5), wally.randn(4, 2, 3), dilation=(1, 2)),
         r"conv_transpose1d: expected dilation to be an int or a tuple of 1 ints"),
        (lambda: nn.ConvTranspose2d(4, 2, 3, stride=1, output_padding=1),
         r"ConvTranspose2d: output_padding must be smaller than either stride or dilation"),
        (lambda: nn.ConvTranspose2d(4, 2, 3, padding_mode="reflect"),
         r"ConvTranspose2d: only padding_mode='zeros' is supported.*got 'reflect'"),
        (lambda: nn.ConvTranspose2d(4, 3, 3, groups=2),
         r"ConvTranspose2d: out_channels \(3\) must be divisible by groups \(2\)"),
        (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2)(_x(), output_size=(13, 13)),
         r"ConvTranspose2d\(4, 2.*requested an output size of \(13, 13\), but valid sizes range "
         r"from \(11, 11\) to \(12, 12\) \(for an input of \(5, 5\)\)"),
        (lambda: nn.ConvTranspose2d(4, 2, 3)(_x(), output_size=(7,)),
         r"ConvTranspose2d\(4, 2.*output_size must have 2 or 4 elements, got \(7,\)"),
        (lambda: nn.ConvTranspose2d(3, 2, 3)(_x()),
         r"ConvTranspose2d\(3, 2.*expected input with 3 channels, got 4"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match=r"conv_transpose2d: expected a floating-point input"):
        F.conv_transpose2d(wally.ones(1, 4, 3, 3, dtype=wally.int64), wally.randn(4, 2, 3, 3))
    with pytest.raises(TypeError, match=r"conv_transpose2d: input dtype wally\.float64 and weight "
                                        r"dtype wally\.float32 should be the same"):
        F.conv_transpose2d(_x().double(), wally.randn(4, 2, 3, 3))
    with pytest.raises(TypeError, match=r"conv_transpose2d: expected weight to be a Tensor"):
        F.conv_transpose2d(_x(), [[1.0]])
