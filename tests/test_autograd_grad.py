"""``wally.autograd.grad`` and the grad modes (``inference_mode``, ``enable_grad``,
``set_grad_enabled``), held against PyTorch and against ``Tensor.backward``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally


def _graph(lib, a, b, c):
    """A small graph with branches, a non-leaf reused twice, broadcasting and a reduction."""
    h = (a * b).tanh()            # (3, 4)
    k = h * c + h.exp()           # c broadcasts (4,)
    return (k * k).sum(dim=1).mean(), h, k


def _leaves(lib, seed, dtype):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in ((3, 4), (3, 4), (4,))]
    return [lib.tensor(a, requires_grad=True) for a in arrays]


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from([np.float32, np.float64]),
       which=st.lists(st.sampled_from(["a", "b", "c", "h", "k"]), min_size=1, max_size=4,
                      unique=True),
       weighted=st.booleans())
def test_grad_matches_torch_and_leaves_grad_alone(torch, seed, dtype, which, weighted):
    results = []
    for lib in (wally, torch):
        a, b, c = _leaves(lib, seed, dtype)
        loss, h, k = _graph(lib, a, b, c)
        named = {"a": a, "b": b, "c": c, "h": h, "k": k}
        outputs = [loss, k] if weighted else loss
        grad_outputs = [lib.ones_like(loss), lib.tensor(np.full((3, 4), 0.5, dtype))] \
            if weighted else None
        grads = lib.autograd.grad(outputs, [named[n] for n in which], grad_outputs)
        assert all(t.grad is None for t in (a, b, c))
        results.append([g.detach().numpy() for g in grads])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for ours, theirs in zip(*results):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


def test_grad_equals_backward_and_central_differences():
    a, b, c = _leaves(wally, 3, np.float64)
    loss, _, _ = _graph(wally, a, b, c)
    ga, gb, gc = wally.autograd.grad(loss, (a, b, c), retain_graph=True)
    loss.backward()
    for g, x in zip((ga, gb, gc), (a, b, c)):
        np.testing.assert_array_equal(g.numpy(), x.grad.numpy())
    # central differences on one coordinate of c
    eps, base = 1e-6, c.detach().numpy().copy()
    values = []
    for sign in (1, -1):
        shifted = base.copy()
        shifted[2] += sign * eps
        values.append(_graph(wally, a.detach(), b.detach(), wally.tensor(shifted))[0].item())
    np.testing.assert_allclose(gc.numpy()[2], (values[0] - values[1]) / (2 * eps), rtol=1e-6)


def test_grad_leaves_leaf_grads_and_fills_retained_ones_as_torch(torch):
    seen = []
    for lib in (wally, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.grad = lib.tensor([5.0, 5.0])
        y = x * 3
        y.retain_grad()
        w = x.exp()
        w.retain_grad()  # on a branch that does not lead to the input asked for
        (g,) = lib.autograd.grad((y * y).sum() + w.sum(), y)
        seen.append([g.tolist(), x.grad.tolist(), None if y.grad is None else y.grad.tolist(),
                     w.grad])
    assert seen[0] == seen[1]
    assert seen[0][:3] == [[6.0, 12.0], [5.0, 5.0], [6.0, 12.0]]


def test_grad_prunes_branches_and_frees_the_graph():
    x = wally.tensor([1.0, 2.0], requires_grad=True)
    w = wally.tensor([3.0, 4.0], requires_grad=True)
    loss = (x * w).sum() + (w.exp()).sum()
    (gx,) = wally.autograd.grad(loss, x, retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    loss.backward()  # the retained graph still works and holds no stale gradients
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(w.grad.numpy(), [1 + np.exp(3.0), 2 + np.exp(4.0)], rtol=1e-6)
    loss = (x * w).sum()
    wally.autograd.grad(loss, w)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_grad_of_a_leaf_output_and_unused_inputs(torch):
    for lib in (wally, torch):
        x = lib.ones(2, requires_grad=True)
        u = lib.ones(3, requires_grad=True)
        (g,) = lib.autograd.grad(x, x, lib.tensor([2.0, 3.0]))
        assert g.tolist() == [2.0, 3.0]
        with pytest.raises(RuntimeError, match="index 1 appears to not have been used"):
            lib.autograd.grad((x * 2).sum(), [x, u])
        gx, gu = lib.autograd.grad((x * 2).sum(), [x, u], allow_unused=True)
        assert gx.tolist() == [2.0, 2.0] and gu is None
        gx, gu = lib.autograd.grad((x * 2).sum(), [x, u], materialize_grads=True)
        assert gu.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("case, message", [
    ("non_scalar", "implicitly created only for scalar outputs"),
    ("input_no_grad", "does not require grad"),
    ("output_no_grad", "element 0 of tensors does not require grad"),
])
def test_grad_refusals_match_torch(torch, case, message):
    for lib in (wally, torch):
        x = lib.ones(2, requires_grad=True)
        args = {"non_scalar": (x * 2, x), "input_no_grad": ((x * 2).sum(), lib.ones(2)),
                "output_no_grad": (lib.ones(2).sum(), x)}[case]
        with pytest.raises(RuntimeError, match=message):
            lib.autograd.grad(*args)


def test_grad_refuses_create_graph_and_bad_arguments():
    x = wally.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="autograd.grad: create_graph=True"):
        wally.autograd.grad((x * x).sum(), x, create_graph=True)
    with pytest.raises(TypeError, match="autograd.grad: expected inputs to be tensors, got list"):
        wally.autograd.grad((x * x).sum(), [[x]])
    with pytest.raises(RuntimeError, match=r"grad_outputs\[0\] has shape \(3,\), expected"):
        wally.autograd.grad(x * x, x, wally.ones(3))
    with pytest.raises(RuntimeError, match="grad_outputs has 2 tensors, expected one per output"):
        wally.autograd.grad(x * x, x, [wally.ones(2), wally.ones(2)])


# ----- grad modes ---------------------------------------------------------------------------

def _modes(lib):
    return [lib.is_grad_enabled(), lib.is_inference_mode_enabled()]


def test_grad_modes_follow_torch(torch):
    seen = []
    for lib in (wally, torch):
        states = []
        x = lib.ones(2, requires_grad=True)
        with lib.inference_mode():
            states.append(_modes(lib) + [(x * 2).requires_grad])
            with lib.inference_mode(False):
                states.append(_modes(lib))
            with lib.enable_grad():
                states.append(_modes(lib))
        states.append(_modes(lib))
        with lib.no_grad():
            with lib.set_grad_enabled(True):
                states.append(_modes(lib) + [(x * 2).requires_grad])
            states.append(_modes(lib))
        lib.set_grad_enabled(False)  # a plain call switches at once
        states.append(_modes(lib))
        lib.set_grad_enabled(True)
        states.append(_modes(lib))
        seen.append(states)
    assert seen[0] == seen[1]


def test_grad_modes_as_decorators(torch):
    for lib in (wally, torch):
        x = lib.ones(2, requires_grad=True)

        @lib.inference_mode
        def bare(t):
            return t * 2

        @lib.inference_mode()
        def called(t):
            return t * 2

        @lib.no_grad
        def bare_no_grad(t):
            return t * 2

        @lib.set_grad_enabled(False)
        def switched_off(t):
            return t * 2

        assert lib.is_grad_enabled()  # decorating changes nothing until the function runs
        for f in (bare, called, bare_no_grad, switched_off):
            assert not f(x).requires_grad
        assert lib.is_grad_enabled() and (x * 2).requires_grad
        assert bare.__name__ == "bare"


def test_grad_mode_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with wally.inference_mode():
            raise ZeroDivisionError
    assert wally.is_grad_enabled() and not wally.is_inference_mode_enabled()
    with pytest.raises(ZeroDivisionError):
        with wally.set_grad_enabled(False):
            raise ZeroDivisionError
    assert wally.is_grad_enabled()
