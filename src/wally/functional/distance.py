"""Distances and normalisation: ``cdist``, ``pairwise_distance``, ``cosine_similarity`` and
``normalize``, built from :func:`wally.linalg.vector_norm` (whose gradient is 0, not NaN, at
a zero vector)."""

from __future__ import annotations

from wally import ops
from wally.backend import xp
from wally.linalg import vector_norm
from wally.ops_math import _floating, _tensor, clamp_min
from wally.tensor import Tensor

# cdist is torch.cdist, not in torch.nn.functional: exported from wally only
__all__ = ["pairwise_distance", "cosine_similarity", "normalize"]


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """d[b, i, j] = ‖x1[b, i] − x2[b, j]‖_p, every row of x1 against every row of x2 (the
    difference is formed directly, so p=2 is exact where PyTorch's matmul shortcut rounds).
    **Shape:** (*, P, M) and (*, R, M) -> (*, P, R), the batch dims broadcast.

    >>> wally.cdist(wally.zeros(2, 3), wally.ones(4, 3)).shape
    wally.Size([2, 4])
    """
    x1, x2 = _tensor("cdist", x1), _tensor("cdist", x2)
    if x1.ndim < 2 or x2.ndim < 2:
        raise ValueError(f"cdist: expected tensors with at least 2 dims (*, P, M) and "
                         f"(*, R, M), got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: x1 and x2 must have the same number of columns, got "
                         f"{x1.shape[-1]} and {x2.shape[-1]}")
    if not isinstance(p, (int, float)) or p < 0:
        raise ValueError(f"cdist: p must be a non-negative number, got {p!r}")
    diff = ops.unsqueeze(x1, -2) - ops.unsqueeze(x2, -3)
    return vector_norm(diff, p, -1)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """d = ‖x1 − x2 + eps‖_p over the last dim, row by row (eps keeps the gradient finite
    where the rows coincide). **Shape:** (N, D) and (N, D) (broadcasting) -> (N,), or (N, 1)
    with ``keepdim``.

    >>> wally.nn.functional.pairwise_distance(wally.zeros(2, 3), wally.ones(2, 3))
    tensor([1.7320, 1.7320])
    """
    x1, x2 = _tensor("pairwise_distance", x1), _tensor("pairwise_distance", x2)
    diff = _floating(ops.sub(x1, x2)) + eps
    if diff.ndim == 0:
        return vector_norm(diff, p, None, keepdim)
    return vector_norm(diff, p, -1, keepdim)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """cos = Σ (x1 / max(‖x1‖, eps)) · (x2 / max(‖x2‖, eps)) over ``dim`` (each vector
    normalised on its own, as PyTorch does, so large norms don't overflow; where eps wins, the
    gradient still treats the norm as ‖x‖, as PyTorch's does).
    **Shape:** x1 and x2 broadcast; dim removed.

    >>> wally.nn.functional.cosine_similarity(wally.ones(2, 3), wally.ones(2, 3))
    tensor([1.0000, 1.0000])
    """
    x1, x2 = _tensor("cosine_similarity", x1), _tensor("cosine_similarity", x2)
    x1, x2 = _floating(x1), _floating(x2)
    try:
        shape = tuple(xp.broadcast_shapes(x1.shape, x2.shape))
    except ValueError:
        raise ValueError(f"cosine_similarity: shapes {tuple(x1.shape)} and {tuple(x2.shape)} "
                         "cannot be broadcast together") from None
    x1, x2 = ops.expand(x1, shape), ops.expand(x2, shape)  # dim counts in the broadcast shape
    return ops.sum((x1 / _clamped_norm(x1, dim, eps)) * (x2 / _clamped_norm(x2, dim, eps)), dim)


def _clamped_norm(x: Tensor, dim: int, eps: float) -> Tensor:
    """max(‖x‖, eps) in value, with the gradient of ‖x‖ even where eps wins: PyTorch clamps
    the norm in place under no_grad, so its cosine_similarity differentiates the plain norm."""
    norm = vector_norm(x, 2, dim, keepdim=True)
    return norm + (clamp_min(norm, eps) - norm).detach()


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """v / max(‖v‖_p, eps) over ``dim``. **Shape:** the input's.

    >>> wally.nn.functional.normalize(wally.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    input = _floating(_tensor("normalize", input))
    denom = clamp_min(vector_norm(input, p, dim, keepdim=True), eps)
    return input / denom
