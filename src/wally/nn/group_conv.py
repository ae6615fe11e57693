"""Group convolution on p4 (Cohen & Welling 2016): convolutions that commute with 90° turns.

A plain convolution commutes with shifts; turn the image and its feature map changes in a
way no shift undoes. The group p4 adds the four rotations ``r ∈ {0, 1, 2, 3}`` (quarter turns
counter-clockwise, ``numpy.rot90``'s sense) to the shifts. A p4 layer computes every filter
in all four orientations, so each output *field* ``o`` is a stack of four maps, one per
rotation, and turning the input turns each map **and** moves it one slot along the rotation
axis:

    ``f(rot x)[o, r] = rot(f(x)[o, r − 1 mod 4])``

* :class:`P4ConvZ2` (the *lifting* layer, images → p4): ``y[o, r] = Σ_i x[i] ⋆ rot^r(w[o, i])``.
* :class:`P4ConvP4` (p4 → p4): ``y[o, r] = Σ_i Σ_s x[i, s] ⋆ rot^r(w[o, i, s − r mod 4])``:
  the filter is turned and its own rotation axis shifted cyclically, so that the relative
  orientation of input and filter is what counts.
* :class:`RotationPool` (p4 → images): the max or mean over the four rotations of each field,
  invariant to the cyclic shift, so ``pool(f(rot x)) = rot(pool(f(x)))``: a plain equivariant
  map, which global spatial pooling turns into an *invariant* feature.
* :class:`P4BatchNorm2d`: batch norm with one mean and variance per field, shared by its four
  rotations (a per-map statistic would tell the rotations apart and break equivariance).

The names are GrouPy's (``groupy.gconv``, by the paper's authors): ``P4ConvZ2`` lifts from the
plane ``Z2`` to ``p4``, ``P4ConvP4`` maps ``p4`` to itself. The layout is GrouPy's
``(N, C, 4, H, W)`` flattened to ``(N, C·4, H, W)`` (channel ``4·c + r`` is rotation ``r`` of
field ``c``, the same memory order; escnn's regular fields are laid out alike), so every 2-D
layer (``ReLU``, ``MaxPool2d``, ``Dropout``) and every analysis (receptive field, summary,
cost, ONNX export) applies to p4 maps unchanged.

Each layer builds its ``(C_out·4, C_in·S, k, k)`` filter bank from its parameter on every call
and runs one ordinary :func:`wally.nn.functional.conv2d`, so autograd comes for free. The bank
is a fixed rearrangement of the parameter's entries (``rot90`` and ``roll`` applied once, to
an index grid, as GrouPy does), gathered with ``index_select``: a gather exports to ONNX, where
``rot90`` has no operator.

Exactness: ``rot(x) ⋆ rot(w) = rot(x ⋆ w)`` holds for odd kernels, stride 1 (or a stride grid
that lands on itself) and symmetric zero padding; then the equations above hold to rounding.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally import ops
from wally._windows import conv_settings
from wally.backend import ndarray, xp
from wally.creation import empty
from wally.device import device as _check_device
from wally.nn import init
from wally.nn.conv import check_channels, window_settings
from wally.nn.linear import _dtype_message
from wally.nn.module import Module
from wally.nn.norm import BatchNorm3d
from wally.nn.parameter import Parameter
from wally.ops_index import index_select
from wally.tensor import Tensor

__all__ = ["P4ConvZ2", "P4ConvP4", "RotationPool", "P4BatchNorm2d", "p4_filter_index",
           "p4_filter_bank"]

ROTATIONS = 4
"""The rotations of p4: quarter turns by 0°, 90°, 180° and 270°."""


def p4_filter_index(in_channels: int, stabilizer: int, kernel_size: tuple[int, ...]) -> ndarray:
    """Where each entry of the filter bank comes from: an int64 array ``(4, C_in·S·k_h·k_w)``
    whose row ``r`` lists, for the filter turned ``r`` times, the flat position in one output
    field's parameter ``(C_in, S, k_h, k_w)`` (``S = 1`` lifting, ``S = 4`` group).

    Row ``r`` is ``rot90(roll(grid, r, axis=S), r)`` of the grid ``0, 1, 2, …``: the kernel
    turned by ``r`` quarter turns and, for ``S = 4``, its rotation axis shifted by ``r``.

    Shape:
        ``(4, in_channels · stabilizer · k_h · k_w)``; for a square kernel.
    """
    grid = xp.arange(in_channels * stabilizer * kernel_size[0] * kernel_size[1]).reshape(
        in_channels, stabilizer, *kernel_size)
    rows = [xp.rot90(xp.roll(grid, r, axis=1) if stabilizer > 1 else grid, r, axes=(2, 3))
            for r in range(ROTATIONS)]
    return xp.stack([row.reshape(-1) for row in rows]).astype(xp.int64)


def p4_filter_bank(weight: Tensor, index: ndarray | None = None) -> Tensor:
    """The filter bank of a p4 layer from its parameter, for one :func:`F.conv2d`:

        ``bank[4·o + r, i·S + s] = rot^r(weight[o, i, s − r mod 4])``   (group, ``S = 4``)
        ``bank[4·o + r, i] = rot^r(weight[o, i])``                      (lifting, 4-D weight)

    Shape:
        ``weight`` ``(C_out, C_in, k, k)`` (lifting) or ``(C_out, C_in, 4, k, k)`` (group) →
        ``(C_out·4, C_in, k, k)`` or ``(C_out·4, C_in·4, k, k)``.

    Example::

        >>> w = wally.randn(2, 3, 3, 3)
        >>> bank = p4_filter_bank(w)                     # (8, 3, 3, 3)
        >>> bool((bank[1] == wally.rot90(w[0], 1, (1, 2))).all())
        True
    """
    if weight.ndim not in (4, 5) or weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"p4_filter_bank: expected a square-kernel weight (C_out, C_in, k, k) "
                         f"or (C_out, C_in, 4, k, k), got shape {tuple(weight.shape)}")
    out_channels, in_channels = weight.shape[:2]
    stabilizer = weight.shape[2] if weight.ndim == 5 else 1
    kernel = tuple(weight.shape[-2:])
    if index is None:
        index = p4_filter_index(in_channels, stabilizer, kernel)
    flat = ops.reshape(weight, (out_channels, -1))
    bank = index_select(flat, 1, Tensor(index.reshape(-1)))  # (C_out, 4·C_in·S·k·k)
    return ops.reshape(bank, (out_channels * ROTATIONS, in_channels * stabilizer, *kernel))


class _P4Conv(Module):
    """What the lifting and the group layer share; ``_stabilizer`` is the input's rotations."""

    _stabilizer = 1
    _layout = ""
    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        name = type(self).__name__
        check_channels(name, in_channels, out_channels, 1)
        self.kernel_size, self.stride, self.dilation = window_settings(
            name, 2, kernel_size, stride, dilation)
        if self.kernel_size[0] != self.kernel_size[1]:
            raise ValueError(f"{name}: kernel_size must be square (a turned kernel must fit "
                             f"the same window), got {self.kernel_size}")
        pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
        if len(pad) != 2 or any(not isinstance(p, int) or isinstance(p, bool) or p < 0
                                for p in pad):
            raise ValueError(f"{name}: padding must be a non-negative int or a pair of them, "
                             f"got {padding!r}")
        self.padding = (int(pad[0]), int(pad[1]))
        # the settings forward passes to F.conv2d, checked (and remembered) here, so forward
        # never checks them again
        conv_settings(name, 2, self.kernel_size, self.stride, self.padding, self.dilation)
        self.in_channels, self.out_channels = in_channels, out_channels
        shape = (out_channels, in_channels, *((self._stabilizer,) if self._stabilizer > 1
                                              else ()), *self.kernel_size)
        self.weight = Parameter(empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        # Fixed by the shapes: which parameter entry goes where in the filter bank.
        self._index = p4_filter_index(in_channels, self._stabilizer, self.kernel_size)
        self._bias_index = xp.repeat(xp.arange(out_channels), ROTATIONS)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's Conv2d default, U(±1/√fan_in), with fan_in = C_in·S·k·k, the inputs
        # each unit of the filter bank really sums.
        init._reset_weight_and_bias(self.weight, self.bias)

    def filter_bank(self) -> tuple[Tensor, Tensor | None]:
        """The ``(C_out·4, C_in·S, k, k)`` weights and ``(C_out·4,)`` bias of the equivalent
        :class:`~wally.nn.Conv2d` (the bias is shared by a field's four rotations)."""
        weight, bias = self.weight, self.bias
        bank = p4_filter_bank(weight, self._index)
        return bank, None if bias is None else index_select(bias, 0, Tensor(self._bias_index))

    def forward(self, input: Tensor) -> Tensor:
        channels = self.in_channels * self._stabilizer
        if input.ndim != 4 or input.shape[1] != channels:
            raise ValueError(f"{self!r}: expected an input {self._layout} with "
                             f"{channels} channels, got shape {tuple(input.shape)}")
        if input.dtype != self.weight.dtype:
            raise TypeError(_dtype_message(self, self.weight.dtype, input.dtype))
        weight, bias = self.filter_bank()
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text


class P4ConvZ2(_P4Conv):
    """The lifting layer, images → p4 (GrouPy's ``P4ConvZ2``): each filter in four turns,

        ``y[o, r] = b[o] + Σ_i x[i] ⋆ rot^r(w[o, i])``,   ``r = 0, 1, 2, 3``

    ``⋆`` being the cross-correlation of :class:`~wally.nn.Conv2d`. Turning the input turns
    every map and moves it one rotation on: ``f(rot x)[o, r] = rot(f(x)[o, r − 1])``.

    Parameters: ``C_out·C_in·k² + C_out`` (a Conv2d's to ``C_out`` channels; the output has
    ``4·C_out``).

    Shape:
        input ``(N, C_in, H, W)`` → output ``(N, 4·C_out, H_out, W_out)``, channel ``4·o + r``
        (GrouPy's ``(N, C_out, 4, H, W)``, flattened), ``H_out`` as for Conv2d:
        ``floor((H + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> lift = nn.P4ConvZ2(1, 8, kernel_size=3, padding=1)
        >>> lift(wally.randn(2, 1, 28, 28)).shape
        wally.Size([2, 32, 28, 28])
    """

    _stabilizer = 1
    _layout = "(N, C_in, H, W)"


class P4ConvP4(_P4Conv):
    """The group layer, p4 → p4 (GrouPy's ``P4ConvP4``): the filter turned and its rotation
    axis shifted cyclically,

        ``y[o, r] = b[o] + Σ_i Σ_s x[i, s] ⋆ rot^r(w[o, i, (s − r) mod 4])``

    so ``f(rot x)[o, r] = rot(f(x)[o, r − 1])`` whenever the input transforms that way.

    Parameters: ``C_out·C_in·4·k² + C_out`` (weight ``(C_out, C_in, 4, k, k)``).

    Shape:
        input ``(N, 4·C_in, H, W)`` → output ``(N, 4·C_out, H_out, W_out)``, sizes as for
        Conv2d.

    Example::

        >>> layer = nn.P4ConvP4(8, 16, kernel_size=3, padding=1)
        >>> layer(wally.randn(2, 32, 28, 28)).shape
        wally.Size([2, 64, 28, 28])
    """

    _stabilizer = ROTATIONS
    _layout = "(N, 4·C_in, H, W)"


class RotationPool(Module):
    """Pool each p4 field over its four rotations, ``y[c] = max_r x[c, r]`` (``mode="max"``)
    or ``mean_r x[c, r]`` (``mode="mean"``): the cyclic shift a turn causes is gone, so
    ``pool(f(rot x)) = rot(pool(f(x)))``, an ordinary rotation-equivariant map.

    Shape:
        input ``(N, 4·C, H, W)`` → output ``(N, C, H, W)``.

    Example::

        >>> nn.RotationPool("max")(wally.randn(2, 32, 5, 5)).shape
        wally.Size([2, 8, 5, 5])
    """

    def __init__(self, mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"RotationPool: mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4 or input.shape[1] % ROTATIONS:
            raise ValueError(f"{self!r}: expected p4 maps (N, 4·C, H, W), got shape "
                             f"{tuple(input.shape)}")
        n, channels, height, width = input.shape
        fields = ops.reshape(input, (n, channels // ROTATIONS, ROTATIONS, height, width))
        return ops.amax(fields, 2) if self.mode == "max" else ops.mean(fields, 2)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class P4BatchNorm2d(BatchNorm3d):
    """Batch normalisation of p4 maps with one mean, variance, ``γ`` and ``β`` per field,
    shared by its four rotations (escnn's ``InnerBatchNorm``):

        ``y[c, r] = (x[c, r] − E[x[c]]) / √(Var[x[c]] + ε) · γ[c] + β[c]``

    statistics over the batch, the rotations and the positions. It is
    :class:`~wally.nn.BatchNorm3d` on the ``(N, C, 4, H, W)`` view; arguments as there.

    Shape:
        input ``(N, 4·C, H, W)`` → the same; ``num_features = C``.

    Example::

        >>> nn.P4BatchNorm2d(8)(wally.randn(2, 32, 5, 5)).shape
        wally.Size([2, 32, 5, 5])
    """

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4 or input.shape[1] != ROTATIONS * self.num_features:
            raise ValueError(f"{self!r}: expected p4 maps (N, 4·{self.num_features}, H, W), "
                             f"got shape {tuple(input.shape)}")
        n, channels, height, width = input.shape
        fields = ops.reshape(input, (n, self.num_features, ROTATIONS, height, width))
        return ops.reshape(super().forward(fields), (n, channels, height, width))
