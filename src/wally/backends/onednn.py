"""The optional oneDNN convolutions: Intel's oneDNN library, the one PyTorch's CPU convolutions
run on, called through ``ctypes`` (install with ``pip install wally-cnn[onednn]``).

NumPy stays wally's only required dependency.  Where the ``onednn-cpu-gomp`` wheel is
installed, the three passes of a float32 convolution (forward, weight gradient, input
gradient) can run as oneDNN primitives: rules ``onednn`` of :mod:`wally.backends.conv`'s table,
tried first, where ``algorithm("onednn")`` forces them and every other rule stays the
fallback.  OpenBLAS's GEMM alone is slower than PyTorch's whole pass on the 3×3 layers that
make up ResNet (``benchmarks/gemm_floor.py``); oneDNN's JIT-compiled direct kernels are not
a GEMM.  Every pass is tested against the reference path (``tests/test_onednn.py``).
At more than one thread, ReLU's gradient (:class:`Relu`), average pooling without padding
(:class:`AvgPool`) and the linear layers' float32 products (:class:`MatMul`, asked for by
``wally._parallel.matmul``) run here too: oneDNN's OpenMP threads wake in microseconds, where a
hand-off to wally's own threads costs tens (measured: 65-90 µs on a 2-core machine).

Switches, in the spirit of ``torch.backends.mkldnn``:

* the environment variable ``WALLY_ONEDNN=0`` (read at import) turns it off;
* :func:`set_enabled` turns it on or off, :func:`flags` within a ``with`` block;
* :func:`is_available` says whether the library can be loaded, :func:`version` which one.

>>> import wally.backends.onednn as onednn
>>> with onednn.flags(enabled=False):                                   # doctest: +SKIP
...     y = model(x)                # NumPy alone, whatever is installed

**What is loaded.** Only the ``libdnnl.so.3`` that the installed ``onednn-cpu-gomp``
distribution lists in its own record (never a library found on a search path or named by an
environment variable), on the first convolution that could use it: ``import wally`` loads
nothing.  It needs GNU OpenMP (``libgomp.so.1``, Debian's ``libgomp1``).  While it loads,
``GOMP_SPINCOUNT`` is ``tuning.ONEDNN_GOMP_SPINCOUNT`` (10,000 spins, not libgomp's 300,000:
an idle OpenMP thread then sleeps before wally's own thread needs its core), unless the user
set ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``; the environment is restored afterwards.

**How a pass runs.** The arrays stay in wally's plain layouts (``NCHW``, ``OIHW``); each pass
lets oneDNN pick its blocked layouts (``format_tag_any``), reorders its inputs into them and its
result back, as PyTorch does for plain tensors.  The primitives of a geometry are created
once per thread and kept (:data:`CACHE_SIZE` geometries).  oneDNN's threads are GNU OpenMP's,
as many as :func:`wally.get_num_threads`.  oneDNN gives the same bits from run to run at a
fixed thread count; across thread counts it does not promise to, so under
:func:`wally.use_deterministic_algorithms` the table does not choose it (forced, it runs).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from wally.backend import ndarray, xp

__all__ = [
    "is_available", "unavailable_reason", "is_enabled", "is_switched_on", "set_enabled", "flags",
    "version", "plan", "Pass", "relu_plan", "Relu", "avg_pool_plan",
    "AvgPool", "matmul_plan", "MatMul", "CACHE_SIZE",
]

DISTRIBUTION = "onednn-cpu-gomp"
CACHE_SIZE = 128  # geometries whose primitives a thread keeps

# ----- the C API's constants (oneDNN 3.x, dnnl_types.h and dnnl_common_types.h) ---------------
_SUCCESS = 0
_CPU = 1  # dnnl_cpu
_IN_ORDER = 1  # dnnl_stream_in_order
_F32 = 3  # dnnl_f32
_ANY, _A = 1, 2  # dnnl_format_tag_any, dnnl_a (then ab, abc, abcd, abcde, abcdef: plain)
_FORWARD_TRAINING = 64
_CONVOLUTION_DIRECT = 1
_AVG_POOL = 0x3ff  # dnnl_pooling_avg_exclude_padding (used without padding: the mean)
_RELU_USE_DST = 0x100  # dnnl_eltwise_relu_use_dst_for_bwd: the backward pass reads y, not x
_QUERY_IMPL_INFO_STR = 8
_QUERY_MD = {"src": 129, "diff_src": 130, "weights": 131, "diff_weights": 132, "dst": 133,
             "diff_dst": 134}
_ARG = {"src": 1, "dst": 17, "weights": 33, "bias": 41, "diff_src": 129, "diff_dst": 145,
        "diff_weights": 161}
_MAX_NDIMS = 12
_Dims = ctypes.c_int64 * _MAX_NDIMS
_void_p = ctypes.c_void_p
_out = ctypes.POINTER(ctypes.c_void_p)
_dims = ctypes.POINTER(ctypes.c_int64)


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint)]


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "dnnl_version": (ctypes.POINTER(_Version), []),
    "dnnl_engine_create": (ctypes.c_int, [_out, ctypes.c_int, ctypes.c_size_t]),
    "dnnl_stream_create": (ctypes.c_int, [_out, _void_p, ctypes.c_uint]),
    "dnnl_stream_wait": (ctypes.c_int, [_void_p]),
    "dnnl_stream_destroy": (ctypes.c_int, [_void_p]),
    "dnnl_memory_desc_create_with_tag": (
        ctypes.c_int, [_out, ctypes.c_int, _dims, ctypes.c_int, ctypes.c_int]),
    "dnnl_memory_desc_create_with_strides": (
        ctypes.c_int, [_out, ctypes.c_int, _dims, ctypes.c_int, _dims]),
    "dnnl_memory_desc_destroy": (ctypes.c_int, [_void_p]),
    "dnnl_memory_desc_equal": (ctypes.c_int, [_void_p, _void_p]),
    "dnnl_memory_desc_get_size": (ctypes.c_size_t, [_void_p]),
    "dnnl_convolution_forward_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, ctypes.c_int, _void_p, _void_p, _void_p, _void_p,
        _dims, _dims, _dims, _dims, _void_p]),
    "dnnl_convolution_backward_data_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, _void_p, _void_p, _void_p,
        _dims, _dims, _dims, _dims, _void_p, _void_p]),
    "dnnl_convolution_backward_weights_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, _void_p, _void_p, _void_p, _void_p,
        _dims, _dims, _dims, _dims, _void_p, _void_p]),
    "dnnl_eltwise_forward_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, ctypes.c_int, _void_p, _void_p, ctypes.c_float,
        ctypes.c_float, _void_p]),
    "dnnl_eltwise_backward_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, _void_p, _void_p, _void_p, ctypes.c_float, ctypes.c_float,
        _void_p, _void_p]),
    "dnnl_pooling_forward_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, ctypes.c_int, _void_p, _void_p, _dims, _dims, _dims,
        _dims, _dims, _void_p]),
    "dnnl_pooling_backward_primitive_desc_create": (ctypes.c_int, [
        _out, _void_p, ctypes.c_int, _void_p, _void_p, _dims, _dims, _dims, _dims, _dims,
        _void_p, _void_p]),
    "dnnl_matmul_primitive_desc_create": (
        ctypes.c_int, [_out, _void_p, _void_p, _void_p, _void_p, _void_p, _void_p]),
    "dnnl_reorder_primitive_desc_create": (
        ctypes.c_int, [_out, _void_p, _void_p, _void_p, _void_p, _void_p]),
    "dnnl_primitive_desc_query_md": (_void_p, [_void_p, ctypes.c_int, ctypes.c_int]),
    "dnnl_primitive_desc_query": (ctypes.c_int, [_void_p, ctypes.c_int, ctypes.c_int, _void_p]),
    "dnnl_primitive_desc_destroy": (ctypes.c_int, [_void_p]),
    "dnnl_primitive_create": (ctypes.c_int, [_out, _void_p]),
    "dnnl_primitive_destroy": (ctypes.c_int, [_void_p]),
    "dnnl_memory_create": (ctypes.c_int, [_out, _void_p, _void_p, _void_p]),
    "dnnl_memory_set_data_handle": (ctypes.c_int, [_void_p, _void_p]),
    "dnnl_memory_destroy": (ctypes.c_int, [_void_p]),
    "dnnl_primitive_execute": (
        ctypes.c_int, [_void_p, _void_p, ctypes.c_int, ctypes.POINTER(_ExecArg)]),
}


def _library_path() -> str | None:
    """The ``libdnnl.so.3`` that the installed distribution's record lists, or ``None``."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == "libdnnl.so.3":
            path = str(dist.locate_file(file))
            return path if os.path.isfile(path) else None
    return None


