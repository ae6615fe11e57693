"""Weight normalisation by a forward pre-hook, PyTorch's older ``torch.nn.utils.weight_norm``
and ``remove_weight_norm`` (deprecated there, with a ``FutureWarning``, in favour of
:func:`wally.nn.utils.parametrizations.weight_norm`).

``weight_norm(module)`` replaces the parameter ``weight`` by two, ``weight_g`` (the lengths)
and ``weight_v`` (the direction), and recomputes ``module.weight = g · v / ‖v‖`` (see
:mod:`wally.functional.weight_norm`) before every forward pass, so ``module.weight`` is a
plain attribute computed from them: read it after a forward pass, or after the call, not after
changing ``g`` or ``v`` by hand.
"""

from __future__ import annotations

import warnings
from typing import Any

from wally.functional.weight_norm import WeightNorm as WeightNormFn
from wally.functional.weight_norm import norm_except_dim, normalised_axes
from wally.nn.module import Module
from wally.nn.parameter import Parameter
from wally.tensor import Tensor

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook: ``module.<name> = g · v / ‖v‖`` from ``<name>_g``, ``<name>_v``."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return WeightNormFn(normalised_axes(v.ndim, self.dim), self.name)(v, g)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same "
                                   f"parameter {name}")
        weight = module.__dict__.get("_parameters", {}).get(name)
        if not isinstance(weight, Parameter):
            raise ValueError(f"weight_norm: {type(module).__name__} has no parameter "
                             f"{name!r} to normalise")
        normalised_axes(weight.ndim, dim, f"weight_norm of {type(module).__name__}.{name}")
        fn = WeightNorm(name, dim)
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim)
                                                         .detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Weight normalisation by a forward pre-hook (module docs), PyTorch's
    ``torch.nn.utils.weight_norm``: parameters ``<name>_g`` (shape
    ``norm_except_dim(weight, 2, dim)``'s, a scalar for ``dim`` ``None`` or ``-1``) and
    ``<name>_v``, which are also the ``state_dict`` keys. Warns, as PyTorch does, that
    :func:`wally.nn.utils.parametrizations.weight_norm` replaces it.

    Example::

        >>> layer = nn.utils.weight_norm(nn.Linear(20, 40), name="weight")
        >>> layer.weight_g.shape, layer.weight_v.shape
        (wally.Size([40, 1]), wally.Size([40, 20]))
    """
    warnings.warn("`wally.nn.utils.weight_norm` is deprecated in favor of "
                  "`wally.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Fold ``<name>_g`` and ``<name>_v`` back into a plain parameter ``<name>`` holding
    ``g · v / ‖v‖``, and remove the hook. Returns ``module``."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {type(module).__name__}")
