"""wally.backends.conv: the dispatch table, forcing a kernel, and every kernel held against the
reference path (im2col of the whole batch, one GEMM, col2im) over grids that reach it.

Each kernel test forces its kernel with ``algorithm(name, passes=...)`` and checks with
``trace()`` that it is the kernel that ran, so that no test can pass while running the
reference (or another kernel) instead.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import wally
import wally.nn.functional as F
from wally._parallel import use_deterministic_algorithms
from wally.backends import accel, tuning
from wally.backends import conv as dispatch
from wally.functional import conv as conv_module

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "CONVOLUTION.md"
# oneDNN's passes (float32 only) are held against the reference in test_onednn.py.
KERNELS = [(r.pass_, r.name) for r in dispatch.algorithms() if r.name not in ("reference",
                                                                             "onednn")]
# The compiled kernels need numba (pip install wally-cnn[accel]); NumPy's run without it.
COMPILED = {"direct", "depthwise-direct"}


def _skip_without_numba(name):
    if name in COMPILED and not accel.is_available():
        pytest.skip("numba is not installed (pip install wally-cnn[accel])")


# ----- the table ---------------------------------------------------------------------------------
def test_every_pass_starts_with_the_reference_and_ends_with_a_rule_that_always_applies():
    for pass_ in dispatch.PASSES:
        rules = dispatch.algorithms(pass_)
        assert rules[0].name == "reference" and rules[0].pays is None
        assert rules[-1].name == "im2col"
        g = dispatch.Geometry((1, 1, 1), (1, 1, 1), (1,), ((0, 0),), (1,), 1, np.dtype("f4"))
        assert rules[-1].fits(g) and rules[-1].pays(g)
    assert [r.name for r in dispatch.algorithms("input-grad")] == [
        "reference",
        "onednn",
        "flipped",
        "depthwise",
        "rows",
        "im2col",
    ]


def test_the_table_prints_and_reprs_readably():
    text = str(dispatch.algorithms())
    for rule in dispatch.algorithms():
        assert rule.name in text and rule.why in text and rule.measured in text
    assert "Rule('forward', 'winograd'" in repr(dispatch.algorithms())


def test_the_documentation_shows_the_table_as_it_is():
    """docs/CONVOLUTION.md holds ``algorithms().markdown()`` between its two markers;
    regenerate it with ``python -m wally.backends`` and paste."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- table: start -->\n(.*?)<!-- table: end -->", text, re.S)
    assert found, "docs/CONVOLUTION.md lost its table markers"
    assert found.group(1) == dispatch.algorithms().markdown()
    found = re.search(r"<!-- plans: start -->\n(.*?)<!-- plans: end -->", text, re.S)
    assert found, "docs/CONVOLUTION.md lost its plan markers"
    assert found.group(1) == dispatch.plans_markdown()  # python -m wally.backends plans


def test_forcing_refuses_unknown_names_passes_and_geometries():
    with pytest.raises(ValueError, match="no algorithm 'bogus'; expected one of depthwise"):
        with dispatch.algorithm("bogus"):
            pass
    with pytest.raises(ValueError, match="the weight-grad pass has no algorithm 'winograd'"):
        with dispatch.algorithm("winograd", passes="weight-grad"):
            pass
    with pytest.raises(ValueError, match="expected a pass in"):
        with dispatch.algorithm("im2col", passes="backward"):
            pass
    x = wally.randn(2, 4, 9, 9)
    w = wally.randn(4, 4, 5, 5)
    with dispatch.algorithm("winograd"):
        with pytest.raises(ValueError) as error:
            F.conv2d(x, w)
    message = str(error.value)
    assert "\n" not in message
    assert "'winograd' cannot run this forward pass" in message
    assert "3×3" in message and "weight (4, 4, 5, 5)" in message
    with dispatch.algorithm("depthwise", passes="forward"), pytest.raises(ValueError):
        F.conv2d(x, w)


