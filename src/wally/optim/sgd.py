"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.optim.optimizer import Optimizer, ParamsT

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Minibatch stochastic gradient descent, PyTorch's update rule exactly.

    With gradient :math:`g_t = \nabla_\theta \ell(\theta_{t-1})` (negated if ``maximize``),
    learning rate :math:`\eta`, weight decay :math:`\lambda`, momentum :math:`\mu` and
    dampening :math:`\tau`:

    .. math::
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \\
        b_t &\leftarrow g_t \text{ at the first step, else } \mu\,b_{t-1} + (1-\tau)\,g_t \\
        g_t &\leftarrow g_t + \mu\,b_t \text{ (nesterov) or } b_t \text{ (otherwise)} \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,g_t

    The momentum lines apply only when :math:`\mu \ne 0`; the buffer :math:`b` is kept in
    ``state[p]['momentum_buffer']``. Note the first buffer is the gradient itself, not
    :math:`(1-\tau) g_1`.

    Args:
        params: tensors or parameter groups (see :class:`~wally.optim.Optimizer`).
        lr: learning rate :math:`\eta` (>= 0).
        momentum: :math:`\mu` (>= 0).
        dampening: :math:`\tau`.
        weight_decay: L2 penalty :math:`\lambda` (>= 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend the objective instead of descending it.

    Example::

        >>> optimizer = wally.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        >>> optimizer.zero_grad(); loss_fn(net(X), y).backward(); optimizer.step()
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        lr, momentum = self._number(group, "lr"), self._number(group, "momentum")
        dampening = self._number(group, "dampening")
        weight_decay = self._number(group, "weight_decay")
        self._require(lr >= 0, f"invalid learning rate lr={lr} (expected lr >= 0)")
        self._require(momentum >= 0, f"invalid momentum={momentum} (expected >= 0)")
        self._require(weight_decay >= 0,
                      f"invalid weight_decay={weight_decay} (expected >= 0)")
        self._require(
            not group["nesterov"] or (momentum > 0 and dampening == 0),
            f"nesterov=True needs momentum > 0 and dampening == 0, got momentum={momentum} "
            f"and dampening={dampening}",
        )

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        d_p = -grad if group["maximize"] else grad
        if weight_decay != 0:
            d_p = d_p + weight_decay * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # xp.array, not astype: for a 0-d parameter d_p may be a NumPy scalar.
                buf = state["momentum_buffer"] = xp.array(d_p, dtype=param.dtype)
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * d_p
            d_p = d_p + momentum * buf if group["nesterov"] else buf
        param -= lr * d_p
