"""wally.backends.accel: the optional numba kernels, each held against the NumPy path it
replaces, and the switches that turn them off.

The kernels' tests skip where numba is not installed (``pip install wally-cnn[accel]``); the
switches and the lazy import are tested either way.  ``test_backends_conv.py`` also holds the
``direct`` rule against the reference over its grid, with the other kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import wally
import wally.nn.functional as F
from wally import _winograd as winograd_module
from wally._parallel import run_chunks, use_deterministic_algorithms
from wally._winograd import winograd_correlate
from wally.backends import accel, tuning
from wally.backends import conv as dispatch
from wally.functional import conv as conv_module
from wally.testing import gradcheck

needs_numba = pytest.mark.skipif(
    not accel.is_enabled(),
    reason="numba is not installed (pip install wally-cnn[accel]) or WALLY_ACCEL=0 switched it off",
)
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def _python(code: str, **env: str) -> str:
    environment = {**os.environ, "PYTHONPATH": SRC, **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, check=True)
    return done.stdout.strip()


# ----- the switches -----------------------------------------------------------------------------
def test_import_wally_does_not_import_numba():
    assert _python("import sys, wally; print('numba' in sys.modules)") == "False"


def test_the_environment_switch_turns_the_accelerator_off():
    code = ("import wally, wally.nn.functional as F, wally.backends.conv as c, "
            "wally.backends.accel as a; F.conv2d(wally.randn(4, 1, 12, 12), "
            "wally.randn(6, 1, 5, 5), padding=2); print(a.is_enabled(), c.last_algorithm())")
    assert _python(code, WALLY_ACCEL="0") == "False rows"
    if accel.is_available():
        assert _python(code, WALLY_ACCEL="1") == "True direct"


def test_set_enabled_and_flags_switch_the_whole_or_one_kernel():
    before = accel.is_enabled()
    assert not accel.is_enabled("relu")  # off by default (KERNELS says why)
    with accel.flags(True, "relu"):
        assert accel.is_enabled("relu") == before
        with accel.flags(False):
            assert not accel.is_enabled() and not accel.is_enabled("relu")
        assert accel.is_enabled("relu") == before
        with accel.flags(False, "direct"):
            assert not accel.is_enabled("direct") and accel.is_enabled("relu") == before
    assert accel.is_enabled() == before and accel.is_enabled("direct") == before
    assert not accel.is_enabled("relu")
    with pytest.raises(ValueError,
                       match="no kernel 'bogus'; expected one of direct, winograd, relu"):
        accel.set_enabled(True, "bogus")
    with pytest.raises(TypeError, match="expected a bool, got 1"):
        accel.set_enabled(1)  # type: ignore[arg-type]
    assert [(k.name, k.default) for k in accel.KERNELS] == [
        ("direct", True), ("winograd", False), ("relu", False)]


def test_the_direct_rule_is_in_the_table_and_needs_stride_one():
    assert "direct" in [r.name for r in dispatch.algorithms("forward")]
    if not accel.is_available():
        return
    with dispatch.algorithm("direct"):
        with pytest.raises(ValueError, match="forced algorithm 'direct' cannot run"):
            F.conv2d(wally.randn(1, 1, 8, 8), wally.randn(2, 1, 3, 3), stride=2)
    half = dispatch.Geometry((1, 1, 8, 8), (2, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1,
                             np.dtype("float16"))
    assert dispatch.choose("forward", half, record=False) != "direct"  # not compiled for it


# ----- the direct convolution against the reference, torch and central differences ------------
@st.composite
def direct_cases(draw, symmetric=False):
    nd = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    if symmetric:  # as torch pads
        padding = tuple((lo, lo) for lo, _ in padding)
    spatial = tuple(draw(st.integers(1, 12)) for _ in range(nd))
    for n, k, d, (lo, hi) in zip(spatial, kernel, dilation, padding, strict=True):
        assume(n + lo + hi - d * (k - 1) >= 1)
    batch = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    bias = draw(st.booleans())
    return (batch, channels, *spatial), (out_channels, channels // groups, *kernel), padding, \
        dilation, groups, dtype, bias


def _correlate(case, algorithm):
    x_shape, w_shape, padding, dilation, groups, dtype, bias = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    stride = (1,) * (len(x_shape) - 2)
    with dispatch.algorithm(algorithm, passes="forward"), dispatch.trace() as ran:
        y = conv_module.correlate(x, w, b, stride, padding, dilation, groups)
    assert ran == [("forward", algorithm)]  # the kernel under test is the one that ran
    return y


@needs_numba
@settings(max_examples=60, deadline=None)
@given(case=direct_cases())
def test_direct_matches_the_reference(case):
    expected = _correlate(case, "reference")
    got = _correlate(case, "direct")
    assert got.dtype == expected.dtype and got.shape == expected.shape
    tol = 1e-4 if case[5] == np.float32 else 1e-11
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@needs_numba
@settings(max_examples=20, deadline=None)
@given(case=direct_cases(symmetric=True))
def test_direct_matches_torch(case):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, padding, dilation, groups, dtype, bias = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    nd = len(x_shape) - 2
    wally_conv, torch_conv = (F.conv1d, torch.nn.functional.conv1d) if nd == 1 else (
        F.conv2d, torch.nn.functional.conv2d)
    kw = {"padding": tuple(lo for lo, _ in padding), "dilation": dilation, "groups": groups}
    with dispatch.algorithm("direct"), dispatch.trace() as ran:
        got = wally_conv(wally.tensor(x), wally.tensor(w),
                         None if b is None else wally.tensor(b), **kw).numpy()
    assert ran[0] == ("forward", "direct")
    expected = torch_conv(torch.tensor(x), torch.tensor(w),
                          None if b is None else torch.tensor(b), **kw).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("nd", [1, 2])
def test_direct_gradients_by_central_differences(nd):
    """float64 gradients of x, w and b through the op, the forward pass (and the flipped input
    gradient, itself a forward convolution) run by the direct kernel."""
    rng = np.random.default_rng(4)
    spatial = (7,) * nd
    x = wally.tensor(rng.standard_normal((2, 2, *spatial)), requires_grad=True)
    w = wally.tensor(rng.standard_normal((3, 2, *(3,) * nd)), requires_grad=True)
    b = wally.tensor(rng.standard_normal(3), requires_grad=True)
    conv = F.conv1d if nd == 1 else F.conv2d
    with dispatch.algorithm("direct"), dispatch.trace() as ran:
        assert gradcheck(lambda x, w, b: conv(x, w, b, padding=1, dilation=1), x, w, b)
    assert ("forward", "direct") in ran


# ----- the same bits on every run, at every thread count ----------------------------------------
def _count_chunks(monkeypatch, module) -> list[int]:
    """The chunks of every ``run_chunks`` call that ``module`` makes (it imported the name)."""
    counts: list[int] = []

    def counting(work, items, **kwargs):
        counts.append(len(items))
        return run_chunks(work, items, **kwargs)

    monkeypatch.setattr(module, "run_chunks", counting)
    return counts


@needs_numba
def test_direct_gives_the_same_bits_on_every_run_and_thread_count(num_threads, monkeypatch):
    """LeNet's first layer at batch 64 splits into several chunks on every thread count; the
    kernel sums each image in one order whichever chunk holds it."""
    chunks = _count_chunks(monkeypatch, conv_module)
    rng = np.random.default_rng(5)
    x = wally.tensor(rng.standard_normal((64, 1, 28, 28), dtype=np.float32))
    w = wally.tensor(rng.standard_normal((6, 1, 5, 5), dtype=np.float32))
    b = wally.tensor(rng.standard_normal(6, dtype=np.float32))
    results = []
    for threads in (1, 2, 2, 3):
        num_threads(threads)
        with dispatch.trace() as ran:
            results.append(F.conv2d(x, w, b, padding=2).numpy())
        assert ran == [("forward", "direct")]
    assert min(chunks) >= 4  # several chunks, on several threads
    for y in results[1:]:
        assert np.array_equal(y, results[0])
    use_deterministic_algorithms(True)
    try:
        for threads in (1, 2):
            num_threads(threads)
            with dispatch.trace() as ran:
                assert np.array_equal(F.conv2d(x, w, b, padding=2).numpy(), results[0])
            assert ran == [("forward", "direct")]
    finally:
        use_deterministic_algorithms(False)


# ----- ReLU's gradient --------------------------------------------------------------------------
def _relu_grad(x, gy, compiled):
    t = wally.tensor(x, requires_grad=True)
    with accel.flags(compiled, "relu"), np.errstate(invalid="ignore"):
        t.relu().backward(wally.tensor(gy))
    return t.grad.numpy()


@needs_numba
@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    dtype=st.sampled_from([np.float32, np.float64]),
    special=st.booleans(),
)
def test_compiled_relu_grad_is_numpy_bit_for_bit(shape, dtype, special):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    if special:  # zeros, NaN and infinities in both
        x.flat[:: 3] = 0
        gy.flat[:: 4] = np.inf
        x.flat[1:: 5] = np.nan
        gy.flat[2:: 5] = np.nan
    expected = _relu_grad(x, gy, False)
    got = _relu_grad(x, gy, True)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


@needs_numba
def test_compiled_relu_grad_splits_among_threads_with_the_same_bits(num_threads, chunk_calls):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((256, 6, 28, 28), dtype=np.float32)  # 4.8 MB: split
    gy = rng.standard_normal(x.shape, dtype=np.float32)
    num_threads(1)
    one = _relu_grad(x, gy, True)
    num_threads(2)
    two = _relu_grad(x, gy, True)
    assert chunk_calls and chunk_calls[-1] >= 4
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, _relu_grad(x, gy, False))


@needs_numba
def test_direct_is_not_chosen_for_an_image_over_the_budget():
    """It copies whole images (im2col pads a huge one by rows): one padded image must fit in
    half a thread's share of the budget, as ``padding_limit`` says."""
    def geometry(size):
        return dispatch.Geometry((1, 3, size, size), (1, 3, 3, 3), (1, 1), ((1, 1), (1, 1)),
                                 (1, 1), 1, np.dtype("float32"))

    assert dispatch.choose("forward", geometry(64), record=False) == "direct"
    assert dispatch.choose("forward", geometry(6000), record=False) != "direct"
    scratch, shares = dispatch.direct_scratch(geometry(64)), dispatch.shares()
    with dispatch.im2col_budget(2 * shares * scratch):
        assert dispatch.choose("forward", geometry(64), record=False) == "direct"
    with dispatch.im2col_budget(2 * shares * (scratch - 1)):
        assert dispatch.choose("forward", geometry(64), record=False) != "direct"


