"""Fully connected layers and shape plumbing: ``Linear``, ``LazyLinear``, ``Flatten``,
``Unflatten`` and ``Identity``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wally import functional as F
from wally.creation import empty
from wally.device import device as _check_device
from wally.nn import init
from wally.nn.module import LazyModuleMixin, Module
from wally.nn.parameter import Parameter, UninitializedParameter
from wally.tensor import Tensor

__all__ = ["Identity", "Linear", "LazyLinear", "Flatten", "Unflatten"]


def _dtype_name(dtype: Any) -> str:
    """``float32``, or ``big-endian float32`` for ``>f4`` (tensors made by ``wally.tensor`` and
    ``from_numpy`` are always native; an array wrapped another way may not be)."""
    if dtype.isnative:
        return str(dtype)
    order = "big" if dtype.byteorder == ">" else "little"
    return f"{order}-endian {dtype.newbyteorder('=')}"


def _dtype_message(layer: Module, expected: Any, got: Any) -> str:
    """A layer's refusal of an input of the wrong dtype, with the fix that applies: an integer
    input is converted (``x.float()``; layers compute in floating point), a float input of
    another precision is converted or the layer is."""
    text = f"{layer!r}: expected a {_dtype_name(expected)} input, got {_dtype_name(got)}"
    if got.kind != "f":
        return text + f"; convert the input first, e.g. x.float() or x.to({expected})"
    if not got.isnative:
        return text + f"; convert it to the native byte order, e.g. x.to({expected})"
    return text + f"; convert the input (x.to({expected})) or the layer (layer.to({got}))"


class Identity(Module):
    """Returns its input unchanged, :math:`y = x`; a placeholder where a layer is optional.
    Constructor arguments are accepted and ignored, as in PyTorch.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same tensor.

    Example::

        >>> nn.Identity()(wally.ones(2, 3)).shape
        wally.Size([2, 3])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    r"""Fully connected layer: :math:`y = x W^\top + b` over the last axis.

    ``weight`` has shape ``(out_features, in_features)`` and ``bias`` ``(out_features,)``, both
    drawn from :math:`U(-1/\sqrt{\text{in\_features}},\ 1/\sqrt{\text{in\_features}})` (see
    :meth:`reset_parameters`).

    Shape:
        - Input: ``(*, in_features)``, any number of leading axes.
        - Output: ``(*, out_features)``.

    Example::

        >>> layer = nn.Linear(20, 30)
        >>> layer(wally.randn(128, 20)).shape
        wally.Size([128, 30])
    """

    in_features: int
    out_features: int
    weight: Parameter
    bias: Parameter | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"Linear: {name} must be a non-negative integer, got {value!r}"
                )
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's init, U(±1/√in_features) for the weight and the bias.
        init._reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected an input of shape (*, {self.in_features}), got shape "
                f"{tuple(input.shape)}"
                + (" (flatten images first, e.g. with nn.Flatten())" if input.ndim > 2 else "")
            )
        # Parameters are read once: each read goes through Module.__getattr__ (~0.7 µs).
        weight, bias = self.weight, self.bias
        if input.dtype != weight.dtype:
            raise TypeError(_dtype_message(self, weight.dtype, input.dtype))
        return F.linear(input, weight, bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LazyLinear(LazyModuleMixin, Linear):
    r"""A :class:`Linear` whose ``in_features`` is read from the first input's last axis.

    Until the first forward pass ``weight`` and ``bias`` are
    :class:`~wally.nn.UninitializedParameter` placeholders; that pass materialises them with
    ``Linear``'s initialisation and the module becomes a plain ``Linear``. d2l builds its MLPs
    and CNN heads this way: ``nn.LazyLinear(10)``.

    Shape:
        - Input: ``(*, in_features)``, ``in_features`` inferred.
        - Output: ``(*, out_features)``.

    Example::

        >>> layer = nn.LazyLinear(10)
        >>> layer(wally.randn(2, 84)).shape, layer
        ((2, 10), Linear(in_features=84, out_features=10, bias=True))
    """

    cls_to_become = Linear
    weight: UninitializedParameter
    bias: UninitializedParameter

    def __init__(self, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(0, 0, False, device, dtype)
        self.out_features = out_features
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:
        if self.has_uninitialized_params():
            if input.ndim == 0:
                raise ValueError(
                    f"{self._get_name()}(out_features={self.out_features}): expected an input "
                    "of shape (*, in_features), got a 0-d tensor"
                )
            self.in_features = int(input.shape[-1])
            self.weight.materialize((self.out_features, self.in_features))
            if self.bias is not None:
                self.bias.materialize((self.out_features,))
            self.reset_parameters()

    def _lazy_sizes_from_parameters(self) -> None:
        self.in_features = int(self.weight.shape[1])


class Flatten(Module):
    r"""Merges axes ``start_dim`` … ``end_dim`` into one; by default every axis but the batch
    axis, turning ``(N, C, H, W)`` feature maps into ``(N, C·H·W)`` rows for a ``Linear``.

    Shape:
        - Input: ``(*, S_start, ..., S_end, *)``.
        - Output: ``(*, S_start · ... · S_end, *)``.

    Example::

        >>> nn.Flatten()(wally.zeros(32, 16, 5, 5)).shape
        wally.Size([32, 400])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    r"""Splits axis ``dim`` into ``unflattened_size``, the inverse of :class:`Flatten`.

    One entry of ``unflattened_size`` may be ``-1`` (inferred).

    Shape:
        - Input: ``(*, S_dim, *)``.
        - Output: ``(*, U_1, ..., U_n, *)`` with :math:`\prod U_i = S_{dim}`.

    Example::

        >>> nn.Unflatten(1, (16, 5, 5))(wally.zeros(32, 400)).shape
        wally.Size([32, 16, 5, 5])
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(dim, int):
            raise TypeError(f"Unflatten: dim must be an int, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(n, int) for n in unflattened_size
        ):
            raise TypeError(
                f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}"
            )
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        ndim = input.ndim
        if not -ndim <= self.dim < max(ndim, 1):
            raise ValueError(
                f"{self!r}: dim {self.dim} is out of range for an input of shape "
                f"{tuple(input.shape)}"
            )
        axis = self.dim % ndim
        shape = tuple(input.shape)
        known = math.prod(n for n in self.unflattened_size if n != -1)
        if (-1 not in self.unflattened_size and known != shape[axis]) or (
            -1 in self.unflattened_size and (known == 0 or shape[axis] % known)
        ):
            raise ValueError(
                f"{self!r}: cannot split axis {self.dim} of size {shape[axis]} into "
                f"{self.unflattened_size} (input shape {shape})"
            )
        return input.reshape(shape[:axis] + self.unflattened_size + shape[axis + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
