"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.optim.optimizer import Optimizer, ParamsT

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), PyTorch's update rule exactly.

    With gradient :math:`g_t` (negated if ``maximize``), step :math:`t = 1, 2, \ldots`,
    learning rate :math:`\eta`, learning-rate decay :math:`\delta` and weight decay
    :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \\
        \tilde\eta_t &= \eta / (1 + (t - 1)\,\delta) \\
        s_t &\leftarrow s_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\eta_t\, g_t / (\sqrt{s_t} + \epsilon)

    with :math:`s_0` = ``initial_accumulator_value``. ``state[p]`` holds ``step`` (an int)
    and ``sum`` (:math:`s`), PyTorch's names; as in PyTorch they exist from construction on,
    so ``state_dict()`` lists every parameter before the first step.

    Args:
        params: tensors or parameter groups (see :class:`~wally.optim.Optimizer`).
        lr: learning rate :math:`\eta` (>= 0).
        lr_decay: :math:`\delta` (>= 0).
        weight_decay: :math:`\lambda` (>= 0), an L2 penalty added to the gradient.
        initial_accumulator_value: :math:`s_0` (>= 0).
        eps: :math:`\epsilon` (>= 0), added to the denominator.
        maximize: ascend the objective instead of descending it.

    Example::

        >>> optimizer = wally.optim.Adagrad(net.parameters(), lr=0.01, lr_decay=1e-4)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._initial_state(p.array, self.state[p], group)

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            value = self._number(group, key)
            self._require(value >= 0, f"invalid {key}={value} (expected {key} >= 0)")

    @staticmethod
    def _initial_state(param: ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["step"] = 0
        state["sum"] = xp.full_like(param, group["initial_accumulator_value"])

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        if not state:  # a parameter group added after construction
            self._initial_state(param, state, group)
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay, lr_decay = float(group["weight_decay"]), float(group["lr_decay"])
        state["step"] += 1
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * param
        clr = lr / (1 + (state["step"] - 1) * lr_decay)

        state_sum = state["sum"]
        scratch = xp.multiply(g, g, out=xp.empty_like(param))
        state_sum += scratch                    # s ← s + g²
        xp.sqrt(state_sum, out=scratch)
        scratch += eps
        xp.divide(g, scratch, out=scratch)
        scratch *= clr
        param -= scratch
