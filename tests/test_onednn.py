"""wally.backends.onednn: oneDNN's convolutions, each pass held against the reference path and
PyTorch, and the switches and the loading rules around them.

The kernel tests skip where the ``onednn-cpu-gomp`` wheel is not installed (``pip install
wally-cnn[onednn]``); the switches and the lazy loading are tested either way.  The rest of the
suite runs with oneDNN switched off (``conftest.py`` sets ``WALLY_ONEDNN=0``), so that its
tests of wally's own kernels and of the table's choices stay what they say; here it is
switched on.
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
import wally.nn as nn
import wally.nn.functional as F
from wally._parallel import use_deterministic_algorithms
from wally.backends import conv as dispatch
from wally.backends import onednn
from wally.functional import conv as conv_module

needs_onednn = pytest.mark.skipif(
    not onednn.is_available(),
    reason=f"oneDNN is not available (pip install wally-cnn[onednn]): "
    f"{onednn.unavailable_reason()}",
)
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


@pytest.fixture(autouse=True)
def _onednn_on():
    with onednn.flags(True):
        yield


def _python(code: str, **env: str) -> str:
    environment = {**os.environ, "PYTHONPATH": SRC, **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, check=True)
    return done.stdout.strip()


LOADED = "any('libdnnl' in line for line in open('/proc/self/maps'))"


# ----- loading and the switches ------------------------------------------------------------------
def test_import_wally_and_a_float64_convolution_load_nothing():
    code = ("import wally, wally.nn.functional as F; "
            f"F.conv2d(wally.randn(1, 1, 5, 5, dtype=wally.float64), "
            f"wally.randn(1, 1, 3, 3, dtype=wally.float64)); print({LOADED})")
    assert _python(code, WALLY_ONEDNN="1") == "False"


@needs_onednn
def test_the_environment_switch_turns_it_off_and_on():
    code = ("import wally, wally.nn.functional as F, wally.backends.conv as c, "
            "wally.backends.onednn as o; F.conv2d(wally.randn(4, 3, 12, 12), "
            "wally.randn(16, 3, 3, 3), padding=1); "
            f"print(o.is_enabled(), c.last_algorithm(), {LOADED})")
    assert _python(code, WALLY_ONEDNN="0") == "False rows False"
    assert _python(code, WALLY_ONEDNN="1") == "True onednn True"


def test_only_the_installed_distributions_library_is_loaded(tmp_path):
    """With no ``onednn-cpu-gomp`` distribution, a ``libdnnl.so.3`` on the loader's search path
    is not loaded: it is unavailable, and says why."""
    (tmp_path / "libdnnl.so.3").write_bytes(b"not a library")
    code = ("import importlib.metadata as m\n"
            "real = m.distribution\n"
            "def fake(name):\n"
            "    if name == 'onednn-cpu-gomp': raise m.PackageNotFoundError(name)\n"
            "    return real(name)\n"
            "m.distribution = fake\n"
            "import wally.backends.onednn as o\n"
            f"print(o.is_available(), o.unavailable_reason(), {LOADED})")
    out = _python(code, LD_LIBRARY_PATH=str(tmp_path), WALLY_ONEDNN="1")
    assert out == "False the onednn-cpu-gomp distribution is not installed False"


def _spin_count_seen(**env: str) -> tuple[str, str]:
    """GNU OpenMP's GOMP_SPINCOUNT as libgomp printed it at load (OMP_DISPLAY_ENV), and the
    variable in os.environ after oneDNN loaded, in a fresh interpreter."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    environment.update(PYTHONPATH=SRC, OMP_DISPLAY_ENV="VERBOSE", **env)
    code = ("import os, wally.backends.onednn as o; assert o.is_available(); "
            "print(os.environ.get('GOMP_SPINCOUNT'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, check=True)
    shown = [line.split("=")[1].strip().strip("'") for line in done.stderr.splitlines()
             if line.strip().startswith("GOMP_SPINCOUNT")]
    assert len(shown) == 1, done.stderr
    return shown[0], done.stdout.strip()


@needs_onednn
def test_openmp_spins_briefly_and_the_environment_is_restored():
    from wally.backends import tuning

    assert tuning.ONEDNN_GOMP_SPINCOUNT != 300_000  # libgomp's default: the test could fail
    assert _spin_count_seen() == (str(tuning.ONEDNN_GOMP_SPINCOUNT), "None")
    assert _spin_count_seen(GOMP_SPINCOUNT="77") == ("77", "77")  # the user's setting wins
    assert _spin_count_seen(OMP_WAIT_POLICY="active")[1] == "None"


def test_flags_nest_and_restore():
    before = onednn.is_enabled()
    with onednn.flags(False):
        assert not onednn.is_enabled()
        with onednn.flags(True):
            assert onednn.is_enabled() == onednn.is_available()
        assert not onednn.is_enabled()
    assert onednn.is_enabled() == before


def test_the_rule_is_first_after_the_reference_in_every_pass():
    for pass_ in dispatch.PASSES:
        assert [r.name for r in dispatch.algorithms(pass_)][:2] == ["reference", "onednn"]


@needs_onednn
def test_it_is_not_chosen_for_float64_or_under_deterministic_algorithms():
    x, w = wally.randn(2, 3, 9, 9), wally.randn(16, 3, 3, 3)
    F.conv2d(x, w, padding=1)
    assert dispatch.last_algorithm() == "onednn"
    F.conv2d(x.double(), w.double(), padding=1)
    assert dispatch.last_algorithm() != "onednn"
    try:
        use_deterministic_algorithms(True)
        F.conv2d(x, w, padding=1)
        assert dispatch.last_algorithm() != "onednn"
    finally:
        use_deterministic_algorithms(False)
    with onednn.flags(False):
        F.conv2d(x, w, padding=1)
        assert dispatch.last_algorithm() != "onednn"
    g = dispatch.Geometry((2, 3, 9, 9), (16, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1,
                          np.dtype("f8"))
    with dispatch.algorithm("onednn"), pytest.raises(ValueError, match="needs oneDNN installed"):
        dispatch.choose("forward", g)


# ----- every pass against the reference ----------------------------------------------------------
@st.composite
def geometries(draw):
    """1-, 2- and 3-D convolutions: groups (depthwise among them), strides, dilations, and
    padding that differs on the two sides of an axis."""
    nd = draw(st.integers(1, 3))
    small = nd == 3
    batch = draw(st.integers(1, 4))
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 4))
    out_channels = groups * draw(st.integers(1, 4))
    if draw(st.booleans()) and groups > 1:
        channels = out_channels = groups  # depthwise
    k = tuple(draw(st.integers(1, 3 if small else 5)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(nd))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    spatial = tuple(draw(st.integers(1, 6 if small else 16)) for _ in range(nd))
    for n, kk, d, (lo, hi) in zip(spatial, k, dilation, padding, strict=True):
        assume(n + lo + hi - d * (kk - 1) >= 1)
    return ((batch, channels, *spatial), (out_channels, channels // groups, *k), stride,
            padding, dilation, groups)


def _pass(pass_, case, rng, name):
    """One pass of ``case`` with kernel ``name`` forced, on float32 arrays drawn from ``rng``
    (and the same pass in float64 by the reference, for the tolerance)."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    out = dispatch.Geometry(x_shape, w_shape, stride, padding, dilation, groups,
                            x.dtype).plan().out
    gy = rng.standard_normal((x_shape[0], w_shape[0], *out))

    def run(dtype):
        a, c, e, f = (v.astype(dtype) for v in (x, w, b, gy))
        if pass_ == "forward":
            return conv_module.correlate(a, c, e, stride, padding, dilation, groups)
        if pass_ == "weight-grad":
            return conv_module.weight_grad(a, f, w_shape, stride, padding, dilation, groups)
        return conv_module.input_grad(f, c, x_shape, stride, padding, dilation, groups)

    with dispatch.algorithm(name, passes=pass_), dispatch.trace() as ran:
        got = run(np.float32)
    assert ran[0] == (pass_, name), ran
    with dispatch.algorithm("reference", passes=pass_):
        exact = run(np.float64)
    return got, exact


def _close(got, exact, depth):
    """float32 against the float64 reference: a sum of ``depth`` products of unit normals."""
    assert got.dtype == np.float32 and got.shape == exact.shape
    np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-5 * max(1.0, np.sqrt(depth)))


@needs_onednn
@pytest.mark.parametrize("pass_", dispatch.PASSES)
@settings(max_examples=40, deadline=None)
@given(case=geometries())
def test_every_pass_matches_the_reference(pass_, case):
    got, exact = _pass(pass_, case, np.random.default_rng(0), "onednn")
    x_shape, w_shape = case[0], case[1]
    depth = int(np.prod(w_shape[1:])) * (x_shape[0] * int(np.prod(x_shape[2:])))
    _close(got, exact, depth)


@needs_onednn
@settings(max_examples=15, deadline=None)
@given(case=geometries())
def test_every_pass_matches_torch(torch, case):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    nd = len(x_shape) - 2
    conv = getattr(torch.nn.functional, f"conv{nd}d")
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    # torch pads both sides alike: pad the input by hand, as F.pad's (left, right) pairs
    pads = [p for pair in reversed(padding) for p in pair]
    ty = conv(torch.nn.functional.pad(tx, pads), tw, torch.tensor(b), stride, 0, dilation,
              groups)
    gy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(gy))
    wx, ww = wally.tensor(x, requires_grad=True), wally.tensor(w, requires_grad=True)
    with dispatch.algorithm("onednn"), dispatch.trace() as ran:
        y = getattr(F, f"conv{nd}d")(F.pad(wx, pads), ww, wally.tensor(b), stride, 0,
                                     dilation, groups)
        y.backward(wally.tensor(gy))
    assert [name for _, name in ran[:3]] == ["onednn"] * 3
    for got, want in ((y, ty), (wx.grad, tx.grad), (ww.grad, tw.grad)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-4,
                                   atol=1e-4)


@needs_onednn
def test_inputs_that_are_views_and_layers_without_bias(torch):
    """A transposed (non-contiguous) input and a layer without bias, through ``nn.Conv2d``."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 10, 12)).astype(np.float32).transpose(0, 1, 3, 2)
    layer = nn.Conv2d(3, 16, 3, padding=1, bias=False)
    wx = wally.tensor(x, requires_grad=True)
    with dispatch.trace() as ran:
        layer(wx).square().sum().backward()
    assert [name for _, name in ran] == ["onednn"] * 3
    tx = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    tw = torch.tensor(layer.weight.detach().numpy(), requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, padding=1).square().sum().backward()
    np.testing.assert_allclose(wx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(layer.weight.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-3)


# ----- the same bits on every run ----------------------------------------------------------------
@needs_onednn
@pytest.mark.parametrize("threads", [1, 2])
def test_the_same_bits_on_every_run(num_threads, threads):
    """Eight runs of each pass of a layer large enough that oneDNN splits it among its threads
    (a weight gradient reduced over 32 images and 1,024 positions) give one bit pattern."""
    num_threads(threads)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 32, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((32, 32, 32, 32)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    runs = {p: set() for p in dispatch.PASSES}
    for _ in range(8):
        with dispatch.trace() as ran:
            runs["forward"].add(conv_module.correlate(x, w, None, (1, 1), pads, (1, 1), 1)
                                .tobytes())
            runs["weight-grad"].add(conv_module.weight_grad(x, gy, w.shape, (1, 1), pads,
                                                            (1, 1), 1).tobytes())
            runs["input-grad"].add(conv_module.input_grad(gy, w, x.shape, (1, 1), pads, (1, 1),
                                                          1).tobytes())
        assert [name for _, name in ran] == ["onednn"] * 3
    assert {p: len(bits) for p, bits in runs.items()} == dict.fromkeys(dispatch.PASSES, 1)


@needs_onednn
def test_lenet_trains_the_same_with_and_without_it():
    """Three SGD steps of LeNet: oneDNN's weights within float32 rounding of wally's own."""
    from wally.models import lenet

    def train(enabled):
        wally.manual_seed(0)
        model = lenet()
        optimizer = wally.optim.SGD(model.parameters(), lr=0.1)
        x = wally.randn(64, 1, 28, 28)
        y = wally.randint(0, 10, (64,))
        with onednn.flags(enabled), dispatch.trace() as ran:
            for _ in range(3):
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
        return [p.detach().numpy() for p in model.parameters()], {name for _, name in ran}

    ours, kernels = train(False)
    theirs, dnnl_kernels = train(True)
    assert "onednn" not in kernels and "onednn" in dnnl_kernels  # conv2 (conv1 stays direct)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_where_wally_is_faster_depends_on_onednns_kernel():
    """The measured exclusions (wally.backends.tuning): depthwise layers on the numba direct
    kernels stay wally's on every machine; Winograd's layers and deep weight gradients only
    where oneDNN's kernel is an AVX2 one."""
    f32 = np.dtype("float32")
    pad = ((1, 1), (1, 1))
    resnet = dispatch.Geometry((64, 512, 4, 4), (512, 512, 3, 3), (1, 1), pad, (1, 1), 1, f32)
    for pass_ in dispatch.PASSES:
        assert not dispatch.wally_is_faster(pass_, resnet, "jit:avx512_core")
        assert not dispatch.wally_is_faster(pass_, resnet, "brgconv:avx512_core_amx")
    assert dispatch.wally_is_faster("weight-grad", resnet, "jit:avx2")  # 4608 deep
    shallow = dispatch.Geometry((64, 16, 8, 8), (16, 16, 3, 3), (1, 1), pad, (1, 1), 1, f32)
    assert not dispatch.wally_is_faster("weight-grad", shallow, "jit:avx2")
    depthwise = dispatch.Geometry((64, 128, 32, 32), (128, 1, 3, 3), (1, 1), pad, (1, 1), 128,
                                  f32)
    direct = dispatch.accel.is_enabled("direct")
    for implementation in ("jit_dw:avx512_core", "jit_uni_dw:avx2"):
        for pass_ in dispatch.PASSES:
            assert dispatch.wally_is_faster(pass_, depthwise, implementation) == direct


# ----- ReLU ---------------------------------------------------------------------------------------
@needs_onednn
@pytest.mark.parametrize("threads", [1, 2])
def test_relus_gradient_is_numpys_bit_for_bit_and_runs_only_where_it_pays(num_threads, threads,
                                                                         monkeypatch):
    """At two threads the gradient of a float32 ReLU of at least ONEDNN_RELU_BYTES runs as
    oneDNN's eltwise primitive, with NumPy's bits (NaN kept, signed zeros alike); at one
    thread, or below the size, NumPy's runs.  The forward pass is always NumPy's: oneDNN's
    turns a NaN into 0."""
    from wally.backends import tuning

    num_threads(threads)
    used = []
    real = onednn.relu_plan
    monkeypatch.setattr(onednn, "relu_plan", lambda *a: used.append(a) or real(*a))
    rng = np.random.default_rng(0)
    shape = (64, 8, 16, 16)  # 512 KiB of float32
    assert 4 * np.prod(shape) >= tuning.ONEDNN_RELU_BYTES
    x = rng.standard_normal(shape).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    x.flat[:8] = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.0]
    gy.flat[8:14] = [np.nan, np.nan, np.inf, -np.inf, -1.0, -2.0]
    x.flat[8:14] = [-1.0, 1.0, -2.0, 0.0, -0.0, 2.0]

    def run():
        t = wally.tensor(x, requires_grad=True)
        y = F.relu(t)
        with np.errstate(invalid="ignore"):
            y.backward(wally.tensor(gy))
        return y.detach().numpy(), t.grad.numpy()

    y, gx = run()
    with onednn.flags(False):
        y_np, gx_np = run()
    assert len(used) == (1 if threads == 2 else 0)
    assert np.isnan(y.flat[0])  # NumPy's forward pass: a NaN stays NaN
    np.testing.assert_array_equal(y, y_np)
    np.testing.assert_array_equal(gx, gx_np)
    assert np.array_equal(np.signbit(gx), np.signbit(gx_np))
    assert np.isnan(gx.flat[8]) and np.isnan(gx.flat[10]) and gx.flat[12] == 0
    used.clear()
    for small in (x[:1, :1], x.astype(np.float64), x[:, :, ::2]):  # 1 KiB, float64, strided
        t = wally.tensor(small, requires_grad=True)
        with np.errstate(invalid="ignore"):
            F.relu(t).sum().backward()
    assert used == []


@needs_onednn
def test_relus_forward_pass_stays_on_the_calling_thread_beside_onednn(num_threads,
                                                                      chunk_calls):
    """At two threads a float32 ReLU large enough to split (tuning.ELEMENTWISE_BYTES) runs
    on the calling thread where oneDNN is on, and split among wally's threads where it is
    off, with the same bits (NaN kept)."""
    from wally.backends import tuning

    num_threads(2)
    x = np.random.default_rng(9).standard_normal(tuning.ELEMENTWISE_BYTES // 4 + 64)
    x = x.astype(np.float32).reshape(-1, 8)
    x[0, 0] = np.nan
    y = F.relu(wally.tensor(x)).numpy()
    assert chunk_calls == []
    with onednn.flags(False):
        y_split = F.relu(wally.tensor(x)).numpy()
    assert len(chunk_calls) == 1 and chunk_calls[0] > 1
    assert np.isnan(y[0, 0])
    np.testing.assert_array_equal(y, y_split)


# ----- average pooling ----------------------------------------------------------------------------
POOLS = [  # (input shape, kernel, stride): 1-, 2- and 3-D, overlapping, uneven, uncovered edges
    ((4, 3, 9, 9), 2, 2), ((4, 3, 9, 9), 3, 2), ((4, 3, 9, 9), (2, 3), (1, 2)),
    ((2, 5, 8), 2, 1), ((2, 2, 5, 6, 7), 2, 2), ((3, 10, 10), 2, 2), ((64, 6, 28, 28), 2, 2),
]


def _avg(shape, kernel, stride, dtype=np.float32, **kw):
    """``(y, dx)`` of an average pooling of a seeded input, the op picked by the shape (an
    unbatched 2-D input has three axes)."""
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(dtype)
    nd = 2 if shape == (3, 10, 10) else len(shape) - 2
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    t = wally.tensor(x, requires_grad=True)
    y = pool(t, kernel, stride, **kw)
    y.backward(wally.tensor(rng.standard_normal(y.shape).astype(dtype)))
    return x, y.detach().numpy(), t.grad.numpy()


@needs_onednn
@pytest.mark.parametrize("shape, kernel, stride", POOLS)
def test_average_pooling_matches_numpys_and_torch(num_threads, monkeypatch, torch, shape,
                                                  kernel, stride):
    """At two threads a float32 average pooling without padding runs as oneDNN's primitives:
    within a rounding of NumPy's path and of PyTorch's, the same bits on every run and at one
    to three threads of oneDNN's."""
    used = []
    real = onednn.avg_pool_plan
    monkeypatch.setattr(onednn, "avg_pool_plan", lambda *a: used.append(a) or real(*a))
    num_threads(1)
    _, y_np, gx_np = _avg(shape, kernel, stride)
    assert used == []  # one thread: NumPy's
    runs = set()
    for threads in (2, 3, 2):
        num_threads(threads)
        x, y, gx = _avg(shape, kernel, stride)
        runs.add((y.tobytes(), gx.tobytes()))
    assert len(used) == 3 and len(runs) == 1
    np.testing.assert_allclose(y, y_np, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, gx_np, rtol=1e-6, atol=1e-6)
    nd = 2 if shape == (3, 10, 10) else len(shape) - 2
    pool = getattr(torch.nn.functional, f"avg_pool{nd}d")
    xt = torch.tensor(x, requires_grad=True)
    yt = pool(xt, kernel, stride)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-6)


@needs_onednn
def test_average_pooling_keeps_numpys_path_where_onednn_would_differ(num_threads, monkeypatch):
    """Padding, ceil_mode windows past the input, a divisor_override, float64: NumPy's."""
    used = []
    real = onednn.avg_pool_plan
    monkeypatch.setattr(onednn, "avg_pool_plan", lambda *a: used.append(a) or real(*a))
    num_threads(2)
    _avg((4, 3, 9, 9), 2, 2, padding=1)
    _avg((4, 3, 9, 9), 2, 2, ceil_mode=True)
    _avg((4, 3, 9, 9), 2, 2, divisor_override=3)
    _avg((4, 3, 9, 9), 2, 2, dtype=np.float64)
    assert used == []
    _avg((4, 3, 9, 9), 2, 2, divisor_override=4)  # the window's own size: the same mean
    assert len(used) == 1


# ----- matrix products (the linear layers) --------------------------------------------------------
def _layouts(rng, shape, order):
    a = rng.standard_normal(shape).astype(np.float32)
    return np.asfortranarray(a) if order == "F" else a


@needs_onednn
@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 300), k=st.integers(1, 300), n=st.integers(1, 300),
       a_order=st.sampled_from("CF"), b_order=st.sampled_from("CF"))
def test_matmul_matches_float64_in_either_layout(m, k, n, a_order, b_order):
    """oneDNN's product on 2 threads, at every size (wally._parallel.matmul gives it those of
    at least tuning.ONE_THREAD_MACS), against float64."""
    rng = np.random.default_rng(m * 7 + k * 3 + n)
    a, b = _layouts(rng, (m, k), a_order), _layouts(rng, (k, n), b_order)
    got = onednn.matmul_plan(a, b, 2).run(a, b, np.empty((m, n), np.float32))
    assert got.dtype == np.float32 and got.shape == (m, n) and got.flags.c_contiguous
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64),
                               rtol=1e-4, atol=1e-5 * np.sqrt(k))


