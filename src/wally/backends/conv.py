"""Which kernel runs a convolution, and why: one ordered table, in the spirit of
``torch.backends.cudnn``.

Every ``conv1d``/``conv2d``/``conv3d`` call runs three passes, each of which asks this table
for a kernel: the **forward** pass ``y = W ⋆ x + b``, the **weight-grad** pass ``dW`` and the
**input-grad** pass ``dX``.  The table's rules are tried in order and the first whose
condition holds runs; the last rule of each pass always applies.  The first rule, the
**reference**, is the note's equation written as code and never chosen by itself::

    cols = im2col(x)                  # (C·∏k, N·∏out): every window of x, one per column
    Y    = W (O × C·∏k) @ cols        # one GEMM per group
    dW   = dY (O × N·∏out) @ colsᵀ    # backward: the same product, transposed
    dX   = col2im(Wᵀ @ dY)            # and its adjoint, added back window by window

Every other kernel computes the same thing faster for some geometry, and is tested against it
(``tests/test_backends_conv.py``).  Print the table:

    >>> import wally.backends.conv as conv
    >>> print(conv.algorithms())                                  # doctest: +SKIP
    pass         algorithm   runs where ...

Force one kernel (for a test, a benchmark, or to rule one out), on every pass that has it or
on the passes named::

    >>> with conv.algorithm("im2col"):                            # doctest: +SKIP
    ...     y = F.conv2d(x, w, padding=1)
    >>> conv.last_algorithm("forward")                            # doctest: +SKIP
    'im2col'

A forced kernel that cannot compute this geometry is refused with one ``ValueError`` line
(rather than replaced by another one with a warning: a test or benchmark that forces a kernel
must not measure a different one without failing).  A forced kernel may exceed the memory
budget (the budget is one of the reasons a rule is chosen, not one of what it can compute).

**Determinism.**  Every kernel gives the same bits from run to run at a fixed thread count.
No rule looks at the thread count, so the kernel a layer takes does not depend on it; under
:func:`wally.use_deterministic_algorithms` the chunks don't either.

**The memory budget.**  A chunk's im2col columns never take more than the budget, all threads
together: 256 MiB unless the environment variable ``WALLY_CONV_MEMORY_BUDGET`` (bytes, or with
a ``K``/``M``/``G`` suffix, powers of 1024) says otherwise at import, or
:func:`set_memory_budget` / :func:`im2col_budget` change it.  The smallest chunk is one output
row of one image, so a budget below that row's columns is exceeded by that much.  (The same
functions are in ``wally.nn.functional.conv`` under the same names.)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from wally._parallel import are_deterministic_algorithms_enabled, get_num_threads
from wally._windows import column_plan, volume
from wally._winograd import worth_it as winograd_worth_it
from wally.backends import accel, onednn, tuning

__all__ = [
    "PASSES",
    "Geometry",
    "Rule",
    "algorithms",
    "algorithm",
    "last_algorithm",
    "trace",
    "choose",
    "set_memory_budget",
    "get_memory_budget",
    "im2col_budget",
]

PASSES = ("forward", "weight-grad", "input-grad")
Pairs = tuple[tuple[int, int], ...]

# ----- the memory budget ------------------------------------------------------------------------
DEFAULT_MEMORY_BUDGET = tuning.DEFAULT_MEMORY_BUDGET


def _parse_budget(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = units.get(text[-1:], 1)
    value = int(float(text[:-1] if text[-1:] in units else text) * scale)
    if value <= 0:
        raise ValueError(value)
    return value


def _budget_from_environment() -> int:
    text = os.environ.get("WALLY_CONV_MEMORY_BUDGET")
    if not text:
        return DEFAULT_MEMORY_BUDGET
    try:
        return _parse_budget(text)
    except (ValueError, IndexError):
        warnings.warn(
            f"WALLY_CONV_MEMORY_BUDGET={text!r} is not a positive number of bytes (such as "
            f"268435456 or 256M); using the default of {DEFAULT_MEMORY_BUDGET} bytes",
            RuntimeWarning,
            stacklevel=2,
        )
        return DEFAULT_MEMORY_BUDGET


_budget = {"bytes": _budget_from_environment()}


def set_memory_budget(nbytes: int) -> None:
    """Cap the im2col buffer of one convolution chunk at ``nbytes`` bytes.

    A convolution whose column matrix would be larger runs over the batch in chunks (and over
    the output rows of one image, when one image alone is too large) with the same results.

    Example::

        >>> F.conv.set_memory_budget(64 << 20)   # 64 MiB
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError(f"set_memory_budget: expected a positive number of bytes, got {nbytes!r}")
    _budget["bytes"] = nbytes


def get_memory_budget() -> int:
    """The im2col budget in bytes (see :func:`set_memory_budget`)."""
    return _budget["bytes"]


@contextlib.contextmanager
def im2col_budget(nbytes: int) -> Iterator[None]:
    """Within the ``with`` block, cap im2col buffers at ``nbytes`` (see
    :func:`set_memory_budget`); the previous budget is restored on exit.

    Example::

        >>> with F.conv.im2col_budget(1 << 20):
        ...     y = F.conv2d(x, w, padding=1)      # the same y, built 1 MiB at a time
    """
    previous = get_memory_budget()
    set_memory_budget(nbytes)
    try:
        yield
    finally:
        _budget["bytes"] = previous


