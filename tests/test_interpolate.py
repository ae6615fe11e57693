"""interpolate (every mode, size and scale-factor paths) and nn.Upsample*: gradcheck, the
per-element loop, PyTorch over a hypothesis grid (values and gradients, float32 and float64),
and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn, reference
from wally.testing import gradcheck

DIMS = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,), "bilinear": (2,),
        "bicubic": (2,), "trilinear": (3,), "area": (1, 2, 3)}
LOOP_MODE = {"nearest": "nearest", "nearest-exact": "nearest-exact", "linear": "linear",
             "bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}


@st.composite
def cases(draw):
    mode = draw(st.sampled_from(sorted(DIMS)))
    nd = draw(st.sampled_from(DIMS[mode]))
    spatial = tuple(draw(st.integers(1, 6 if nd < 3 else 4)) for _ in range(nd))
    kwargs: dict = {"mode": mode}
    if mode not in ("nearest", "nearest-exact", "area"):
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    if draw(st.booleans()):
        sizes = tuple(draw(st.integers(1, 9 if nd < 3 else 5)) for _ in range(nd))
        kwargs["size"] = sizes[0] if draw(st.booleans()) and len(set(sizes)) == 1 else sizes
    else:
        factors = st.sampled_from([0.5, 0.7, 1.0, 1.2, 1.5, 2.0, 2.2, 3.0, 0.34, 2.5])
        chosen = tuple(draw(factors) for _ in range(nd))
        if any(math.floor(n * f) < 1 for n, f in zip(spatial, chosen, strict=True)):
            chosen = tuple(max(f, 1.0) for f in chosen)
        kwargs["scale_factor"] = chosen[0] if len(set(chosen)) == 1 else chosen
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial))
    return x, kwargs


def _degenerate(x, y_shape, kwargs):
    """PyTorch's backward copies an axis whose size is kept (and 1-D/3-D nearest also halves a
    doubled one) although its forward used the given scale factor: there its gradient is not
    the forward's adjoint, and wally's (the true gradient) differs."""
    factor = kwargs.get("scale_factor")
    if factor is None or kwargs.get("recompute_scale_factor") or kwargs["mode"] not in (
        "nearest", "bicubic"
    ):
        return False
    nd = x.ndim - 2
    factors = factor if isinstance(factor, tuple) else (factor,) * nd
    for n, o, f in zip(x.shape[2:], y_shape[2:], factors, strict=True):
        if 1.0 / f != n / o and (o == n or (kwargs["mode"] == "nearest" and o == 2 * n)):
            return True
    return False


# ----- 1. gradcheck ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((1, 2, 5), {"size": 8, "mode": "linear"}),
        ((1, 2, 5), {"scale_factor": 0.6, "mode": "linear", "align_corners": True}),
        ((1, 1, 4, 3), {"size": (7, 2), "mode": "bilinear"}),
        ((1, 1, 4, 3), {"scale_factor": 1.7, "mode": "bicubic"}),
        ((1, 1, 4, 5), {"size": (3, 9), "mode": "bicubic", "align_corners": True}),
        ((1, 1, 3, 2, 3), {"scale_factor": (1.5, 2, 0.7), "mode": "trilinear"}),
        ((1, 2, 5, 4), {"size": (7, 3), "mode": "nearest"}),
        ((1, 2, 4), {"scale_factor": 1.2, "mode": "nearest"}),
        ((1, 2, 5, 4), {"scale_factor": 0.7, "mode": "nearest-exact"}),
        ((1, 2, 6, 5), {"size": (3, 2), "mode": "area"}),
    ],
)
def test_gradcheck(shape, kwargs):
    x = wally.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda x: F.interpolate(x, **kwargs), x)


# ----- 2. the per-element loop -----------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(case=cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_matches_loop(case, dtype):
    x, kwargs = case
    if kwargs["mode"] == "area":
        return
    x = x.astype(dtype)
    y = F.interpolate(wally.tensor(x), **kwargs)
    factor = kwargs.get("scale_factor")
    factors = None
    if factor is not None and not kwargs.get("recompute_scale_factor"):
        factors = factor if isinstance(factor, tuple) else (factor,) * (x.ndim - 2)
    expected = reference.interpolate_loops(
        x, y.shape[2:], LOOP_MODE[kwargs["mode"]], bool(kwargs.get("align_corners")), factors
    )
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.array, expected, rtol=tol, atol=tol)


def test_known_values():
    x = wally.arange(4.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(
        F.interpolate(x, scale_factor=2).array[0, 0],
        [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]],
    )
    np.testing.assert_allclose(
        F.interpolate(x, size=3, mode="bilinear", align_corners=True).array[0, 0],
        [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]],
    )
    # align_corners=False: output pixel 0 of 4 sits at source -0.25, clamped to 0
    np.testing.assert_allclose(
        F.interpolate(wally.tensor([[[0.0, 1.0]]]), size=4, mode="linear").array[0, 0],
        [0, 0.25, 0.75, 1],
    )


# ----- 3. PyTorch ------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(case=cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_matches_torch(torch, case, dtype):
    x, kwargs = case
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    ours = wally.tensor(x.astype(dtype), requires_grad=True)
    theirs = torch.tensor(x, dtype=tdtype, requires_grad=True)
    y = F.interpolate(ours, **kwargs)
    y_torch = torch.nn.functional.interpolate(theirs, **kwargs)
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(tuple(y_torch.shape))
    y.backward(wally.tensor(g.astype(dtype)))
    y_torch.backward(torch.tensor(g, dtype=tdtype))
    if not _degenerate(x, y.shape, kwargs):
        np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=tol * 10,
                                   atol=tol * 10)


def test_large_image_matches_torch(torch):
    """A bigger image: many repeated source indices per segment sum."""
    x = np.random.default_rng(2).standard_normal((2, 3, 37, 50)).astype(np.float32)
    for kwargs in ({"scale_factor": 2.5, "mode": "bilinear"},
                   {"size": (20, 111), "mode": "bicubic", "align_corners": True},
                   {"scale_factor": 0.37, "mode": "nearest"}):
        ours = wally.tensor(x, requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        y, y_torch = F.interpolate(ours, **kwargs), torch.nn.functional.interpolate(theirs,
                                                                                    **kwargs)
        np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=1e-5, atol=1e-5)
        y.sum().backward()
        y_torch.sum().backward()
        np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_degenerate_scale_factor_gradient_is_the_true_one():
    """scale_factor=1.2 on 3 pixels: the output keeps 3 pixels but reads 0, 0, 1 (as PyTorch's
    forward does); the gradient is that map's adjoint (PyTorch's backward copies instead)."""
    x = wally.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    y = F.interpolate(x, scale_factor=1.2)
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], [1, 1, 2])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [2, 1, 0])


def test_modules_match_torch(torch):
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 4)).astype(np.float32)
    pairs = [
        (nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
        (nn.Upsample(size=(5, 7), mode="bicubic"), torch.nn.Upsample(size=(5, 7), mode="bicubic")),
        (nn.Upsample(scale_factor=(1.5, 2), mode="bilinear", align_corners=True),
         torch.nn.Upsample(scale_factor=(1.5, 2), mode="bilinear", align_corners=True)),
        (nn.UpsamplingNearest2d(scale_factor=3), torch.nn.UpsamplingNearest2d(scale_factor=3)),
        (nn.UpsamplingBilinear2d(size=6), torch.nn.UpsamplingBilinear2d(size=6)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == []
        np.testing.assert_allclose(ours(wally.tensor(x)).array,
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


# ----- antialiasing ----------------------------------------------------------------------------
@st.composite
def antialias_cases(draw):
    mode = draw(st.sampled_from(["bilinear", "bicubic"]))
    spatial = (draw(st.integers(1, 12)), draw(st.integers(2, 12)))
    kwargs: dict = {"mode": mode, "antialias": True,
                    "align_corners": draw(st.sampled_from([None, False, True]))}
    if draw(st.booleans()):
        kwargs["size"] = (draw(st.integers(1, 14)), draw(st.integers(2, 14)))
    else:
        factors = st.sampled_from([0.25, 0.3, 0.5, 0.77, 1.0, 1.7, 2.0])
        chosen = tuple(max(draw(factors), 2.0 / n if i else 1.0 / n)
                       for i, n in enumerate(spatial))
        kwargs["scale_factor"] = chosen
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, True]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal((2, 2, *spatial)), kwargs


def test_antialias_gradcheck():
    x = wally.tensor(np.random.default_rng(0).standard_normal((1, 2, 9, 7)), requires_grad=True)
    for kwargs in ({"size": (4, 3), "mode": "bilinear"}, {"scale_factor": 0.4, "mode": "bicubic"},
                   {"size": (11, 2), "mode": "bicubic", "align_corners": True}):
        assert gradcheck(lambda x, kw=kwargs: F.interpolate(x, antialias=True, **kw), x)


@settings(max_examples=30, deadline=None)
@given(case=antialias_cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_antialias_matches_torch_and_loop(torch, case, dtype):
    """PyTorch's antialiased kernel mixes rows up when the output is one column wide (rows
    then all equal the first): the strategy keeps at least two output columns."""
    x, kwargs = case
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    ours = wally.tensor(x.astype(dtype), requires_grad=True)
    theirs = torch.tensor(x, dtype=tdtype, requires_grad=True)
    try:
        y_torch = torch.nn.functional.interpolate(theirs, **kwargs)
    except RuntimeError:
        with pytest.raises(ValueError):
            F.interpolate(ours, **kwargs)
        return
    y = F.interpolate(ours, **kwargs)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=tol, atol=tol)
    factor = kwargs.get("scale_factor")
    factors = None if factor is None or kwargs.get("recompute_scale_factor") else factor
    mode = "antialias-" + ("linear" if kwargs["mode"] == "bilinear" else "cubic")
    loop = reference.interpolate_loops(x.astype(dtype), y.shape[2:], mode,
                                       bool(kwargs["align_corners"]), factors)
    np.testing.assert_allclose(y.array, loop, rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(tuple(y_torch.shape))
    y.backward(wally.tensor(g.astype(dtype)))
    y_torch.backward(torch.tensor(g, dtype=tdtype))
    np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=tol * 10,
                               atol=tol * 10)


# ----- 4. bad arguments ------------------------------------------------------------------------
def _x(*shape):
    return wally.randn(*(shape or (1, 2, 4, 4)))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F.interpolate(_x(), size=3, scale_factor=2), ValueError,
         r"interpolate: only one of size or scale_factor should be defined, got size=3 and "
         r"scale_factor=2"),
        (lambda: F.interpolate(_x()), ValueError,
         r"interpolate: either size or scale_factor should be defined"),
        (lambda: F.interpolate(_x(), size=(3, 3, 3)), ValueError,
         r"interpolate: input and output must have the same number of spatial dimensions, got "
         r"input with spatial dimensions of \[4, 4\] and output size of \(3, 3, 3\)"),
        (lambda: F.interpolate(_x(), scale_factor=(2, 2, 2)), ValueError,
         r"interpolate: input and scale_factor must have the same number of spatial"),
        (lambda: F.interpolate(_x(), size=2.5), TypeError,
         r"interpolate: expected size to be an int or a tuple of 2 ints, got 2.5"),
        (lambda: F.interpolate(_x(), size=4, mode="cubic"), ValueError,
         r"interpolate: mode must be one of 'nearest', .*got 'cubic'"),
        (lambda: F.interpolate(_x(), size=4, align_corners=True), ValueError,
         r"interpolate: align_corners can only be set with the interpolating modes .*got "
         r"mode='nearest' and align_corners=True"),
        (lambda: F.interpolate(_x(1, 2, 4), size=4, mode="bilinear"), ValueError,
         r"interpolate: mode 'bilinear' needs a 4-D input \(N, C, 2 spatial axes\), got shape "
         r"\(1, 2, 4\)"),
        (lambda: F.interpolate(_x(4, 4), size=4), ValueError,
         r"interpolate: expected a 3-D, 4-D or 5-D input .* got shape \(4, 4\)"),
        (lambda: F.interpolate(_x(), scale_factor=0.1), ValueError,
         r"interpolate: input and output sizes should be greater than 0, got input size "
         r"\(4, 4\) and output size \(0, 0\)"),
        (lambda: F.interpolate(_x(), size=3, recompute_scale_factor=True), ValueError,
         r"interpolate: recompute_scale_factor is not meaningful with an explicit size"),
        (lambda: F.interpolate(_x(), size=8, mode="nearest", antialias=True), ValueError,
         r"interpolate: antialias=True is restricted to the bilinear and bicubic modes \(4-D "
         r"input\), got mode 'nearest'"),
        (lambda: F.interpolate(wally.ones(1, 1, 2, 2, dtype=wally.int64), size=3), TypeError,
         r"interpolate: expected a floating-point input, got dtype wally\.int64"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