def test_forcing_is_scoped_and_nests():
    x, w = wally.randn(2, 4, 12, 12), wally.randn(4, 4, 3, 3)  # 36 deep: im2col
    with dispatch.algorithm("reference"):
        with dispatch.algorithm("im2col", passes="forward"):
            F.conv2d(x, w)
            assert dispatch.last_algorithm("forward") == "im2col"
        F.conv2d(x, w)
        assert dispatch.last_algorithm("forward") == "reference"
    F.conv2d(x, w)
    assert dispatch.last_algorithm("forward") == "im2col"


def test_a_forced_pass_leaves_the_others_to_the_table():
    x = wally.randn(4, 6, 14, 14, requires_grad=True)
    w = wally.randn(16, 6, 5, 5, requires_grad=True)
    with dispatch.algorithm("im2col", passes="weight-grad"), dispatch.trace() as ran:
        F.conv2d(x, w).sum().backward()
    assert ran == [("forward", "rows"), ("weight-grad", "im2col"), ("input-grad", "rows")]


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, threads, expected",
    [
        # LeNet's layers at batch 64 and 1: the row layout on wide rows for conv1's weight
        # gradient (6 outputs), the row layout, im2col (conv1's forward pass: the compiled
        # direct kernel where numba is installed, else im2col's wide rows)
        ((64, 1, 28, 28), (6, 1, 5, 5), {"padding": 2}, 2, ("direct", "rows", "flipped")),
        # wide rows, shallow (one channel) and 16 outputs: im2col
        ((64, 1, 28, 28), (16, 1, 5, 5), {"padding": 2}, 2, ("im2col", "im2col", "flipped")),
        ((8, 6, 14, 14), (16, 6, 5, 5), {}, 2, ("rows", "rows", "rows")),
        ((1, 6, 14, 14), (16, 6, 5, 5), {}, 2, ("im2col", "im2col", "im2col")),
        # a wide 3×3 layer: Winograd at any thread count from 2^26 multiply-adds, its weight
        # gradient by rows; below, rows forward too
        ((16, 64, 32, 32), (64, 64, 3, 3), {"padding": 1}, 1, ("winograd", "rows", "flipped")),
        ((16, 64, 32, 32), (64, 64, 3, 3), {"padding": 1}, 2, ("winograd", "rows", "flipped")),
        ((2, 64, 32, 32), (64, 64, 3, 3), {"padding": 1}, 2, ("rows", "rows", "flipped")),
        # too deep for rows; strided; depthwise
        ((4, 256, 8, 8), (256, 256, 3, 3), {"padding": 1}, 2, ("im2col", "im2col", "flipped")),
        (
            (8, 16, 20, 20),
            (32, 16, 3, 3),
            {"stride": 2, "padding": 1},
            2,
            ("im2col", "im2col", "im2col"),
        ),
        (
            (4, 8, 16, 16),
            (8, 1, 3, 3),
            {"padding": 1, "groups": 8},
            2,
            ("direct", "depthwise-direct", "flipped"),  # depthwise without numba
        ),
        (
            (4, 8, 16, 16),
            (8, 1, 3, 3),
            {"stride": 2, "groups": 8},
            2,
            ("depthwise", "depthwise", "depthwise"),
        ),
    ],
)
def test_the_automatic_choice(num_threads, x_shape, w_shape, kwargs, threads, expected):
    x = wally.randn(*x_shape, requires_grad=True)
    w = wally.randn(*w_shape, requires_grad=True)
    num_threads(threads)
    if not accel.is_enabled():  # NumPy alone: depthwise layers take the depthwise kernels
        fallback = "depthwise" if kwargs.get("groups", 1) > 1 else "im2col"
        expected = tuple(fallback if "direct" in name else name for name in expected)
    with dispatch.trace() as ran:
        F.conv2d(x, w, **kwargs).sum().backward()
    assert [name for pass_, name in ran[:3]] == list(expected)
    assert [pass_ for pass_, _ in ran[:3]] == list(dispatch.PASSES)


