"""The graph engine: recording, accumulation, freeing, no_grad and in-place rules."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally.autograd import Function


def test_backward_accumulates_over_branches_and_calls():
    x = wally.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x + x  # x used twice
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0, 7.0])
    (x * 3).sum().backward()  # a second graph adds to .grad, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0, 10.0])


def test_leaf_grads_do_not_alias_each_other():
    a = wally.ones(3, requires_grad=True)
    b = wally.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.zero_()
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_graph_is_freed_after_backward_unless_retained():
    x = wally.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_records_nothing_and_is_a_decorator():
    x = wally.ones(2, requires_grad=True)
    with wally.no_grad():
        y = x * 2
        with wally.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @wally.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert wally.is_grad_enabled()


def test_gradients_nobody_needs_are_not_computed():
    calls = []

    class Probe(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            calls.append(self.needs_input_grad)
            return None, gy

    a = wally.ones(2)
    b = wally.ones(2, requires_grad=True)
    Probe()(a, b).sum().backward()
    assert calls == [(False, True)]
    assert a.grad is None and b.grad is not None


def test_backward_needs_a_scalar_or_a_gradient():
    x = wally.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(wally.ones(2, 2))
    assert x.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), expected \(2, 2\)"):
        (x * 2).backward(wally.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        wally.ones(2).sum().backward()


def test_in_place_update_under_no_grad_like_d2l_sgd():
    w = wally.normal(0, 0.01, size=(4, 2), requires_grad=True)
    before = w.detach().numpy().copy()
    (w * w).sum().backward()
    with wally.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
    np.testing.assert_allclose(w.detach().numpy(), before - 0.1 * 2 * before, rtol=1e-6)
    assert w.is_leaf and w.requires_grad and w.grad.tolist() == [[0.0, 0.0]] * 4


def test_in_place_on_a_leaf_that_requires_grad_is_refused():
    w = wally.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w += 1
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w[0] = 3.0


def test_in_place_inside_a_graph_is_recorded():
    x = wally.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y *= x  # y = x²
    y += 1
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_setitem_gradients_reach_both_the_target_and_the_value():
    x = wally.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = wally.tensor(5.0, requires_grad=True)
    y = x * 2
    y[1] = v * v
    (y * wally.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 200.0]
    assert v.grad.item() == pytest.approx(10.0 * 2 * 5.0)


def test_retain_grad_on_an_intermediate():
    x = wally.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0]


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = wally.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**5000, rel=1e-3)


def test_integer_outputs_never_require_grad():
    x = wally.randn(3, 4, requires_grad=True)
    values, indices = x.max(dim=1)
    assert values.requires_grad and not indices.requires_grad
    assert indices.dtype == wally.int64
    with pytest.raises(RuntimeError, match="floating point"):
        wally.arange(3).requires_grad_()


def test_numpy_of_a_tensor_that_requires_grad_is_refused_like_torch():
    x = wally.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]


def test_a_node_reached_by_paths_of_different_lengths_runs_after_all_its_consumers():
    # h feeds cat directly and through a longer branch: h's producer must run last.
    x = wally.randn(2, 3, dtype=wally.float64, requires_grad=True)
    h = x.exp()
    y = wally.cat((h, (h * 2).sin().relu() + h), 1)
    y.sum().backward()
    e = np.exp(x.detach().numpy())
    s = np.sin(2 * e)
    expected = e * (1 + np.where(s > 0, 2 * np.cos(2 * e), 0) + 1)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10)


def test_detect_anomaly_names_the_first_op_in_the_forward_pass():
    x = wally.tensor([1.0, -1.0])
    with pytest.raises(wally.autograd.AnomalyError, match=r"'Log' returned nan .*forward"):
        with wally.autograd.detect_anomaly():
            (x * 2).log().exp()  # Log makes the NaN; Exp merely propagates it
    assert x.log().isnan().any()  # outside the context nothing is checked


def test_detect_anomaly_names_the_first_op_in_the_backward_pass():
    x = wally.tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt().sum()  # finite forward; d sqrt/dx at 0 is inf
    with wally.autograd.detect_anomaly():
        with pytest.raises(wally.autograd.AnomalyError, match=r"'Sqrt' returned inf .*backward"):
            y.backward()


def test_inference_outputs_take_the_short_path_with_the_same_results():
    """Under no_grad one array comes back wrapped as is; scalars, tuples and ints as before."""
    class Pair(Function):
        def forward(self, x):
            return x * 2, (x > 0).sum()

    class Scalar(Function):
        def forward(self, x):
            return x.sum()  # a NumPy scalar, not an ndarray

    x = wally.tensor([1.0, -2.0], requires_grad=True)
    with wally.no_grad():
        y = x * 3
        doubled, positives = Pair()(x)
        total = Scalar()(x)
    assert type(y) is wally.Tensor and y.grad_fn is None and not y.requires_grad
    assert y.is_leaf and y.grad is None
    np.testing.assert_array_equal(y.array, [3.0, -6.0])
    assert doubled.grad_fn is None and positives.dtype == np.int64
    assert isinstance(total.array, np.ndarray) and total.shape == () and total.item() == -1.0
    with pytest.raises(RuntimeError, match="only tensors of floating point dtype"):
        wally.tensor([1, 2], requires_grad=True)