def shares() -> int:
    """The threads the budget is planned for: all of them, or ``tuning.DETERMINISTIC_SHARES``
    under :func:`wally.use_deterministic_algorithms` (where :func:`workers` keeps more threads
    within the budget)."""
    if are_deterministic_algorithms_enabled():
        return tuning.DETERMINISTIC_SHARES
    return max(1, get_num_threads())


def chunk_limit() -> int:
    """Bytes of columns per chunk: each thread builds one chunk at a time, and all of them
    together stay within the budget."""
    return min(tuning.CACHE_BYTES, max(1, _budget["bytes"] // shares()))


def weight_grad_limit(depth: int, columns: int, itemsize: int) -> int:
    """Bytes of columns per chunk of an im2col weight gradient whose columns are ``depth``
    rows (``C·∏k``) by ``columns`` in all: :func:`chunk_limit`, or, where that would give
    chunks of fewer than ``tuning.WEIGHT_GRAD_COLUMNS`` columns, that many columns, but no
    more than an even share of the columns per thread, within each thread's share of the
    budget.  Each chunk's partial sum is ``depth × O``: short chunks of tall columns spend their
    time adding partials, not multiplying (ResNet-18's 512-channel layers on 4×4 maps)."""
    limit = chunk_limit()
    wanted = depth * tuning.WEIGHT_GRAD_COLUMNS * itemsize
    if wanted <= limit:
        return limit
    even = -(-columns // shares()) * depth * itemsize
    return max(limit, min(wanted, even, _budget["bytes"] // shares()))


def workers() -> int | None:
    """At most this many threads per convolution: every thread (``None``), or under
    deterministic algorithms as many as the budget holds chunks (at least
    ``DETERMINISTIC_SHARES``; a budget of 256 MiB holds 128 chunks of 2 MiB)."""
    if not are_deterministic_algorithms_enabled():
        return None
    return max(1, _budget["bytes"] // chunk_limit())


def padding_limit() -> int:
    """Bytes of one padded image that a thread may copy whole: half its share of the budget.
    A larger image is padded one chunk of output rows at a time (:meth:`ColumnPlan.pad_rows`),
    so a convolution needs its input, its output and the budget, never a padded copy of the
    input (a 20000×20000 RGB image's would take 4.5 GiB)."""
    return _budget["bytes"] // (2 * shares())


# ----- the geometry a rule looks at -------------------------------------------------------------
class Geometry:
    """One convolution as the rules see it: the input ``x (N, C, *spatial)`` (the image, also
    for the gradient passes), the weight ``(O, C/groups, *k)``, stride, padding (one
    ``(left, right)`` pair per axis), dilation, groups and the dtype.  (A plain class with
    its derived sizes computed once: every pass of every call builds one.)"""

    __slots__ = (
        "input_shape",
        "weight_shape",
        "stride",
        "padding",
        "dilation",
        "groups",
        "dtype",
        "kernel",
        "channels",
        "itemsize",
        "_plans",
    )

    def __init__(
        self,
        input_shape: Sequence[int],
        weight_shape: Sequence[int],
        stride: tuple[int, ...],
        padding: Pairs,
        dilation: tuple[int, ...],
        groups: int,
        dtype: Any,
    ) -> None:
        self.input_shape = tuple(input_shape)
        self.weight_shape = tuple(weight_shape)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.dtype = groups, dtype
        self.kernel = self.weight_shape[2:]
        self.channels = int(self.input_shape[1])
        self.itemsize = int(dtype.itemsize)
        self._plans: dict[bool | None, Any] = {}

    def plan(self, wide: bool | None = None) -> Any:
        """The :class:`~wally._windows.ColumnPlan` of this geometry (cached)."""
        plan = self._plans.get(wide)
        if plan is None:
            plan = column_plan(
                self.input_shape[2:], self.kernel, self.stride, self.padding, self.dilation, wide
            )
            self._plans[wide] = plan
        return plan

    def __str__(self) -> str:
        return (
            f"input {tuple(self.input_shape)}, weight {tuple(self.weight_shape)}, "
            f"stride {self.stride}, padding {self.padding}, dilation {self.dilation}, "
            f"groups {self.groups}"
        )


# ----- the conditions ---------------------------------------------------------------------------
def _always(g: Geometry) -> bool:
    return True


def is_depthwise(g: Geometry) -> bool:
    """``groups = C_in = C_out``, one filter per channel."""
    w = g.weight_shape
    return g.groups > 1 and g.groups == g.channels == w[0] and w[1] == 1


def _winograd_fits(g: Geometry) -> bool:
    if len(g.kernel) != 2 or g.kernel != (3, 3) or g.groups != 1:
        return False
    if g.stride != (1, 1) or g.dilation != (1, 1) or g.dtype.kind != "f":
        return False
    return all(n > 0 for n in g.plan().out)


def _winograd_pays(g: Geometry) -> bool:
    return chunk_limit() >= tuning.WINOGRAD_MIN_CHUNK_BYTES and winograd_worth_it(
        g.input_shape, g.weight_shape, g.padding, g.dtype
    )


def _rows_fits(g: Geometry) -> bool:
    return (
        len(g.kernel) == 2
        and g.stride[0] == 1
        and g.groups == 1
        and g.input_shape[0] * g.channels > 0
        and all(n > 0 for n in g.plan().out)
    )


def rows_per_image(g: Geometry) -> int:
    """Bytes of one image's shifted copies in the row layout: ``C·k_w·H_pad·OW``."""
    plan = g.plan(wide=False)
    return g.channels * g.kernel[1] * plan.padded[0] * plan.out[1] * g.itemsize


def _rows_pays(g: Geometry, pass_: str = "forward") -> bool:
    """Where the row layout beats im2col: exact columns up to ``ROWS_MAX_DEPTH``; on wide rows
    (im2col's other layout; never for the input gradient) up to ``ROWS_WIDE_MAX_DEPTH`` if
    each of its k_h GEMMs is ``ROWS_WIDE_MIN_ROW_DEPTH`` deep, or, for the weight gradient,
    if there are at most ``ROWS_WIDE_FEW_OUTPUTS`` output channels."""
    depth = g.channels * volume(g.kernel)
    plan = g.plan()
    positions = g.input_shape[0] * plan.out[0] * plan.out[1]
    if positions < tuning.ROWS_MIN_POSITIONS:
        return False
    if not plan.wide:
        if depth > tuning.ROWS_MAX_DEPTH:
            return False
    elif (pass_ == "input-grad" or depth > tuning.ROWS_WIDE_MAX_DEPTH
          or positions < tuning.ROWS_WIDE_MIN_POSITIONS):
        return False
    elif g.channels * g.kernel[1] < tuning.ROWS_WIDE_MIN_ROW_DEPTH and not (
        pass_ == "weight-grad" and g.weight_shape[0] <= tuning.ROWS_WIDE_FEW_OUTPUTS
    ):
        return False
    # Chunks are whole images: one image over the budget takes im2col, which splits its rows.
    return rows_per_image(g) <= chunk_limit()


def _rows_weight_grad_pays(g: Geometry) -> bool:
    return _rows_pays(g, "weight-grad")


def _rows_input_grad_pays(g: Geometry) -> bool:
    return _rows_pays(g, "input-grad")


def _reach(g: Geometry) -> tuple[int, ...]:
    return tuple(d * (k - 1) for k, d in zip(g.kernel, g.dilation, strict=True))


def _flipped_fits(g: Geometry) -> bool:
    return all(s == 1 for s in g.stride) and all(
        lo <= r and hi <= r for (lo, hi), r in zip(g.padding, _reach(g), strict=True)
    )


def _flipped_pays(g: Geometry) -> bool:
    out = g.plan().out
    growth = volume(g.input_shape[2:]) <= tuning.FLIPPED_MAX_GROWTH * volume(out)
    return is_depthwise(g) or growth


def _direct_fits(g: Geometry) -> bool:
    return (
        accel.is_available()
        and len(g.kernel) in (1, 2)
        and all(s == 1 for s in g.stride)
        and g.dtype.name in ("float32", "float64")  # what the compiled kernel is built for
        and g.dtype.isnative
        and all(n > 0 for n in g.plan().out)
    )


def direct_scratch(g: Geometry) -> int:
    """Bytes of one thread's scratch in the direct kernel: one padded image (with a tail of
    ``d_w·(k_w − 1)``) and one output channel's wide row sums."""
    plan = g.plan(wide=False)
    height, width = (plan.padded if len(plan.padded) == 2 else (1, *plan.padded))
    kernel_width, dilation = g.kernel[-1], g.dilation[-1]
    out_rows = plan.out[0] if len(plan.out) == 2 else 1
    plane = height * width + dilation * (kernel_width - 1)
    return (g.channels * plane + out_rows * width) * g.itemsize


def _direct_pays(g: Geometry) -> bool:
    depth = g.channels // g.groups * volume(g.kernel)
    return (
        accel.is_enabled("direct")
        and depth <= tuning.DIRECT_MAX_DEPTH
        and g.weight_shape[0] // g.groups <= tuning.DIRECT_MAX_OUT_CHANNELS
        # it copies whole images: a huge one takes im2col, which pads it by rows
        and direct_scratch(g) <= padding_limit()
    )


def _direct_grad_fits(g: Geometry) -> bool:
    return _direct_fits(g) and is_depthwise(g)


def _direct_grad_pays(g: Geometry) -> bool:
    return accel.is_enabled("direct") and direct_scratch(g) <= padding_limit()


def onednn_pass(pass_: str, g: Geometry) -> onednn.Pass | None:
    """oneDNN's primitives for ``pass_`` of ``g`` (kept per thread), or ``None`` where it is not
    installed or refuses the geometry."""
    if g.dtype.name != "float32" or not g.dtype.isnative or len(g.kernel) not in (1, 2, 3):
        return None
    if not all(n > 0 for n in g.plan().out):
        return None
    return onednn.plan(pass_, g.input_shape, g.weight_shape, g.stride, g.padding, g.dilation,
                       g.groups, get_num_threads())


def _onednn_fits(pass_: str) -> Callable[[Geometry], bool]:
    def fits(g: Geometry) -> bool:
        return onednn_pass(pass_, g) is not None

    return fits


def wally_is_faster(pass_: str, g: Geometry, implementation: str) -> bool:
    """Where one of wally's own kernels was measured faster than oneDNN's ``implementation``
    (its name of the kernel it chose for the pass; ``tuning`` has the measurements): on every
    machine, the numba direct kernels of depthwise layers; where that kernel is not an AVX-512
    one (``jit:avx2``...), also the direct kernels' other layers, Winograd's forward and input
    gradient, and weight gradients deeper than ``ONEDNN_MAX_WEIGHT_GRAD_DEPTH``.

    >>> import numpy as np
    >>> g = Geometry((64, 128, 16, 16), (128, 128, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1,
    ...              np.dtype("float32"))                     # ResNet's 128-channel 3×3 layer
    >>> [wally_is_faster(p, g, "jit:avx2") for p in PASSES]  # Winograd on an AVX2 machine
    [True, False, True]
    >>> [wally_is_faster(p, g, "jit:avx512_core") for p in PASSES]
    [False, False, False]
    """
    direct = _direct_fits(g) and (_direct_pays(g) or (is_depthwise(g) and _direct_grad_pays(g)))
    if direct and is_depthwise(g):
        return True
    if "avx512" in implementation:
        return False
    if direct:
        return True
    if pass_ == "weight-grad":
        return g.channels // g.groups * volume(g.kernel) > tuning.ONEDNN_MAX_WEIGHT_GRAD_DEPTH
    return _winograd_fits(g) and _winograd_pays(g)


def _onednn_pays(pass_: str) -> Callable[[Geometry], bool]:
    def pays(g: Geometry) -> bool:
        step = onednn_pass(pass_, g)
        # oneDNN's reference loops ("ref:any") and its own im2col ("gemm:jit") are slower than
        # wally's kernels (tuning.ONEDNN_MAX_WEIGHT_GRAD_DEPTH has the measurements)
        return step is not None and not step.implementation.startswith("ref") and (
            "gemm" not in step.implementation) and not wally_is_faster(
                pass_, g, step.implementation)

    return pays


def _onednn_gate() -> bool:
    return onednn.is_switched_on() and not are_deterministic_algorithms_enabled()


def _onednn(pass_: str, measured: str) -> Rule:
    return Rule(
        name="onednn",
        pass_=pass_,
        gate=_onednn_gate,
        fits=_onednn_fits(pass_),
        pays=_onednn_pays(pass_),
        needs="oneDNN installed (wally-cnn[onednn]), float32, 1-, 2- or 3-D, a non-empty "
        "output, a geometry oneDNN accepts",
        where="oneDNN installed and on (wally.backends.onednn), float32, not under "
        "deterministic algorithms, oneDNN's kernel for it is a direct one (not 'ref:any' or "
        "'gemm:jit'), and not where wally's own was measured faster: depthwise layers on the "
        "direct (numba) kernels; where oneDNN's kernel is not an AVX-512 one, also the direct "
        "kernels' other layers, Winograd's forward and input gradient, and weight gradients "
        f"over {tuning.ONEDNN_MAX_WEIGHT_GRAD_DEPTH} deep (C/groups·∏k)",
        why="oneDNN's JIT-compiled direct kernels (PyTorch's CPU convolutions) on its blocked "
        "layouts, with a reorder on each side: not limited by OpenBLAS's GEMM",
        measured=measured,
    )


# ----- the table --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of the table: kernel ``name`` for ``pass_`` runs where ``fits`` (it computes
    this geometry) and, unless forced, ``pays`` (it is the fastest there; ``None``: only when
    forced).  ``needs`` says ``fits`` in words, ``where`` says ``pays``."""

    name: str
    pass_: str
    fits: Callable[[Geometry], bool]
    pays: Callable[[Geometry], bool] | None
    needs: str
    where: str
    why: str
    measured: str
    # asked first, without looking at the geometry: whether the automatic choice may take the
    # rule at all (oneDNN's: switched on, so that a switched-off library is never loaded)
    gate: Callable[[], bool] = lambda: True

    def chosen(self, g: Geometry) -> bool:
        """Whether the automatic choice takes this rule for ``g``."""
        return self.pays is not None and self.gate() and self.fits(g) and self.pays(g)

    def __repr__(self) -> str:
        return f"Rule({self.pass_!r}, {self.name!r}, where={self.where!r})"


def _reference(pass_: str, formula: str) -> Rule:
    return Rule(
        name="reference",
        pass_=pass_,
        fits=_always,
        pays=None,
        needs="nothing",
        where="only when forced",
        why=f"the note's equation as code: {formula}, whole batch at once",
        measured="the oracle every other kernel is tested against; memory ∝ C·∏k·N·∏out",
    )


_DEPTHWISE: dict[str, Any] = dict(
    name="depthwise",
    fits=is_depthwise,
    pays=is_depthwise,
    needs="groups = C_in = C_out and one filter per group",
    where="groups = C_in = C_out",
)
_ROWS: dict[str, Any] = dict(
    name="rows",
    fits=_rows_fits,
    pays=_rows_pays,
    needs="2-D, vertical stride 1, one group, a non-empty input and output",
    where=(
        f"2-D, vertical stride 1, one group, N·OH·OW ≥ {tuning.ROWS_MIN_POSITIONS}, one image's "
        f"copies within the chunk limit, and C·kH·kW ≤ {tuning.ROWS_MAX_DEPTH} with exact im2col "
        f"columns or, on wide rows, C·kW ≥ {tuning.ROWS_WIDE_MIN_ROW_DEPTH}, C·kH·kW ≤ "
        f"{tuning.ROWS_WIDE_MAX_DEPTH} and N·OH·OW ≥ {tuning.ROWS_WIDE_MIN_POSITIONS}"
    ),
    measured=(
        "LeNet's conv2 and a 32-channel 5×5 1.2-2x faster than im2col; ResNet's 256/512-channel "
        "3×3 up to 2x slower (so the depth limit); on wide rows, 16 to 128 channels (3×3, 5×5) "
        "0.75-0.91x im2col's time forward and weight-grad at 1 and 2 threads, 3 channels 1.2-2.3x"
    ),
)
_IM2COL: dict[str, Any] = dict(
    name="im2col", fits=_always, pays=_always, needs="nothing", where="everything else"
)
_CHUNKED = (
    "chunked im2col (a few images or output rows, ~2 MiB, in cache) and one GEMM per group; wide "
    "rows (one contiguous run per tap) with stride 1 where the padded rows are at most 15% longer"
)

TABLE: tuple[Rule, ...] = (
    # ----- forward: y = W ⋆ x + b
    _reference("forward", "Y = W @ im2col(x)"),
    _onednn("forward", "1 / 2 threads, time with oneDNN over the table's choice without it "
            "(benchmarks/onednn_passes.py). Intel Xeon (AVX-512): LeNet conv2 0.37 / 0.25, "
            "ResNet's 3×3 layers 0.57-0.97 / 0.50-0.84, strided 3×3 0.62 / 0.57, 1×1 0.85 / "
            "0.69, dilated 3×3 0.52 / 0.44, conv1d k9 0.59 / 0.51, depthwise 1.43 / 1.61. AMD "
            "EPYC (AVX2): LeNet conv2 0.62 / 0.62, a CIFAR stem 0.67 / 0.69, strided 3×3 0.74 / "
            "0.92, 1×1 0.74 / 0.98, dilated 0.72 / 0.58, conv1d 0.63 / 0.56 (the rest in "
            "wally.backends.tuning)"),
    Rule(
        name="direct",
        pass_="forward",
        fits=_direct_fits,
        pays=_direct_pays,
        needs="numba installed, 1-D or 2-D, stride 1, float32 or float64, a non-empty output",
        where=f"numba installed and the accelerator on (wally.backends.accel), 1-D or 2-D, "
        f"stride 1, C/groups·∏k ≤ {tuning.DIRECT_MAX_DEPTH}, at most "
        f"{tuning.DIRECT_MAX_OUT_CHANNELS} output channels a group (depthwise: 1), one padded "
        "image within half a thread's share of the budget",
        why="im2col copies each pixel ∏k times into short columns, whose GEMM OpenBLAS runs "
        "slowly; one compiled nogil call per chunk sums the taps from one padded copy",
        measured="LeNet conv1 forward (1 → 6, 5×5, batch 256), 1 thread: 2.1-2.3 against "
        "2.6-2.8 ms; LeNet conv2 (150 deep) 6.3 against 2.9 ms and ResNet's CIFAR stem "
        "(3 → 64, batch 64) 9.8 against 5.2 ms, so the limits; depthwise 3×3 (64,128,32,32) "
        "16.4 against 67.2 ms for the depthwise rule",
    ),
    Rule(
        **_DEPTHWISE,
        pass_="forward",
        why="a GEMM per channel would be a matrix-vector product; per-tap multiply-adds over "
        "the whole chunk are faster",
        measured="MobileNet-style 3×3 depthwise layers (benchmarks: depthwise 3×3 forward)",
    ),
    Rule(
        name="winograd",
        pass_="forward",
        fits=_winograd_fits,
        pays=_winograd_pays,
        needs="2-D 3×3, stride 1, dilation 1, one group, a non-empty output",
        where=f"3×3 stride 1, ≥ {tuning.WINOGRAD_MIN_CHANNELS} channels in and out, N·OH·OW·C·O"
        f" ≥ 2^{tuning.WINOGRAD_MIN_MACS.bit_length() - 1}, chunk limit ≥ 1 MiB",
        why="F(2×2, 3×3): 16 multiplies per 2×2 output tile instead of 36",
        measured="1 thread: from 48 channels; ties the row layout at 2^26 multiply-adds "
        "(64 channels on 32×32 at batch 16), wins above (wally.backends.tuning); 2 threads, "
        "ResNet-18's 3×3 layers at batch 64 against the im2col rule: 64 ch on 32×32 30.8 "
        "against 32.7 ms, 128 on 16×16 19.2 / 27.3, 256 on 8×8 16.0 / 24.3, 512 on 4×4 "
        "19.1 / 24.7; the ResNet-18 step 1.46 against 1.67 s",
    ),
    Rule(
        **_ROWS,
        pass_="forward",
        why="k_w shifted copies of the input and k_h GEMMs, instead of k_h·k_w short copies",
    ),
    Rule(
        **_IM2COL,
        pass_="forward",
        why=_CHUNKED,
        measured="ResNet's 64→64 layer 115 → 65 ms forward (chunked against whole)",
    ),
    # ----- weight gradient: dW
    _reference("weight-grad", "dW = dY @ im2col(x)ᵀ"),
    _onednn("weight-grad", "as the forward pass. AVX-512: LeNet conv1 1.01 / 0.50, conv2 "
            "0.63 / 0.68, ResNet's 3×3 layers 0.69-0.97 / 0.61-0.89, conv1d k9 0.69 / 0.56, "
            "depthwise 1.08 / 1.52. AVX2: ResNet's 64- and 128-channel 3×3 0.47-0.53, LeNet "
            "conv2 0.87 / 0.84, the stem 0.64 / 0.67, conv1d k9 0.72 / 0.78"),
    Rule(
        name="depthwise-direct",
        pass_="weight-grad",
        fits=_direct_grad_fits,
        pays=_direct_grad_pays,
        needs="numba installed, depthwise, 1-D or 2-D, stride 1, float32 or float64",
        where="numba installed and the accelerator on, depthwise, stride 1, one padded image "
        "within half a thread's share of the budget",
        why="dW[c, t] is one dot product per tap and channel; compiled, each image is padded "
        "once and each dot product summed by columns from cache, where NumPy makes a "
        "multiply and a sum pass over the whole chunk per tap",
        measured="depthwise 3×3 (64,128,32,32), 1 thread: 15.6 against 49.7 ms for the "
        "depthwise rule; forward and backward 62 against 194 ms with the direct forward and "
        "the flipped input gradient that it serves",
    ),
    Rule(
        **_DEPTHWISE,
        pass_="weight-grad",
        why="dW[c, t] = Σ dY[c] · x[c, tap t]: one multiply and one sum per tap",
        measured="as the forward pass",
    ),
    Rule(
        **{**_ROWS, "pays": _rows_weight_grad_pays, "where": _ROWS["where"] + (
            f" (or at most {tuning.ROWS_WIDE_FEW_OUTPUTS} output channels)")},
        pass_="weight-grad",
        why="every S_a @ dYᵀ in one batched product over the shifted copies",
    ),
    Rule(
        **_IM2COL,
        pass_="weight-grad",
        why=_CHUNKED + "; a non-finite input takes exact columns (0·inf in the junk columns)",
        measured="cols @ dYᵀ runs several times faster than dY @ colsᵀ for long chunks",
    ),
    # ----- input gradient: dX
    _reference("input-grad", "dX = col2im(Wᵀ @ dY)"),
    _onednn("input-grad", "as the forward pass. AVX-512: LeNet conv2 0.51 / 0.37, ResNet's "
            "3×3 layers 0.65-0.95 / 0.51-0.81, conv1d k9 0.44 / 0.34, depthwise 1.51 / 1.78. "
            "AVX2: LeNet conv2 0.61 / 0.48, the stem 0.55 / 0.59, strided 3×3 0.73 / 0.72, "
            "dilated 3×3 0.76 / 0.66, a 64-channel 3×3 at batch 1 0.73 / 0.42"),
    Rule(
        name="flipped",
        pass_="input-grad",
        fits=_flipped_fits,
        pays=_flipped_pays,
        needs="stride 1 and padding at most d·(k − 1) on each side",
        where=f"stride 1, padding ≤ d·(k − 1), and depthwise or the input at most "
        f"{tuning.FLIPPED_MAX_GROWTH}x the output",
        why="dX is itself a convolution, dY ⋆ flip(W)ᵀ: the forward rules choose its kernel",
        measured="LeNet's conv2 input gradient: 16-25 ms flipped against 5-6 ms added back, so "
        "only about 'same' padding",
    ),
    Rule(
        **_DEPTHWISE,
        pass_="input-grad",
        why="dX[c, tap t] += w[c, t] · dY[c]: one strided slice-add per tap",
        measured="as the forward pass",
    ),
    Rule(
        **{**_ROWS, "pays": _rows_input_grad_pays, "where": (
            f"2-D, vertical stride 1, one group, C·kH·kW ≤ {tuning.ROWS_MAX_DEPTH}, exact "
            f"im2col columns, N·OH·OW ≥ {tuning.ROWS_MIN_POSITIONS}, one image's copies within "
            "the chunk limit")},
        pass_="input-grad",
        why="the adjoint of the row layout: k_h GEMMs, then k_w strided slice-adds",
    ),
    Rule(
        **_IM2COL,
        pass_="input-grad",
        why="Wᵀ @ dY per chunk added back per tap (col2im), contiguous on wide rows",
        measured="strided and valid convolutions of small images (LeNet's conv2: 5-6 ms)",
    ),
)


class Algorithms(tuple[Rule, ...]):
    """The table as :func:`algorithms` returns it: a tuple of :class:`Rule` that prints as a
    table, and :meth:`markdown` for ``docs/CONVOLUTION.md``."""

    def __str__(self) -> str:
        lines = []
        for rule in self:
            lines.append(f"{rule.pass_:<12} {rule.name:<10} where {rule.where}")
            lines.append(f"{'':<23} why: {rule.why}")
            lines.append(f"{'':<23} measured: {rule.measured}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return "algorithms(\n" + "".join(f"  {rule!r},\n" for rule in self) + ")"

    def markdown(self) -> str:
        """The table in Markdown, one row per rule, in the order they are tried."""
        rows = [
            "| pass | algorithm | runs where | can run | why | measured |",
            "|---|---|---|---|---|---|",
        ]
        for rule in self:
            cells = (rule.pass_, f"`{rule.name}`", rule.where, rule.needs, rule.why,
                     rule.measured)
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(rows) + "\n"


def algorithms(pass_: str | None = None) -> Algorithms:
    """The table, in the order its rules are tried (of one pass, or all of them).

    >>> [rule.name for rule in algorithms("forward")]
    ['reference', 'onednn', 'direct', 'depthwise', 'winograd', 'rows', 'im2col']
    """
    if pass_ is not None:
        _check_pass("algorithms", pass_)
    return Algorithms(r for r in TABLE if pass_ is None or r.pass_ == pass_)


def _check_pass(where: str, pass_: str) -> None:
    if pass_ not in PASSES:
        raise ValueError(f"wally.backends.conv.{where}: expected a pass in {PASSES}, got {pass_!r}")


# ----- plans: how a kernel lays out its work (memory and speed, never the arithmetic) ---------
@dataclasses.dataclass(frozen=True)
class Plan:
    """A choice made inside a kernel: ``name`` applies to ``kernels`` ``where``, and changes
    the chunks, copies or GEMM blocks, never the sum each output is (only its order, fixed)."""

    name: str
    kernels: str
    where: str
    why: str
    measured: str


def _first_chunk_splits_an_image(plan: Any, chunks: Sequence[tuple[slice, slice]]) -> bool:
    return bool(plan.out) and chunks[0][1].stop - chunks[0][1].start < plan.out[0]


def pads_rows(
    plan: Any, chunks: Sequence[tuple[slice, slice]], channels: int, itemsize: int
) -> bool:
    """im2col forward and weight-grad: whether the chunks split single images by rows and one
    padded image is over :func:`padding_limit` (then each chunk pads only its rows)."""
    return (
        plan.needs_copy
        and _first_chunk_splits_an_image(plan, chunks)
        and channels * (plan.plane + plan.tail) * itemsize > padding_limit()
    )


def gathers_rows(
    plan: Any, chunks: Sequence[tuple[slice, slice]], channels: int, itemsize: int
) -> bool:
    """im2col input-grad: whether a large image's gradient is gathered one chunk of output
    rows at a time (added into a zeroed ``dX``) instead of in a zero-bordered copy."""
    return (
        _first_chunk_splits_an_image(plan, chunks)
        and channels * (plan.plane + plan.tail) * itemsize > padding_limit()
    )


def depthwise_by_rows(plan: Any, channels: int, itemsize: int) -> bool:
    """Whether one image's padded copy and product (``C·(∏padded + ∏out)`` elements) are over
    :func:`padding_limit`: then the depthwise kernels work on blocks of rows of one image,
    so that a huge convolution needs its input, its output and the budget."""
    per_image = channels * (volume(plan.padded) + volume(plan.out)) * itemsize
    return volume(plan.out) > 0 and per_image > padding_limit()


def skinny(depth: int, width: int) -> bool:
    """Whether a GEMM over ``depth × width`` columns should run ``SKINNY_COLUMNS`` columns at
    a time (OpenBLAS is slow on long products by few rows)."""
    return depth < tuning.SKINNY_ROWS and width > 2 * tuning.SKINNY_COLUMNS


PLANS: tuple[Plan, ...] = (
    Plan(
        name="wide rows",
        kernels="im2col (every pass)",
        where=f"stride 1 and padded rows at most {tuning.MAX_JUNK}x the output rows; "
        "weight-grad: a finite input; input-grad: finite weights (any padding)",
        why="each tap one contiguous run of the flat image; the junk columns are dropped",
        measured="ResNet-18's 4-, 8- and 16-pixel stages 15% faster with exact columns",
    ),
    Plan(
        name="chunks",
        kernels="im2col, rows, depthwise",
        where=f"columns of a few images, or of output rows of one image, up to "
        f"min({tuning.CACHE_BYTES >> 20} MiB, budget / threads)",
        why="the columns stay in cache between the copy and the GEMM",
        measured="LeNet's and ResNet's layers about 1.7x faster than the whole matrix",
    ),
    Plan(
        name="weight-gradient chunks",
        kernels="im2col weight-grad",
        where=f"tall columns (C·∏k): at least {tuning.WEIGHT_GRAD_COLUMNS} columns a chunk, "
        "at most an even share per thread and a thread's share of the budget; products of "
        f"at least {tuning.WEIGHT_GRAD_DIRECT_ENTRIES >> 10}K entries as dY @ colsᵀ",
        why="each chunk's partial sum is C·∏k × O: short chunks spent their time adding "
        "partials, and a transposed add is a strided pass",
        measured="ResNet-18's 512-channel 4×4 weight gradient at batch 64: 215 -> 37 ms on one "
        "thread, 189 -> 20 ms on two",
    ),
    Plan(
        name="padding by rows",
        kernels="im2col, depthwise",
        where="one image's padded copy over half a thread's share of the budget",
        why="a huge image needs its input, its output and the budget, never a padded copy",
        measured="a 20000×20000 RGB image's padded copy would take 4.5 GiB",
    ),
    Plan(
        name="short-column blocks",
        kernels="im2col",
        where=f"C·∏k < {tuning.SKINNY_ROWS} and over {2 * tuning.SKINNY_COLUMNS} columns: "
        f"{tuning.SKINNY_COLUMNS} columns at a time, as one batched product (one NumPy call)",
        why="OpenBLAS is 1.6-2.5x slower on long products by few rows; one call takes the "
        "interpreter lock once, not once per block",
        measured="25 rows × 20608 columns against 4096 at a time; LeNet conv1 forward at 2 "
        "threads 3.1 -> 2.3 ms batched (lock waits 38 -> 16 a call)",
    ),
    Plan(
        name="dot for small results",
        kernels="im2col weight-grad",
        where=f"a result of at most {tuning.GIL_HELD_ENTRIES} entries",
        why="NumPy's matmul keeps the GIL for such results; dot releases it",
        measured="two threads: 0.7-1.0x for a 30 × 16 result, 1.8x for 30 × 17",
    ),
)


def plans() -> tuple[Plan, ...]:
    """The choices made inside the kernels (:class:`Plan`), for the documentation."""
    return PLANS


def plans_markdown() -> str:
    """:func:`plans` in Markdown (``docs/CONVOLUTION.md``)."""
    rows = ["| plan | in | where | why | measured |", "|---|---|---|---|---|"]
    for p in PLANS:
        rows.append("| " + " | ".join((p.name, p.kernels, p.where, p.why, p.measured)) + " |")
    return "\n".join(rows) + "\n"


# ----- forcing, and what ran --------------------------------------------------------------------
_forced: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "forced", default=None
)
_last: dict[str, str] = {}
_traces: list[list[tuple[str, str]]] = []


@contextlib.contextmanager
def algorithm(name: str, passes: str | Sequence[str] | None = None) -> Iterator[None]:
    """Within the ``with`` block, run kernel ``name`` on every pass that has one of that name
    (or on ``passes``: one of ``"forward"``, ``"weight-grad"``, ``"input-grad"``, or several).
    The other passes choose as usual.  A name the table doesn't have, or a pass without it,
    is a ``ValueError``; so is a call whose geometry the forced kernel cannot compute.

    >>> with algorithm("reference"):                              # doctest: +SKIP
    ...     y = F.conv2d(x, w)       # im2col of the whole batch and one GEMM
    """
    names = sorted({r.name for r in TABLE})
    if name not in names:
        raise ValueError(
            f"wally.backends.conv.algorithm: no algorithm {name!r}; expected one "
            f"of {', '.join(names)}"
        )
    if passes is None:
        chosen = [p for p in PASSES if any(r.name == name and r.pass_ == p for r in TABLE)]
    else:
        chosen = [passes] if isinstance(passes, str) else list(passes)
        for p in chosen:
            _check_pass("algorithm", p)
            if not any(r.name == name and r.pass_ == p for r in TABLE):
                have = [r.name for r in TABLE if r.pass_ == p]
                raise ValueError(
                    f"wally.backends.conv.algorithm: the {p} pass has no "
                    f"algorithm {name!r}; it has {', '.join(have)}"
                )
    token = _forced.set({**(_forced.get() or {}), **dict.fromkeys(chosen, name)})
    try:
        yield
    finally:
        _forced.reset(token)


_BY_PASS = {p: tuple(r for r in TABLE if r.pass_ == p) for p in PASSES}


def choose(pass_: str, g: Geometry, *, record: bool = True) -> str:
    """The kernel that runs ``pass_`` of geometry ``g``: the forced one (if it can), or the
    first rule of the pass whose condition holds.  Recorded for :func:`last_algorithm` and
    :func:`trace` unless ``record`` is false (a question, not a call)."""
    forced = (_forced.get() or {}).get(pass_)
    if forced is not None:
        rule = next(r for r in _BY_PASS[pass_] if r.name == forced)
        if not rule.fits(g):
            raise ValueError(
                f"wally.backends.conv: the forced algorithm {forced!r} cannot run "
                f"this {pass_} pass (it needs {rule.needs}; got {g})"
            )
    else:
        rule = next(r for r in _BY_PASS[pass_] if r.chosen(g))
    if not record:
        return rule.name
    _last[pass_] = rule.name
    for log in _traces:
        log.append((pass_, rule.name))
    return rule.name


def last_algorithm(pass_: str = "forward") -> str | None:
    """The kernel the last convolution's ``pass_`` ran (``None`` before the first one).  The
    flipped input gradient is a forward convolution, and records its kernel as one."""
    _check_pass("last_algorithm", pass_)
    return _last.get(pass_)


@contextlib.contextmanager
def trace() -> Iterator[list[tuple[str, str]]]:
    """Collect ``(pass, algorithm)`` for every choice made within the ``with`` block.

    >>> with trace() as ran:                                      # doctest: +SKIP
    ...     F.conv2d(x, w).sum().backward()
    >>> ran                                                       # doctest: +SKIP
    [('forward', 'im2col'), ('weight-grad', 'im2col'), ('input-grad', 'im2col')]
    """
    log: list[tuple[str, str]] = []
    _traces.append(log)
    try:
        yield log
    finally:
        _traces.remove(log)
