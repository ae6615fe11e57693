"""Run PyTorch's own OpInfo and ModuleInfo samples through wally and compare with torch.

PyTorch's test suite describes each op by an ``OpInfo`` (``op_db``) whose ``sample_inputs``
yields the argument lists its own tests use, and each layer by a ``ModuleInfo`` (``module_db``).
This harness finds, with no list kept by hand, every OpInfo whose name wally offers under the
PyTorch name (``torch.X`` -> ``wally.X`` and/or the ``Tensor`` method, ``nn.functional.X`` ->
``wally.nn.functional.X``, ``linalg.X`` -> ``wally.linalg.X`` ...) and every ModuleInfo whose
class ``wally.nn`` has, runs the samples in float32 and float64 and compares values (dtype and
shape too) and gradients (of a random-cotangent-weighted sum of the outputs, the same cotangent
on both sides) with torch's default tolerances for the dtype.

Samples that fail on purpose are listed, with the reason, in ``tests/opinfo_differences.json``;
``tests/test_opinfo.py`` fails on a failure that is not listed and on a listed one that passes.

``python tests/opinfo_harness.py`` prints the totals (``--table``: one row per entry,
``--failures`` / ``--skips``: each failing / skipped sample; ``--write-differences`` rewrites the
JSON file from the current failures, keeping the reasons already written and marking new ones
"TODO", which tests/test_opinfo.py refuses until a reason is written).

What is compared: the output's structure, shape, dtype and values (torch.testing.assert_close,
NaNs equal); the gradients of every float input that requires grad (and, for modules, of every
parameter) of sum(cotangent · output) over the float outputs; for modules, also the floating
buffers after the forward (BatchNorm's running statistics). Ops that draw random numbers (torch
gives different results for two seeds, or op_db wraps them in ``wrapper_set_seed``) and
``empty*`` are compared by shape and dtype only. Samples that can't be expressed in wally
(``memory_format=``, sparse or complex tensors) or that torch itself refuses are skipped and
counted. Tolerances: assert_close's defaults per dtype, float32 gradients rtol 1e-5, or the
larger ``toleranceOverride`` the OpInfo declares for torch's own eager tests.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import wally

DIFFERENCES_FILE = Path(__file__).with_name("opinfo_differences.json")
DTYPES = (torch.float32, torch.float64)
# torch.testing.assert_close's defaults for the dtype (values); gradients get the same.
TOLERANCES = {torch.float32: (1.3e-6, 1e-5), torch.float64: (1e-7, 1e-7)}
# Gradients are sums over many products: float32 gets rtol 1e-5 (float64 keeps the default).
# Where an OpInfo/ModuleInfo declares looser tolerances for torch's own eager tests
# (toleranceOverride in TestCommon/TestOperators/TestCompositeCompliance), those apply.
GRAD_TOLERANCES = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-7, 1e-7)}
# Keep the test quick on two cores: at most this many samples per (op, dtype).
MAX_SAMPLES = 40


class Unsupported(Exception):
    """A sample uses something wally has no counterpart for (a torch object, a layout...)."""


# ----- discovery ---------------------------------------------------------------------------
@dataclass
class OpCase:
    """One op of op_db as wally offers it: ``form`` is "fn" (a function) or "method"."""

    opinfo: Any
    form: str
    wally_fn: Callable[..., Any]

    @property
    def key(self) -> str:
        variant = self.opinfo.variant_test_name
        return f"{self.opinfo.name}{'.' + variant if variant else ''}:{self.form}"


def _wally_attr(dotted: str) -> Any:
    """``wally.<dotted>`` or None; ``nn.functional.x`` resolves through ``wally.nn.functional``."""
    parts = dotted.split(".")
    obj: Any = wally
    for i, part in enumerate(parts):
        nxt = getattr(obj, part, None)
        if nxt is None and i < len(parts) - 1:
            try:
                nxt = importlib.import_module(".".join(["wally", *parts[: i + 1]]))
            except ImportError:
                nxt = None
        if nxt is None:
            return None
        obj = nxt
    return obj


def _is_lambda(fn: Any) -> bool:
    return getattr(fn, "__name__", "") == "<lambda>"


def discover_ops() -> list[OpCase]:
    """Every (OpInfo, form) that wally offers under the PyTorch name."""
    from torch.testing._internal.common_methods_invocations import op_db

    cases = []
    for info in op_db:
        name = info.name
        fn = _wally_attr(name)
        offered = callable(fn) and not isinstance(fn, type)
        if offered and not _is_lambda(info.op):
            cases.append(OpCase(info, "fn", fn))
        elif _is_lambda(info.op) and (offered or hasattr(wally.Tensor, name)):
            # op_db wraps some ops in a lambda over ``torch.X``: run it with torch -> wally
            cases.append(OpCase(info, "lambda", _rebound(info.op)))
            continue
        for alias in info.aliases:
            alias_fn = _wally_attr(alias.name)
            if callable(alias_fn) and not isinstance(alias_fn, type):
                cases.append(OpCase(info, "alias=" + alias.name, alias_fn))
        if "." in name:
            continue
        attr = getattr(wally.Tensor, name, None)
        torch_attr = getattr(torch.Tensor, name, None)
        if attr is None or torch_attr is None:
            continue
        if isinstance(attr, property):
            # x.T, x.mT ...: the OpInfo's op is a lambda reading the attribute
            cases.append(OpCase(info, "method", _property_getter(name)))
        elif info.method_variant is not None and callable(attr):
            cases.append(OpCase(info, "method", _method_caller(name)))
    return cases


class _TorchAsWally:
    """What ``torch`` means inside an op_db lambda when it runs on wally."""

    def __getattr__(self, name: str) -> Any:
        value = _wally_attr(name)
        if value is None:  # torch.zero_(x) is x.zero_()
            value = getattr(wally.Tensor, name, None)
        if value is None:
            raise AttributeError(f"wally has no {name!r}")
        return value


def _rebound(fn: Callable[..., Any]) -> Callable[..., Any]:
    glob = dict(fn.__globals__)
    glob["torch"] = _TorchAsWally()
    return types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__,
                              fn.__closure__)


def _method_caller(name: str) -> Callable[..., Any]:
    def call(x: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(x, name)(*args, **kwargs)

    call.__name__ = f"Tensor.{name}"
    return call


def _property_getter(name: str) -> Callable[..., Any]:
    def get(x: Any) -> Any:
        return getattr(x, name)

    get.__name__ = f"Tensor.{name}"
    return get


def _torch_fn(case: OpCase) -> Callable[..., Any]:
    info = case.opinfo
    if case.form != "method":
        return info.op  # type: ignore[no-any-return]
    if info.method_variant is not None:
        return info.method_variant  # type: ignore[no-any-return]
    return info.op  # type: ignore[no-any-return]


# ----- converting arguments ----------------------------------------------------------------
_DTYPES = {getattr(torch, n): getattr(wally, n) for n in (
    "float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")}


def to_wally(obj: Any, memo: dict[int, Any], leaves: list[tuple[Any, Any]]) -> Any:
    """torch objects -> wally's: tensors (kept shared), dtypes, sizes, nested lists/tuples."""
    if isinstance(obj, torch.Tensor):
        if id(obj) in memo:
            return memo[id(obj)]
        if obj.layout != torch.strided or obj.is_complex() or obj.dtype not in _DTYPES:
            raise Unsupported(f"tensor of {obj.dtype} / {obj.layout}")
        array = obj.detach().cpu().numpy().copy()
        w = wally.Tensor(array, dtype=_DTYPES[obj.dtype])
        if obj.requires_grad:
            w.requires_grad_(True)
            leaves.append((obj, w))
        memo[id(obj)] = w
        return w
    if isinstance(obj, torch.dtype):
        if obj not in _DTYPES:
            raise Unsupported(f"dtype {obj}")
        return _DTYPES[obj]
    if isinstance(obj, torch.Size):
        return tuple(obj)
    if isinstance(obj, (torch.memory_format, torch.layout, torch.Generator)):
        raise Unsupported(type(obj).__name__)
    if isinstance(obj, torch.device):
        return str(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_wally(v, memo, leaves) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_wally(v, memo, leaves) for v in obj)
    if isinstance(obj, dict):
        return {k: to_wally(v, memo, leaves) for k, v in obj.items()}
    if isinstance(obj, (int, float, bool, str, type(None), slice, type(Ellipsis), complex)):
        return obj
    if callable(obj):
        raise Unsupported(f"callable argument {obj!r}")
    return obj


