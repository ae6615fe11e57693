"""The chunked convolution: column plans, memory budget, threads, and every backward path.

The fast paths (wide rows, exact strided columns, the flipped-kernel input gradient, the
col2im input gradient, depthwise multiply-adds) are each held against the reference loops in
float64, against the same convolution computed in one chunk, and against PyTorch.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import wally
import wally.nn.functional as F
from wally import reference
from wally._parallel import set_num_threads
from wally._windows import ColumnPlan, column_plan, im2col
from wally.backends import conv as dispatch
from wally.backends import tuning
from wally.functional import conv as conv_module

CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# (x shape, w shape, keyword arguments): one for each path through backward.
CASES = {
    "same padding (flipped-kernel input gradient)": ((3, 4, 9, 8), (5, 4, 3, 3), {"padding": 1}),
    "wide rows": ((2, 3, 5, 40), (4, 3, 3, 3), {"padding": 1}),
    "wide rows, dilated": ((2, 3, 7, 50), (4, 3, 3, 3), {"dilation": 2, "padding": 2}),
    "wide rows, valid": ((2, 3, 7, 60), (4, 3, 3, 3), {}),
    "wide rows, conv3d": ((2, 2, 3, 20, 40), (3, 2, 2, 2, 3), {"padding": (0, 0, 1)}),
    "valid, small image (col2im on wide rows)": ((3, 4, 9, 8), (5, 4, 3, 3), {}),
    "strided (col2im on exact columns)": ((3, 4, 9, 8), (6, 4, 3, 3), {"stride": 2, "padding": 1}),
    "uneven stride and padding": (
        (2, 3, 10, 7), (4, 3, 3, 2), {"stride": (2, 1), "padding": (0, 1)}
    ),
    "dilated": ((2, 4, 11, 10), (4, 4, 3, 3), {"dilation": 2, "padding": 2}),
    "padding beyond the kernel's reach": ((2, 2, 5, 5), (3, 2, 1, 1), {"padding": 1}),
    "groups": ((2, 6, 8, 8), (4, 3, 3, 3), {"padding": 1, "groups": 2}),
    "depthwise": ((3, 5, 8, 7), (5, 1, 3, 3), {"padding": 1, "groups": 5}),
    "depthwise, strided": ((3, 5, 8, 7), (5, 1, 3, 3), {"stride": 2, "padding": 1, "groups": 5}),
    "depthwise, valid": ((3, 5, 8, 7), (5, 1, 3, 3), {"groups": 5}),
    "1x1": ((3, 8, 5, 5), (4, 8, 1, 1), {}),
    "rows: valid 5x5 on a small image (LeNet's conv2)": ((3, 6, 14, 14), (4, 6, 5, 5), {}),
    "rows: horizontal stride, vertical dilation": (
        (2, 3, 21, 20), (5, 3, 3, 2), {"stride": (1, 2), "dilation": (2, 1), "padding": (0, 1)}
    ),
    "rows: same padding (flipped-kernel input gradient)": ((3, 4, 12, 9), (5, 4, 3, 3),
                                                           {"padding": 1}),
    "conv1d": ((3, 4, 30), (5, 4, 5), {"padding": 2}),
    "conv1d strided": ((3, 4, 30), (5, 4, 5), {"stride": 3}),
    "conv3d": ((2, 3, 5, 6, 4), (4, 3, 3, 2, 3), {"padding": 1}),
    "conv3d strided, dilated": (
        (2, 3, 7, 6, 8), (2, 3, 2, 2, 2), {"stride": 2, "dilation": (1, 2, 1)}
    ),
}


def run(x, w, b, kwargs, dtype=wally.float64):
    """Output and the gradients of x, w and b for the loss Σ y·g (g fixed)."""
    nd = x.ndim - 2
    xs = wally.tensor(x, dtype=dtype, requires_grad=True)
    ws = wally.tensor(w, dtype=dtype, requires_grad=True)
    bs = wally.tensor(b, dtype=dtype, requires_grad=True)
    y = CONVS[nd](xs, ws, bs, **kwargs)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(wally.tensor(g, dtype=dtype))
    return y.array, xs.grad.array, ws.grad.array, bs.grad.array


def arrays(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
            rng.standard_normal(w_shape[0]))


@contextlib.contextmanager
def chunk_bytes(limit):
    """Chunks of at most ``limit`` bytes of columns (the cache-sized default lifted)."""
    saved = tuning.CACHE_BYTES
    tuning.CACHE_BYTES = 1 << 40
    try:
        with conv_module.im2col_budget(limit):
            yield
    finally:
        tuning.CACHE_BYTES = saved


@pytest.fixture
def tiny_chunks():
    """A budget of 64 bytes: every chunk is one output row of one image."""
    with chunk_bytes(64):
        yield


@pytest.fixture
def one_chunk():
    with chunk_bytes(1 << 40):
        yield


@pytest.fixture(params=["auto", "im2col"])
def layout(request):
    """Each test twice: with the kernels the table chooses (the row layout where it applies),
    and with im2col forced on every pass."""
    if request.param == "im2col":
        with dispatch.algorithm("im2col"):
            yield request.param
    else:
        yield request.param


def geometry(x_shape, w_shape, kwargs, dtype=np.float64):
    """The :class:`wally.backends.conv.Geometry` of a ``CASES`` entry."""
    nd = len(x_shape) - 2
    pad = kwargs.get("padding", 0)
    pads = (pad,) * nd if isinstance(pad, int) else pad
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    return dispatch.Geometry(
        tuple(x_shape), tuple(w_shape),
        (stride,) * nd if isinstance(stride, int) else tuple(stride),
        tuple((p, p) for p in pads),
        (dilation,) * nd if isinstance(dilation, int) else tuple(dilation),
        kwargs.get("groups", 1), np.dtype(dtype),
    )


def uses_rows(x_shape, w_shape, kwargs):
    return dispatch.choose("forward", geometry(x_shape, w_shape, kwargs), record=False) == "rows"


# ----- the column plan ---------------------------------------------------------------------------
@pytest.mark.parametrize("wide", [None, False, True])
@pytest.mark.parametrize(
    "spatial, kernel, stride, padding, dilation",
    [
        ((7, 6), (3, 2), (1, 1), ((1, 1), (0, 1)), (1, 1)),
        ((9, 8), (3, 3), (2, 1), ((1, 0), (2, 1)), (1, 2)),
        ((12,), (4,), (1,), ((3, 1),), (2,)),
        ((4, 5, 6), (2, 3, 2), (1, 1, 1), ((1, 1), (0, 0), (1, 0)), (1, 1, 2)),
    ],
)
def test_plan_columns_are_im2cols(spatial, kernel, stride, padding, dilation, wide):
    if wide and any(s != 1 for s in stride):
        with pytest.raises(ValueError, match="wide rows need stride 1"):
            ColumnPlan(spatial, kernel, stride, padding, dilation, wide)
        return
    x = np.random.default_rng(0).standard_normal((3, 2, *spatial))
    plan = ColumnPlan(spatial, kernel, stride, padding, dilation, wide)
    expected = im2col(x, kernel, stride, padding, dilation)
    expected = expected.reshape(2 * plan.n_taps, 3, plan.out[0], -1)
    scratch = plan.scratch(3, 2, x.dtype) if plan.needs_copy else None
    padded = plan.pad(x, scratch)
    buffer = np.empty(expected.size * 4)
    for rows in (slice(0, plan.out[0]), slice(1, plan.out[0])):
        cols = plan.columns(padded, rows, buffer)
        real = plan.crop(cols.reshape(2 * plan.n_taps, 3, -1))
        np.testing.assert_array_equal(
            real.reshape(2 * plan.n_taps, 3, rows.stop - rows.start, -1), expected[:, :, rows]
        )


def test_plan_chunks_respect_the_limit():
    plan = ColumnPlan((10, 10), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    per_row = 4 * 9 * plan.row * 4  # C=4, 9 taps, float32
    for limit in (1, per_row, 3 * per_row, 10 * per_row, 25 * per_row, 10**9):
        chunks = plan.chunks(5, 4, 4, limit)
        covered = np.zeros((5, plan.out[0]), dtype=int)
        for images, rows in chunks:
            size = (images.stop - images.start) * (rows.stop - rows.start) * per_row
            assert size <= max(limit, per_row)
            covered[images, rows] += 1
        assert (covered == 1).all()


# ----- results do not depend on the chunking ----------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_chunked_matches_the_reference_loops(name, tiny_chunks, layout):
    x_shape, w_shape, kwargs = CASES[name]
    x, w, b = arrays(x_shape, w_shape)
    y, gx, gw, gb = run(x, w, b, kwargs)
    expected = reference.conv_nd_loops(x, w, b, **kwargs)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    # The gradients: as computed in one chunk (which finite differences check below).
    with chunk_bytes(1 << 40):
        _, gx1, gw1, gb1 = run(x, w, b, kwargs)
    np.testing.assert_allclose(gx, gx1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, gw1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, gb1, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_one_chunk_gradients_match_finite_differences(name, one_chunk, layout):
    x_shape, w_shape, kwargs = CASES[name]
    x, w, b = arrays(x_shape, w_shape)
    _, gx, gw, gb = run(x, w, b, kwargs)
    g = np.random.default_rng(1).standard_normal(reference.conv_nd_loops(x, w, b, **kwargs).shape)
    rng = np.random.default_rng(2)
    for array, grad in ((x, gx), (w, gw), (b, gb)):
        for _ in range(3):
            index = tuple(rng.integers(0, n) for n in array.shape)
            plus, minus = array.copy(), array.copy()
            plus[index] += 1e-6
            minus[index] -= 1e-6
            f = [
                (reference.conv_nd_loops(*(plus if a is array else a for a in (x, w, b)),
                                         **kwargs) * g).sum(),
                (reference.conv_nd_loops(*(minus if a is array else a for a in (x, w, b)),
                                         **kwargs) * g).sum(),
            ]
            assert grad[index] == pytest.approx((f[0] - f[1]) / 2e-6, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("threads", [1, 3])
def test_chunked_matches_torch(num_threads, torch, name, threads, layout):
    x_shape, w_shape, kwargs = CASES[name]
    x, w, b = arrays(x_shape, w_shape)
    num_threads(threads)
    with conv_module.im2col_budget(512):
        y, gx, gw, gb = run(x, w, b, kwargs, dtype=wally.float32)
    nd = len(x_shape) - 2
    tx, tw, tb = (torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in (x, w, b))
    ty = getattr(torch.nn.functional, f"conv{nd}d")(tx, tw, tb, **kwargs)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g, dtype=torch.float32))
    for ours, theirs in ((y, ty.detach()), (gx, tx.grad), (gw, tw.grad), (gb, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", [name for name in CASES if name.startswith("rows")])
@pytest.mark.parametrize("threads", [1, 3])
def test_row_layout_one_image_per_chunk(num_threads, torch, name, threads):
    """The row layout with a budget of one image's shifted copies: every image its own chunk,
    spread over threads; the same as one chunk, the reference loops and PyTorch."""
    x_shape, w_shape, kwargs = CASES[name]
    assert uses_rows(x_shape, w_shape, kwargs)
    x, w, b = arrays(x_shape, w_shape)
    per_image = conv_module._rows(geometry(x_shape, w_shape, kwargs)).per_image
    num_threads(threads)
    with chunk_bytes(per_image * threads):  # the budget is shared by the threads
        assert len(conv_module._rows(geometry(x_shape, w_shape, kwargs)).chunks) == x_shape[0]
        assert uses_rows(x_shape, w_shape, kwargs)
        y, gx, gw, gb = run(x, w, b, kwargs)
    with chunk_bytes(1 << 40):
        _, gx1, gw1, gb1 = run(x, w, b, kwargs)
    for ours, whole in ((gx, gx1), (gw, gw1), (gb, gb1)):
        np.testing.assert_allclose(ours, whole, rtol=1e-10, atol=1e-10)
    assert_matches_loops_and_torch(torch, x, w, b, kwargs, (y, gx, gw, gb))


def assert_matches_loops_and_torch(torch, x, w, b, kwargs, results):
    """A float64 conv2d's output against the reference loops, and output and gradients (for
    ``run``'s loss) against PyTorch's."""
    y, gx, gw, gb = results
    np.testing.assert_allclose(y, reference.conv_nd_loops(x, w, b, **kwargs), rtol=1e-10,
                               atol=1e-10)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kwargs)
    ty.backward(torch.tensor(np.random.default_rng(1).standard_normal(tuple(ty.shape))))
    for ours, theirs in ((y, ty.detach()), (gx, tx.grad), (gw, tw.grad), (gb, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


def test_the_cases_cover_the_row_layout():
    """Several cases take the row layout (and the ``layout`` fixture runs them with im2col
    too); deep layers, small batches of small maps, strides down the rows, groups and other
    dimensions never do."""
    taken = {name for name, case in CASES.items() if uses_rows(*case)}
    assert {name for name in CASES if name.startswith("rows")} == taken
    for name in ("strided (col2im on exact columns)", "groups", "conv1d", "conv3d", "wide rows"):
        assert name not in taken
    assert not uses_rows((2, 512, 4, 4), (512, 512, 3, 3), {"padding": 1})  # too deep
    assert not uses_rows((1, 6, 14, 14), (16, 6, 5, 5), {})  # LeNet's conv2 at batch 1
    assert uses_rows((4, 6, 14, 14), (16, 6, 5, 5), {})


@pytest.mark.parametrize(
    "size, kwargs", [(64, {"padding": 1}), (64, {}), (128, {"stride": 2, "padding": 1})]
)
def test_short_columns_multiply_in_blocks(torch, size, kwargs):
    """A one-channel layer on large images (LeNet's first layer, larger): its chunks' columns
    are 9 rows by more than 8192, multiplied 4096 columns at a time in forward, the weight
    gradient and (strided) the col2im input gradient."""
    x, w, b = arrays((3, 1, size, size), (2, 1, 3, 3))
    assert conv_module._skinny(9, 3 * 64 * 66)  # so the blocked products are taken
    assert_matches_loops_and_torch(torch, x, w, b, kwargs, run(x, w, b, kwargs))


def test_row_layout_small_weight_gradients_multiply_in_blocks(torch, monkeypatch):
    """LeNet's first layer at batch 32: the row layout's weight gradient (5 × 5 × 6, a result
    small enough that one product would hold the interpreter lock) is summed over blocks of
    4096 columns, the blocks' products one batched call; values against the loops and torch."""
    from wally import backend

    x, w, b = arrays((32, 1, 28, 28), (6, 1, 5, 5))
    kwargs = {"padding": 2}
    shapes = []
    matmul = backend.matmul

    def recording(a, b, *args, **kw):
        shapes.append(a.shape)
        return matmul(a, b, *args, **kw)

    monkeypatch.setattr(backend, "matmul", recording)
    with dispatch.algorithm("rows", passes="weight-grad"), dispatch.trace() as ran:
        results = run(x, w, b, kwargs)
    assert ("weight-grad", "rows") in ran
    blocked = [s for s in shapes if len(s) == 4]
    assert blocked and all(s[1:] == (5, 5, tuning.SKINNY_COLUMNS) for s in blocked), shapes
    assert_matches_loops_and_torch(torch, x, w, b, kwargs, results)


def test_non_finite_inputs_take_exact_columns(torch):
    """Wide rows' junk columns meet zero gradients; 0·inf would be NaN where PyTorch is finite."""
    x, w, b = arrays((2, 2, 6, 6), (3, 2, 3, 3))
    x[0, 1, 2, 5] = np.inf  # the last column: a wide row's junk reads it for other taps
    _, _, gw, _ = run(x, w, b, {}, dtype=wally.float32)
    tx, tw, tb = (torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g, dtype=torch.float32))
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(tw.grad.numpy()))
    np.testing.assert_array_equal(np.isinf(gw), np.isinf(tw.grad.numpy()))


