"""Layers for sequences that PyTorch lacks: a causal 1-D convolution and a global average
pooling over time that ignores padding.

``CausalConv1d`` is its own class rather than ``Conv1d(..., padding='causal')`` (Keras's
spelling): ``nn.Conv1d`` keeps exactly PyTorch's arguments, so code written for PyTorch never
meets a padding it would refuse, and a causal layer cannot be given a ``padding`` (or a
``padding_mode``) that breaks causality. Its weight and bias are laid out as ``Conv1d``'s, so
``conv.weight`` copies straight into a PyTorch ``Conv1d`` used after ``F.pad(x, (d·(k−1), 0))``.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally.nn.conv import _ConvNd
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = ["CausalConv1d", "MaskedGlobalAvgPool1d"]


class CausalConv1d(_ConvNd):
    """Causal 1-D convolution: ``y = F.causal_conv1d(x, weight, bias, stride, dilation,
    groups)``, a ``Conv1d`` padded with ``d·(k − 1)`` zeros on the left only, so output step
    ``t`` sees input steps ``t − d·(k − 1), ..., t`` and none after ``t``.

    ``y[o, t] = b[o] + Σ_c Σ_a w[o, c, a] · x[c, s·t − d·(k − 1 − a)]``

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)`` → output ``(N, C_out, L_out)`` with
        ``L_out = floor((L − 1)/s) + 1`` (``L`` for stride 1).

    Example::

        >>> conv = nn.CausalConv1d(4, 16, kernel_size=3, dilation=2)
        >>> conv(wally.randn(8, 4, 100)).shape
        wally.Size([8, 16, 100])
        >>> conv.causal_padding
        4
    """

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int],
                 stride: int | tuple[int] = 1, dilation: int | tuple[int] = 1,
                 groups: int = 1, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups,
                         bias, "zeros", device, dtype)

    @property
    def causal_padding(self) -> int:
        """The zeros put before the sequence, ``d·(k − 1)``."""
        return F.causal_padding(self.kernel_size[0], self.dilation[0])

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.causal_conv1d(input, weight, bias, self.stride[0], self.dilation[0],
                               self.groups)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.dilation != (1,):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class MaskedGlobalAvgPool1d(Module):
    """The mean over time of each channel, counting only each series' own steps:
    ``y = F.masked_global_avg_pool1d(x, lengths, mask)``. Called as ``pool(x)`` it is the
    plain global average; ``pool(x, lengths)`` or ``pool(x, mask=mask)`` leaves the padding
    out (and its gradient is zero there).

    Shape:
        input ``(N, C, T)``, lengths ``(N,)`` or mask ``(N, T)`` → output ``(N, C)``.

    Example::

        >>> pool = nn.MaskedGlobalAvgPool1d()
        >>> pool(wally.ones(2, 3, 5), wally.tensor([5, 2])).shape
        wally.Size([2, 3])
    """

    def forward(self, input: Tensor, lengths: Tensor | None = None,
                mask: Tensor | None = None) -> Tensor:
        return F.masked_global_avg_pool1d(input, lengths, mask)