def _flat(out: Any) -> list[Any]:
    if isinstance(out, (list, tuple)):
        return [leaf for o in out for leaf in _flat(o)]
    return [out]


# ----- comparing ---------------------------------------------------------------------------
_OVERRIDES: dict[tuple[int, torch.dtype], tuple[float, float]] = {}
# The test classes whose tolerance overrides count: torch's own eager comparisons.
_TOLERANCE_CLASSES = ("TestCommon", "TestOperators", "TestCompositeCompliance", None)


def _override(info: Any, dtype: torch.dtype) -> tuple[float, float]:
    """The largest (rtol, atol) that torch's own eager tests allow this OpInfo for ``dtype``
    (its ``toleranceOverride`` decorators); (0, 0) when it declares none."""
    key = (id(info), dtype)
    if key not in _OVERRIDES:
        from torch.testing._internal.common_device_type import toleranceOverride

        rtol = atol = 0.0
        for deco in getattr(info, "decorators", ()) or ():
            if getattr(deco, "cls_name", None) not in _TOLERANCE_CLASSES:
                continue
            for inner in getattr(deco, "decorators", (deco,)):
                if isinstance(inner, toleranceOverride) and dtype in inner.d:
                    rtol = max(rtol, inner.d[dtype].rtol)
                    atol = max(atol, inner.d[dtype].atol)
        _OVERRIDES[key] = (rtol, atol)
    return _OVERRIDES[key]