# ----- Winograd's compiled transforms against its NumPy steps -----------------------------------
def _winograd(x, w, b, padding, compiled):
    with accel.flags(compiled, "winograd"):
        return winograd_correlate(x, w, b, padding)


@needs_numba
@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3), channels=st.integers(1, 6), out_channels=st.integers(1, 6),
    height=st.integers(1, 11), width=st.integers(1, 11),
    padding=st.tuples(*(st.integers(0, 2) for _ in range(4))),
    dtype=st.sampled_from([np.float32, np.float64]), bias=st.booleans(),
    tile_bytes=st.sampled_from([1, 1 << 20]),
)
def test_compiled_winograd_is_the_numpy_path_bit_for_bit(
        batch, channels, out_channels, height, width, padding, dtype, bias, tile_bytes):
    """Odd and even sizes (a cropped last tile row and column), one-sided padding, and chunks
    of whole images or of single tile rows (``TILE_BYTES`` 1 makes every chunk one
    ``MIN_TILES`` piece of an image), both ways."""
    top, bottom, left, right = padding
    assume(height + top + bottom >= 3 and width + left + right >= 3)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal((out_channels, channels, 3, 3)).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype) if bias else None
    pairs = ((top, bottom), (left, right))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuning, "TILE_BYTES", tile_bytes)
        patch.setattr(tuning, "MIN_TILES", 1 if tile_bytes == 1 else tuning.MIN_TILES)
        got = _winograd(x, w, b, pairs, True)
        np.testing.assert_array_equal(got, _winograd(x, w, b, pairs, False))
    with dispatch.algorithm("reference"):
        expected = conv_module.correlate(x, w, b, (1, 1), pairs, (1, 1), 1)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@needs_numba