# ----- the memory budget ------------------------------------------------------------------------
def test_budget_api_round_trips():
    previous = conv_module.get_memory_budget()
    with conv_module.im2col_budget(1234):
        assert conv_module.get_memory_budget() == 1234
        with conv_module.im2col_budget(99):
            assert conv_module.get_memory_budget() == 99
        assert conv_module.get_memory_budget() == 1234
    assert conv_module.get_memory_budget() == previous
    conv_module.set_memory_budget(4096)
    try:
        assert conv_module.get_memory_budget() == 4096
    finally:
        conv_module.set_memory_budget(previous)
    for bad in (0, -1, 1.5, True, "1M"):
        with pytest.raises(ValueError, match="set_memory_budget"):
            conv_module.set_memory_budget(bad)


@pytest.mark.parametrize(
    "text, expected",
    [("1048576", 1 << 20), ("64M", 64 << 20), ("64MiB", 64 << 20), ("2g", 2 << 30),
     ("512k", 512 << 10), ("0.5G", 1 << 29)],
)
def test_budget_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("WALLY_CONV_MEMORY_BUDGET", text)
    assert conv_module._budget_from_environment() == expected


@pytest.mark.parametrize("text", ["lots", "-5", "0", "M"])
def test_a_bad_environment_budget_warns_and_keeps_the_default(monkeypatch, text):
    monkeypatch.setenv("WALLY_CONV_MEMORY_BUDGET", text)
    with pytest.warns(RuntimeWarning, match="WALLY_CONV_MEMORY_BUDGET"):
        assert conv_module._budget_from_environment() == conv_module.DEFAULT_MEMORY_BUDGET