_CURRENT: dict[str, Any] = {"info": None}


def _compare_value(t: Any, w: Any, dtype: torch.dtype, what: str, exact_dtype: bool = True,
                   grad: bool = False) -> None:
    rtol, atol = (GRAD_TOLERANCES if grad else TOLERANCES)[dtype]
    if _CURRENT["info"] is not None:
        o_rtol, o_atol = _override(_CURRENT["info"], dtype)
        rtol, atol = max(rtol, o_rtol), max(atol, o_atol)
    if isinstance(t, torch.Tensor):
        if not isinstance(w, wally.Tensor):
            raise AssertionError(f"{what}: torch gives a tensor, wally a {type(w).__name__}")
        if tuple(t.shape) != tuple(w.shape):
            raise AssertionError(f"{what}: shape {tuple(w.shape)}, torch {tuple(t.shape)}")
        expected = t.detach().cpu()
        if expected.dtype not in _DTYPES:
            raise Unsupported(f"output of {expected.dtype}")
        if exact_dtype and _DTYPES[expected.dtype] != w.dtype:
            raise AssertionError(f"{what}: dtype {w.dtype}, torch {expected.dtype}")
        actual = torch.from_numpy(np.array(w.array, copy=True)).to(expected.dtype)
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                                   check_dtype=False, msg=lambda m: f"{what}: {m}")
        return
    if isinstance(w, wally.Tensor):
        raise AssertionError(f"{what}: torch gives {type(t).__name__}, wally a tensor")
    if isinstance(t, float) and isinstance(w, (int, float)):
        if not (math.isclose(t, w, rel_tol=rtol, abs_tol=atol) or (t != t and w != w)):
            raise AssertionError(f"{what}: {w} != torch's {t}")
        return
    if t != w:
        raise AssertionError(f"{what}: {w!r} != torch's {t!r}")


def _same_structure(t: Any, w: Any, dtype: torch.dtype, what: str) -> None:
    if isinstance(t, (list, tuple)) and not isinstance(t, torch.Size):
        if not isinstance(w, (list, tuple)):
            raise AssertionError(f"{what}: torch gives a {type(t).__name__}, wally a "
                                 f"{type(w).__name__}")
        if len(t) != len(w):
            raise AssertionError(f"{what}: {len(w)} outputs, torch {len(t)}")
        for i, (a, b) in enumerate(zip(t, w)):
            _same_structure(a, b, dtype, f"{what}[{i}]")
        return
    if isinstance(t, torch.Size):
        t = tuple(t)
    _compare_value(t, w, dtype, what)


