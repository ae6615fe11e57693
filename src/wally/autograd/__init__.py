"""Reverse-mode automatic differentiation (``wally.autograd``, PyTorch's ``torch.autograd``).

Read :mod:`wally.autograd.function` first: the ``Function`` node and the backward pass, the
whole algorithm in one short module. The rest are named helpers it calls:

- :mod:`~wally.autograd.grad_mode` — ``no_grad``, ``enable_grad``, ``set_grad_enabled``,
  ``inference_mode``: whether ops are recorded at all;
- :mod:`~wally.autograd.versions` — the in-place check (``Version``, PyTorch's "modified by an
  inplace operation" error);
- :mod:`~wally.autograd.anomaly_mode` — ``detect_anomaly``: stop at the first NaN or Inf;
- :mod:`~wally.autograd.gradients` — ``grad``: gradients returned instead of accumulated.
"""

from wally.autograd.anomaly_mode import AnomalyError, _anomaly, detect_anomaly
from wally.autograd.function import Function, run_backward, topological_order
from wally.autograd.grad_mode import (
    _state,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from wally.autograd.gradients import grad
from wally.autograd.versions import Version

__all__ = [
    "Function", "run_backward", "topological_order", "grad",
    "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
    "is_inference_mode_enabled", "detect_anomaly", "AnomalyError", "Version",
]