def test_the_environment_budget_is_read_at_import():
    code = "import wally.functional.conv as c; print(c.get_memory_budget())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "WALLY_CONV_MEMORY_BUDGET": "3M"},
    ).stdout
    assert int(out) == 3 << 20


def test_peak_memory_stays_within_the_budget(num_threads):
    """A convolution whose whole column matrix is 19 MiB runs in 1 MiB chunks."""
    rng = np.random.default_rng(0)
    x = wally.tensor(rng.standard_normal((8, 16, 64, 64), dtype=np.float32), requires_grad=True)
    w = wally.tensor(rng.standard_normal((16, 16, 3, 3), dtype=np.float32), requires_grad=True)
    columns = 16 * 9 * 8 * 64 * 64 * 4  # bytes of the whole im2col matrix
    activation = x.array.nbytes  # the output and each gradient of x are this size
    num_threads(1)
    with conv_module.im2col_budget(1 << 20):
        tracemalloc.start()
        y = F.conv2d(x, w, padding=1)
        forward_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        y.backward(wally.ones_like(y))
        backward_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert forward_peak < activation + 4 * (1 << 20) < columns / 2
    # backward holds y, its gradient, dX and the padded chunks: a few activations, no columns
    assert backward_peak < 4 * activation + 6 * (1 << 20) < columns
    assert x.grad is not None and w.grad is not None


