"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.optim.adam import adam_step, check_adam_group
from wally.optim.optimizer import Optimizer, ParamsT
from wally.tensor import Tensor

__all__ = ["NAdam"]


def lerp_(start: ndarray, end: ndarray, weight: float, scratch: ndarray) -> None:
    """start ← start + weight (end − start), in PyTorch's two forms (the one near the end
    point for weight >= 0.5), so the bits agree with ``torch.lerp``."""
    xp.subtract(end, start, out=scratch)
    if abs(weight) < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= 1 - weight
        xp.subtract(end, scratch, out=start)


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016), PyTorch's update rule exactly.

    With gradient :math:`g_t` (negated if ``maximize``), step :math:`t`, learning rate
    :math:`\eta`, weight decay :math:`\lambda` and momentum decay :math:`\psi`:

    .. math::
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}
            \text{ if decoupled\_weight\_decay)} \\
        \mu_t &= \beta_1 \bigl(1 - \tfrac12\, 0.96^{t\psi}\bigr), \quad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\,g_t, \quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2 \\
        d_t &= \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        \theta_t &\leftarrow \theta_{t-1}
            - \eta\,\frac{1 - \mu_t}{1 - \Pi_t}\,\frac{g_t}{d_t}
            - \eta\,\frac{\mu_{t+1}}{1 - \Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}

    ``state[p]`` holds PyTorch's ``step`` (an int), ``mu_product`` (:math:`\Pi_t`, a float
    rounded to float32 each step as PyTorch's float32 scalar tensor is), ``exp_avg`` and
    ``exp_avg_sq``.

    Args:
        params: tensors or parameter groups (see :class:`~wally.optim.Optimizer`).
        lr: learning rate :math:`\eta` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` (>= 0).
        weight_decay: :math:`\lambda` (>= 0).
        momentum_decay: :math:`\psi` (>= 0).
        decoupled_weight_decay: decay the weights directly, as AdamW does (NAdamW).
        maximize: ascend the objective instead of descending it.

    Example::

        >>> optimizer = wally.optim.NAdam(net.parameters(), lr=2e-3)
    """

    def __init__(self, params: ParamsT, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_adam_group(self, group)
        momentum_decay = self._number(group, "momentum_decay")
        self._require(momentum_decay >= 0,
                      f"invalid momentum_decay={momentum_decay} (expected >= 0)")

    def _load_value(self, where: str, key: Any, name: str, value: Any, param: Tensor) -> Any:
        if name == "mu_product":  # a 0-d tensor in PyTorch's state dicts
            return float(value.item() if hasattr(value, "item") else value)
        return super()._load_value(where, key, name, value, param)

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        momentum_decay = float(group["momentum_decay"])
        g, step = adam_step(param, grad, state, group, mu_product=1.0)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        bias_correction2 = 1 - beta2 ** step
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        # PyTorch keeps the product in a float32 scalar tensor: round it as that does.
        mu_product = float(xp.float32(state["mu_product"]) * xp.float32(mu))
        state["mu_product"] = mu_product
        mu_product_next = mu_product * mu_next

        scratch = xp.empty_like(param)
        lerp_(exp_avg, g, 1 - beta1, scratch)   # m ← β1 m + (1-β1) g
        exp_avg_sq *= beta2
        xp.multiply(g, 1 - beta2, out=scratch)
        scratch *= g
        exp_avg_sq += scratch                   # v ← β2 v + (1-β2) g²
        denom = xp.divide(exp_avg_sq, bias_correction2, out=xp.empty_like(param))
        xp.sqrt(denom, out=denom)
        denom += eps
        xp.divide(g, denom, out=scratch)
        scratch *= -lr * (1.0 - mu) / (1.0 - mu_product)
        param += scratch
        xp.divide(exp_avg, denom, out=scratch)
        scratch *= (-lr * mu_next) / (1.0 - mu_product_next)
        param += scratch