@contextlib.contextmanager
def _spin_count() -> Iterator[None]:
    """``GOMP_SPINCOUNT`` at ``tuning.ONEDNN_GOMP_SPINCOUNT`` while GNU OpenMP reads its
    environment (once, when the library loads with oneDNN's), unless the user set it or
    ``OMP_WAIT_POLICY``; the environment is restored afterwards, so no program started later
    sees the variable (a library loaded later in this process that links the same
    ``libgomp.so.1`` shares its threads and this setting).  Where ``libgomp.so.1`` was loaded
    already (PyTorch's, when torch was imported first), its own setting stays."""
    from wally.backends import tuning

    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = str(tuning.ONEDNN_GOMP_SPINCOUNT)
    try:
        yield
    finally:
        os.environ.pop("GOMP_SPINCOUNT", None)


class _Runtime:
    """The loaded library, its CPU engine and GNU OpenMP's thread control."""

    def __init__(self, path: str) -> None:
        with _spin_count():
            self.lib = ctypes.CDLL(path)  # needs libgomp.so.1, which the loader finds beside it
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(self.lib, name)
            function.restype, function.argtypes = restype, argtypes
        v = self.lib.dnnl_version().contents
        self.version = (v.major, v.minor, v.patch)
        if v.major != 3:
            raise OSError(f"{path}: expected oneDNN 3.x, got {v.major}.{v.minor}.{v.patch}")
        self.engine = _void_p()
        self.check(self.lib.dnnl_engine_create(ctypes.byref(self.engine), _CPU, 0), "engine")
        gomp = ctypes.CDLL("libgomp.so.1")
        self.set_threads = gomp.omp_set_num_threads
        self.set_threads.restype, self.set_threads.argtypes = None, [ctypes.c_int]

    @staticmethod
    def check(status: int, what: str) -> None:
        if status != _SUCCESS:
            raise RuntimeError(f"wally.backends.onednn: {what} failed (dnnl_status_t {status})")