def _is_random(fn: Callable[..., Any], sample: Any) -> bool:
    """True for ops whose torch result changes from call to call (rand_like, dropout...),
    or that op_db wraps in ``wrapper_set_seed`` (wally's generator differs from torch's)."""
    if "wrapper_set_seed" in getattr(getattr(fn, "__code__", None), "co_names", ()):
        return True
    with torch.no_grad():
        torch.manual_seed(1)
        a = [x.clone() if isinstance(x, torch.Tensor) else x
             for x in _flat(fn(sample.input, *sample.args, **sample.kwargs))]
        torch.manual_seed(2)
        b = _flat(fn(sample.input, *sample.args, **sample.kwargs))
    return any(isinstance(x, torch.Tensor) and x.numel() and not torch.equal(x, y)
               for x, y in zip(a, b) if isinstance(y, torch.Tensor)
               and x.shape == y.shape and x.dtype == y.dtype)


def run_sample(torch_fn: Callable[..., Any], wally_fn: Callable[..., Any], sample: Any,
               dtype: torch.dtype, check_values: bool = True) -> None:
    """Raise AssertionError on a mismatch, Unsupported when the sample can't be expressed."""
    memo: dict[int, Any] = {}
    leaves: list[tuple[Any, Any]] = []
    w_input = to_wally(sample.input, memo, leaves)
    w_args = to_wally(list(sample.args), memo, leaves)
    w_kwargs = to_wally(dict(sample.kwargs), memo, leaves)
    try:
        t_out = torch_fn(sample.input, *sample.args, **sample.kwargs)
    except Exception as e:  # noqa: BLE001 - torch itself refuses the sample: nothing to compare
        raise Unsupported(f"torch raised {type(e).__name__}: {str(e)[:100]}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w_out = wally_fn(w_input, *w_args, **w_kwargs)
    except Unsupported:
        raise
    except Exception as e:  # noqa: BLE001 - the failure is the finding
        raise AssertionError(f"wally raised {type(e).__name__}: {str(e)[:200]}") from None
    if check_values:
        _same_structure(t_out, w_out, dtype, "output")
    else:  # random ops: shape and dtype only
        for i, (a, b) in enumerate(zip(_flat(t_out), _flat(w_out))):
            if isinstance(a, torch.Tensor):
                if not isinstance(b, wally.Tensor) or tuple(a.shape) != tuple(b.shape):
                    raise AssertionError(f"output[{i}]: shape/type differs")
                if a.dtype in _DTYPES and _DTYPES[a.dtype] != b.dtype:
                    raise AssertionError(f"output[{i}]: dtype {b.dtype}, torch {a.dtype}")
        return
    # gradients: d/d(leaves) of sum(cotangent * output) over the float outputs
    t_leaves = [t for t, _ in leaves]
    if not t_leaves:
        return
    t_outs, w_outs = _flat(t_out), _flat(w_out)
    pairs = [(a, b) for a, b in zip(t_outs, w_outs)
             if isinstance(a, torch.Tensor) and a.requires_grad and a.dtype.is_floating_point
             and isinstance(b, wally.Tensor)]
    if not pairs:
        return
    gen = torch.Generator().manual_seed(0)
    cots = [torch.randn(a.shape, generator=gen, dtype=a.dtype) for a, _ in pairs]
    t_grads = torch.autograd.grad([a for a, _ in pairs], t_leaves, cots, allow_unused=True)
    total: Any = None
    for (_, b), c in zip(pairs, cots):
        if not b.requires_grad:
            continue
        term = (b * wally.Tensor(c.numpy(), dtype=b.dtype)).sum()
        total = term if total is None else total + term
    try:
        if total is not None:
            total.backward()
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"wally backward raised {type(e).__name__}: {str(e)[:200]}") from None
    for i, ((t_leaf, w_leaf), tg) in enumerate(zip(leaves, t_grads)):
        expected = torch.zeros_like(t_leaf) if tg is None else tg
        got = w_leaf.grad
        if got is None:
            if expected.abs().max().item() if expected.numel() else 0:
                raise AssertionError(f"grad[{i}]: wally gives none, torch a nonzero gradient")
            continue
        _compare_value(expected, got, dtype, f"grad[{i}]", exact_dtype=False, grad=True)


