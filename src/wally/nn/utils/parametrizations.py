"""Parametrizations of a module's weight, PyTorch's ``torch.nn.utils.parametrizations``:
:func:`weight_norm`, built on :mod:`wally.nn.utils.parametrize`."""

from __future__ import annotations

from typing import Any

from wally.functional.weight_norm import _weight_norm, norm_except_dim, normalised_axes
from wally.nn.module import Module
from wally.nn.utils import parametrize
from wally.tensor import Tensor

__all__ = ["weight_norm"]


class _WeightNorm(Module):
    """``weight = g · v / ‖v‖`` from ``(g, v)`` = ``(original0, original1)``."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrise ``module.<name>`` as ``g · v / ‖v‖`` (Salimans and Kingma, 2016), the
    norm over every axis but ``dim`` (``None`` or ``-1``: the whole tensor; see
    :mod:`wally.functional.weight_norm`), as PyTorch's
    ``torch.nn.utils.parametrizations.weight_norm``.

    ``g`` is ``module.parametrizations.<name>.original0`` (one length per slice along ``dim``,
    initialised to the weight's norms, so the weight is unchanged) and ``v`` is
    ``original1`` (the weight); ``module.<name>`` is computed from them on every read. The
    ``state_dict`` keys are ``parametrizations.<name>.original0`` and ``original1``; a state
    dict of the old API (``<name>_g``, ``<name>_v``, :func:`wally.nn.utils.weight_norm`) loads
    too. :func:`parametrize.remove_parametrizations(module, name)
    <wally.nn.utils.parametrize.remove_parametrizations>` folds it back into a plain weight.

    Example::

        >>> layer = nn.utils.parametrizations.weight_norm(nn.Linear(20, 40))
        >>> layer.parametrizations.weight.original0.shape
        wally.Size([40, 1])
    """
    weight = module.__dict__.get("_parameters", {}).get(name)
    if isinstance(weight, Tensor):
        normalised_axes(weight.ndim, dim, f"weight_norm of {type(module).__name__}.{name}")
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def old_keys(state_dict: dict[str, Any], prefix: str) -> None:
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module._register_load_state_dict_pre_hook(old_keys)
    return module