_state: dict[str, Any] = {"runtime": None, "error": None, "tried": False,
                          "enabled": os.environ.get("WALLY_ONEDNN", "1") != "0"}
_load_lock = threading.Lock()


def _runtime() -> _Runtime | None:
    if not _state["tried"]:
        with _load_lock:
            if not _state["tried"]:
                path = _library_path()
                if path is None:
                    _state["error"] = f"the {DISTRIBUTION} distribution is not installed"
                else:
                    try:
                        _state["runtime"] = _Runtime(path)
                    except (OSError, AttributeError, RuntimeError) as error:
                        _state["error"] = f"{path} could not be loaded: {error}"
                _state["tried"] = True
    return _state["runtime"]


def is_available() -> bool:
    """Whether oneDNN's library is installed and loads (it is loaded by this call)."""
    return _runtime() is not None


def unavailable_reason() -> str | None:
    """Why :func:`is_available` is false (``None`` where it is true)."""
    return None if is_available() else _state["error"]


def version() -> tuple[int, int, int] | None:
    """oneDNN's version, ``(major, minor, patch)``, or ``None`` where it is not available."""
    runtime = _runtime()
    return None if runtime is None else runtime.version


def is_switched_on() -> bool:
    """Whether oneDNN is switched on (``WALLY_ONEDNN``, :func:`set_enabled`), loading nothing."""
    return bool(_state["enabled"])


def is_enabled() -> bool:
    """Whether the table may choose oneDNN (switched on, and available)."""
    return is_switched_on() and is_available()


def set_enabled(enabled: bool) -> None:
    """Let the table choose oneDNN (``True``, the default where it is installed) or not."""
    _state["enabled"] = bool(enabled)