# ----- running an op -----------------------------------------------------------------------
@dataclass
class Outcome:
    key: str
    dtype: str
    index: int
    description: str
    passed: bool
    message: str = ""


@dataclass
class OpReport:
    key: str
    outcomes: list[Outcome] = field(default_factory=list)
    unsupported: int = 0
    opinfo_name: str = ""
    skip_reasons: list[str] = field(default_factory=list)


def _samples(info: Any, dtype: torch.dtype) -> Iterator[Any]:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = info.sample_inputs("cpu", dtype, requires_grad=info.supports_autograd)
        for i, sample in enumerate(samples):
            if i >= MAX_SAMPLES:
                return
            yield sample


def run_op(case: OpCase) -> OpReport:
    report = OpReport(case.key, opinfo_name=case.opinfo.name)
    torch_fn = _torch_fn(case)
    info = case.opinfo
    _CURRENT["info"] = info
    for dtype in DTYPES:
        if dtype not in info.supported_dtypes("cpu"):
            continue
        # empty/empty_like hand out uninitialised memory: only shape and dtype are defined
        random_checked = True if info.name.startswith(("empty", "new_empty")) else None
        for index, sample in enumerate(_samples(info, dtype)):
            desc = _describe(sample)
            try:
                if random_checked is None:
                    random_checked = _is_random(torch_fn, sample)
                run_sample(torch_fn, case.wally_fn, sample, dtype,
                           check_values=not random_checked)
                report.outcomes.append(Outcome(case.key, str(dtype)[6:], index, desc, True))
            except Unsupported as e:
                report.unsupported += 1
                report.skip_reasons.append(f"{str(dtype)[6:]} #{index}: {e}")
            except AssertionError as e:
                report.outcomes.append(Outcome(case.key, str(dtype)[6:], index, desc, False,
                                               str(e).splitlines()[0][:300]))
    return report


def _describe(sample: Any) -> str:
    def one(v: Any) -> str:
        if isinstance(v, torch.Tensor):
            return f"T{tuple(v.shape)}" + ("" if v.dtype.is_floating_point else f":{v.dtype}"[6:])
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(one(x) for x in v) + "]"
        return repr(v)

    parts = [one(sample.input)] + [one(a) for a in sample.args]
    parts += [f"{k}={one(v)}" for k, v in sample.kwargs.items()]
    return ", ".join(parts)[:160]


# ----- modules -----------------------------------------------------------------------------
@dataclass
class ModuleCase:
    info: Any
    wally_cls: type

    @property
    def key(self) -> str:
        variant = getattr(self.info, "variant_test_name", "")
        return f"nn.{self.info.module_cls.__name__}{'.' + variant if variant else ''}:module"


def discover_modules() -> list[ModuleCase]:
    from torch.testing._internal.common_modules import module_db

    cases = []
    for info in module_db:
        cls = getattr(wally.nn, info.module_cls.__name__, None)
        if isinstance(cls, type):
            cases.append(ModuleCase(info, cls))
    return cases


def run_module(case: ModuleCase) -> OpReport:
    report = OpReport(case.key)
    info = case.info
    _CURRENT["info"] = info
    for dtype in DTYPES:
        if dtype not in info.dtypes:
            continue
        for training in (True, False):
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inputs = info.module_inputs_func(info, device="cpu", dtype=dtype,
                                                 requires_grad=True, training=training)
            for index, module_input in enumerate(inputs[:MAX_SAMPLES]):
                desc = ("train " if training else "eval ") + _describe_module(module_input)
                tag = f"{str(dtype)[6:]}/{'train' if training else 'eval'}"
                try:
                    _run_module_sample(case, module_input, dtype, training)
                    report.outcomes.append(Outcome(case.key, tag, index, desc, True))
                except Unsupported as e:
                    report.unsupported += 1
                    report.skip_reasons.append(f"{tag} #{index}: {e}")
                except AssertionError as e:
                    report.outcomes.append(Outcome(case.key, tag, index, desc, False,
                                                   str(e).splitlines()[0][:300]))
    return report


