"""Weight initialisation, PyTorch's ``torch.nn.init``.

Every function fills its tensor **in place**, without recording a gradient, from the global
generator that :func:`wally.manual_seed` seeds, and returns the tensor, so it can be used on a
parameter that requires grad::

    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)

Fans follow PyTorch: for a weight of shape ``(out, in, *kernel)``,
``fan_in = in · prod(kernel)`` and ``fan_out = out · prod(kernel)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import generator as _global_generator
from wally.tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "eye_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]

_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
               "conv_transpose2d", "conv_transpose3d", "sigmoid")


def _target(tensor: Tensor, name: str) -> ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{name}: expected a wally Tensor, got {type(tensor).__name__}")
    return tensor.array


def _fill(tensor: Tensor, values: Any) -> Tensor:
    """Write ``values`` into ``tensor``'s memory (cast to its dtype); no graph is recorded."""
    xp.copyto(tensor.array, values, casting="unsafe")
    tensor._bump_version()
    return tensor


def _rng(generator: Any) -> Any:
    return _global_generator() if generator is None else generator


def _is_empty(array: ndarray, name: str) -> bool:
    if array.size == 0:
        warnings.warn(f"nn.init.{name}: initializing a zero-element tensor is a no-op",
                      stacklevel=3)
        return True
    return False


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' variance steady through ``nonlinearity``.

    ======================  ===================================
    nonlinearity            gain
    ======================  ===================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    √2
    leaky_relu              √(2 / (1 + negative_slope²)), slope ``param`` (default 0.01)
    selu                    3/4
    ======================  ===================================

    Example::

        >>> nn.init.calculate_gain("relu")
        1.4142135623730951
    """
    if nonlinearity in _LINEAR_FNS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{', '.join(_LINEAR_FNS)}, tanh, relu, leaky_relu, selu"
    )


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)``: ``in·k`` and ``out·k`` with
    ``k`` the product of the kernel sizes (1 for a Linear weight)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions, "
            f"got shape {shape}"
        )
    receptive_field_size = math.prod(shape[2:])
    return shape[1] * receptive_field_size, shape[0] * receptive_field_size


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode!r} not supported, please use one of 'fan_in', 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples of U(a, b).

    Example::

        >>> nn.init.uniform_(wally.empty(3, 5), -0.1, 0.1)
    """
    array = _target(tensor, "uniform_")
    if a > b:
        raise ValueError(f"nn.init.uniform_: a ({a}) must not exceed b ({b})")
    return _fill(tensor, _rng(generator).uniform(a, b, array.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples of N(mean, std²).

    Example::

        >>> nn.init.normal_(wally.empty(3, 5), std=0.01)
    """
    array = _target(tensor, "normal_")
    if std < 0:
        raise ValueError(f"nn.init.normal_: std must be non-negative, got {std}")
    return _fill(tensor, _rng(generator).normal(mean, std, array.shape))


def trunc_normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
    generator: Any = None,
) -> Tensor:
    """Fill with samples of N(mean, std²) conditioned on lying in [a, b].

    ``a`` and ``b`` are absolute bounds (not in units of ``std``), as in PyTorch. Samples are
    drawn by rejection: values outside [a, b] are redrawn, so the result follows the truncated
    normal exactly. A window holding under 0.1 % of the normal's mass raises ``ValueError``.

    Example::

        >>> nn.init.trunc_normal_(wally.empty(3, 5), std=0.02, a=-0.04, b=0.04)
    """
    array = _target(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"nn.init.trunc_normal_: need a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"nn.init.trunc_normal_: std must be positive, got {std}")

    def cdf(x: float) -> float:
        return (1.0 + math.erf((x - mean) / (std * math.sqrt(2.0)))) / 2.0

    mass = cdf(b) - cdf(a)
    if mass < 1e-3:
        raise ValueError(
            f"nn.init.trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2e} of the mass of "
            f"N({mean}, {std}²); move mean into [a, b] or widen the bounds"
        )
    rng = _rng(generator)
    samples = rng.normal(mean, std, array.shape)
    outside = (samples < a) | (samples > b)
    while outside.any():
        samples[outside] = rng.normal(mean, std, int(outside.sum()))
        outside = (samples < a) | (samples > b)
    return _fill(tensor, samples)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value ``val``."""
    _target(tensor, "constant_")[...] = val
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1 (BatchNorm's weight)."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (biases)."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, zeros elsewhere)."""
    array = _target(tensor, "eye_")
    if array.ndim != 2:
        raise ValueError(f"nn.init.eye_: only 2-D tensors are supported, got shape {array.shape}")
    return _fill(tensor, xp.eye(*array.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot & Bengio (2010): fill with U(−a, a), ``a = gain · √(6 / (fan_in + fan_out))``,
    so that activations and gradients keep their variance forward and backward.

    Example::

        >>> nn.init.xavier_uniform_(wally.empty(3, 5), gain=nn.init.calculate_gain("relu"))
    """
    array = _target(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if _is_empty(array, "xavier_uniform_"):
        return tensor
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).uniform(-bound, bound, array.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot & Bengio (2010): fill with N(0, std²), ``std = gain · √(2 / (fan_in + fan_out))``.

    Example::

        >>> nn.init.xavier_normal_(wally.empty(3, 5))
    """
    array = _target(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if _is_empty(array, "xavier_normal_"):
        return tensor
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).normal(0.0, std, array.shape))


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He et al. (2015): fill with U(−bound, bound), ``bound = gain · √(3 / fan)``, where
    ``gain = calculate_gain(nonlinearity, a)`` and ``fan`` is ``fan_in`` (keeps the forward
    variance) or ``fan_out`` (keeps the backward variance).

    ``a`` is the negative slope of the leaky ReLU that follows. PyTorch's ``Linear`` and
    ``Conv2d`` use ``a=√5``, which gives ``bound = 1/√fan_in``.

    Example::

        >>> nn.init.kaiming_uniform_(wally.empty(3, 5), mode="fan_in", nonlinearity="relu")
    """
    array = _target(tensor, "kaiming_uniform_")
    if _is_empty(array, "kaiming_uniform_"):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _fill(tensor, _rng(generator).uniform(-bound, bound, array.shape))


def _reset_weight_and_bias(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for ``Linear`` and every convolution (``reset_parameters``):
    :func:`kaiming_uniform_` with ``a = √5``, i.e. ``gain = √(2/(1 + a²)) = √(1/3)`` and
    ``bound = gain·√(3/fan_in) = 1/√fan_in``, with ``fan_in`` read from the weight's
    dimension 1 on (``in_features``; ``C_in/groups·∏k`` for a convolution); the bias is drawn
    from the same ``U(−1/√fan_in, 1/√fan_in)``.  With no inputs (``fan_in = 0``) the bias is
    zero (PyTorch leaves it uninitialised or draws from ``U(0, 0)``)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is None:
        return
    fan_in, _ = _calculate_fan_in_and_fan_out(weight)
    if fan_in == 0:
        zeros_(bias)
        return
    bound = 1 / math.sqrt(fan_in)
    uniform_(bias, -bound, bound)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He et al. (2015): fill with N(0, std²), ``std = gain / √fan``, where
    ``gain = calculate_gain(nonlinearity, a)`` and ``fan`` is ``fan_in`` or ``fan_out``
    (``mode``).

    Example::

        >>> nn.init.kaiming_normal_(wally.empty(3, 5), mode="fan_out", nonlinearity="relu")
    """
    array = _target(tensor, "kaiming_normal_")
    if _is_empty(array, "kaiming_normal_"):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, _rng(generator).normal(0.0, std, array.shape))
