"""RAdam: Adam with the variance of its adaptive learning rate rectified."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.optim.adam import adam_step, check_adam_group
from wally.optim.nadam import lerp_
from wally.optim.optimizer import Optimizer, ParamsT

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (Liu et al., 2020), PyTorch's update rule exactly.

    With gradient :math:`g_t` (negated if ``maximize``), step :math:`t`, learning rate
    :math:`\eta` and weight decay :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}
            \text{ if decoupled\_weight\_decay)} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\,g_t, \quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2, \quad
        \hat m_t = m_t / (1 - \beta_1^t) \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,\hat m_t\,
            \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}\, r_t, \quad
            r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}
                            {(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}
            \quad\text{if } \rho_t > 5, \text{ else }
            \theta_t \leftarrow \theta_{t-1} - \eta\,\hat m_t

    ``state[p]`` holds PyTorch's ``step`` (an int), ``exp_avg`` and ``exp_avg_sq``.

    Args:
        params: tensors or parameter groups (see :class:`~wally.optim.Optimizer`).
        lr: learning rate :math:`\eta` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` (>= 0).
        weight_decay: :math:`\lambda` (>= 0).
        decoupled_weight_decay: decay the weights directly, as AdamW does.
        maximize: ascend the objective instead of descending it.

    Example::

        >>> optimizer = wally.optim.RAdam(net.parameters(), lr=1e-3)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_adam_group(self, group)

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        g, step = adam_step(param, grad, state, group)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        scratch = xp.empty_like(param)
        lerp_(exp_avg, g, 1 - beta1, scratch)   # m ← β1 m + (1-β1) g
        exp_avg_sq *= beta2
        xp.multiply(g, 1 - beta2, out=scratch)
        scratch *= g
        exp_avg_sq += scratch                   # v ← β2 v + (1-β2) g²

        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        update = xp.divide(exp_avg, bias_correction1, out=xp.empty_like(param))  # m̂
        update *= lr
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            xp.sqrt(exp_avg_sq, out=scratch)
            scratch += eps
            xp.divide(bias_correction2 ** 0.5, scratch, out=scratch)   # adaptive rate
            update *= scratch
            update *= ((rho_t - 4) * (rho_t - 2) * rho_inf
                       / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        param -= update