def _describe_module(module_input: Any) -> str:
    c, f = module_input.constructor_input, module_input.forward_input
    if f is None:
        return "no forward input"
    cargs = ", ".join([repr(a) for a in c.args] + [f"{k}={v!r}" for k, v in c.kwargs.items()])
    fake = type("S", (), {"input": f.args[0] if f.args else None, "args": f.args[1:],
                          "kwargs": f.kwargs})
    return f"({cargs})({_describe(fake)})"[:160]


def _run_module_sample(case: ModuleCase, module_input: Any, dtype: torch.dtype,
                       training: bool) -> None:
    c, f = module_input.constructor_input, module_input.forward_input
    if f is None:
        raise Unsupported("no forward input")
    memo: dict[int, Any] = {}
    leaves: list[tuple[Any, Any]] = []
    cargs = to_wally(list(c.args), memo, leaves)
    ckwargs = to_wally(dict(c.kwargs), memo, leaves)
    torch.manual_seed(0)
    try:
        t_mod = case.info.module_cls(*c.args, **c.kwargs).to(dtype)
        t_mod.train(training)
        if any(isinstance(p, torch.nn.parameter.UninitializedParameter)
               for p in t_mod.parameters()):
            with torch.no_grad():  # a Lazy module: materialise it, then both start equal
                t_mod(*[a.detach().clone() if isinstance(a, torch.Tensor) else a
                        for a in f.args], **f.kwargs)
    except Exception as e:  # noqa: BLE001 - torch itself refuses the sample
        raise Unsupported(f"torch raised {type(e).__name__}: {str(e)[:100]}") from None
    try:
        w_mod = case.wally_cls(*cargs, **ckwargs).to(_DTYPES[dtype])
        w_mod.train(training)
        state = {k: wally.Tensor(v.detach().numpy().copy()) for k, v in
                 t_mod.state_dict().items()}
        w_mod.load_state_dict(state)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"wally construction raised {type(e).__name__}: "
                             f"{str(e)[:200]}") from None
    w_in = to_wally(list(f.args), memo, leaves)
    w_kw = to_wally(dict(f.kwargs), memo, leaves)
    try:
        t_out = t_mod(*f.args, **f.kwargs)
    except Exception as e:  # noqa: BLE001
        raise Unsupported(f"torch raised {type(e).__name__}: {str(e)[:100]}") from None
    try:
        w_out = w_mod(*w_in, **w_kw)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"wally forward raised {type(e).__name__}: {str(e)[:200]}") from None
    _same_structure(t_out, w_out, dtype, "output")
    # buffers updated by a training step (BatchNorm's running stats) must match too
    t_state = t_mod.state_dict()
    w_state = w_mod.state_dict()
    for k, v in t_state.items():
        if k in w_state and v.dtype.is_floating_point:
            _compare_value(v, w_state[k], dtype, f"state[{k}]", exact_dtype=False)
    # gradients of inputs and parameters
    t_params = [p for p in t_mod.parameters() if p.requires_grad]
    w_named = dict(w_mod.named_parameters())
    t_named = [(n, p) for n, p in t_mod.named_parameters() if p.requires_grad]
    t_targets = [t for t, _ in leaves] + t_params
    pairs = [(a, b) for a, b in zip(_flat(t_out), _flat(w_out))
             if isinstance(a, torch.Tensor) and a.requires_grad and isinstance(b, wally.Tensor)]
    if not pairs or not t_targets:
        return
    gen = torch.Generator().manual_seed(0)
    cots = [torch.randn(a.shape, generator=gen, dtype=a.dtype) for a, _ in pairs]
    t_grads = torch.autograd.grad([a for a, _ in pairs], t_targets, cots, allow_unused=True)
    total: Any = None
    for (_, b), cot in zip(pairs, cots):
        if b.requires_grad:
            term = (b * wally.Tensor(cot.numpy(), dtype=b.dtype)).sum()
            total = term if total is None else total + term
    if total is None:
        raise AssertionError("wally output does not require grad")
    try:
        total.backward()
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"wally backward raised {type(e).__name__}: {str(e)[:200]}") from None
    w_targets = [w for _, w in leaves] + [w_named.get(n) for n, _ in t_named]
    names = [f"input[{i}]" for i in range(len(leaves))] + [n for n, _ in t_named]
    for name, t_leaf, w_leaf, tg in zip(names, t_targets, w_targets, t_grads):
        expected = torch.zeros_like(t_leaf) if tg is None else tg
        if w_leaf is None:
            raise AssertionError(f"grad[{name}]: wally has no such parameter")
        got = w_leaf.grad
        if got is None:
            if expected.numel() and expected.abs().max().item():
                raise AssertionError(f"grad[{name}]: wally gives none, torch a nonzero one")
            continue
        _compare_value(expected, got, dtype, f"grad[{name}]", exact_dtype=False, grad=True)


