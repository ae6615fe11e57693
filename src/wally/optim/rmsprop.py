"""RMSprop: divide the gradient by a running root mean square of recent gradients."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.optim.optimizer import Optimizer, ParamsT

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Tieleman & Hinton, 2012), PyTorch's update rule exactly.

    With gradient :math:`g_t` (negated if ``maximize``), smoothing constant :math:`\alpha`,
    learning rate :math:`\eta`, weight decay :math:`\lambda` and momentum :math:`\mu`:

    .. math::
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \\
        s_t &\leftarrow \alpha s_{t-1} + (1-\alpha)\,g_t^2 \\
        \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1-\alpha)\,g_t
            \text{ and } d_t = \sqrt{s_t - \bar g_t^2} + \epsilon
            \quad\text{if centered, else } d_t = \sqrt{s_t} + \epsilon \\
        b_t &\leftarrow \mu b_{t-1} + g_t / d_t,\quad
            \theta_t \leftarrow \theta_{t-1} - \eta\,b_t
            \quad\text{if } \mu > 0, \text{ else }
            \theta_t \leftarrow \theta_{t-1} - \eta\,g_t / d_t

    :math:`s_0 = \bar g_0 = b_0 = 0`. ``state[p]`` holds ``step`` (an int), ``square_avg``
    (:math:`s`) and, when used, ``momentum_buffer`` (:math:`b`) and ``grad_avg``
    (:math:`\bar g`).

    Args:
        params: tensors or parameter groups (see :class:`~wally.optim.Optimizer`).
        lr: learning rate :math:`\eta` (>= 0).
        alpha: smoothing constant :math:`\alpha`, in [0, 1].
        eps: :math:`\epsilon` (>= 0).
        weight_decay: :math:`\lambda` (>= 0).
        momentum: :math:`\mu` (>= 0).
        centered: normalise by an estimate of the gradient's variance instead of its
            second moment.
        maximize: ascend the objective instead of descending it.

    Example::

        >>> optimizer = wally.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        lr, alpha = self._number(group, "lr"), self._number(group, "alpha")
        eps, momentum = self._number(group, "eps"), self._number(group, "momentum")
        weight_decay = self._number(group, "weight_decay")
        self._require(lr >= 0, f"invalid learning rate lr={lr} (expected lr >= 0)")
        self._require(0 <= alpha <= 1, f"invalid alpha={alpha} (expected 0 <= alpha <= 1)")
        self._require(eps >= 0, f"invalid eps={eps} (expected >= 0)")
        self._require(momentum >= 0, f"invalid momentum={momentum} (expected >= 0)")
        self._require(weight_decay >= 0,
                      f"invalid weight_decay={weight_decay} (expected >= 0)")

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, weight_decay = float(group["momentum"]), float(group["weight_decay"])
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
        # Created on first need, so a momentum or centering switched on later (OneCycleLR
        # cycles the momentum) starts from zero instead of failing.
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1
        square_avg = state["square_avg"]

        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * param

        square_avg *= alpha
        scratch = xp.empty_like(param)  # with out=, ufuncs keep 0-d arrays arrays
        xp.multiply(g, g, out=scratch)
        scratch *= 1 - alpha
        square_avg += scratch                   # s ← α s + (1-α) g²
        if group["centered"]:
            grad_avg = state["grad_avg"]
            xp.subtract(g, grad_avg, out=scratch)
            scratch *= 1 - alpha
            grad_avg += scratch                 # ḡ ← ḡ + (1-α)(g - ḡ)
            xp.multiply(grad_avg, grad_avg, out=scratch)
            xp.subtract(square_avg, scratch, out=scratch)
            xp.sqrt(scratch, out=scratch)
        else:
            xp.sqrt(square_avg, out=scratch)
        scratch += eps                          # denominator d
        xp.divide(g, scratch, out=scratch)
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += scratch
            param -= lr * buf
        else:
            scratch *= lr
            param -= scratch
