"""Activation layers: elementwise nonlinearities and (log-)softmax, each calling
:mod:`wally.nn.functional` in one line.

``inplace=True`` changes the input and returns it, as in PyTorch (``ReLU``, ``LeakyReLU``);
autograd's version counters refuse a backward pass through an op that kept the old values.
"""

from __future__ import annotations

from wally import functional as F
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softplus", "Softmax", "LogSoftmax"]


class ReLU(Module):
    r"""Rectified linear unit, elementwise: :math:`\mathrm{ReLU}(x) = \max(0, x)`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.ReLU()(wally.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    r"""Leaky ReLU, elementwise: :math:`y = x` if :math:`x > 0`, else
    :math:`\text{negative\_slope} \cdot x`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.LeakyReLU(0.1)(wally.tensor([-2.0, 3.0]))
        tensor([-0.2000,  3.0000])
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    r"""Logistic sigmoid, elementwise: :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape, values in (0, 1).

    Example::

        >>> nn.Sigmoid()(wally.tensor([0.0]))
        tensor([0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    r"""Hyperbolic tangent, elementwise: :math:`\tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape, values in (−1, 1).

    Example::

        >>> nn.Tanh()(wally.tensor([0.0]))
        tensor([0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class GELU(Module):
    r"""Gaussian error linear unit: :math:`\mathrm{GELU}(x) = x\,\Phi(x)`, :math:`\Phi` the
    standard normal CDF; ``approximate='tanh'`` uses
    :math:`\tfrac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.GELU()(wally.tensor([1.0]))
        tensor([0.8413])
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    r"""Smooth ReLU: :math:`\mathrm{Softplus}(x) = \tfrac{1}{\beta}\log(1 + e^{\beta x})`,
    and :math:`x` where :math:`\beta x > \text{threshold}`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape, values > 0.

    Example::

        >>> nn.Softplus()(wally.tensor([0.0]))
        tensor([0.6931])
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    r"""Softmax along ``dim``: :math:`\mathrm{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}`.

    Leaving ``dim`` out picks PyTorch's deprecated implicit dimension, with its warning.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape; slices along ``dim`` sum to 1.

    Example::

        >>> nn.Softmax(dim=1)(wally.zeros(2, 4))
        tensor([[0.2500, 0.2500, 0.2500, 0.2500],
                [0.2500, 0.2500, 0.2500, 0.2500]])
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    r"""Log-softmax along ``dim``: :math:`x_i - \log \sum_j e^{x_j}`, computed stably.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> nn.LogSoftmax(dim=0)(wally.zeros(2))
        tensor([-0.6931, -0.6931])
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
