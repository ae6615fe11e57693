"""Padding variable-length sequences into one batch, PyTorch's ``torch.nn.utils.rnn``.

>>> a, b = wally.ones(3, 2), wally.ones(1, 2)
>>> pad_sequence([a, b], batch_first=True).shape     # (B, L_max, *)
wally.Size([2, 3, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.tensor import Tensor

__all__ = ["pad_sequence"]


class PadSequence(Function):
    """``out[i, :L_i] = seq_i`` (or ``out[i, -L_i:]`` for left padding), the rest
    ``padding_value``; backward hands each sequence its slice of the gradient."""

    def __init__(self, padding_value: float, left: bool) -> None:
        self.padding_value = padding_value
        self.left = left

    def forward(self, *seqs: ndarray) -> ndarray:
        self.lengths = [s.shape[0] for s in seqs]
        longest = max(self.lengths)
        dtype = xp.result_type(*seqs)
        out = xp.full((len(seqs), longest, *seqs[0].shape[1:]), self.padding_value, dtype=dtype)
        for i, s in enumerate(seqs):
            if self.left:
                out[i, longest - s.shape[0]:] = s
            else:
                out[i, : s.shape[0]] = s
        return out

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        longest = gy.shape[1]
        grads: list[ndarray | None] = []
        for i, (n, need) in enumerate(zip(self.lengths, self.needs_input_grad, strict=True)):
            if not need:
                grads.append(None)
            else:
                grads.append(xp.ascontiguousarray(gy[i, longest - n:] if self.left
                                                  else gy[i, :n]))
        return tuple(grads)


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack sequences of different lengths into one tensor, padded with ``padding_value``,
    as PyTorch's ``nn.utils.rnn.pad_sequence``: ``out[:L_i, i] = sequences[i]`` (time first),
    or ``out[i, :L_i]`` with ``batch_first=True``; ``padding_side="left"`` puts the padding
    before each sequence instead. Differentiable: each sequence gets its slice of the gradient
    (the padding gets none).

    Shape:
        ``sequences[i]``: ``(L_i, *)`` with the same ``*`` for all → ``(L_max, B, *)``, or
        ``(B, L_max, *)`` with ``batch_first=True``.

    Example::

        >>> seqs = [wally.tensor([1., 2., 3.]), wally.tensor([4.])]
        >>> pad_sequence(seqs, batch_first=True)
        tensor([[1., 2., 3.],
                [4., 0., 0.]])
    """
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    seqs = list(sequences)
    if not seqs:
        raise ValueError("pad_sequence: received an empty list of sequences")
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise TypeError(f"pad_sequence: expected a sequence of Tensors, got "
                            f"{type(s).__name__} at index {i}")
        if s.ndim == 0:
            raise ValueError(f"pad_sequence: sequence {i} is 0-d, expected shape (L, *)")
        if tuple(s.shape[1:]) != tuple(seqs[0].shape[1:]):
            raise ValueError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)}, expected "
                             f"trailing dimensions {tuple(seqs[0].shape[1:])} like sequence 0")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")
    out: Any = PadSequence(float(padding_value), padding_side == "left")(*seqs)
    return out if batch_first else out.transpose(0, 1)