# ----- documented differences --------------------------------------------------------------
def load_differences() -> dict[tuple[str, str, int], dict[str, Any]]:
    if not DIFFERENCES_FILE.exists():
        return {}
    entries = json.loads(DIFFERENCES_FILE.read_text())["differences"]
    return {(e["op"], e["dtype"], e["sample"]): e for e in entries}


def failure_key(o: Outcome) -> tuple[str, str, int]:
    return (o.key, o.dtype, o.index)


def all_cases() -> list[Any]:
    return [*discover_ops(), *discover_modules()]


def run_case(case: Any) -> OpReport:
    return run_module(case) if isinstance(case, ModuleCase) else run_op(case)


def main(argv: list[str]) -> int:
    reports = [run_case(c) for c in all_cases()]
    outcomes = [o for r in reports for o in r.outcomes]
    op_reports = [r for r in reports if not r.key.endswith(":module")]
    mod_reports = [r for r in reports if r.key.endswith(":module")]
    for label, group in (("OpInfo", op_reports), ("ModuleInfo", mod_reports)):
        outs = [o for r in group for o in r.outcomes]
        ok = sum(o.passed for o in outs)
        names = {".".join(r.key.split(":")[0].split(".")[:2]) if label == "ModuleInfo"
                 else r.opinfo_name for r in group if r.outcomes}
        print(f"{label:<11} entries {len(group):>4}  names {len(names):>4}  samples "
              f"{len(outs):>6}  passed {ok:>6}  ({100 * ok / max(len(outs), 1):.2f} %)  "
              f"skipped {sum(r.unsupported for r in group)}")
    ok = sum(o.passed for o in outcomes)
    print(f"{'total':<11} samples {len(outcomes)}  passed {ok}  "
          f"({100 * ok / max(len(outcomes), 1):.2f} %)")
    op_names = {c.opinfo.name for c in discover_ops()}
    print(f"distinct OpInfo names covered: {len(op_names)}")
    failed = [o for o in outcomes if not o.passed]
    if "--table" in argv:
        print(f"\n{'entry (OpInfo name.variant:form)':<58} {'samples':>7} {'passed':>7} "
              f"{'skipped':>7}")
        for r in sorted(reports, key=lambda r: r.key):
            ok = sum(o.passed for o in r.outcomes)
            print(f"{r.key:<58} {len(r.outcomes):>7} {ok:>7} {r.unsupported:>7}")
    if "--skips" in argv:
        for r in reports:
            for reason in r.skip_reasons:
                print(f"SKIP {r.key} {reason}")
    if "--failures" in argv:
        for o in failed:
            print(f"FAIL {o.key} {o.dtype} #{o.index} [{o.description}] {o.message}")
    if "--write-differences" in argv:
        old = load_differences()
        entries = []
        for o in failed:
            prev = old.get(failure_key(o), {})
            entries.append({"op": o.key, "dtype": o.dtype, "sample": o.index,
                            "description": o.description,
                            "reason": prev.get("reason", "TODO: " + o.message)})
        DIFFERENCES_FILE.write_text(json.dumps(
            {"about": "OpInfo/ModuleInfo samples where wally differs from torch on purpose "
                      "or for a documented reason; see tests/opinfo_harness.py",
             "differences": entries}, indent=1) + "\n")
        print(f"wrote {len(entries)} differences to {DIFFERENCES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
