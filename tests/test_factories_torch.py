"""PyTorch's factory signatures (``size=``, ``dtype=``, ``device=``, ``requires_grad=``), the
``Size`` that ``shape`` and ``size()`` return, and the ``dtype`` objects, against PyTorch."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally

# Each call is evaluated with m = wally and m = torch; dtype, shape and requires_grad must agree.
CALLS = [
    "m.rand(size=(8, 8))", "m.rand(2, 3)", "m.rand((2, 3), dtype=m.float64)",
    "m.randn(size=[4], requires_grad=True)", "m.randn(3, device='cpu')",
    "m.zeros(size=(2, 1))", "m.zeros(2, 3, dtype=m.int32)", "m.zeros([])", "m.zeros(())",
    "m.ones(size=(3,), requires_grad=True)", "m.ones(2, dtype=m.bool)", "m.empty(2, 3).shape",
    "m.empty(size=(0, 3))", "m.full((2, 3), 1.5)", "m.full((2,), 7)", "m.full((2,), True)",
    "m.full(size=(2,), fill_value=2.0, requires_grad=True)", "m.full((1,), 3, dtype=m.float64)",
    "m.eye(3, requires_grad=False)", "m.eye(2, 4)", "m.eye(3, dtype=m.int64)",
    "m.eye(2, requires_grad=True)",
    "m.zeros_like(m.ones(2, 3), device='cpu')", "m.ones_like(m.ones(2), dtype=m.float64)",
    "m.zeros_like(m.ones(2, dtype=m.float64), dtype=m.int32)",
    "m.ones_like(m.ones(2), requires_grad=True)", "m.empty_like(m.ones(2, dtype=m.int64))",
    "m.full_like(m.ones(2, 2), 3.5)", "m.full_like(m.arange(3), 2)",
    "m.rand_like(m.ones(2, dtype=m.float64), requires_grad=True)", "m.randn_like(m.ones(3, 2))",
    "m.normal(0., 1., size=(3, 2), device='cpu')", "m.normal(2.0, 3.0, (2,))",
    "m.normal(m.zeros(2, dtype=m.float64), 1.0)", "m.normal(0.0, m.ones(3, dtype=m.float64))",
    "m.normal(m.zeros(2, 3), m.ones(2, 3))", "m.normal(0., 1., size=(2,), requires_grad=True)",
    "m.arange(5)", "m.arange(0, 1, 0.25)", "m.arange(1, 4, dtype=m.float64)", "m.arange(end=3)",
    "m.arange(2.5)", "m.arange(m.tensor(5.0, dtype=m.float64))", "m.arange(5, 0, -2)",
    "m.arange(3, requires_grad=False, device='cpu')",
    "m.linspace(0, 1, 5)", "m.linspace(0, 10, 4, dtype=m.int64)", "m.linspace(-1, 1, 1)",
    "m.linspace(0, 1, steps=3, dtype=m.float64, requires_grad=True)",
    "m.randint(10, (3,))", "m.randint(3, 10, (2, 2))", "m.randint(10, size=(3,))",
    "m.randint(low=0, high=4, size=(2,))", "m.randint(0, 2, (3,), dtype=m.int32)",
    "m.randperm(5)", "m.randperm(4, dtype=m.int32)",
    "m.tensor([1.0, 2.0], device='cpu', requires_grad=True)",
]


@pytest.mark.parametrize("call", CALLS)
def test_factory_matches_torch(torch, call):
    ours, theirs = eval(call, {"m": wally}), eval(call, {"m": torch})
    if isinstance(theirs, torch.Size):
        assert ours == theirs and isinstance(ours, wally.Size)
        return
    assert str(ours.dtype).replace("wally.", "") == str(theirs.dtype).replace("torch.", "")
    assert ours.shape == tuple(theirs.shape) and isinstance(ours.shape, wally.Size)
    assert ours.requires_grad == theirs.requires_grad


@pytest.mark.parametrize("call", [
    "m.zeros(2, 3)", "m.ones(size=(2,))", "m.full((2,), 1.5)", "m.eye(3)", "m.eye(2, 3)",
    "m.zeros_like(m.ones(2))", "m.full_like(m.ones(2), 4.0)", "m.arange(5)",
    "m.arange(0, 1, 0.25)", "m.arange(5, 0, -2)", "m.arange(1, 2.5, 0.5, dtype=m.float64)",
    "m.linspace(0, 1, 5)", "m.linspace(-3, 7, 6, dtype=m.float64)",
    "m.linspace(0, 10, 4, dtype=m.int64)",
])
def test_deterministic_factory_values_match_torch(torch, call):
    ours, theirs = eval(call, {"m": wally}), eval(call, {"m": torch})
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


@settings(max_examples=30)
@given(low=st.integers(-5, 5), span=st.integers(1, 6), size=st.lists(st.integers(0, 3),
                                                                   max_size=3))
def test_random_factories_respect_their_ranges(low, span, size):
    ints = wally.randint(low, low + span, size)
    assert ints.shape == tuple(size) and ints.dtype == wally.int64
    assert ((ints.numpy() >= low) & (ints.numpy() < low + span)).all()
    uniform = wally.rand(size=size, dtype=wally.float64)
    assert ((uniform.numpy() >= 0) & (uniform.numpy() < 1)).all()
    perm = wally.randperm(span)
    assert sorted(perm.tolist()) == list(range(span))


@pytest.mark.parametrize("call, error, message", [
    ("m.zeros(2, size=(3,))", TypeError, "zeros\\(\\) got multiple values for argument 'size'"),
    ("m.zeros(2.5)", TypeError, "zeros\\(\\): argument 'size' must be a tuple of ints, got "
                                "float 2.5"),
    ("m.rand(size=(2, -1))", RuntimeError, "rand\\(\\): .*negative dimension: size \\[2, -1\\]"),
    ("m.rand(2, dtype=m.int64)", TypeError, "rand\\(\\): expected a floating point dtype, got "
                                            "int64"),
    ("m.zeros(2, device='cuda')", RuntimeError, "device 'cuda' is not available"),
    ("m.zeros(2, pin_memory=True)", ValueError, "zeros\\(\\): pin_memory=True is not supported "
                                                "by wally \\(expected pin_memory=False\\)"),
    ("m.ones(2, colour='red')", TypeError, "ones\\(\\) got an unexpected keyword argument "
                                           "'colour'"),
    ("m.randint(5, 3, (2,))", RuntimeError, "randint\\(\\): expected low < high, got low=5, "
                                            "high=3"),
    ("m.randint(5)", TypeError, "randint\\(\\) needs high and size"),
    ("m.arange(0, 3, 0)", RuntimeError, "arange\\(\\): step must be nonzero"),
    ("m.Size([1.5])", TypeError, "Size\\(\\) takes an iterable of 'int' \\(item 0 is 'float'\\)"),
])
def test_bad_factory_arguments(call, error, message):
    with pytest.raises(error, match=message):
        eval(call, {"m": wally})


# ----- Size ---------------------------------------------------------------------------------

def test_size_behaves_as_torch_size(torch):
    for m in (wally, torch):
        s = m.zeros(2, 3, 4).shape
        assert s == (2, 3, 4) and hash(s) == hash((2, 3, 4))
        assert isinstance(s, tuple) and isinstance(s, m.Size)
        assert s.numel() == 24 and m.Size([]).numel() == 1
        for derived in (s[1:], s + (5,), (5,) + s, s * 2, 2 * s, s + s):
            assert type(derived) is m.Size
        assert type(s[0]) is int and s[-1] == 4
        assert m.zeros(2, 3).size() == s[:2] and m.zeros(2, 3).size(1) == 3
        assert pickle.loads(pickle.dumps(s)) == s and type(copy.deepcopy(s)) is m.Size
    assert repr(wally.Size([1, 1, 8, 8])) == "wally.Size([1, 1, 8, 8])"
    assert str(wally.Size([])) == "wally.Size([])"
    assert wally.Size(np.array([2, 3])) == (2, 3)


# ----- dtype --------------------------------------------------------------------------------

def test_dtype_is_numpy_compatible():
    x = wally.zeros(2)
    assert x.dtype == wally.float32 and x.dtype is wally.float32
    assert x.dtype == np.float32 and np.float32 == x.dtype
    assert x.dtype == np.dtype("float32") and np.dtype("float32") == x.dtype
    assert x.dtype == x.numpy().dtype and x.dtype != wally.float64
    assert np.zeros(2, dtype=wally.float64).dtype == np.float64
    assert np.ones(2).astype(wally.int32).dtype == np.int32
    assert hash(wally.float32) == hash(np.dtype("float32"))
    assert {np.dtype("float32"): "found"}[x.dtype] == "found"
    assert {wally.int64: "found"}[np.dtype("int64")] == "found"
    assert wally.float32.kind == "f" and wally.float32.itemsize == 4
    assert wally.float16.is_floating_point and not wally.int64.is_floating_point
    assert wally.int8.is_signed and not wally.uint8.is_signed
    assert wally.float is wally.float32 and wally.long is wally.int64
    assert wally.double is wally.float64 and wally.half is wally.float16
    assert pickle.loads(pickle.dumps(wally.int16)) is wally.int16
    assert copy.deepcopy(wally.bool) is wally.bool and wally.dtype("float64") is wally.float64


def test_dtype_prints_as_torch_outside_the_switch(torch):
    for name in ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64",
                 "bool", "complex64", "complex128"):
        ours, theirs = getattr(wally, name), getattr(torch, name)
        assert repr(ours).replace("wally.", "torch.") == repr(theirs)
        assert str(ours).replace("wally.", "torch.") == str(theirs)
        assert ours.is_floating_point == theirs.is_floating_point
        assert ours.is_complex == theirs.is_complex and ours.itemsize == theirs.itemsize
    assert repr(wally.zeros(1, dtype=wally.float64)) == "tensor([0.], dtype=wally.float64)"


def test_tensor_and_module_to_take_the_dtype_objects():
    layer = wally.nn.Linear(2, 3).to(wally.float64)
    assert layer.weight.dtype is wally.float64
    assert wally.ones(2).to(wally.int32).dtype is wally.int32
    assert wally.ones(2).to(np.float64).dtype is wally.float64