def test_no_rule_depends_on_the_thread_count(num_threads):
    """The kernel a layer takes is the same at 1, 2 and 3 threads, deterministic or not (a
    64-channel 3×3 layer: Winograd; before BLAS was held to one thread in every kernel, it
    was a one-thread rule)."""
    g = dispatch.Geometry(
        (16, 64, 32, 32), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, np.dtype("f4")
    )
    try:
        for deterministic in (False, True):
            use_deterministic_algorithms(deterministic)
            for threads in (1, 2, 3):
                num_threads(threads)
                assert dispatch.choose("forward", g, record=False) == "winograd"
    finally:
        use_deterministic_algorithms(False)


def test_the_budget_and_its_old_names_are_one():
    assert conv_module.set_memory_budget is dispatch.set_memory_budget
    assert conv_module.im2col_budget is dispatch.im2col_budget
    assert F.conv.get_memory_budget is dispatch.get_memory_budget
    assert conv_module.DEFAULT_MEMORY_BUDGET == tuning.DEFAULT_MEMORY_BUDGET
    with dispatch.im2col_budget(12345):
        assert conv_module.get_memory_budget() == 12345


def test_tuning_constants_are_read_at_call_time(monkeypatch):
    """A changed constant changes the choice at once (the rules read ``tuning.X``)."""
    g = dispatch.Geometry(
        (8, 6, 14, 14), (16, 6, 5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, np.dtype("f4")
    )
    assert dispatch.choose("forward", g, record=False) == "rows"
    monkeypatch.setattr(tuning, "ROWS_MIN_POSITIONS", 10**9)
    assert dispatch.choose("forward", g, record=False) == "im2col"


# ----- every kernel against the reference --------------------------------------------------------
@st.composite
def geometries(draw, kernel, pass_="forward"):
    """A convolution inside ``kernel``'s region: what it needs to run (its ``fits``), with
    channels, map sizes, strides, padding and dilation drawn across it."""
    most = 2 if kernel in ("direct", "depthwise-direct") else 3
    nd = 2 if kernel in ("winograd", "rows") else draw(st.integers(1, most))
    small = nd == 3
    batch = draw(st.integers(1, 3))
    if kernel in ("depthwise", "depthwise-direct"):
        groups = draw(st.integers(2, 6))
        channels = out_channels = groups
    elif kernel in ("winograd", "rows"):
        groups = 1
        channels, out_channels = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    else:
        groups = draw(st.integers(1, 3))
        channels = groups * draw(st.integers(1, 3))
        out_channels = groups * draw(st.integers(1, 3))
    if kernel == "winograd":
        k = (3, 3)
    else:
        k = tuple(draw(st.integers(1, 3 if small else 5)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(nd))
    if kernel in ("winograd", "flipped", "direct", "depthwise-direct"):
        stride = (1,) * nd
    if kernel == "winograd":
        dilation = (1, 1)
    if kernel == "rows":
        stride = (1, stride[1])
    reach = [d * (kk - 1) for kk, d in zip(k, dilation, strict=True)]
    if kernel == "flipped":
        padding = tuple(draw(st.integers(0, r)) for r in reach)
    else:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    spatial = tuple(draw(st.integers(1, 6 if small else 14)) for _ in range(nd))
    for n, r, p in zip(spatial, reach, padding, strict=True):
        assume(n + 2 * p - r >= 1)
    budget = draw(st.sampled_from([None, 256, 4096]))  # small: chunks of rows of one image
    return (
        (batch, channels, *spatial),
        (out_channels, channels // groups, *k),
        stride,
        tuple((p, p) for p in padding),
        dilation,
        groups,
        budget,
    )


def _run(pass_, case, rng):
    """One pass on float64 arrays, as the autograd ``Function`` calls it."""
    x_shape, w_shape, stride, padding, dilation, groups, _ = case
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    if pass_ == "forward":
        b = rng.standard_normal(w_shape[0])
        return conv_module.correlate(x, w, b, stride, padding, dilation, groups)
    out = dispatch.Geometry(x_shape, w_shape, stride, padding, dilation, groups, x.dtype).plan().out
    gy = rng.standard_normal((x_shape[0], w_shape[0], *out))
    if pass_ == "weight-grad":
        return conv_module.weight_grad(x, gy, w_shape, stride, padding, dilation, groups)
    return conv_module.input_grad(gy, w, x_shape, stride, padding, dilation, groups)


def _check_against_reference(pass_, name, case):
    budget = case[-1]
    with dispatch.algorithm("reference", passes=pass_), dispatch.trace() as ran:
        expected = _run(pass_, case, np.random.default_rng(0))
    assert ran == [(pass_, "reference")]
    with (
        dispatch.algorithm(name, passes=pass_),
        dispatch.trace() as ran,
        dispatch.im2col_budget(budget or tuning.DEFAULT_MEMORY_BUDGET),
    ):
        got = _run(pass_, case, np.random.default_rng(0))
    assert ran[0] == (pass_, name), ran  # the forced kernel is the one that ran
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pass_, name", KERNELS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_kernel_matches_the_reference(pass_, name, data):
    _skip_without_numba(name)
    _check_against_reference(pass_, name, data.draw(geometries(name, pass_)))


@pytest.mark.parametrize("threads", [1, 3])
def test_kernels_match_the_reference_on_several_threads(num_threads, threads):
    """One geometry per kernel that splits into several chunks, on several threads."""
    cases = {
        "depthwise": ((3, 4, 20, 20), (4, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4, 4096),
        "winograd": ((2, 6, 20, 18), (5, 6, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, None),
        "direct": ((9, 2, 11, 13), (4, 1, 3, 2), (1, 1), ((2, 0), (1, 3)), (2, 1), 2, None),
        "rows": ((5, 3, 14, 14), (4, 3, 5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, 256),
        "im2col": ((3, 4, 20, 20), (6, 2, 3, 3), (2, 1), ((1, 1), (1, 1)), (1, 2), 2, 512),
        "flipped": ((3, 4, 20, 20), (6, 4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, 512),
    }
    # the depthwise weight gradient's direct kernel: 17 images, three chunks of at most 8
    depthwise = ((17, 4, 11, 13), (4, 1, 3, 2), (1, 1), ((2, 0), (1, 3)), (2, 1), 4, None)
    num_threads(threads)
    for pass_, name in KERNELS:
        if name not in COMPILED or accel.is_available():
            case = depthwise if name == "depthwise-direct" else cases[name]
            _check_against_reference(pass_, name, case)


def test_the_reference_matches_the_loops():
    """The reference itself, against the note's loops (wally.reference), one case per pass."""
    from wally import reference

    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 4, 7, 8)), rng.standard_normal((6, 2, 3, 2)), None
    kwargs = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
    with dispatch.algorithm("reference"):
        y = conv_module.correlate(x, w, b, (2, 1), ((1, 1), (0, 0)), (1, 2), 2)
    np.testing.assert_allclose(y, reference.conv_nd_loops(x, w, b, **kwargs), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(case=geometries("im2col"))
def test_the_reference_matches_torch(torch, case):
    """The reference (every pass), against PyTorch's convolution and its two gradients."""
    x_shape, w_shape, stride, padding, dilation, groups, _ = case
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[0]))
    pads = tuple(lo for lo, _ in padding)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    conv = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)
    ty = conv[len(stride) - 1](tx, tw, tb, stride, pads, dilation, groups)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    with dispatch.algorithm("reference"), dispatch.trace() as ran:
        y = conv_module.correlate(x, w, b, stride, padding, dilation, groups)
        gw = conv_module.weight_grad(x, gy, w_shape, stride, padding, dilation, groups)
        gx = conv_module.input_grad(gy, w, x_shape, stride, padding, dilation, groups)
    assert {name for _, name in ran} == {"reference"}
    for ours, theirs in ((y, ty.detach()), (gw, tw.grad), (gx, tx.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads", [1, 2])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_short_column_blocks_match_the_reference(threads, data):
    """im2col's short-column blocks (``tuning.SKINNY_COLUMNS`` at a time, one batched product),
    reached on small inputs by shrinking the block to 8 columns: every pass against the
    reference, with a tail of columns that is not a whole block."""
    from wally._parallel import num_threads

    case = data.draw(geometries("im2col"))
    skinny_calls = []

    def spy(depth, width):
        result = skinny(depth, width)
        skinny_calls.append(result)
        return result

    columns, skinny = tuning.SKINNY_COLUMNS, conv_module._skinny
    tuning.SKINNY_COLUMNS, conv_module._skinny = 8, spy
    try:
        with num_threads(threads):
            for pass_ in ("forward", "weight-grad"):
                _check_against_reference(pass_, "im2col", case)
    finally:
        tuning.SKINNY_COLUMNS, conv_module._skinny = columns, skinny
    assert skinny_calls  # the kernel asked; with 8-column blocks most cases take them


def test_short_column_blocks_are_reached_with_a_tail():
    """One case that must take the blocks: 25 rows of columns and, on wide rows, 3·27·31 =
    2511 columns per chunk, not a multiple of the 8-column block."""
    taken = []
    skinny, columns = conv_module._skinny, tuning.SKINNY_COLUMNS

    def spy(depth, width):
        taken.append((skinny(depth, width), width % 8))
        return taken[-1][0]

    tuning.SKINNY_COLUMNS, conv_module._skinny = 8, spy
    try:
        case = ((3, 1, 27, 27), (6, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1, None)
        for pass_ in ("forward", "weight-grad"):
            _check_against_reference(pass_, "im2col", case)
    finally:
        tuning.SKINNY_COLUMNS, conv_module._skinny = columns, skinny
    assert any(took for took, _ in taken) and any(took and tail for took, tail in taken)


@pytest.mark.parametrize("threads", [1, 2])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_large_weight_gradient_chunks_match_the_reference(threads, data):
    """im2col's weight gradient with its chunks of at least ``WEIGHT_GRAD_COLUMNS`` columns
    and its ``dY @ colsᵀ`` products, reached on small layers by shrinking both thresholds."""
    from wally._parallel import num_threads

    case = data.draw(geometries("im2col"))
    saved = tuning.WEIGHT_GRAD_COLUMNS, tuning.WEIGHT_GRAD_DIRECT_ENTRIES
    tuning.WEIGHT_GRAD_COLUMNS = data.draw(st.sampled_from([1, 64, 1 << 20]))
    tuning.WEIGHT_GRAD_DIRECT_ENTRIES = 1
    try:
        with num_threads(threads):
            _check_against_reference("weight-grad", "im2col", case)
    finally:
        tuning.WEIGHT_GRAD_COLUMNS, tuning.WEIGHT_GRAD_DIRECT_ENTRIES = saved


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_weight_gradient_chunks_are_an_even_share_within_the_budget(num_threads, threads):
    """ResNet-18's 512-channel layers on 4×4 maps, batch 64: one chunk per thread (not 2 MiB
    chunks of tall columns), never over each thread's share of the budget, and under
    deterministic algorithms the same chunks at any thread count."""
    num_threads(threads)
    depth, columns, itemsize = 512 * 9, 64 * 6 * 4, 4  # wide rows: 6 columns a row
    limit = dispatch.weight_grad_limit(depth, columns, itemsize)
    assert limit >= dispatch.chunk_limit()
    assert limit <= dispatch.get_memory_budget() // threads
    per_column = depth * itemsize
    assert -(-columns // (limit // per_column)) == threads
    with dispatch.im2col_budget(1 << 20):  # a small budget wins over the wanted size
        assert dispatch.weight_grad_limit(depth, columns, itemsize) <= (1 << 20) // threads
    with use_deterministic(True):
        assert dispatch.weight_grad_limit(depth, columns, itemsize) == -(
            -columns // tuning.DETERMINISTIC_SHARES) * per_column
    # Short columns keep the cache-sized chunks.
    assert dispatch.weight_grad_limit(9, columns, itemsize) == dispatch.chunk_limit()


class use_deterministic:
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        use_deterministic_algorithms(self.mode)

    def __exit__(self, *exc):
        use_deterministic_algorithms(False)


def test_docstring_examples_run():
    """The module's examples (the table's order, where wally's own kernels stay), with the
    conftest's ``WALLY_ONEDNN=0`` or not."""
    import doctest

    x, w = wally.randn(2, 3, 8, 8), wally.randn(4, 3, 3, 3)
    result = doctest.testmod(dispatch, extraglobs={"F": wally.nn.functional, "x": x, "w": w},
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
