"""Channel-wise and alpha dropout (``wally.functional.dropout``, ``wally.nn.dropout``): exact
identity in evaluation, the mask's structure, rate and scale (binomial tolerances of about
4.5 standard deviations, which a wrong rate or scale fails), alpha dropout's constants against
PyTorch's and its mean/variance preservation, gradients, PyTorch's shape rules and warnings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import wally
import wally.functional as F
from wally import nn

# (function, input shape, how many leading axes the mask varies over: (N, C) or unbatched C)
CHANNEL_WISE = [
    ("dropout1d", (40, 50, 3), 2), ("dropout1d", (60, 4), 1), ("dropout2d", (40, 50, 2, 3), 2),
    ("dropout3d", (40, 50, 2, 1, 2), 2), ("dropout3d", (60, 2, 3, 2), 1),
]


@pytest.mark.parametrize(("name", "shape", "lead"), CHANNEL_WISE)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_channel_masks_rate_scale_and_gradient(name, shape, lead, p):
    x = wally.ones(*shape, requires_grad=True)
    y = getattr(F, name)(x, p)
    maps = y.array.reshape(math.prod(shape[:lead]), -1)
    # A whole channel is dropped or kept: every value of a map is its first value.
    np.testing.assert_array_equal(maps, np.repeat(maps[:, :1], maps.shape[1], axis=1))
    assert set(np.unique(maps)) <= {0.0, np.float32(1 / (1 - p))}
    n = maps.shape[0]
    dropped = float((maps[:, 0] == 0).mean())
    assert abs(dropped - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    y.backward(wally.ones(*shape))
    np.testing.assert_array_equal(x.grad.array, y.array)  # ∂y/∂x = the mask's scale
    assert y.dtype == np.float32


@pytest.mark.parametrize(("name", "shape", "lead"), CHANNEL_WISE)
def test_identity_in_evaluation(name, shape, lead):
    x = wally.randn(*shape)
    assert getattr(F, name)(x, 0.5, training=False) is x
    assert getattr(F, name)(x, 0.0) is x


def _mode(values):
    """The most frequent value: what every dropped unit is set to."""
    distinct, counts = np.unique(values, return_counts=True)
    return distinct[np.argmax(counts)]


def test_alpha_dropout_defaults_to_evaluation_and_preserves_moments(torch):
    x = wally.randn(200_000)
    assert F.alpha_dropout(x, 0.3) is x and F.feature_alpha_dropout(x.reshape(2, -1)) is not None
    for p in (0.1, 0.3, 0.6):
        y = F.alpha_dropout(x, p, training=True).array
        assert abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.03, p
        # PyTorch's constants: the dropped value and the affine map of the kept ones.
        t = torch.nn.functional.alpha_dropout(torch.tensor(x.array), p, training=True).numpy()
        ours_dropped, theirs_dropped = _mode(y), _mode(t)
        assert ours_dropped == pytest.approx(theirs_dropped, rel=1e-6)
        kept, t_kept = y != ours_dropped, t != theirs_dropped
        slope, offset = np.polyfit(x.array[kept], y[kept], 1)
        t_slope, t_offset = np.polyfit(x.array[t_kept], t[t_kept], 1)
        assert slope == pytest.approx(t_slope, rel=1e-5)
        assert offset == pytest.approx(t_offset, rel=1e-5)
        assert abs((~kept).mean() - p) < 4.5 * math.sqrt(p * (1 - p) / x.numel())


def test_feature_alpha_dropout_is_channel_wise():
    x = wally.randn(300, 40, 10)
    y = F.feature_alpha_dropout(x, 0.25, training=True).array
    constant = y.min(axis=2) == y.max(axis=2)  # dropped maps hold one value
    assert abs(constant.mean() - 0.25) < 4.5 * math.sqrt(0.25 * 0.75 / constant.size)
    assert np.unique(y.min(axis=2)[constant]).size == 1
    assert abs(y.mean()) < 0.03 and abs(y.var() - 1) < 0.04


def test_alpha_dropout_gradient_is_the_scale():
    x = wally.randn(1000, requires_grad=True)
    y = F.alpha_dropout(x, 0.4, training=True)
    y.sum().backward()
    a = 1 / math.sqrt((1.7580993408473766 ** 2 * 0.4 + 1) * 0.6)
    np.testing.assert_allclose(np.unique(x.grad.array), [0.0, a], rtol=1e-6)


@pytest.mark.parametrize("fn", [F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                                F.feature_alpha_dropout])
def test_p_one_gives_zeros(fn):
    shape = {F.dropout1d: (2, 3, 4), F.dropout3d: (2, 3, 2, 2, 2)}.get(fn, (2, 3, 4, 4))
    x = wally.randn(*shape, requires_grad=True)
    y = fn(x, 1.0, training=True)
    assert not y.array.any()
    y.sum().backward()
    assert not x.grad.array.any()


def test_masks_follow_the_global_seed():
    wally.manual_seed(5)
    first = F.dropout2d(wally.ones(4, 8, 2, 2)).array
    wally.manual_seed(5)
    np.testing.assert_array_equal(F.dropout2d(wally.ones(4, 8, 2, 2)).array, first)


def test_inplace():
    x = wally.ones(8, 16, 3)
    assert F.dropout1d(x, 0.5, inplace=True) is x
    assert set(np.unique(x.array)) == {0.0, 2.0}
    y = wally.ones(16, 3)
    assert F.dropout1d(y, 0.5, inplace=True) is y and y.shape == (16, 3)
    z = wally.randn(100)
    assert F.alpha_dropout(z, 0.5, True, inplace=True) is z


def _torch_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught]


@pytest.mark.parametrize(("name", "shape"), [("dropout2d", (2, 3, 4)), ("dropout2d", (4, 5)),
                                             ("dropout2d", (2, 3, 2, 2, 2)),
                                             ("dropout3d", (2, 3, 4)), ("dropout3d", (4, 5))])
def test_warnings_match_torch(torch, name, shape):
    ours = _torch_warnings(lambda: getattr(F, name)(wally.ones(*shape), 0.5))
    theirs = _torch_warnings(lambda: getattr(torch.nn.functional, name)(torch.ones(*shape), 0.5))
    assert ours == theirs and ours


def test_dropout2d_reads_3d_input_as_batched_sequences():
    with pytest.warns(UserWarning, match="interpreted as shape \\(N, C, L\\)"):
        y = F.dropout2d(wally.ones(100, 20, 5), 0.5).array
    per_map = y.reshape(2000, 5)
    np.testing.assert_array_equal(per_map, np.repeat(per_map[:, :1], 5, axis=1))


MODULES = [("Dropout1d", ()), ("Dropout2d", (0.3,)), ("Dropout3d", (0.1, True)),
           ("AlphaDropout", (0.2,)), ("FeatureAlphaDropout", (0.5, True)), ("Dropout", (0.4,))]


@pytest.mark.parametrize(("name", "args"), MODULES)
def test_modules(torch, name, args):
    layer = getattr(nn, name)(*args)
    assert repr(layer) == repr(getattr(torch.nn, name)(*args))
    x = wally.randn(*{"Dropout3d": (4, 6, 3, 2, 2), "Dropout2d": (4, 6, 3, 2)}.get(name, (4, 6, 3)))
    layer.eval()
    assert layer(x) is x
    layer.train()
    y = layer(wally.ones(*x.shape) if "Alpha" not in name else x)
    assert y.shape == x.shape and not np.array_equal(y.array, x.array)
    if not name.startswith("Dropout"):
        return
    assert isinstance(layer, nn.Dropout) == (name == "Dropout")  # PyTorch's class tree


@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: F.dropout1d(wally.ones(2, 3, 4, 5)), ValueError,
     r"dropout1d: Expected 2D or 3D input, but received a 4D input"),
    (lambda: F.dropout2d(wally.ones(2, 3, 4, 4), 1.5), ValueError,
     r"dropout2d: dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda: F.alpha_dropout(wally.ones(3), -0.1), ValueError,
     r"alpha_dropout: dropout probability has to be between 0 and 1, but got -0.1"),
    (lambda: F.feature_alpha_dropout(wally.ones(5), 0.5, training=True), ValueError,
     r"feature_alpha_dropout: feature dropout requires at least 2 dimensions"),
    (lambda: F.dropout3d(wally.tensor(np.ones((1, 2, 2, 2, 2), dtype=np.int64))), TypeError,
     r"dropout3d: expected a floating-point input, got dtype wally\.int64"),
    (lambda: nn.Dropout2d(2.0), ValueError,
     r"Dropout2d: dropout probability has to be between 0 and 1, but got 2.0"),
    (lambda: nn.AlphaDropout("x"), ValueError, r"AlphaDropout: dropout probability"),
])
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
