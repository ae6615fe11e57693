"""Helpers that tests (and users writing their own ops) check gradients with.

``gradcheck`` is PyTorch's idea: compare the analytic gradient that ``backward`` computes with
central differences ``(f(x + eps) - f(x - eps)) / 2 eps`` in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wally.backend import ndarray, xp
from wally.tensor import Tensor


def numerical_grad(fn: Callable[..., Tensor], inputs: list[Tensor], weights: ndarray,
                   eps: float) -> list[ndarray | None]:
    """d(sum(weights * fn(*inputs)))/d(input) by central differences, for each input that
    requires grad."""
    grads: list[ndarray | None] = []
    for x in inputs:
        if not (isinstance(x, Tensor) and x.requires_grad):
            grads.append(None)
            continue
        flat = x.array.reshape(-1)  # a view: perturbing it perturbs x
        grad = xp.zeros(flat.shape, dtype=xp.float64)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = float((fn(*inputs).array * weights).sum())
            flat[i] = original - eps
            minus = float((fn(*inputs).array * weights).sum())
            flat[i] = original
            grad[i] = (plus - minus) / (2 * eps)
        grads.append(grad.reshape(x.shape))
    return grads


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, seed: int = 0) -> bool:
    """Check ``fn``'s backward against central differences; raise ``AssertionError`` if off.

    Every float input that requires grad must be float64. The output is contracted with fixed
    random weights, so every output element's gradient is exercised, not only their sum.
    """
    tensors = list(inputs)
    for x in tensors:
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != xp.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {x.dtype}")
    out = fn(*tensors)
    weights = xp.random.default_rng(seed).standard_normal(out.shape)
    for x in tensors:
        if isinstance(x, Tensor):
            x.grad = None
    out.backward(Tensor(weights.astype(out.dtype)))
    numeric = numerical_grad(fn, tensors, weights, eps)
    for index, (x, expected) in enumerate(zip(tensors, numeric)):
        if expected is None:
            continue
        assert isinstance(x, Tensor)
        actual = xp.zeros(x.shape) if x.grad is None else x.grad.array
        if not xp.allclose(actual, expected, atol=atol, rtol=rtol):
            worst = float(xp.max(xp.abs(actual - expected)))
            raise AssertionError(
                f"gradcheck failed for input {index} (shape {x.shape}): max abs difference "
                f"{worst:.3g}\nanalytic:\n{actual}\nnumerical:\n{expected}"
            )
    return True


def assert_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6,
                 msg: str = "") -> None:
    """``numpy.testing.assert_allclose`` on tensors, arrays or torch tensors alike."""
    def as_array(v: Any) -> ndarray:
        if isinstance(v, Tensor):
            return v.array
        if hasattr(v, "detach"):  # a torch tensor
            return v.detach().cpu().numpy()
        return xp.asarray(v)

    a, e = as_array(actual), as_array(expected)
    assert a.shape == e.shape, f"{msg} shape {a.shape} != {e.shape}"
    xp.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=msg)