@contextlib.contextmanager
def flags(enabled: bool) -> Iterator[None]:
    """Within the ``with`` block, :func:`set_enabled` ``(enabled)``; the previous setting is
    restored on exit."""
    previous = _state["enabled"]
    _state["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _state["enabled"] = previous


# ----- one pass of one geometry -----------------------------------------------------------------
class _Handles:
    """The oneDNN objects that one :class:`Pass` creates, destroyed with it (last made, first
    destroyed).  Descriptors that a primitive descriptor returns are its own, not kept here."""

    def __init__(self, runtime: _Runtime) -> None:
        self.runtime = runtime
        self.made: list[tuple[str, _void_p]] = []

    def keep(self, destroy: str, handle: _void_p) -> _void_p:
        self.made.append((destroy, handle))
        return handle

    def md(self, shape: Sequence[int], tag: int | None = None) -> _void_p:
        """A float32 memory descriptor of ``shape``: plain (row-major), or ``tag``."""
        md = _void_p()
        tag = _A + len(shape) - 1 if tag is None else tag
        self.runtime.check(self.runtime.lib.dnnl_memory_desc_create_with_tag(
            ctypes.byref(md), len(shape), _Dims(*shape), _F32, tag), "a memory descriptor")
        return self.keep("dnnl_memory_desc_destroy", md)

    def strided(self, shape: Sequence[int], strides: Sequence[int]) -> _void_p:
        """A float32 memory descriptor of ``shape`` with ``strides`` (in elements)."""
        md = _void_p()
        self.runtime.check(self.runtime.lib.dnnl_memory_desc_create_with_strides(
            ctypes.byref(md), len(shape), _Dims(*shape), _F32, _Dims(*strides)),
            "a memory descriptor")
        return self.keep("dnnl_memory_desc_destroy", md)

    def memory(self, md: _void_p) -> _void_p:
        """A memory object of layout ``md`` whose data handle is set before each run."""
        memory = _void_p()
        self.runtime.check(self.runtime.lib.dnnl_memory_create(
            ctypes.byref(memory), md, self.runtime.engine, None), "a memory object")
        return self.keep("dnnl_memory_destroy", memory)

    def primitive(self, pd: _void_p, what: str) -> _void_p:
        primitive = _void_p()
        self.runtime.check(self.runtime.lib.dnnl_primitive_create(ctypes.byref(primitive), pd),
                           what)
        return self.keep("dnnl_primitive_destroy", primitive)

    def reorder(self, src: _void_p, dst: _void_p) -> _void_p:
        """A reorder from layout ``src`` to ``dst``."""
        pd = _void_p()
        self.runtime.check(self.runtime.lib.dnnl_reorder_primitive_desc_create(
            ctypes.byref(pd), src, self.runtime.engine, dst, self.runtime.engine, None),
            "a reorder")
        self.keep("dnnl_primitive_desc_destroy", pd)
        return self.primitive(pd, "a reorder")

    def close(self) -> None:
        lib = self.runtime.lib
        while self.made:
            destroy, handle = self.made.pop()
            getattr(lib, destroy)(handle)


class _Operand:
    """One argument of a pass: wally's plain array, and oneDNN's layout of it (with the
    reorder between them, where they differ)."""

    def __init__(self, handles: _Handles, pd: _void_p, query: str, plain: _void_p,
                 is_output: bool) -> None:
        lib = handles.runtime.lib
        self.arg = _ARG[query]
        blocked = _void_p(lib.dnnl_primitive_desc_query_md(pd, _QUERY_MD[query], 0))
        self.size = int(lib.dnnl_memory_desc_get_size(blocked)) // 4
        self.user = handles.memory(plain)
        self.reorder: _void_p | None = None
        if lib.dnnl_memory_desc_equal(blocked, plain):
            self.blocked = self.user
        else:
            self.blocked = handles.memory(blocked)
            src, dst = (blocked, plain) if is_output else (plain, blocked)
            self.reorder = handles.reorder(src, dst)


def _aligned(size: int) -> ndarray:
    """An uninitialised float32 buffer of ``size`` elements whose data starts on 64 bytes."""
    raw = xp.empty(size + 16, dtype=xp.float32)
    start = (-raw.ctypes.data % 64) // 4
    return raw[start : start + size]


class Pass:
    """One pass (``"forward"``, ``"weight-grad"``, ``"input-grad"``) of one geometry as oneDNN
    primitives: created once, run many times.  ``implementation`` is oneDNN's name for the
    kernel it chose (``jit:avx2``, ``gemm:jit``, ``ref:any``...)."""

    def __init__(self, runtime: _Runtime, pass_: str, input_shape: Sequence[int],
                 weight_shape: Sequence[int], stride: Sequence[int], padding: Sequence[Any],
                 dilation: Sequence[int], groups: int, threads: int) -> None:
        lib, check = runtime.lib, runtime.check
        # oneDNN plans a kernel's split among OpenMP's threads when it is created, for as
        # many as OpenMP would start then: so a pass is made for, and run with, one count
        _use_threads(runtime, threads)
        self.runtime, self.pass_ = runtime, pass_
        self.handles = handles = _Handles(runtime)
        out = tuple(
            (n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, (lo, hi), d, k, s in zip(input_shape[2:], padding, dilation,
                                            weight_shape[2:], stride, strict=True))
        self.output_shape = (input_shape[0], weight_shape[0], *out)
        w_shape = tuple(weight_shape)
        if groups > 1:  # oneDNN's grouped weights are (G, O/G, C/G, *k): the same bytes
            w_shape = (groups, weight_shape[0] // groups, *weight_shape[1:])
        shapes = (input_shape, w_shape, self.output_shape)
        x_md, w_md, y_md = (handles.md(shape) for shape in shapes)
        x_any, w_any, y_any = (handles.md(shape, _ANY) for shape in shapes)
        # the forward pass always adds a bias (zeros where the layer has none)
        b_md = handles.md((weight_shape[0],)) if pass_ == "forward" else None
        strides, dilates = _Dims(*stride), _Dims(*(d - 1 for d in dilation))
        left, right = _Dims(*(lo for lo, _ in padding)), _Dims(*(hi for _, hi in padding))
        forward = _void_p()
        check(lib.dnnl_convolution_forward_primitive_desc_create(
            ctypes.byref(forward), runtime.engine, _FORWARD_TRAINING, _CONVOLUTION_DIRECT,
            x_any, w_any, b_md, y_any, strides, dilates, left, right, None),
            f"a convolution ({pass_})")
        handles.keep("dnnl_primitive_desc_destroy", forward)
        if pass_ == "forward":
            pd = forward
            self.inputs = [_Operand(handles, pd, "src", x_md, False),
                           _Operand(handles, pd, "weights", w_md, False)]
            self.output = _Operand(handles, pd, "dst", y_md, True)
        elif pass_ == "input-grad":
            pd = _void_p()
            check(lib.dnnl_convolution_backward_data_primitive_desc_create(
                ctypes.byref(pd), runtime.engine, _CONVOLUTION_DIRECT, x_any, w_any, y_any,
                strides, dilates, left, right, forward, None), "a convolution (dX)")
            handles.keep("dnnl_primitive_desc_destroy", pd)
            self.inputs = [_Operand(handles, pd, "diff_dst", y_md, False),
                           _Operand(handles, pd, "weights", w_md, False)]
            self.output = _Operand(handles, pd, "diff_src", x_md, True)
        else:
            pd = _void_p()
            check(lib.dnnl_convolution_backward_weights_primitive_desc_create(
                ctypes.byref(pd), runtime.engine, _CONVOLUTION_DIRECT, x_any, w_any, None,
                y_any, strides, dilates, left, right, forward, None), "a convolution (dW)")
            handles.keep("dnnl_primitive_desc_destroy", pd)
            self.inputs = [_Operand(handles, pd, "src", x_md, False),
                           _Operand(handles, pd, "diff_dst", y_md, False)]
            self.output = _Operand(handles, pd, "diff_weights", w_md, True)
        self.bias = handles.memory(b_md) if b_md is not None else None
        info = ctypes.c_char_p()
        check(lib.dnnl_primitive_desc_query(pd, _QUERY_IMPL_INFO_STR, 0, ctypes.byref(info)),
              "the implementation's name")
        self.implementation = (info.value or b"").decode()
        self.primitive = handles.primitive(pd, "a convolution")
        operands = [*self.inputs, self.output]
        self.args = (_ExecArg * (len(operands) + 1))(
            *[_ExecArg(op.arg, op.blocked) for op in operands],
            _ExecArg(_ARG["bias"], self.bias))
        self.nargs = len(operands) + (self.bias is not None)
        self.stream = _void_p()
        check(lib.dnnl_stream_create(ctypes.byref(self.stream), runtime.engine, _IN_ORDER),
              "a stream")
        handles.keep("dnnl_stream_destroy", self.stream)
        self.threads = threads

    def __del__(self) -> None:
        handles = getattr(self, "handles", None)
        if handles is not None:
            with contextlib.suppress(Exception):  # at interpreter exit the library may be gone
                handles.close()

    def run(self, arrays: Sequence[ndarray], out: ndarray,
            bias: ndarray | None = None) -> ndarray:
        """Run the pass on C-contiguous float32 ``arrays`` (the pass's inputs in order), writing
        ``out`` (C-contiguous float32 of the result's shape)."""
        lib, check = self.runtime.lib, self.runtime.check
        _use_threads(self.runtime, self.threads)
        keep = []  # the blocked buffers, alive until the stream is done
        for operand, array in zip(self.inputs, arrays, strict=True):
            lib.dnnl_memory_set_data_handle(operand.user, array.ctypes.data)
            if operand.reorder is not None:
                buffer = _aligned(operand.size)
                keep.append(buffer)
                lib.dnnl_memory_set_data_handle(operand.blocked, buffer.ctypes.data)
                self._execute(operand.reorder, operand.user, operand.blocked)
        output = self.output
        lib.dnnl_memory_set_data_handle(output.user, out.ctypes.data)
        if output.reorder is not None:
            buffer = _aligned(output.size)
            keep.append(buffer)
            lib.dnnl_memory_set_data_handle(output.blocked, buffer.ctypes.data)
        if self.bias is not None:
            if bias is None:
                bias = xp.zeros(self.output_shape[1], dtype=xp.float32)
            keep.append(bias)
            lib.dnnl_memory_set_data_handle(self.bias, bias.ctypes.data)
        check(lib.dnnl_primitive_execute(self.primitive, self.stream, self.nargs, self.args),
              f"the convolution's {self.pass_} pass")
        if output.reorder is not None:
            self._execute(output.reorder, output.blocked, output.user)
        check(lib.dnnl_stream_wait(self.stream), "a stream")
        return out

    def _execute(self, reorder: _void_p, src: _void_p, dst: _void_p) -> None:
        args = (_ExecArg * 2)(_ExecArg(_ARG["src"], src), _ExecArg(_ARG["dst"], dst))
        self.runtime.check(
            self.runtime.lib.dnnl_primitive_execute(reorder, self.stream, 2, args), "a reorder")


_local = threading.local()


def _use_threads(runtime: _Runtime, threads: int) -> None:
    """OpenMP's thread count for this thread's next parallel regions (``omp_set_num_threads``
    sets it per calling thread)."""
    if getattr(_local, "threads", None) != threads:
        runtime.set_threads(threads)
        _local.threads = threads


def _cached(key: Any, make: Any) -> Any:
    """This thread's object for ``key``, made by ``make()`` on first use (``None`` where oneDNN
    refuses it) and kept among the :data:`CACHE_SIZE` used last."""
    cache: OrderedDict[Any, Any] = _local.__dict__.setdefault("cache", OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    try:
        made = make()
    except RuntimeError:  # a geometry oneDNN refuses (the caller then runs its own kernel)
        made = None
    cache[key] = made
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return made


def plan(pass_: str, input_shape: Sequence[int], weight_shape: Sequence[int],
         stride: Sequence[int], padding: Sequence[Any], dilation: Sequence[int],
         groups: int, threads: int = 1) -> Pass | None:
    """This thread's :class:`Pass` for the geometry on ``threads`` OpenMP threads (created on
    first use and kept for the :data:`CACHE_SIZE` passes used last), or ``None`` where oneDNN
    is not available or cannot create it."""
    runtime = _runtime()
    if runtime is None:
        return None
    key = (pass_, tuple(input_shape), tuple(weight_shape), tuple(stride),
           tuple(map(tuple, padding)), tuple(dilation), groups, threads)
    made: Pass | None = _cached(key, lambda: Pass(runtime, pass_, input_shape, weight_shape,
                                                  stride, padding, dilation, groups, threads))
    return made


# ----- element-wise and pooling primitives on plain arrays ------------------------------------
class _Plain:
    """Two primitives (a forward and a backward pass) on wally's plain arrays, with no reorder:
    the base of :class:`Relu` and :class:`AvgPool`."""

    def __init__(self, runtime: _Runtime, threads: int) -> None:
        _use_threads(runtime, threads)
        self.runtime, self.threads = runtime, threads
        self.handles = _Handles(runtime)
        self.stream = _void_p()
        runtime.check(runtime.lib.dnnl_stream_create(ctypes.byref(self.stream), runtime.engine,
                                                     _IN_ORDER), "a stream")
        self.handles.keep("dnnl_stream_destroy", self.stream)

    def __del__(self) -> None:
        handles = getattr(self, "handles", None)
        if handles is not None:
            with contextlib.suppress(Exception):  # at interpreter exit the library may be gone
                handles.close()

    def _args(self, pairs: Sequence[tuple[str, _void_p]]) -> Any:
        return (_ExecArg * len(pairs))(*[_ExecArg(_ARG[name], memory) for name, memory in pairs])

    def _run(self, primitive: _void_p, args: Any, pairs: Sequence[tuple[_void_p, ndarray]],
             what: str) -> None:
        lib = self.runtime.lib
        _use_threads(self.runtime, self.threads)
        for memory, array in pairs:
            lib.dnnl_memory_set_data_handle(memory, array.ctypes.data)
        self.runtime.check(lib.dnnl_primitive_execute(primitive, self.stream, len(pairs), args),
                           what)
        self.runtime.check(lib.dnnl_stream_wait(self.stream), "a stream")


class Relu(_Plain):
    """ReLU's two passes over plain float32 arrays of one shape as oneDNN's eltwise primitives,
    on ``threads`` OpenMP threads: ``y = max(x, 0)`` and ``dx = dy · [y > 0]`` (read from
    ``y``, as wally's ReLU keeps it).  Each element is computed alone, so the bits are the
    same at any thread count.  The backward pass is NumPy's ``dy · [not y ≤ 0]`` bit for bit
    (a NaN ``dy`` stays NaN, ``0 · dy`` keeps its sign, a NaN ``y`` passes ``dy``); the
    forward pass turns a NaN ``x`` into 0 (measured), so wally's ReLU runs only the backward
    pass here."""

    def __init__(self, runtime: _Runtime, shape: Sequence[int], threads: int) -> None:
        super().__init__(runtime, threads)
        lib, check, handles = runtime.lib, runtime.check, self.handles
        md = handles.md(shape)
        forward, backward = _void_p(), _void_p()
        check(lib.dnnl_eltwise_forward_primitive_desc_create(
            ctypes.byref(forward), runtime.engine, _FORWARD_TRAINING, _RELU_USE_DST, md, md,
            0.0, 0.0, None), "a ReLU")
        handles.keep("dnnl_primitive_desc_destroy", forward)
        check(lib.dnnl_eltwise_backward_primitive_desc_create(
            ctypes.byref(backward), runtime.engine, _RELU_USE_DST, md, md, md, 0.0, 0.0,
            forward, None), "a ReLU (dX)")
        handles.keep("dnnl_primitive_desc_destroy", backward)
        self.forward_primitive = handles.primitive(forward, "a ReLU")
        self.backward_primitive = handles.primitive(backward, "a ReLU (dX)")
        self.a, self.b, self.c = (handles.memory(md) for _ in range(3))
        self.forward_args = self._args([("src", self.a), ("dst", self.b)])
        self.backward_args = self._args([("dst", self.a), ("diff_dst", self.b),
                                         ("diff_src", self.c)])

    def forward(self, x: ndarray, out: ndarray) -> ndarray:
        """``out = max(x, 0)`` (C-contiguous float32 arrays of the plan's shape)."""
        self._run(self.forward_primitive, self.forward_args, [(self.a, x), (self.b, out)],
                  "a ReLU")
        return out

    def backward(self, y: ndarray, gy: ndarray, out: ndarray) -> ndarray:
        """``out = gy`` where not ``y ≤ 0``, else ``0 · gy`` (C-contiguous float32 of the
        plan's shape)."""
        self._run(self.backward_primitive, self.backward_args,
                  [(self.a, y), (self.b, gy), (self.c, out)], "a ReLU (dX)")
        return out


def relu_plan(shape: Sequence[int], threads: int) -> Relu | None:
    """This thread's :class:`Relu` for arrays of ``shape`` on ``threads`` OpenMP threads, or
    ``None`` where oneDNN is not available or refuses it."""
    runtime = _runtime()
    if runtime is None:
        return None
    made: Relu | None = _cached(("relu", tuple(shape), threads),
                                lambda: Relu(runtime, shape, threads))
    return made


class AvgPool(_Plain):
    """Average pooling without padding (the mean of each window of ``kernel`` taps, every
    ``stride``) over plain float32 ``(N, C, *spatial)`` arrays, both passes, as oneDNN's
    pooling primitives.  Each output is one window's mean, computed alone: the same bits at
    any thread count (the forward pass's last bit may differ from wally's NumPy sum over
    taps; the backward pass gave NumPy's bits, measured)."""

    def __init__(self, runtime: _Runtime, shape: Sequence[int], kernel: Sequence[int],
                 stride: Sequence[int], threads: int) -> None:
        super().__init__(runtime, threads)
        lib, check, handles = runtime.lib, runtime.check, self.handles
        out = tuple((n - k) // s + 1 for n, k, s in zip(shape[2:], kernel, stride, strict=True))
        self.output_shape = (*shape[:2], *out)
        x_md, y_md = handles.md(shape), handles.md(self.output_shape)
        nd = len(kernel)
        zeros = _Dims(*(0,) * nd)
        forward, backward = _void_p(), _void_p()
        check(lib.dnnl_pooling_forward_primitive_desc_create(
            ctypes.byref(forward), runtime.engine, _FORWARD_TRAINING, _AVG_POOL, x_md, y_md,
            _Dims(*stride), _Dims(*kernel), zeros, zeros, zeros, None), "an average pooling")
        handles.keep("dnnl_primitive_desc_destroy", forward)
        check(lib.dnnl_pooling_backward_primitive_desc_create(
            ctypes.byref(backward), runtime.engine, _AVG_POOL, x_md, y_md, _Dims(*stride),
            _Dims(*kernel), zeros, zeros, zeros, forward, None), "an average pooling (dX)")
        handles.keep("dnnl_primitive_desc_destroy", backward)
        self.forward_primitive = handles.primitive(forward, "an average pooling")
        self.backward_primitive = handles.primitive(backward, "an average pooling (dX)")
        self.x, self.y = handles.memory(x_md), handles.memory(y_md)
        self.forward_args = self._args([("src", self.x), ("dst", self.y)])
        self.backward_args = self._args([("diff_dst", self.y), ("diff_src", self.x)])

    def forward(self, x: ndarray, out: ndarray) -> ndarray:
        """``out`` (of ``output_shape``) = each window's mean of ``x`` (C-contiguous)."""
        self._run(self.forward_primitive, self.forward_args, [(self.x, x), (self.y, out)],
                  "an average pooling")
        return out

    def backward(self, gy: ndarray, out: ndarray) -> ndarray:
        """``out`` (of the input's shape) = ``gy`` spread evenly over each window."""
        self._run(self.backward_primitive, self.backward_args, [(self.y, gy), (self.x, out)],
                  "an average pooling (dX)")
        return out


def avg_pool_plan(shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  threads: int) -> AvgPool | None:
    """This thread's :class:`AvgPool` for inputs of ``shape`` on ``threads`` OpenMP threads, or
    ``None`` where oneDNN is not available or refuses it."""
    runtime = _runtime()
    if runtime is None:
        return None
    made: AvgPool | None = _cached(
        ("avg_pool", tuple(shape), tuple(kernel), tuple(stride), threads),
        lambda: AvgPool(runtime, shape, kernel, stride, threads))
    return made


class MatMul(_Plain):
    """``c = a @ b`` for float32 matrices, as oneDNN's matmul primitive, on ``threads`` OpenMP
    threads: ``a`` (M, K) and ``b`` (K, N) of the plan's strides (row- or column-major, so a
    transposed weight is read where it lies), ``c`` (M, N) row-major.  oneDNN splits the
    product by blocks of ``c``: the same bits from run to run at a fixed thread count (tested),
    not promised across thread counts."""

    def __init__(self, runtime: _Runtime, a_shape: Sequence[int], a_strides: Sequence[int],
                 b_shape: Sequence[int], b_strides: Sequence[int], threads: int) -> None:
        super().__init__(runtime, threads)
        lib, check, handles = runtime.lib, runtime.check, self.handles
        a_md, b_md = handles.strided(a_shape, a_strides), handles.strided(b_shape, b_strides)
        c_md = handles.md((a_shape[0], b_shape[1]))
        pd = _void_p()
        check(lib.dnnl_matmul_primitive_desc_create(ctypes.byref(pd), runtime.engine, a_md,
                                                    b_md, None, c_md, None), "a matrix product")
        handles.keep("dnnl_primitive_desc_destroy", pd)
        self.primitive = handles.primitive(pd, "a matrix product")
        self.a, self.b, self.c = (handles.memory(md) for md in (a_md, b_md, c_md))
        self.args = self._args([("src", self.a), ("weights", self.b), ("dst", self.c)])

    def run(self, a: ndarray, b: ndarray, out: ndarray) -> ndarray:
        """``out = a @ b`` (``out`` C-contiguous float32 of shape (M, N))."""
        self._run(self.primitive, self.args, [(self.a, a), (self.b, b), (self.c, out)],
                  "a matrix product")
        return out


def _matrix_strides(array: ndarray) -> tuple[int, int] | None:
    """A 2-D float32 array's strides in elements where it is row- or column-major (a
    transposed view of a contiguous matrix), else ``None``."""
    rows, cols = array.shape
    step = array.itemsize
    if array.strides == (cols * step, step) or array.strides == (step, rows * step):
        return array.strides[0] // step, array.strides[1] // step
    return None


def matmul_plan(a: ndarray, b: ndarray, threads: int) -> MatMul | None:
    """This thread's :class:`MatMul` for ``a @ b`` (2-D float32, each row- or column-major) on
    ``threads`` OpenMP threads, or ``None`` where oneDNN is not available, refuses it or the
    arrays are laid out otherwise."""
    a_strides, b_strides = _matrix_strides(a), _matrix_strides(b)
    if a_strides is None or b_strides is None:
        return None
    runtime = _runtime()
    if runtime is None:
        return None
    made: MatMul | None = _cached(
        ("matmul", a.shape, a_strides, b.shape, b_strides, threads),
        lambda: MatMul(runtime, a.shape, a_strides, b.shape, b_strides, threads))
    return made
