"""Learning-rate schedules, PyTorch's ``torch.optim.lr_scheduler``.

A scheduler rewrites ``group['lr']`` in its optimiser's parameter groups each time its
``step()`` is called (once per epoch, or once per batch for ``OneCycleLR``), after
``optimizer.step()``::

    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=num_epochs)
    for epoch in range(num_epochs):
        train_one_epoch(net, optimizer)
        scheduler.step()

Creating a scheduler records each group's starting ``lr`` as ``group['initial_lr']`` (the
``base_lrs``) and counts ``last_epoch`` from 0. As in PyTorch, ``step()`` computes the next
rate from the current ``group['lr']`` (the "chainable" form), so two schedulers on one
optimiser compose, and ``SequentialLR`` can hand the optimiser from a warm-up to a decay.
Where PyTorch's recursive formula and its closed form differ in the last float bit, wally
follows the recursive one, so sequences match PyTorch's bit for bit.

``state_dict()`` holds plain Python values only (numbers, lists, strings), fit for JSON.
"""

from __future__ import annotations

import copy
import math
import types
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from wally.optim.optimizer import Optimizer

__all__ = [
    "LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
    "LinearLR", "SequentialLR", "OneCycleLR", "ConstantLR", "PolynomialLR",
    "CosineAnnealingWarmRestarts", "ReduceLROnPlateau",
]