@needs_onednn
def test_matmul_runs_on_onednn_only_where_it_may(num_threads, monkeypatch):
    from wally import _parallel

    calls = []
    real = onednn.matmul_plan

    def spy(a, b, threads):
        plan = real(a, b, threads)
        if plan is not None:
            calls.append(threads)
        return plan

    monkeypatch.setattr(onednn, "matmul_plan", spy)
    rng = np.random.default_rng(6)
    a, b = _layouts(rng, (256, 400), "C"), _layouts(rng, (120, 400), "C").T  # a linear layer

    def ran(x=a, y=b):
        calls.clear()
        _parallel.matmul(x, y)
        return bool(calls)

    num_threads(2)
    assert ran()
    assert not ran(a[:, ::2], b[::2])  # neither row- nor column-major: NumPy's
    assert not ran(a.astype(np.float64), b.astype(np.float64))
    assert not ran(a[:2], b)  # under tuning.ONE_THREAD_MACS: the calling thread
    with onednn.flags(False):
        assert not ran()
    try:
        use_deterministic_algorithms(True)
        assert not ran()
    finally:
        use_deterministic_algorithms(False)
    num_threads(1)
    assert not ran()


@needs_onednn
def test_matmul_gives_the_same_bits_on_every_run(num_threads):
    """LeNet's first linear layer, forward and both gradients, eight times at 2 threads."""
    from wally import _parallel

    num_threads(2)
    rng = np.random.default_rng(7)
    x, w, gy = (rng.standard_normal(s).astype(np.float32)
                for s in ((256, 400), (120, 400), (256, 120)))
    products = ((x, w.T), (gy, w), (gy.T, x))
    bits = [{_parallel.matmul(p, q).tobytes() for _ in range(8)} for p, q in products]
    assert [len(b) for b in bits] == [1, 1, 1]


@needs_onednn
def test_a_linear_layer_matches_torch_at_two_threads(num_threads, torch):
    num_threads(2)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((256, 400)).astype(np.float32)
    layer = nn.Linear(400, 120)
    wx = wally.tensor(x, requires_grad=True)
    layer(wx).square().sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.detach().numpy(), requires_grad=True)
    tb = torch.tensor(layer.bias.detach().numpy(), requires_grad=True)
    torch.nn.functional.linear(tx, tw, tb).square().sum().backward()
    for got, want in ((wx.grad, tx.grad), (layer.weight.grad, tw.grad), (layer.bias.grad, tb.grad)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-3)
