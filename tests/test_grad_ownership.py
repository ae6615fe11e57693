"""Leaves keep the gradient array backward made for them, without a copy, only where nothing
else can reach it: zeroing one ``.grad`` in place never changes another, nor the caller's
gradient, nor a graph kept with ``retain_graph``."""

from __future__ import annotations

import numpy as np

import wally
import wally.nn.functional as F


def test_one_array_routed_to_two_leaves_is_copied_for_the_second():
    a = wally.randn(3, requires_grad=True)
    b = wally.randn(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.array, np.ones(3, dtype=np.float32))
    assert not np.shares_memory(a.grad.array, b.grad.array)


def test_the_callers_gradient_is_never_kept():
    x = wally.randn(4, requires_grad=True)
    gradient = wally.ones(4)
    x.clone().backward(gradient)  # Clone passes the caller's array straight through
    x.grad.zero_()
    np.testing.assert_array_equal(gradient.array, np.ones(4, dtype=np.float32))
    leaf = wally.randn(4, requires_grad=True)
    leaf.backward(gradient)
    leaf.grad.zero_()
    np.testing.assert_array_equal(gradient.array, np.ones(4, dtype=np.float32))


def test_pass_through_to_a_second_leaf_is_copied():
    a = wally.randn(3, requires_grad=True)
    b = wally.randn(3, requires_grad=True)
    y = a.clone() + b.clone()
    y.backward(wally.ones(3))
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.array, np.ones(3, dtype=np.float32))


def test_retained_non_leaf_grads_are_copies():
    a = wally.randn(3, requires_grad=True)
    c = a * 2
    c.retain_grad()
    (c + 0).sum().backward()
    c.grad.zero_()
    np.testing.assert_array_equal(a.grad.array, np.full(3, 2, dtype=np.float32))


def test_retain_graph_copies_and_accumulates():
    a = wally.randn(3, requires_grad=True)
    y = (a * 3).sum()
    y.backward(retain_graph=True)
    a.grad.zero_()
    y.backward()
    np.testing.assert_array_equal(a.grad.array, np.full(3, 3, dtype=np.float32))


def test_a_leaf_used_twice_accumulates():
    a = wally.randn(3, requires_grad=True)
    (a * 2 + a).sum().backward()
    np.testing.assert_array_equal(a.grad.array, np.full(3, 3, dtype=np.float32))
    (a * 2).sum().backward()
    np.testing.assert_array_equal(a.grad.array, np.full(3, 5, dtype=np.float32))


def test_fresh_weight_gradients_are_kept_without_a_copy():
    x = wally.randn(2, 3, 8, 8)
    w = wally.randn(4, 3, 3, 3, requires_grad=True)
    b = wally.zeros(4, requires_grad=True)
    lw = wally.randn(5, 256, requires_grad=True)
    y = F.linear(F.conv2d(x, w, b, padding=1).reshape(2, -1), lw)
    y.sum().backward()
    for p in (w, b, lw):
        assert p.grad.array.base is None and p.grad.array.flags.writeable
        assert p.grad.dtype == p.dtype
    assert not np.shares_memory(w.grad.array, lw.grad.array)
    w.grad.zero_()
    assert lw.grad.array.any() and b.grad.array.any()


def test_dtype_is_converted():
    a = wally.randn(3, requires_grad=True)  # float32
    a.backward(wally.ones(3, dtype=wally.float64))
    assert a.grad.dtype == np.float32