def _per_group(scheduler: str, name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """``value`` repeated for each parameter group, or a list with one value per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{scheduler}: {name} has {len(value)} values, but the optimizer "
                             f"has {len(optimizer.param_groups)} parameter groups")
        return list(value)
    return [value] * len(optimizer.param_groups)


def _positive_int(scheduler: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{scheduler}: {name} must be a positive integer, got {value!r}")
    return value


class LRScheduler:
    """Base class of the schedulers: subclasses implement ``get_lr()``.

    ``get_lr()`` returns the rates for ``last_epoch`` (already advanced) from the optimiser's
    current ``group['lr']``; an optional ``_get_closed_form_lr()`` computes them from
    ``base_lrs`` alone (used by the deprecated ``step(epoch)`` and by :class:`SequentialLR`).

    Args:
        optimizer: the optimiser whose learning rates are set.
        last_epoch: index of the last epoch seen; leave at -1 except when resuming, in which
            case every group must already hold ``'initial_lr'``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a wally.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr', which "
                        f"resuming with last_epoch={last_epoch} needs; load the optimizer's "
                        "state dict first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Set the step count to 0 and take the step that sets the epoch-0 rates."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for ``last_epoch``, one per parameter group."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def _get_closed_form_lr(self) -> list[float] | None:
        return None

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or batch) and write the new rates into the optimiser.

        ``epoch`` is deprecated, as in PyTorch: it jumps to that epoch using the closed form
        where the scheduler has one.
        """
        self._step_count += 1
        if epoch is not None:
            warnings.warn(
                "scheduler.step(epoch) is deprecated (as in PyTorch): call scheduler.step() "
                "once per epoch; with an epoch the closed form is used where available",
                UserWarning, stacklevel=2,
            )
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = self._get_closed_form_lr()
            values = self.get_lr() if closed_form is None else closed_form
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimiser, as plain Python values (a copy)."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s values (load the optimiser's state dict too)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict, got "
                            f"{type(state_dict).__name__}")
        groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            if key in state_dict and len(state_dict[key]) != groups:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {key} has "
                    f"{len(state_dict[key])} entries, but the optimizer has {groups} "
                    "parameter groups"
                )
        self.__dict__.update(copy.deepcopy(state_dict))


_LRScheduler = LRScheduler  # the name older code subclasses


class LambdaLR(LRScheduler):
    r"""Learning rate :math:`\eta_t = \eta_0 \cdot \lambda(t)` for a function :math:`\lambda`.

    Args:
        optimizer: the optimiser.
        lr_lambda: a function of the epoch index, or a list with one per parameter group.
        last_epoch: see :class:`LRScheduler`.

    Only callable objects' attributes are saved by ``state_dict()``; plain functions and
    lambdas are not (pass the same ones again when loading).

    Example::

        >>> scheduler = LambdaLR(optimizer, lambda epoch: 0.95 ** epoch)
    """

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        if isinstance(lr_lambda, (list, tuple)):
            lambdas = _per_group("LambdaLR", "lr_lambda", optimizer, lr_lambda)
        else:
            lambdas = [lr_lambda] * len(optimizer.param_groups)
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be callable, got {fn!r}")
        self.lr_lambdas: list[Callable[[int], float]] = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas,
                                                                     self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        state = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else copy.deepcopy(vars(fn))
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved_lambdas = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        super().load_state_dict(state)
        for fn, saved in zip(self.lr_lambdas, saved_lambdas):
            if saved is not None:
                vars(fn).update(copy.deepcopy(saved))


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    :math:`\eta_t = \eta_0\,\gamma^{\lfloor t / \text{step\_size} \rfloor}`.

    Example::

        >>> scheduler = StepLR(optimizer, step_size=30, gamma=0.1)  # 0.05, then 0.005 at 30
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` at each epoch in ``milestones``:
    :math:`\eta_t = \eta_0\,\gamma^{\#\{m \in \text{milestones}:\ m \le t\}}`.

    A milestone listed twice multiplies by :math:`\gamma^2` there.

    Example::

        >>> scheduler = MultiStepLR(optimizer, milestones=[30, 80], gamma=0.1)
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        count = self.milestones.count(self.last_epoch)
        if count == 0:
            return self._current_lrs()
        return [lr * self.gamma ** count for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** bisect_right(self.milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every epoch: :math:`\eta_t = \eta_0\gamma^t`.

    Example::

        >>> scheduler = ExponentialLR(optimizer, gamma=0.9)
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing (Loshchilov & Hutter, 2017) from the initial rate down to ``eta_min``
    over ``T_max`` epochs:

    .. math::
        \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
            \left(1 + \cos\left(\pi\,\frac{t}{T_{max}}\right)\right)

    computed, as in PyTorch, recursively from the current rate, so that it composes with
    other schedulers. Past ``T_max`` the rate rises again along the same cosine (no restart
    jump).

    Example::

        >>> scheduler = CosineAnnealingLR(optimizer, T_max=num_epochs, eta_min=1e-5)
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min  # noqa: N806
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            # At the bottom of the cosine the ratio below is 0/0; step up by the first
            # increment instead.
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the learning rate by a factor that moves linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs, then stays: a linear warm-up.

    .. math::
        \eta_t = \eta_0\left(s + (e - s)\,\frac{\min(t, T)}{T}\right)

    Example::

        >>> warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor
                                + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        factor = self.start_factor + (self.end_factor - self.start_factor) * min(
            self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * factor for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    r"""Run ``schedulers`` one after another, switching at the epochs in ``milestones``.

    Scheduler ``i`` takes over at epoch ``milestones[i-1]`` and restarts there from its own
    epoch 0 (the closed form), e.g. a linear warm-up into cosine annealing::

        warmup = LinearLR(optimizer, start_factor=0.01, total_iters=5)
        cosine = CosineAnnealingLR(optimizer, T_max=num_epochs - 5)
        scheduler = SequentialLR(optimizer, [warmup, cosine], milestones=[5])

    ``state_dict()`` nests the schedulers' state dicts under ``'_schedulers'``.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        if len(schedulers) < 1:
            raise ValueError("SequentialLR: expected at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a "
                                f"{type(scheduler).__name__}, not an LRScheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] ({type(scheduler).__name__}) "
                                 "steps a different optimizer from the one given")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers, got {len(milestones)}")
        if list(milestones) != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing, got "
                             f"{list(milestones)}")
        self._schedulers = list(schedulers)
        self._milestones = [int(m) for m in milestones]
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        # Each scheduler stepped once when created; take those steps back ...
        for scheduler in self._schedulers:
            _undo_initial_step(scheduler)
        # ... and let only the one that owns epoch 0 take it.
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers", None)
        if saved is None or len(saved) != len(self._schedulers):
            raise ValueError(
                f"SequentialLR.load_state_dict: expected '_schedulers' with "
                f"{len(self._schedulers)} state dicts, got "
                f"{'none' if saved is None else len(saved)}"
            )
        super().load_state_dict(state)
        for scheduler, scheduler_state in zip(self._schedulers, saved):
            scheduler.load_state_dict(scheduler_state)


