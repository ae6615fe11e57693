"""Normalisation layers beyond batch norm: ``LayerNorm``, ``GroupNorm``, ``InstanceNorm1d/2d/3d``
(and their lazy versions) and ``LocalResponseNorm``, PyTorch's signatures, parameters, buffers
and printed forms; each calls :mod:`wally.functional.normalization` in one line."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from wally.device import device as _check_device
from wally.functional import normalization as N
from wally.nn.module import Module
from wally.nn.norm import _BatchNorm, _LazyBatchNorm, register_affine, reset_affine
from wally.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter
from wally.tensor import Tensor

__all__ = [
    "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d", "LocalResponseNorm",
]


class LayerNorm(Module):
    r"""Layer normalisation (Ba et al., 2016) over the last ``len(normalized_shape)`` axes:

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    with each sample's mean and biased variance. ``weight`` (:math:`\gamma`, ones) and
    ``bias`` (:math:`\beta`, zeros) have shape ``normalized_shape`` when
    ``elementwise_affine``; ``bias=False`` drops :math:`\beta`.

    Shape:
        - Input: ``(*, *normalized_shape)``.  - Output: the input's shape.

    Example::

        >>> nn.LayerNorm(16)(wally.randn(4, 10, 16)).shape
        wally.Size([4, 10, 16])
    """

    normalized_shape: tuple[int, ...]
    weight: Parameter | None
    bias: Parameter | None

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in self.normalized_shape):
            raise ValueError(
                f"LayerNorm: normalized_shape must hold non-negative sizes, got "
                f"{normalized_shape!r}"
            )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        register_affine(self, self.normalized_shape, elementwise_affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return N.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    r"""Group normalisation (Wu & He, 2018): each sample's ``num_groups`` groups of channels
    are standardised over their channels and positions, then scaled and shifted per channel:

    .. math::
        y = \frac{x - \mathrm{E}_g[x]}{\sqrt{\mathrm{Var}_g[x] + \epsilon}} \cdot \gamma_c
            + \beta_c

    ``weight`` (ones) and ``bias`` (zeros) have shape ``(num_channels,)`` when ``affine``.

    Shape:
        - Input: ``(N, C, *)`` with ``C = num_channels``.  - Output: the input's shape.

    Example::

        >>> nn.GroupNorm(3, 6)(wally.randn(20, 6, 10, 10)).shape
        wally.Size([20, 6, 10, 10])
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups}), and num_groups positive"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        register_affine(self, (num_channels,), affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim >= 2 and input.shape[1] != self.num_channels:
            raise ValueError(
                f"{self!r}: expected {self.num_channels} channels on axis 1, got shape "
                f"{tuple(input.shape)}"
            )
        return N.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class _InstanceNorm(_BatchNorm):
    """What the three InstanceNorm layers share: BatchNorm's parameters and buffers (off by
    default), each sample's own statistics, and an unbatched input accepted."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def _check_input(self, input: Tensor) -> None:
        if input.ndim not in self._ranks:
            ranks = " or ".join(f"{r}-D" for r in self._ranks)
            raise ValueError(
                f"{self!r}: expected a {ranks} input {self._layout}, got shape "
                f"{tuple(input.shape)}"
            )
        axis = input.ndim - (self._ranks[0])
        if input.shape[axis] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"{self!r}: expected input's size at dim={axis} to match num_features "
                    f"({self.num_features}), got shape {tuple(input.shape)}"
                )
            warnings.warn(
                f"{type(self).__name__}: input's size at dim={axis} ({input.shape[axis]}) "
                f"does not match num_features ({self.num_features}), which is unused because "
                "affine=False",
                UserWarning,
                stacklevel=3,
            )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        unbatched = input.ndim == self._ranks[0]
        x = input.unsqueeze(0) if unbatched else input
        # momentum=None: no running update (PyTorch passes 0.0; InstanceNorm counts no batches).
        momentum = 0.0 if self.momentum is None else self.momentum
        y = N.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats, momentum, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    r"""Instance normalisation of sequences: each channel of each sample standardised over its
    length, :math:`y = (x - \mathrm{E}_{n,c}[x]) / \sqrt{\mathrm{Var}_{n,c}[x] + \epsilon}
    \cdot \gamma + \beta`. ``affine`` and ``track_running_stats`` are off by default, as in
    PyTorch; with ``track_running_stats`` evaluation uses the running statistics.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``.  - Output: the same shape.

    Example::

        >>> nn.InstanceNorm1d(100)(wally.randn(20, 100, 40)).shape
        wally.Size([20, 100, 40])
    """

    _ranks = (2, 3)
    _layout = "(C, L) or (N, C, L)"


class InstanceNorm2d(_InstanceNorm):
    r"""Instance normalisation of images: each channel of each sample standardised over its
    plane. Options as in :class:`InstanceNorm1d`.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``.  - Output: the same shape.

    Example::

        >>> nn.InstanceNorm2d(3, affine=True)(wally.randn(2, 3, 8, 8)).shape
        wally.Size([2, 3, 8, 8])
    """

    _ranks = (3, 4)
    _layout = "(C, H, W) or (N, C, H, W)"


class InstanceNorm3d(_InstanceNorm):
    r"""Instance normalisation of volumes: each channel of each sample standardised over its
    volume. Options as in :class:`InstanceNorm1d`.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.  - Output: the same shape.

    Example::

        >>> nn.InstanceNorm3d(2)(wally.randn(1, 2, 4, 4, 4)).shape
        wally.Size([1, 2, 4, 4, 4])
    """

    _ranks = (4, 5)
    _layout = "(C, D, H, W) or (N, C, D, H, W)"


class _LazyInstanceNorm(_LazyBatchNorm, _InstanceNorm):
    """An InstanceNorm whose ``num_features`` is read from the first input's channel axis.

    PyTorch's lazy constructor has BatchNorm's defaults, ``affine=True`` and
    ``track_running_stats=True`` (unlike ``InstanceNorm``'s), and so has this one. With both
    off there is nothing to materialise: the layer becomes the eager class with
    ``num_features=0``, as PyTorch's does.
    """

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():
            return
        if input.ndim not in self._ranks:
            self._check_input(input)  # raises, naming the layer and the ranks it accepts
        # The channel axis: 0 for an unbatched input, 1 for a batch.
        self.num_features = int(input.shape[input.ndim - self._ranks[0]])
        for value in (self.weight, self.bias, self.running_mean, self.running_var):
            if isinstance(value, (UninitializedParameter, UninitializedBuffer)):
                value.materialize((self.num_features,))
        self.reset_parameters()


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """:class:`InstanceNorm1d` with ``num_features`` inferred from the first input's channels.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``.  - Output: the same shape.

    Example::

        >>> norm = nn.LazyInstanceNorm1d()
        >>> norm(wally.randn(20, 100, 40)).shape, norm.num_features
        ((20, 100, 40), 100)
    """

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """:class:`InstanceNorm2d` with ``num_features`` inferred from the first input's channels.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``.  - Output: the same shape.

    Example::

        >>> norm = nn.LazyInstanceNorm2d()
        >>> norm(wally.randn(2, 3, 8, 8)).shape, norm
        ((2, 3, 8, 8), InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, \
track_running_stats=True))
    """

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """:class:`InstanceNorm3d` with ``num_features`` inferred from the first input's channels.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.  - Output: the same shape.

    Example::

        >>> nn.LazyInstanceNorm3d()(wally.randn(1, 2, 4, 4, 4)).shape
        wally.Size([1, 2, 4, 4, 4])
    """

    cls_to_become = InstanceNorm3d


class LocalResponseNorm(Module):
    r"""Local response normalisation across channels (AlexNet's):

    .. math::
        b_c = a_c \left(k + \frac{\alpha}{n} \sum_{c'} a_{c'}^2\right)^{-\beta}

    the sum over the ``n = size`` channels around ``c`` (zeros beyond the edges).

    Shape:
        - Input: ``(N, C, *)``.  - Output: the same shape.

    Example::

        >>> nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(wally.randn(1, 8, 4, 4)).shape
        wally.Size([1, 8, 4, 4])
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:
        return N.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