def test_threads_give_the_same_result(num_threads):
    x, w, b = arrays((6, 4, 12, 12), (5, 4, 3, 3))
    results = []
    for threads in (1, 2, 4):
        num_threads(threads)
        with conv_module.im2col_budget(2048):
            results.append(run(x, w, b, {"padding": 1}))
    for other in results[1:]:
        for a, c in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


def test_set_num_threads_checks_its_argument():
    for bad in (0, -2, 1.0, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            set_num_threads(bad)


def test_layer_cache_tells_ints_from_bools():
    x, w = wally.randn(1, 2, 5, 5), wally.randn(3, 2, 3, 3)
    F.conv2d(x, w, stride=1)
    with pytest.raises(TypeError):
        F.conv2d(x, w, stride=True)
    with pytest.raises(TypeError):
        F.conv2d(x, w, stride=1.0)


def test_first_layer_keeps_no_weight_and_frozen_weight_keeps_no_input():
    x = wally.randn(2, 3, 6, 6)
    w = wally.randn(4, 3, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.grad_fn.w2 is None and y.grad_fn.x is not None
    x = wally.randn(2, 3, 6, 6, requires_grad=True)
    y = F.conv2d(x, wally.randn(4, 3, 3, 3))
    assert y.grad_fn.x is None
    kept = [v for v in vars(y.grad_fn).values() if isinstance(v, np.ndarray)]
    assert sum(a.nbytes for a in kept) <= 4 * 3 * 3 * 3 * 4  # the weight at most


def test_unbatched_input_uses_the_same_paths():
    for (x_shape, w_shape, kwargs) in itertools.islice(CASES.values(), 0, None, 3):
        x, w, b = arrays(x_shape, w_shape)
        nd = len(x_shape) - 2
        batched = CONVS[nd](wally.tensor(x[:1]), wally.tensor(w), wally.tensor(b), **kwargs)
        single = CONVS[nd](wally.tensor(x[0]), wally.tensor(w), wally.tensor(b), **kwargs)
        np.testing.assert_allclose(single.array, batched.array[0], rtol=1e-12)


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_split_matmul_matches_numpy(num_threads, threads, split, monkeypatch):
    from wally._parallel import matmul
    from wally.backends import tuning

    if split:  # 257·300·120 multiply-adds: below the split by default, above it here
        monkeypatch.setattr(tuning, "SPLIT_MACS", 1 << 20)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((257, 300), dtype=np.float32)
    b = rng.standard_normal((300, 120), dtype=np.float32)
    num_threads(threads)
    for left, right in ((a, b), (a[:, :120], b[:120].T.copy().T), (b.T, a.T)):
        np.testing.assert_allclose(matmul(left, right), left @ right, rtol=1e-5, atol=1e-4)


def test_the_cases_cover_wide_and_exact_columns():
    kinds = set()
    for x_shape, w_shape, kwargs in CASES.values():
        nd = len(x_shape) - 2
        pad = kwargs.get("padding", 0)
        pads = (pad,) * nd if isinstance(pad, int) else pad
        stride = kwargs.get("stride", 1)
        dilation = kwargs.get("dilation", 1)
        plan = column_plan(
            x_shape[2:], w_shape[2:], (stride,) * nd if isinstance(stride, int) else stride,
            tuple((p, p) for p in pads),
            (dilation,) * nd if isinstance(dilation, int) else dilation,
        )
        kinds.add((nd, plan.wide))
    assert {(2, True), (2, False), (3, True), (3, False), (1, True), (1, False)} <= kinds


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_fresh_pool(num_threads):
    num_threads(2)
    x, w, b = arrays((4, 3, 10, 10), (4, 3, 3, 3))
    with conv_module.im2col_budget(512):
        expected = run(x, w, b, {"padding": 1})[0]  # starts the pool in the parent
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            ok = np.allclose(run(x, w, b, {"padding": 1})[0], expected)
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.close(write)
        answer = os.read(read, 1)
        os.waitpid(pid, 0)
    assert answer == b"1"


def test_num_threads_puts_the_count_back_however_the_block_ends():
    from wally._parallel import get_num_threads, num_threads

    before = get_num_threads()
    with num_threads(before + 2):
        assert get_num_threads() == before + 2
    with pytest.raises(KeyError), num_threads(before + 1):
        assert get_num_threads() == before + 1
        raise KeyError("the block fails")
    assert get_num_threads() == before
