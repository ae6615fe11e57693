"""pixel_shuffle, pixel_unshuffle, channel_shuffle, max_pool*(return_indices=True) and
max_unpool1d/2d/3d with their layers: gradcheck, loops, PyTorch, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn, reference
from wally.testing import gradcheck


def t64(a):
    return wally.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ----- pixel and channel shuffles --------------------------------------------------------------
def test_gradcheck_shuffles():
    rng = np.random.default_rng(0)
    assert gradcheck(lambda x: F.pixel_shuffle(x, 2), t64(rng.standard_normal((2, 8, 3, 2))))
    assert gradcheck(lambda x: F.pixel_unshuffle(x, 3), t64(rng.standard_normal((1, 2, 6, 3))))
    assert gradcheck(lambda x: F.channel_shuffle(x, 3), t64(rng.standard_normal((2, 6, 2, 2))))


@settings(max_examples=25, deadline=None)
@given(lead=st.sampled_from([(), (2,), (2, 1)]), r=st.integers(1, 3), c=st.integers(1, 2),
       h=st.integers(1, 3), w=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_pixel_shuffle_matches_loop_and_torch(torch, lead, r, c, h, w, seed):
    x = np.random.default_rng(seed).standard_normal((*lead, c * r * r, h, w)).astype(np.float32)
    y = F.pixel_shuffle(wally.tensor(x), r)
    np.testing.assert_array_equal(y.array, reference.pixel_shuffle_loops(x, r))
    np.testing.assert_array_equal(y.array, torch.nn.functional.pixel_shuffle(torch.tensor(x),
                                                                            r).numpy())
    back = F.pixel_unshuffle(y, r)
    np.testing.assert_array_equal(back.array, x)
    np.testing.assert_array_equal(
        back.array, torch.nn.functional.pixel_unshuffle(torch.tensor(y.array), r).numpy())


@pytest.mark.parametrize("shape, groups", [((2, 6, 3), 2), ((1, 12, 2, 2), 3), ((1, 4, 1, 1, 2), 4),
                                           ((2, 5, 2), 1), ((1, 6, 2), 6)])
def test_channel_shuffle_matches_torch(torch, shape, groups):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ours = wally.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, y_torch = F.channel_shuffle(ours, groups), torch.nn.functional.channel_shuffle(theirs,
                                                                                      groups)
    np.testing.assert_array_equal(y.array, y_torch.detach().numpy())
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y.backward(wally.tensor(g))
    y_torch.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.array, theirs.grad.numpy())
    # the loop: channel i·m + j moves to j·g + i
    m = shape[1] // groups
    for i in range(groups):
        for j in range(m):
            np.testing.assert_array_equal(y.array[:, j * groups + i], x[:, i * m + j])


def test_shuffle_layers_match_torch(torch):
    for ours, theirs in ((nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
                         (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
                         (nn.ChannelShuffle(2), torch.nn.ChannelShuffle(2))):
        assert repr(ours) == repr(theirs)
        x = np.random.default_rng(3).standard_normal((1, 4, 4, 6)).astype(np.float32)
        np.testing.assert_array_equal(ours(wally.tensor(x)).array,
                                      theirs(torch.tensor(x)).numpy())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F.pixel_shuffle(wally.randn(1, 7, 2, 2), 2), ValueError,
         r"pixel_shuffle: expected the channel dimension to be divisible by upscale_factor² = 4, "
         r"got 7 channels"),
        (lambda: F.pixel_shuffle(wally.randn(4, 2), 2), ValueError,
         r"pixel_shuffle: expected an input with at least 3 dimensions .* got shape \(4, 2\)"),
        (lambda: F.pixel_shuffle(wally.randn(1, 4, 2, 2), 0), ValueError,
         r"pixel_shuffle: upscale_factor must be positive, got 0"),
        (lambda: F.pixel_shuffle(wally.randn(1, 4, 2, 2), 2.0), TypeError,
         r"pixel_shuffle: expected upscale_factor to be an int, got 2.0"),
        (lambda: F.pixel_unshuffle(wally.randn(1, 1, 5, 4), 2), ValueError,
         r"pixel_unshuffle: expected height and width divisible by downscale_factor 2, got 5×4"),
        (lambda: F.channel_shuffle(wally.randn(1, 5, 2), 2), ValueError,
         r"channel_shuffle: number of channels must be divisible by groups, got 5 channels and "
         r"2 groups"),
        (lambda: F.channel_shuffle(wally.randn(2, 4), 2), ValueError,
         r"channel_shuffle: expected an input with at least 3 dimensions"),
    ],
)
def test_shuffle_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----- max pooling indices and unpooling -------------------------------------------------------
@st.composite
def pool_cases(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    spatial = tuple(draw(st.integers(max(k - 2 * p, 1), 6 if nd < 3 else 4))
                    for k, p in zip(kernel, padding, strict=True))
    batch = draw(st.sampled_from([None, 1, 2]))
    shape = ((2,) if batch is None else (batch, 2)) + spatial
    x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shape)
    return nd, x, kernel, stride, padding, draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(case=pool_cases())
def test_unpool_matches_torch_and_loop(torch, case):
    nd, x, kernel, stride, padding, give_size = case
    tpool = getattr(torch.nn.functional, f"max_pool{nd}d")
    tunpool = getattr(torch.nn.functional, f"max_unpool{nd}d")
    pooled_t, idx_t = tpool(torch.tensor(x), kernel, stride, padding, return_indices=True)
    pooled, idx = getattr(F, f"max_pool{nd}d")(wally.tensor(x), kernel, stride, padding,
                                               return_indices=True)
    np.testing.assert_array_equal(idx.array, idx_t.numpy())
    assert idx.dtype == np.int64
    size = tuple(x.shape[-nd:]) if give_size else None
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p in
                    zip(pooled.shape[-nd:], kernel, stride, padding, strict=True))
    if size is not None and not all(d - s < n < d + s for n, d, s in
                                    zip(size, default, stride, strict=True)):
        size = None
    ours = wally.tensor(pooled.array, requires_grad=True)
    theirs = pooled_t.clone().requires_grad_()
    unpool = getattr(F, f"max_unpool{nd}d")
    try:
        y_t = tunpool(theirs, idx_t, kernel, stride, padding, output_size=size)
    except RuntimeError as error:  # windows that skip pixels: the indices don't fit
        assert "invalid max index" in str(error)
        refusal = f"max_unpool{nd}d: (found an invalid max index|output size .* is too small)"
        with pytest.raises(ValueError, match=refusal):
            unpool(ours, idx, kernel, stride, padding, output_size=size)
        return
    if y_t.numel() == 0:  # PyTorch returns an empty plane for an unbatched input; wally refuses
        with pytest.raises(ValueError, match=f"max_unpool{nd}d: output size .* is too small"):
            unpool(ours, idx, kernel, stride, padding, output_size=size)
        return
    y = unpool(ours, idx, kernel, stride, padding, output_size=size)
    np.testing.assert_array_equal(y.array, y_t.detach().numpy())
    batched = (lambda a: a) if x.ndim == nd + 2 else (lambda a: a[None])
    loop = reference.max_unpool_loops(batched(pooled.array), batched(idx.array), y.shape[-nd:])
    np.testing.assert_array_equal(batched(y.array), loop)
    g = np.random.default_rng(0).standard_normal(tuple(y_t.shape))
    y.backward(wally.tensor(g))
    y_t.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.array, theirs.grad.numpy())


def test_unpool_gradcheck():
    x = t64(np.random.default_rng(4).standard_normal((2, 3, 5, 4)))
    _, idx = F.max_pool2d(x.detach(), 2, return_indices=True)
    assert gradcheck(lambda v: F.max_unpool2d(v, idx, 2, output_size=(5, 4)),
                     t64(np.random.default_rng(5).standard_normal(tuple(idx.shape))))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_layers_match_torch(torch, nd):
    pool = getattr(nn, f"MaxPool{nd}d")(2, stride=2, return_indices=True)
    unpool = getattr(nn, f"MaxUnpool{nd}d")(2, stride=2)
    tunpool = getattr(torch.nn, f"MaxUnpool{nd}d")(2, stride=2)
    assert repr(unpool) == repr(tunpool)
    assert repr(pool) == repr(getattr(torch.nn, f"MaxPool{nd}d")(2, stride=2,
                                                                  return_indices=True))
    x = np.random.default_rng(nd).standard_normal((1, 2) + (5,) * nd).astype(np.float32)
    values, indices = pool(wally.tensor(x))
    y = unpool(values, indices, output_size=x.shape)
    y_t = tunpool(torch.tensor(values.array), torch.tensor(indices.array), output_size=x.shape)
    np.testing.assert_array_equal(y.array, y_t.numpy())
    assert tuple(y.shape) == x.shape


def _pooled():
    return F.max_pool2d(wally.randn(1, 1, 4, 4), 2, return_indices=True)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F.max_unpool2d(_pooled()[0], _pooled()[1], 2, output_size=(7, 7)), ValueError,
         r"max_unpool2d: invalid output_size \(7, 7\) \(dim 0 must be between 2 and 6, "
         r"exclusive\)"),
        (lambda: F.max_unpool2d(_pooled()[0], _pooled()[1], 2, output_size=(4,)), ValueError,
         r"max_unpool2d: output_size should have 2 or 4 elements, got \(4,\)"),
        (lambda: F.max_unpool2d(_pooled()[0], _pooled()[1].float(), 2), TypeError,
         r"max_unpool2d: expected indices of dtype int64, got dtype wally\.float32"),
        (lambda: F.max_unpool2d(_pooled()[0], wally.zeros(1, 1, 3, 2, dtype=wally.int64), 2),
         ValueError, r"max_unpool2d: expected indices of the input's shape \(1, 1, 2, 2\), got "
                     r"shape \(1, 1, 3, 2\)"),
        (lambda: F.max_unpool2d(_pooled()[0], wally.full((1, 1, 2, 2), 16, dtype=wally.int64),
                                2), ValueError,
         r"max_unpool2d: found an invalid max index: expected indices in \[0, 16\)"),
        (lambda: F.max_unpool2d(wally.randn(2, 2), wally.zeros(2, 2, dtype=wally.int64), 2),
         ValueError, r"max_unpool2d: expected a 3-D or 4-D input"),
        (lambda: nn.MaxUnpool2d(0), ValueError, r"MaxUnpool2d: kernel_size must be positive"),
    ],
)
def test_unpool_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
