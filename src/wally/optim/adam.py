"""Adam and AdamW: adaptive moment estimation, with coupled or decoupled weight decay."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.optim.optimizer import Optimizer, ParamsT

__all__ = ["Adam", "AdamW"]


def adam_step(param: ndarray, grad: ndarray, state: dict[str, Any], group: dict[str, Any],
              **extra: Any) -> tuple[ndarray, int]:
    """What every Adam-family step starts with: the state (step 0, m = v = 0, and ``extra``
    entries) on the first call, the step count, and the gradient to follow, ``g`` (negated
    with ``maximize``), with weight decay either added to it (L2, ``g + λθ``) or applied to
    the weights themselves (decoupled, ``θ ← θ(1 − ηλ)``, AdamW's). Returns ``(g, step)``."""
    if not state:
        state["step"] = 0
        state.update(extra)
        state["exp_avg"] = xp.zeros_like(param)
        state["exp_avg_sq"] = xp.zeros_like(param)
    state["step"] += 1
    g = -grad if group["maximize"] else grad
    weight_decay = float(group["weight_decay"])
    if weight_decay != 0:
        if group["decoupled_weight_decay"]:
            param *= 1 - float(group["lr"]) * weight_decay
        else:
            g = g + weight_decay * param
    return g, state["step"]


def check_adam_group(optimizer: Optimizer, group: dict[str, Any]) -> None:
    """The checks of lr, eps, weight_decay and betas that the Adam family shares."""
    lr, eps = optimizer._number(group, "lr"), optimizer._number(group, "eps")
    weight_decay = optimizer._number(group, "weight_decay")
    optimizer._require(lr >= 0, f"invalid learning rate lr={lr} (expected lr >= 0)")
    optimizer._require(eps >= 0, f"invalid eps={eps} (expected >= 0)")
    optimizer._require(weight_decay >= 0,
                       f"invalid weight_decay={weight_decay} (expected >= 0)")
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"{optimizer._name}: betas must be a pair (beta1, beta2), got {betas!r}")
    group["betas"] = tuple(betas)
    for i, beta in enumerate(betas):
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise TypeError(f"{optimizer._name}: betas[{i}] must be a number, got {beta!r}")
        optimizer._require(0 <= beta < 1,
                           f"invalid betas[{i}]={beta} (expected 0 <= betas[{i}] < 1)")


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's update rule exactly.

    With gradient :math:`g_t` (negated if ``maximize``), step :math:`t = 1, 2, \ldots`,
    learning rate :math:`\eta` and weight decay :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1}
            \quad\text{(Adam; AdamW instead sets }
            \theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}) \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\,g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2 \\
        \hat v_t &\leftarrow \max(\hat v_{t-1}, v_t) \text{ if amsgrad, else } v_t \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}

    :math:`m_0 = v_0 = \hat v_0 = 0`. ``state[p]`` holds ``step`` (an int), ``exp_avg``
    (:math:`m`), ``exp_avg_sq`` (:math:`v`) and, with amsgrad, ``max_exp_avg_sq``
    (:math:`\hat v`). Note :math:`\epsilon` is added after the bias correction of
    :math:`\sqrt{v}`, as PyTorch does.

    Args:
        params: tensors or parameter groups (see :class:`~wally.optim.Optimizer`).
        lr: learning rate :math:`\eta` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` (>= 0), added to the denominator.
        weight_decay: :math:`\lambda` (>= 0), an L2 penalty added to the gradient.
        amsgrad: divide by the running maximum of :math:`v` (Reddi et al., 2018).
        maximize: ascend the objective instead of descending it.
        decoupled_weight_decay: decay the weights directly (what :class:`AdamW` does).

    Example::

        >>> optimizer = wally.optim.Adam(net.parameters(), lr=1e-3)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_adam_group(self, group)

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        g, step = adam_step(param, grad, state, group)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

        scratch = xp.empty_like(param)  # with out=, ufuncs keep 0-d arrays arrays
        xp.subtract(g, exp_avg, out=scratch)
        scratch *= 1 - beta1
        exp_avg += scratch                      # m ← m + (1-β1)(g - m)
        exp_avg_sq *= beta2
        xp.multiply(g, g, out=scratch)
        scratch *= 1 - beta2
        exp_avg_sq += scratch                   # v ← β2 v + (1-β2) g²

        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            xp.maximum(second_moment, exp_avg_sq, out=second_moment)
        step_size = lr / (1 - beta1 ** step)
        xp.sqrt(second_moment, out=scratch)
        scratch /= (1 - beta2 ** step) ** 0.5
        scratch += eps                          # denominator
        xp.divide(exp_avg, scratch, out=scratch)
        scratch *= step_size
        param -= scratch


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's ``AdamW``.

    The same update as :class:`Adam`, except that weight decay shrinks the weights directly,
    :math:`\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}`, before the Adam step,
    instead of adding :math:`\lambda\theta` to the gradient (where the adaptive denominator
    would rescale it). The default ``weight_decay`` is ``1e-2``.

    Example::

        >>> optimizer = wally.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["decoupled_weight_decay"] = True
