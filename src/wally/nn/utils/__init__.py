"""Gradient clipping and flat parameter vectors, PyTorch's ``torch.nn.utils``.

Call the clipping functions between ``loss.backward()`` and ``optimizer.step()``::

    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
    optimizer.step()

They rescale or clamp each ``p.grad`` in place and skip parameters whose grad is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wally import ops
from wally.backend import ndarray, xp
from wally.tensor import Tensor

__all__ = [
    "clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
    "parameters_to_vector", "vector_to_parameters", "weight_norm", "remove_weight_norm",
]

TensorOrTensors = Tensor | Iterable[Tensor]


def _tensor_list(tensors: TensorOrTensors) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters: TensorOrTensors) -> list[Tensor]:
    return [p.grad for p in _tensor_list(parameters) if p.grad is not None]


def _vector_norm(array: ndarray, norm_type: float) -> ndarray:
    """``‖array‖_p`` over all elements, in ``array``'s dtype (0 for an empty array)."""
    if array.size == 0:
        return xp.zeros((), dtype=array.dtype)
    return xp.asarray(xp.linalg.norm(array.reshape(-1), ord=norm_type), dtype=array.dtype)


def _scale_(tensor: Tensor, factor: ndarray) -> None:
    if tensor.array.flags.writeable:
        xp.multiply(tensor.array, factor, out=tensor.array, casting="unsafe")
    else:
        tensor.array = (tensor.array * factor).astype(tensor.dtype)


def get_total_norm(tensors: TensorOrTensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    r"""The p-norm of all ``tensors`` taken together, as if concatenated into one vector:
    :math:`\|(\|t_1\|_p, \ldots, \|t_n\|_p)\|_p`.

    ``norm_type`` may be ``float('inf')`` (largest magnitude) or ``-inf`` (smallest).
    ``foreach`` is accepted for PyTorch compatibility and ignored.

    Shape:
        A 0-d tensor in the tensors' dtype (float32 ``0.0`` for no tensors).
    """
    arrays = [t.array for t in _tensor_list(tensors)]
    norm_type = float(norm_type)
    if not arrays:
        return Tensor._make(xp.zeros((), dtype=xp.float32), False, None, 0)
    norms = xp.stack([_vector_norm(a, norm_type) for a in arrays])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{float(total)}, so it cannot be clipped; pass error_if_nonfinite=False to scale "
            "the gradients by it anyway"
        )
    return Tensor._make(total, False, None, 0)


def clip_grads_with_norm_(parameters: TensorOrTensors, max_norm: float,
                          total_norm: Tensor | float, foreach: bool | None = None) -> None:
    r"""Scale the gradients by :math:`\min\left(1, \frac{\text{max\_norm}}
    {\text{total\_norm} + 10^{-6}}\right)`, in place, given a precomputed total norm."""
    grads = _grads(parameters)
    if not grads:
        return
    norm = total_norm.array if isinstance(total_norm, Tensor) else xp.asarray(total_norm)
    coefficient = xp.minimum(float(max_norm) / (norm + 1e-6), 1.0).astype(grads[0].dtype)
    for g in grads:
        _scale_(g, coefficient)


def clip_grad_norm_(parameters: TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    r"""Rescale the gradients in place so that their total norm is at most ``max_norm``.

    .. math::
        N = \bigl\|(\|g_1\|_p, \ldots, \|g_n\|_p)\bigr\|_p, \qquad
        g_i \leftarrow g_i \cdot \min\left(1, \frac{\text{max\_norm}}{N + 10^{-6}}\right)

    Args:
        parameters: a tensor or an iterable of tensors (``net.parameters()``); those with
            ``grad=None`` are skipped.
        max_norm: the largest norm allowed (>= 0).
        norm_type: p, a float, or ``float('inf')`` for the largest magnitude.
        error_if_nonfinite: raise ``RuntimeError`` if :math:`N` is nan or infinite, instead
            of scaling by it (which turns every gradient into nan or zero).
        foreach: accepted for PyTorch compatibility; ignored.

    Returns:
        :math:`N`, the total norm **before** clipping, as a 0-d tensor.

    Example::

        >>> total = nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
    """
    if float(max_norm) < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    parameters = _tensor_list(parameters)
    total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float,
                     foreach: bool | None = None) -> None:
    r"""Clamp every gradient element into ``[-clip_value, clip_value]``, in place:
    :math:`g \leftarrow \min(\max(g, -c), c)`.

    Example::

        >>> nn.utils.clip_grad_value_(net.parameters(), clip_value=0.5)
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        if g.array.flags.writeable:
            xp.clip(g.array, -clip_value, clip_value, out=g.array)
        else:
            g.array = xp.clip(g.array, -clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Flatten and concatenate ``parameters`` into one 1-D tensor (differentiable).

    Shape:
        ``(sum of p.numel(),)``.

    Example::

        >>> vec = nn.utils.parameters_to_vector(net.parameters())
    """
    tensors = list(parameters)
    for i, p in enumerate(tensors):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters_to_vector: expected Tensors, but item {i} is a "
                            f"{type(p).__name__}")
    if not tensors:
        raise ValueError("parameters_to_vector: got no parameters")
    return ops.cat([ops.reshape(p, (-1,)) for p in tensors])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Any]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters``, in place (no graph is
    recorded); the inverse of :func:`parameters_to_vector`.

    Unlike PyTorch, which points each ``param.data`` at a slice of ``vec``, the values are
    copied, so the parameters keep their own memory (and any views of it stay in sync).
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got "
                        f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: expected a 1-D vec, got shape {tuple(vec.shape)}")
    params = list(parameters)
    needed = sum(p.numel() for p in params)
    if needed != vec.shape[0]:
        raise ValueError(f"vector_to_parameters: the parameters hold {needed} elements, but "
                         f"vec has {vec.shape[0]}")
    offset = 0
    for p in params:
        n = p.numel()
        xp.copyto(p.array, vec.array[offset:offset + n].reshape(p.shape), casting="unsafe")
        p._bump_version()
        offset += n
# torch.nn.utils.rnn, .parametrize and .parametrizations
from wally.nn.utils import parametrizations, parametrize, rnn  # noqa: E402
from wally.nn.utils.weight_norm import remove_weight_norm, weight_norm  # noqa: E402
