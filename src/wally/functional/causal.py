"""Sequence ops PyTorch lacks: causal 1-D convolution and global average pooling that ignores
padding.

A *causal* convolution (WaveNet, TCN) pads only on the left, by ``d·(k − 1)``, so output step
``t`` is a combination of input steps ``t − d·(k − 1), ..., t`` and never of a later one:

    ``y[o, t] = b[o] + Σ_c Σ_a w[o, c, a] · x[c, s·t − d·(k − 1 − a)]``  (``x`` is 0 before 0)

Keras spells it ``Conv1D(padding='causal')``; PyTorch has no such padding (users pad with
``F.pad(x, (d·(k − 1), 0))`` and call ``conv1d``, which this equals, as one convolution node).
"""

from __future__ import annotations

from typing import Any

from wally.backend import xp
from wally.creation import from_numpy
from wally.functional.conv import ConvNd, check_operands
from wally.tensor import Tensor

__all__ = ["causal_conv1d", "masked_global_avg_pool1d", "causal_padding", "steps_mask"]


def _positive(op: str, name: str, value: Any) -> int:
    if isinstance(value, tuple | list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")
    return value


def causal_padding(kernel_size: int, dilation: int = 1) -> int:
    """The left padding of a causal convolution, ``d·(k − 1)``: what its receptive field
    reaches back, minus one step."""
    return dilation * (kernel_size - 1)


def causal_conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                  stride: int = 1, dilation: int = 1, groups: int = 1) -> Tensor:
    """Causal 1-D cross-correlation: ``conv1d`` with ``d·(k − 1)`` zeros on the left and
    none on the right, so no output step sees a later input step (module docstring).

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_out, C_in/groups, k)``, bias
        ``(C_out,)`` → output ``(N, C_out, L_out)`` with ``L_out = floor((L − 1)/s) + 1``
        (``L`` itself for stride 1).

    Example::

        >>> x = wally.randn(8, 4, 100)
        >>> F.causal_conv1d(x, wally.randn(16, 4, 3), dilation=4).shape
        wally.Size([8, 16, 100])
    """
    op = "causal_conv1d"
    check_operands(op, 1, input, weight, bias, "out_channels, in_channels/groups")
    s = _positive(op, "stride", stride)
    d = _positive(op, "dilation", dilation)
    g = _positive(op, "groups", groups)
    channels = input.shape[-2]
    if channels != weight.shape[1] * g or weight.shape[0] % g:
        raise ValueError(
            f"{op}: expected input with {weight.shape[1] * g} channels (weight shape "
            f"{tuple(weight.shape)}, groups={g}), got {channels} channels (input shape "
            f"{tuple(input.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{op}: expected a bias of shape ({weight.shape[0]},), one per output "
                         f"channel, got shape {tuple(bias.shape)}")
    if input.shape[-1] == 0 or weight.shape[2] == 0:
        raise ValueError(f"{op}: expected a non-empty sequence and kernel, got input shape "
                         f"{tuple(input.shape)} and weight shape {tuple(weight.shape)}")
    left = causal_padding(int(weight.shape[2]), d)
    out: Tensor = ConvNd((s,), ((left, 0),), (d,), g, op)(input, weight, bias)
    return out


def steps_mask(lengths: Tensor, steps: int, dtype: Any = xp.float32) -> Tensor:
    """``(N, steps)`` in ``dtype``: 1 at the steps ``t < lengths[n]`` of each series, 0 on its
    padding, computed as ``clamp(lengths[n] − t, 0, 1)``: a cast, a subtraction and a clamp,
    which an ONNX export computes from a ``lengths`` graph input (a comparison would give a
    constant of the example's batch)."""
    time = from_numpy(xp.arange(steps, dtype=dtype)[None, :])
    return (lengths.to(dtype).reshape(-1, 1) - time).clamp(0.0, 1.0)


def masked_global_avg_pool1d(input: Tensor, lengths: Tensor | None = None,
                             mask: Tensor | None = None) -> Tensor:
    """The mean over time of each channel, counting only a series' own steps:

        ``y[n, c] = Σ_t m[n, t] · x[n, c, t] / Σ_t m[n, t]``

    with ``m[n, t] = t < lengths[n]`` (right padding, as :func:`wally.data.pad_collate`
    makes), or ``m = mask`` (True on real steps), or ``m = 1`` (neither: the plain global
    average, ``x.mean(-1)``). The gradient on padded steps is exactly zero. Keras's
    ``GlobalAveragePooling1D`` with a mask.

    Shape:
        input ``(N, C, T)``, lengths int ``(N,)`` in ``1..T`` or mask bool ``(N, T)`` → ``(N, C)``.

    Example::

        >>> x = wally.tensor([[[1., 2., 30.]]])           # one series of length 2, padded to 3
        >>> F.masked_global_avg_pool1d(x, lengths=wally.tensor([2]))
        tensor([[1.5000]])
    """
    op = "masked_global_avg_pool1d"
    if not isinstance(input, Tensor) or input.ndim != 3:
        shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{op}: expected an input of shape (N, C, T), got {shape}")
    if lengths is not None and mask is not None:
        raise ValueError(f"{op}: give lengths or mask, not both")
    n, _, t = input.shape
    if lengths is None and mask is None:
        return input.mean(dim=-1)
    if lengths is not None:
        counts = lengths.array if isinstance(lengths, Tensor) else xp.asarray(lengths)
        if counts.shape != (n,) or counts.dtype.kind not in "iu":
            raise ValueError(f"{op}: expected lengths as {n} integers (one per series, input "
                             f"shape {tuple(input.shape)}), got shape {tuple(counts.shape)} "
                             f"dtype {counts.dtype}")
        if n and (counts.min() < 1 or counts.max() > t):
            raise ValueError(f"{op}: lengths must lie in 1..{t} (the input's T), got "
                             f"{int(counts.min())}..{int(counts.max())}")
        given = lengths if isinstance(lengths, Tensor) else from_numpy(counts)
        kept = steps_mask(given, t, input.dtype)  # tensor ops: ONNX export computes it
        weights = kept / kept.sum(dim=1, keepdim=True)
        return (input * weights.reshape(n, 1, t)).sum(dim=-1)
    else:
        keep = mask.array if isinstance(mask, Tensor) else xp.asarray(mask)
        if keep.shape != (n, t) or keep.dtype != xp.bool_:
            raise ValueError(f"{op}: expected a bool mask of shape ({n}, {t}) (input shape "
                             f"{tuple(input.shape)}), got shape {tuple(keep.shape)} dtype "
                             f"{keep.dtype}")
        if n and not keep.any(axis=1).all():
            raise ValueError(f"{op}: mask row {int(xp.argmin(keep.any(axis=1)))} has no True "
                             "step: its average is undefined")
    weights = keep.astype(input.dtype) / keep.sum(axis=1, keepdims=True).astype(input.dtype)
    pooled: Tensor = (input * from_numpy(weights[:, None, :])).sum(dim=-1)
    return pooled