def test_compiled_winograd_splits_among_threads_with_the_same_bits(num_threads, monkeypatch):
    """A ResNet-sized layer in several chunks on two threads: each chunk's tiles are
    transformed in one call, the same sums whichever thread takes it."""
    chunk_calls = _count_chunks(monkeypatch, winograd_module)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((24, 64, 32, 32), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    b = rng.standard_normal(64, dtype=np.float32)
    num_threads(1)
    one = _winograd(x, w, b, ((1, 1), (1, 1)), True)
    num_threads(2)
    two = _winograd(x, w, b, ((1, 1), (1, 1)), True)
    assert chunk_calls and chunk_calls[-1] >= 4
    np.testing.assert_array_equal(two, _winograd(x, w, b, ((1, 1), (1, 1)), False))
    np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-4)


@needs_numba
def test_compiled_winograd_kernels_refuse_buffers_that_do_not_match():
    """The kernels index without bounds checks, so each checks its buffers' shapes first: a
    wrong call is a ValueError, never a write outside an array."""
    kernels = accel.kernels()
    x = np.zeros((1, 8, 6, 6), np.float32)
    d = np.zeros((4, 4, 1, 8), np.float32)  # 4 columns: too narrow for 6 + padding
    t = np.zeros((4, 4, 1, 8), np.float32)
    v = np.zeros((16, 1, 1, 1, 8), np.float32)
    with pytest.raises(ValueError, match="winograd_input: the buffers do not match the chunk"):
        kernels.winograd_input(x, 0, 1, 0, 1, 1, d, t, v)
    m = np.zeros((16, 1, 1, 1, 8), np.float32)
    y = np.zeros((1, 8, 6, 6), np.float32)  # 6 columns, but one tile covers 2
    s, blocks = np.zeros((8, 1, 1, 8), np.float32), np.zeros((4, 1, 1, 8), np.float32)
    with pytest.raises(ValueError, match="winograd_output: the buffers do not match the chunk"):
        kernels.winograd_output(m, np.zeros(0, np.float32), 0, 0, y, s, blocks)


