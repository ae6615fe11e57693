"""``Optimizer``: parameter groups, per-parameter state, and the loop every update rule shares.

An optimiser holds ``param_groups``, a list of dicts, each with its ``'params'`` (a list of
tensors) and its own hyper-parameters (``lr``, ``weight_decay``, ...; any left out are taken
from ``defaults``), and ``state``, a dict from parameter to that parameter's buffers
(``{'momentum_buffer': array}``, ``{'step': 3, 'exp_avg': array, ...}``). Buffers are plain
arrays of the parameter's shape and dtype, updated in place.

A subclass gives its defaults, checks a group's hyper-parameters in ``_check_group`` and
writes the update of one parameter in ``_update``; ``step`` does the rest.

``state_dict()`` has PyTorch's layout, ``{'state': {index: {name: value}}, 'param_groups':
[{..., 'params': [index, ...]}]}``, with parameters numbered in group order, but holds only
NumPy arrays and plain Python values, so it can be written as JSON (the numbers) plus
safetensors (the arrays) without pickle.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from wally.autograd import enable_grad
from wally.backend import ndarray, xp
from wally.tensor import Tensor

__all__ = ["Optimizer", "ParamsT"]

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]

_GROUP_LISTS = ("params", "param_names")


def _plain(value: Any) -> Any:
    """A hyper-parameter as a plain Python value: one-element tensors and NumPy scalars become
    Python numbers (so the step's arithmetic stays in the parameters' dtype and the value
    serialises as JSON); tuples and lists are converted element by element."""
    if isinstance(value, Tensor):
        value = value.array
    if isinstance(value, (ndarray, xp.generic)):
        if value.size != 1:
            raise ValueError(f"a hyper-parameter must be a number, got an array of shape "
                             f"{tuple(value.shape)}")
        return value.item()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Optimizer:
    """Base class of the optimisers, like ``torch.optim.Optimizer``.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs (``model.named_parameters()``)
            or of dicts, one per parameter group, each with a ``'params'`` entry and any
            hyper-parameters that should differ from ``defaults`` for that group.
        defaults: the hyper-parameters a group gets when it does not name them.

    A parameter whose ``grad`` is ``None`` is skipped by ``step`` and gets no state.

    Example::

        >>> optimizer = wally.optim.SGD([
        ...     {"params": net[0].weight, "weight_decay": 1e-3},
        ...     {"params": net[0].bias},
        ... ], lr=0.1)
        >>> loss.backward(); optimizer.step(); optimizer.zero_grad()
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults: dict[str, Any] = {key: _plain(value) for key, value in defaults.items()}
        self._check_group(self.defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params should be an iterable of tensors or of dicts (parameter "
                f"groups), got a single tensor of shape {tuple(params.shape)}; pass [tensor]"
            )
        if isinstance(params, dict):
            params = [params]
        if isinstance(params, (set, frozenset)):
            raise TypeError(self._set_message)
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(
                f"{self._name}: got an empty parameter list (was the model's parameters() "
                "generator already used up?)"
            )
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    @property
    def _set_message(self) -> str:
        return (f"{self._name}: parameters must come in an ordered collection (a list), not a "
                "set, whose order changes from run to run and would scramble state_dict()")

    # ----- what a subclass provides ------------------------------------------------------------
    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ``ValueError``/``TypeError`` naming the optimiser for a bad hyper-parameter."""

    def _update(self, param: ndarray, grad: ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        """Update ``param`` in place from ``grad``, keeping its buffers in ``state``."""
        raise NotImplementedError(f"{self._name} does not implement _update")

    # ----- helpers for the checks ---------------------------------------------------------------
    def _number(self, group: dict[str, Any], key: str) -> float:
        value = group[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{self._name}: {key} must be a number, got {value!r}")
        return float(value)

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"{self._name}: {message}")

    # ----- parameter groups ---------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a parameter group, e.g. layers unfrozen while fine-tuning.

        Hyper-parameters the group leaves out are taken from ``defaults``. A parameter may
        belong to one group only, once.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}.add_param_group: expected a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}.add_param_group: the group has no 'params' entry "
                             f"(keys: {sorted(param_group)})")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(self._set_message)
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError(f"{self._name}: either all parameters come with names "
                                 "(model.named_parameters()) or none do")
            params = [p[1] for p in params]
            group["param_names"] = names
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimise Tensors, but parameter {i} "
                                f"of the group is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(
                    f"{self._name}: can't optimise a non-leaf tensor (parameter {i} of the group "
                    "was computed from other tensors); optimise the leaves, or detach() it"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{self._name}: a parameter group lists the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{self._name}: some parameters appear in more than one "
                             "parameter group")
        if self.param_groups and ("param_names" in group) != (
            "param_names" in self.param_groups[0]
        ):
            raise ValueError(f"{self._name}: either all parameter groups name their parameters "
                             "or none do")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        for key in group:
            if key not in _GROUP_LISTS:
                group[key] = _plain(group[key])
        self._check_group(group)
        self.param_groups.append(group)

    # ----- the training loop's calls ------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``grad = None`` (the default), or zeros written in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a ``grad``; return ``closure()``'s loss, if given.

        ``closure`` re-evaluates the model and returns the loss; it runs with gradients on.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.array
                if grad.shape != p.shape:
                    raise ValueError(f"{self._name}.step: a parameter of shape "
                                     f"{tuple(p.shape)} has a grad of shape {tuple(grad.shape)}")
                self._update(p.array, grad, self.state[p], group)
                p._bump_version()  # the step wrote p's memory: graphs that kept p are stale
        return loss

    # ----- saving and loading -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the optimiser in PyTorch's layout, holding copies (later steps don't
        change it) of NumPy arrays and plain Python values only.

        ``{'state': {0: {'step': 3, 'exp_avg': array, ...}, ...},
        'param_groups': [{'lr': 0.001, ..., 'params': [0, 1]}, ...]}``; parameters are
        numbered across groups in order. Parameters without state are left out of ``'state'``.
        """
        index: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {
            index[id(p)]: {k: v.copy() if isinstance(v, ndarray) else copy.deepcopy(v)
                           for k, v in s.items()}
            for p, s in self.state.items() if s and id(p) in index
        }
        return {"state": dict(sorted(state.items())), "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s snapshot into an optimiser over parameters of the same
        shapes in the same groups.

        State keys may be ints or, after a JSON round trip, strings; arrays (or tensors) are
        copied and cast to their parameter's dtype; a ``'step'`` saved as an array or float
        becomes an int; a group value saved as a list where the optimiser holds a tuple
        (``betas`` after JSON) becomes a tuple again. Group hyper-parameters come from the
        snapshot, parameters stay this optimiser's.
        """
        where = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(f"{where}: expected a dict with 'state' and 'param_groups', "
                             f"got {keys}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: the state dict has {len(saved_groups)} parameter "
                             f"groups, this optimizer has {len(self.param_groups)}")
        params_by_index: dict[int, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{where}: parameter group {i} has {len(saved['params'])} parameters in "
                    f"the state dict, {len(group['params'])} in this optimizer"
                )
            for saved_index, p in zip(saved["params"], group["params"]):
                params_by_index[int(saved_index)] = p

        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, saved_state in state_dict["state"].items():
            if int(key) not in params_by_index:
                raise ValueError(f"{where}: the state dict has state for parameter {key}, which "
                                 "none of its parameter groups lists")
            p = params_by_index[int(key)]
            state[p] = {name: self._load_value(where, key, name, value, p)
                        for name, value in saved_state.items()}

        param_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: _plain(copy.deepcopy(v)) for k, v in saved.items() if k != "params"}
            for k, v in group.items():
                if k == "params":
                    continue
                new.setdefault(k, v)
                if isinstance(v, tuple) and isinstance(new[k], list):
                    new[k] = tuple(new[k])
            self._check_group(new)
            new["params"] = group["params"]
            param_groups.append(new)
        self.state = state
        self.param_groups = param_groups

    def _load_value(self, where: str, key: Any, name: str, value: Any, param: Tensor) -> Any:
        if isinstance(value, Tensor):
            value = value.array
        if name == "step":
            return int(value.item() if isinstance(value, (ndarray, xp.generic)) else value)
        if not isinstance(value, ndarray):
            return copy.deepcopy(value)
        if value.shape != param.shape:
            raise ValueError(f"{where}: state '{name}' of parameter {key} has shape "
                             f"{tuple(value.shape)}, but the parameter has shape "
                             f"{tuple(param.shape)}")
        dtype = param.dtype if param.dtype.kind in "fc" else value.dtype
        return xp.array(value, dtype=dtype, copy=True)

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k not in _GROUP_LISTS]
        return "\n".join(lines) + "\n)"
