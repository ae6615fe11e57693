"""More activation layers (PyTorch's names, signatures and printed forms), each calling
:mod:`wally.functional.activation_extra` in one line.

``inplace=True`` changes the input and returns it, as in PyTorch; autograd's version counters
refuse a backward pass through an op that kept the old values.
"""

from __future__ import annotations

from typing import Any

from wally.creation import empty
from wally.device import device as _check_device
from wally.functional import activation_extra as A
from wally.nn import init
from wally.nn.module import Module
from wally.nn.parameter import Parameter
from wally.tensor import Tensor

__all__ = [
    "ELU", "SELU", "CELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Hardtanh", "ReLU6",
    "Softsign", "LogSigmoid", "PReLU", "GLU", "Softmin", "Threshold",
]


def _inplace_repr(inplace: bool, lead: str = "") -> str:
    if not lead:
        return "inplace=True" if inplace else ""
    return lead + (", inplace=True" if inplace else "")


class ELU(Module):
    r"""Exponential linear unit: :math:`x` for :math:`x > 0`, else :math:`\alpha(e^x - 1)`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.ELU()(wally.tensor([-1.0, 2.0]))
        tensor([-0.6321,  2.0000])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, f"alpha={self.alpha}")


class SELU(Module):
    r"""Scaled ELU: :math:`\lambda x` for :math:`x > 0`, else :math:`\lambda\alpha(e^x - 1)`
    (:math:`\alpha \approx 1.6733`, :math:`\lambda \approx 1.0507`).

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.SELU()(wally.tensor([1.0]))
        tensor([1.0507])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.selu(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class CELU(Module):
    r"""Continuously differentiable ELU: :math:`\max(0, x) + \min(0, \alpha(e^{x/\alpha} - 1))`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.CELU(2.0)(wally.tensor([-1.0]))
        tensor([-0.7869])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, f"alpha={self.alpha}")


class SiLU(Module):
    r"""Sigmoid linear unit (swish): :math:`x\,\sigma(x)`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.SiLU()(wally.tensor([1.0]))
        tensor([0.7311])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.silu(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Mish(Module):
    r"""Mish: :math:`x \tanh(\mathrm{softplus}(x))`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Mish()(wally.tensor([1.0]))
        tensor([0.8651])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.mish(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Hardswish(Module):
    r"""Hard swish: :math:`x \cdot \mathrm{ReLU6}(x + 3) / 6`. Like PyTorch's, it prints as
    ``Hardswish()`` whatever ``inplace`` is.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Hardswish()(wally.tensor([1.0]))
        tensor([0.6667])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.hardswish(input, self.inplace)


class Hardsigmoid(Module):
    r"""Hard sigmoid: :math:`\mathrm{ReLU6}(x + 3) / 6`. Like PyTorch's, it prints as
    ``Hardsigmoid()`` whatever ``inplace`` is.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Hardsigmoid()(wally.tensor([0.0]))
        tensor([0.5000])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.hardsigmoid(input, self.inplace)


class Hardtanh(Module):
    r"""Hard tanh: :math:`\min(\max(x, \text{min\_val}), \text{max\_val})`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Hardtanh(-2.0, 2.0)(wally.tensor([-3.0, 1.0]))
        tensor([-2.,  1.])
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(
                f"{type(self).__name__}: min_val cannot be greater than max_val, got "
                f"min_val={min_val} and max_val={max_val}"
            )
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, f"min_val={self.min_val}, max_val={self.max_val}")


class ReLU6(Hardtanh):
    r""":math:`\min(\max(0, x), 6)`: a :class:`Hardtanh` on ``[0, 6]``, as in PyTorch.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.ReLU6()(wally.tensor([-1.0, 7.0]))
        tensor([0., 6.])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Softsign(Module):
    r"""Softsign: :math:`x / (1 + |x|)`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Softsign()(wally.tensor([1.0]))
        tensor([0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return A.softsign(input)


class LogSigmoid(Module):
    r"""Log-sigmoid: :math:`\log(1 / (1 + e^{-x}))`, stable for large :math:`|x|`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.LogSigmoid()(wally.tensor([0.0]))
        tensor([-0.6931])
    """

    def forward(self, input: Tensor) -> Tensor:
        return A.logsigmoid(input)


class PReLU(Module):
    r"""Parametric ReLU: :math:`\max(0, x) + a \min(0, x)` with learnt slopes ``weight``:
    one shared (``num_parameters=1``) or one per channel (axis 1).

    Shape:
        - Input: ``(*)``, channels on axis 1.  - Output: ``(*)``, the same shape.
        - ``weight``: ``(num_parameters,)``.

    Example::

        >>> nn.PReLU()(wally.tensor([-2.0, 3.0]))
        tensor([-0.5000,  3.0000], grad_fn=<PReLUBackward>)
    """

    weight: Parameter

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        if (isinstance(num_parameters, bool) or not isinstance(num_parameters, int)
                or num_parameters < 1):
            raise ValueError(
                f"PReLU: num_parameters must be a positive integer, got {num_parameters!r}"
            )
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(empty(num_parameters, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Every slope starts at ``init`` (0.25 by default, He et al. 2015).
        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return A.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class GLU(Module):
    r"""Gated linear unit: halves :math:`a, b` of the input along ``dim``, :math:`a \otimes
    \sigma(b)`.

    Shape:
        - Input: ``(*, 2N, *)``.  - Output: ``(*, N, *)``.

    Example::

        >>> nn.GLU()(wally.zeros(2, 4)).shape
        wally.Size([2, 2])
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return A.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Module):
    r"""Softmin along ``dim``: :math:`e^{-x_i} / \sum_j e^{-x_j}`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Softmin(dim=0)(wally.zeros(2))
        tensor([0.5000, 0.5000])
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return A.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Threshold(Module):
    r"""Threshold: :math:`x` where :math:`x > \text{threshold}`, else ``value``.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.Threshold(0.1, 20.0)(wally.tensor([0.0, 1.0]))
        tensor([20.,  1.])
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, f"threshold={self.threshold}, value={self.value}")