def _undo_initial_step(scheduler: LRScheduler) -> None:
    if isinstance(scheduler, SequentialLR):
        for inner in scheduler._schedulers:
            _undo_initial_step(inner)
    else:
        scheduler.last_epoch -= 1


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2018): per batch, anneal the learning rate from
    ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``max_lr / (div_factor * final_div_factor)``.

    Each phase anneals from :math:`a` to :math:`b` as :math:`p` goes from 0 to 1 along
    ``'cos'``: :math:`b + \tfrac12 (a - b)(1 + \cos \pi p)`, or ``'linear'``:
    :math:`a + (b - a) p`. The phases end at steps ``pct_start * total_steps - 1`` and
    ``total_steps - 1``; with ``three_phase`` the rate goes up, back down to the initial
    rate by step ``2 * pct_start * total_steps - 2``, and then to the minimum.

    With ``cycle_momentum`` (the default, as in PyTorch) the momentum (SGD, RMSprop) or
    ``beta1`` (Adam) is cycled inversely between ``max_momentum`` and ``base_momentum``;
    the optimiser must have one of them.

    Call ``step()`` after every batch; stepping more than ``total_steps`` times raises.
    Give ``total_steps``, or ``epochs`` and ``steps_per_epoch``.

    Example::

        >>> scheduler = OneCycleLR(optimizer, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85,
                 max_momentum: float | Sequence[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"OneCycleLR: expected a wally.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = _positive_int("OneCycleLR", "total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int("OneCycleLR", "epochs", epochs)
                                * _positive_int("OneCycleLR", "steps_per_epoch",
                                                steps_per_epoch))
        else:
            raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or not (
            0 <= pct_start <= 1
        ):
            raise ValueError(f"OneCycleLR: pct_start must be a number in [0, 1], got "
                             f"{pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy

        up_end = float(pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        phases = [("initial_lr", "max_lr", "max_momentum", "base_momentum")]
        ends = [up_end]
        if three_phase:
            phases += [("max_lr", "initial_lr", "base_momentum", "max_momentum"),
                       ("initial_lr", "min_lr", "max_momentum", "max_momentum")]
            ends += [float(2 * pct_start * self.total_steps) - 2, last]
        else:
            phases += [("max_lr", "min_lr", "base_momentum", "max_momentum")]
            ends += [last]
        self._schedule_phases: list[dict[str, Any]] = [
            {"end_step": end, "start_lr": a, "end_lr": b, "start_momentum": c,
             "end_momentum": d} for end, (a, b, c, d) in zip(ends, phases)
        ]

        max_lrs = _per_group("OneCycleLR", "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with "
                                 f"momentum or betas, and {type(optimizer).__name__} has "
                                 "neither; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momenta = _per_group("OneCycleLR", "max_momentum", optimizer, max_momentum)
            base_momenta = _per_group("OneCycleLR", "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for high, low, group in zip(max_momenta, base_momenta, optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]],
                                            pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                    break
                start_step = end_step
        return lrs


# ----- losses: ConstantLR, PolynomialLR, CosineAnnealingWarmRestarts, ReduceLROnPlateau -----
class ConstantLR(LRScheduler):
    r"""Multiply the learning rate by ``factor`` for the first ``total_iters`` epochs, then
    restore it: :math:`\eta_t = \eta_0 \cdot (\text{factor if } t < T \text{ else } 1)`.

    As in PyTorch the rate is scaled by ``factor`` at epoch 0 and by ``1 / factor`` at epoch
    ``total_iters`` (the chainable form), so other schedulers' changes in between persist.

    Example::

        >>> warmup = ConstantLR(optimizer, factor=0.5, total_iters=4)  # 0.025 x 4, then 0.05
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (
            0 < factor <= 1
        ):
            raise ValueError(f"ConstantLR: factor must be in (0, 1], got {factor!r}")
        self.factor = factor
        self.total_iters = _positive_int("ConstantLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters)
                           * (1 - self.factor)) for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Decay the learning rate polynomially to 0 over ``total_iters`` epochs, then hold it:

    .. math::
        \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^{\text{power}},

    computed, as in PyTorch, as the ratio of consecutive factors times the current rate.

    Example::

        >>> scheduler = PolynomialLR(optimizer, total_iters=50, power=0.9)
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1) -> None:
        self.total_iters = _positive_int("PolynomialLR", "total_iters", total_iters)
        if isinstance(power, bool) or not isinstance(power, (int, float)):
            raise TypeError(f"PolynomialLR: power must be a number, got {power!r}")
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        t, total = self.last_epoch, self.total_iters
        decay = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [lr * decay for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        factor = (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
        return [base_lr * factor for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter, 2017):

    .. math::
        \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
            \left(1 + \cos\left(\pi\,\frac{T_{cur}}{T_i}\right)\right),

    where :math:`T_{cur}` counts epochs since the last restart and the period :math:`T_i`
    starts at ``T_0`` and is multiplied by ``T_mult`` at each restart. ``step()`` advances one
    epoch; ``step(epoch)`` jumps to a (possibly fractional) epoch, e.g. ``epoch + i / iters``
    once per batch, with PyTorch's closed form for the restart it falls in (no deprecation
    warning here, as in PyTorch). ``last_epoch`` is ``floor(epoch)``.

    Example::

        >>> scheduler = CosineAnnealingWarmRestarts(optimizer, T_0=10, T_mult=2)
        >>> for epoch in range(30):
        ...     for i in range(iters):
        ...         train_batch(); scheduler.step(epoch + i / iters)
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,  # noqa: N803
                 eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_0 = _positive_int("CosineAnnealingWarmRestarts", "T_0", T_0)
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, "
                             f"got {T_mult!r}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, (int, float)):
            raise ValueError(f"CosineAnnealingWarmRestarts: eta_min must be a number, got "
                             f"{eta_min!r}")
        self.T_i: float = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or go to ``epoch`` (a float is fine: a fraction of an epoch).

        As in PyTorch, this ``step`` leaves ``_step_count`` alone."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts.step: epoch must be >= 0, got "
                                 f"{epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # restarts so far: the n with T_0 (T_mult^n − 1)/(T_mult − 1) <= epoch
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the learning rate by ``factor`` once a metric has stopped improving for more
    than ``patience`` epochs; call ``step(metric)`` after each validation.

    A metric :math:`a` improves on the best so far, :math:`b`, when (``mode='min'``)
    :math:`a < b (1 - \text{threshold})` (``threshold_mode='rel'``) or
    :math:`a < b - \text{threshold}` (``'abs'``), mirrored for ``mode='max'``. After a
    reduction, ``cooldown`` epochs pass in which bad epochs are not counted. A group's rate
    never goes below its ``min_lr``, and a reduction smaller than ``eps`` is skipped.
    PyTorch's attributes and ``state_dict()`` keys (``best``, ``num_bad_epochs``,
    ``cooldown_counter``, ``mode_worse``, ...) are kept.

    Example::

        >>> scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=3)
        >>> for epoch in range(epochs):
        ...     train(); scheduler.step(validation_loss())
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0,
                 eps: float = 1e-8) -> None:
        name = "ReduceLROnPlateau"
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor >= 1.0:
            raise ValueError(f"{name}: factor must be a number < 1.0, got {factor!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected a wally.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        for what, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: {what} must be an integer >= 0, got {value!r}")
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr: Any = None
            self.min_lrs = _per_group(name, "min_lr", optimizer, min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def get_lr(self) -> list[float]:
        return self._current_lrs()

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record this epoch's ``metrics`` (a number or a one-element tensor) and reduce the
        rates if it has not improved for more than ``patience`` epochs."""
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn("ReduceLROnPlateau.step(metrics, epoch): the epoch argument is "
                          "deprecated (as in PyTorch)", UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown don't count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups but "
                    f"min_lr lists {len(self.min_lrs)} (a group was added since); set "
                    "scheduler.min_lrs to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)
