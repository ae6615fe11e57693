"""Channel-wise and alpha dropout: ``dropout1d``, ``dropout2d``, ``dropout3d``,
``alpha_dropout``, ``feature_alpha_dropout`` (element-wise ``dropout`` lives in
:mod:`wally.functional.linear`).

Masks are drawn from wally's global generator (``wally.manual_seed``), with the same rule as
``dropout``: a unit is kept when its uniform draw is at least ``p``. Channel-wise ("feature")
dropout draws one value per ``(sample, channel)`` and zeroes the whole feature map.
Shape rules and warnings are PyTorch's, word for word where PyTorch warns, so that a script
run with ``-W error`` stops in the same places.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING

from wally import creation
from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]

# SELU's λ·α: alpha dropout sets dropped units to SELU's negative saturation value −λα.
_SELU_SATURATION = 1.7580993408473766


class MaskedDropout(Function):
    """y = x · (a m) + b(m), m ~ Bernoulli(1 − p) of shape ``mask_shape`` (broadcast over the
    input); ∂x = gy · a m.

    Plain (feature) dropout: a = 1/(1 − p), b = 0. Alpha dropout (Klambauer et al., 2017):
    a = ((1 − p)(1 + p α'²))^(−1/2) and b = a α' p (m = 1) or −a α' (1 − p) (m = 0), α' = λα,
    so that a zero-mean unit-variance input keeps mean 0 and variance 1. ``p = 1`` gives zeros
    (both kinds, as in PyTorch)."""

    def __init__(self, p: float, alpha: bool, feature: bool) -> None:
        self.p = p
        self.alpha = alpha
        self.feature = feature

    def forward(self, x: ndarray) -> ndarray:
        shape = x.shape[:2] + (1,) * (x.ndim - 2) if self.feature else x.shape
        if self.p == 1.0:
            scale = xp.zeros(shape, dtype=x.dtype)
            shift = None
        else:
            draw_dtype = xp.float64 if x.dtype == xp.float64 else xp.float32
            keep = (creation.generator().random(shape, dtype=draw_dtype) >= self.p).astype(x.dtype)
            if self.alpha:
                a = 1.0 / math.sqrt((_SELU_SATURATION ** 2 * self.p + 1.0) * (1.0 - self.p))
                shift = keep - 1.0
                shift *= _SELU_SATURATION * a
                shift += _SELU_SATURATION * a * self.p
                scale = keep * a
            else:
                scale = keep * (1.0 / (1.0 - self.p))
                shift = None
        if self.needs_input_grad[0]:
            self.scale = scale
        y = x * scale
        if shift is not None:
            y += shift
        return y

    def backward(self, gy: ndarray) -> ndarray:
        return gy * self.scale


def _check_p(name: str, p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def _masked(name: str, input: Tensor, p: float, training: bool, inplace: bool, alpha: bool,
            feature: bool) -> Tensor:
    if not training or p == 0 or input.numel() == 0:
        return input
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {input.dtype}")
    if feature and input.ndim < 2:
        raise ValueError(
            f"{name}: feature dropout requires at least 2 dimensions (N, C, *), got shape "
            f"{tuple(input.shape)}"
        )
    fn = MaskedDropout(p, alpha, feature)
    if inplace:
        return input._in_place(lambda x: fn(x))
    return fn(input)


def _unbatched(name: str, input: Tensor, p: float, training: bool, inplace: bool) -> Tensor:
    """Channel dropout of an input without a batch axis: a batch of one, then squeezed."""
    if not training or p == 0 or input.numel() == 0:
        return input
    if inplace:
        return input._in_place(
            lambda x: _masked(name, x.unsqueeze(0), p, training, False, False, True).squeeze(0)
        )
    return _masked(name, input.unsqueeze(0), p, training, False, False, True).squeeze(0)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    r"""Channel-wise dropout of sequences: each channel of each sample is zeroed with
    probability ``p`` (its whole length at once) and the kept ones scaled by :math:`1/(1-p)`,
    :math:`y_{n,c,:} = x_{n,c,:}\, m_{n,c} / (1-p)`. Identity when ``training=False``.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``.  - Output: the same shape.

    Example::

        >>> F.dropout1d(wally.ones(2, 4, 3), 0.5).shape
        wally.Size([2, 4, 3])
    """
    p = _check_p("dropout1d", p)
    if input.ndim not in (2, 3):
        raise ValueError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input (shape "
            f"{tuple(input.shape)}). Note that dropout1d exists to provide channel-wise "
            "dropout on inputs with 1 spatial dimension, a channel dimension, and an optional "
            "batch dimension (i.e. 2D or 3D inputs)."
        )
    if input.ndim == 2:
        return _unbatched("dropout1d", input, p, training, inplace)
    return _masked("dropout1d", input, p, training, inplace, False, True)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    r"""Channel-wise dropout of images: each channel of each sample is zeroed with probability
    ``p`` and the kept ones scaled by :math:`1/(1-p)`. Identity when ``training=False``.

    As in PyTorch, a 3-D input is read as ``(N, C, L)`` (1-D channel dropout) with a warning,
    and inputs of other ranks are dropped per ``(axis 0, axis 1)`` with a deprecation warning.

    Shape:
        - Input: ``(N, C, H, W)`` (or ``(N, C, L)``, see above).  - Output: the same shape.

    Example::

        >>> F.dropout2d(wally.ones(2, 4, 3, 3), 0.25).shape
        wally.Size([2, 4, 3, 3])
    """
    p = _check_p("dropout2d", p)
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            UserWarning, stacklevel=2,
        )
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            UserWarning, stacklevel=2,
        )
    return _masked("dropout2d", input, p, training, inplace, False, True)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    r"""Channel-wise dropout of volumes: each channel of each sample is zeroed with
    probability ``p`` and the kept ones scaled by :math:`1/(1-p)`. Identity when
    ``training=False``. Inputs of another rank than 4 or 5 warn (deprecated in PyTorch) and are
    read as unbatched.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.  - Output: the same shape.

    Example::

        >>> F.dropout3d(wally.ones(2, 4, 2, 2, 2)).shape
        wally.Size([2, 4, 2, 2, 2])
    """
    p = _check_p("dropout3d", p)
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            UserWarning, stacklevel=2,
        )
    if input.ndim != 5:
        return _unbatched("dropout3d", input, p, training, inplace)
    return _masked("dropout3d", input, p, training, inplace, False, True)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    r"""Alpha dropout (Klambauer et al., 2017), for SELU networks: each element is set, with
    probability ``p``, to SELU's saturation value :math:`-\lambda\alpha \approx -1.7581`, and an
    affine map :math:`a(\cdot) + b` restores mean 0 and variance 1 of a standardised input:
    :math:`a = ((1-p)(1 + p\,\lambda^2\alpha^2))^{-1/2}`, :math:`b = a \lambda\alpha\, p`.

    ``training`` defaults to False, as in PyTorch (the function is the identity then).

    Shape:
        - Input: ``(*)``.  - Output: the same shape.

    Example::

        >>> y = F.alpha_dropout(wally.randn(10000), 0.2, training=True)   # mean ≈ 0, std ≈ 1
    """
    p = _check_p("alpha_dropout", p)
    return _masked("alpha_dropout", input, p, training, inplace, True, False)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    r"""Channel-wise alpha dropout: as :func:`alpha_dropout`, with one draw per
    ``(sample, channel)`` that sets the whole feature map. ``training`` defaults to False, as
    in PyTorch.

    Shape:
        - Input: ``(N, C, *)``.  - Output: the same shape.

    Example::

        >>> F.feature_alpha_dropout(wally.randn(4, 8, 5), 0.2, training=True).shape
        wally.Size([4, 8, 5])
    """
    p = _check_p("feature_alpha_dropout", p)
    return _masked("feature_alpha_dropout", input, p, training, inplace, True, True)