# ----- the depthwise weight gradient ("depthwise-direct") ---------------------------------------
@needs_numba
@pytest.mark.parametrize("nd, kernel, padding, dilation", [
    (2, 3, 1, 1), (2, 5, 2, 1), (2, 3, 2, 2), (1, 7, 3, 1), (1, 3, 2, 2)])
def test_depthwise_direct_matches_torch(nd, kernel, padding, dilation):
    """The whole layer, float64: forward (direct), weight gradient (depthwise-direct) and
    input gradient (flipped, itself a direct forward), against torch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    spatial = (9, 11) if nd == 2 else (23,)
    x = rng.standard_normal((5, 6, *spatial))
    w = rng.standard_normal((6, 1, *(kernel,) * nd))
    wally_conv, torch_conv = (F.conv2d, torch.nn.functional.conv2d) if nd == 2 else (
        F.conv1d, torch.nn.functional.conv1d)
    xs, ws = wally.tensor(x, requires_grad=True), wally.tensor(w, requires_grad=True)
    with dispatch.trace() as ran:
        y = wally_conv(xs, ws, padding=padding, dilation=dilation, groups=6)
        y.backward(wally.ones_like(y))
    assert ran == [("forward", "direct"), ("weight-grad", "depthwise-direct"),
                   ("input-grad", "flipped"), ("forward", "direct")]
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch_conv(tx, tw, padding=padding, dilation=dilation, groups=6)
    ty.backward(torch.ones_like(ty))
    for ours, theirs in ((y.detach().numpy(), ty.detach()), (ws.grad.numpy(), tw.grad),
                         (xs.grad.numpy(), tx.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


@needs_numba
def test_depthwise_direct_gradients_by_central_differences():
    rng = np.random.default_rng(11)
    x = wally.tensor(rng.standard_normal((3, 4, 7, 6)), requires_grad=True)
    w = wally.tensor(rng.standard_normal((4, 1, 3, 3)), requires_grad=True)
    with dispatch.trace() as ran:
        assert gradcheck(lambda x, w: F.conv2d(x, w, padding=(2, 1), dilation=(2, 1), groups=4),
                         x, w)
    assert ("weight-grad", "depthwise-direct") in ran


@needs_numba
def test_depthwise_direct_gives_the_same_bits_on_every_thread_count(num_threads):
    """17 images: three chunks of at most ``DIRECT_GRAD_IMAGES``, whose partials are added
    in chunk order whichever thread computed them, so every thread count gives one result."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((17, 32, 20, 20), dtype=np.float32)
    gy = rng.standard_normal((17, 32, 20, 20), dtype=np.float32)
    assert -(-17 // tuning.DIRECT_GRAD_IMAGES) >= 3
    results = []
    for threads in (1, 2, 3, 2):
        num_threads(threads)
        with dispatch.trace() as ran:
            results.append(conv_module.weight_grad(x, gy, (32, 1, 3, 3), (1, 1), ((1, 1), (1, 1)),
                                                   (1, 1), 32))
        assert ran == [("weight-grad", "depthwise-direct")]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    with dispatch.algorithm("depthwise", passes="weight-grad"):
        numpy_path = conv_module.weight_grad(x, gy, (32, 1, 3, 3), (1, 1), ((1, 1), (1, 1)),
                                             (1, 1), 32)
    np.testing.assert_allclose(results[0], numpy_path, rtol=1e-4, atol=1e-3)


@needs_numba
def test_depthwise_direct_kernel_refuses_buffers_that_do_not_match():
    kernels = accel.kernels()
    x = np.zeros((2, 3, 6, 6), np.float32)
    gy = np.zeros((2, 3, 6, 6), np.float32)
    part = np.zeros((3, 3, 3), np.float32)
    acc = np.zeros((3, 9, 6), np.float32)
    small = np.zeros(10, np.float32)  # not one padded image
    with pytest.raises(ValueError, match="depthwise_weight_grad: the buffers do not match"):
        kernels.depthwise_weight_grad(x, gy, 0, 2, 1, 1, 1, 1, 1, 1, part, small, acc)
    with pytest.raises(ValueError, match="depthwise_weight_grad: the buffers do not match"):
        kernels.depthwise_weight_grad(x, gy, 0, 3, 1, 1, 1, 1, 1, 1, part,
                                      np.zeros(3 * 8 * 8 + 2, np.float32), acc)
