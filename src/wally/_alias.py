"""The switch: ``wally.alias_torch()`` makes ``import torch`` and ``import torchvision`` give wally.

After the call, code written for PyTorch runs unchanged on wally::

    import wally
    wally.alias_torch()
    import torch                       # wally
    from torch import nn               # wally.nn
    from torch.utils import data       # wally.data
    import torchvision.transforms      # wally.vision.transforms

One table, :data:`COUNTERPARTS`, says which wally module stands for which PyTorch module. An
import finder on ``sys.meta_path`` answers every ``import torch...`` / ``import torchvision...``
from it: a name in the table (or below one, such as ``torch.utils.data.dataset``, when wally has
that submodule) resolves to the wally module itself, and any other name (``torch.distributions``)
raises ``ModuleNotFoundError`` saying that wally has no counterpart, rather than importing the
real package by accident. While the switch is on, sizes and dtypes print as PyTorch prints them
(``torch.Size([1, 1, 8, 8])``, ``torch.float32``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

# PyTorch's module -> the wally module that stands for it.
COUNTERPARTS = {
    "torch": "wally",
    "torch.nn": "wally.nn",
    "torch.nn.functional": "wally.nn.functional",
    "torch.nn.init": "wally.nn.init",
    "torch.nn.utils": "wally.nn.utils",
    "torch.optim": "wally.optim",
    "torch.optim.lr_scheduler": "wally.optim.lr_scheduler",
    "torch.utils": "wally.utils",
    "torch.utils.data": "wally.data",
    "torch.onnx": "wally.onnx",
    "torch.autograd": "wally.autograd",
    "torchvision": "wally.vision",
    "torchvision.datasets": "wally.vision.datasets",
    "torchvision.transforms": "wally.vision.transforms",
    "torchvision.utils": "wally.vision.utils",
    "torchvision.models": "wally.vision.models",
    "torch_geometric": "wally.geometric",
    "torch_geometric.nn": "wally.geometric.nn",
    "torch_geometric.utils": "wally.geometric.utils",
    "torch_geometric.data": "wally.geometric.data",
}

_ROOTS = ("torch", "torchvision", "torch_geometric")


class AliasError(ImportError):
    """The switch cannot be turned on (the real PyTorch is already imported)."""


def _is_ours(module: Any) -> bool:
    return getattr(module, "__name__", "").split(".")[0] == "wally"


def counterpart(name: str) -> str | None:
    """The wally module that stands for PyTorch's module ``name`` (``None`` if there is none).

    A name in :data:`COUNTERPARTS` maps as the table says; a name below one maps to the same
    path below its counterpart when wally has that module (``torch.nn.init`` -> ``wally.nn.init``
    through the table, ``torch.utils.data.sampler`` -> ``wally.data.sampler`` through the rule).
    """
    if name in COUNTERPARTS:
        return COUNTERPARTS[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in COUNTERPARTS:
            candidate = ".".join([COUNTERPARTS[prefix], *parts[cut:]])
            try:
                found = importlib.util.find_spec(candidate)
            except ImportError:
                return None
            return candidate if found is not None else None
    return None


class _ExistingModule(importlib.abc.Loader):
    """A loader whose module is an already imported wally module (nothing to execute)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        try:
            return importlib.import_module(self.target)
        except ModuleNotFoundError as error:
            if error.name is None or not self.target.startswith(error.name):
                raise  # the wally module exists but something it imports is missing
            raise ModuleNotFoundError(
                f"No module named {spec.name!r}: its wally counterpart {self.target} is not "
                "part of this wally installation", name=spec.name) from None

    def exec_module(self, module: ModuleType) -> None:
        return None


class _TorchFinder(importlib.abc.MetaPathFinder):
    """Answers ``import torch...`` and ``import torchvision...`` from :data:`COUNTERPARTS`."""

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] not in _ROOTS:
            return None
        wally_name = counterpart(fullname)
        if wally_name is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: wally has no counterpart of {fullname} "
                f"(wally.alias_torch() maps {', '.join(sorted(COUNTERPARTS))})",
                name=fullname)
        return importlib.machinery.ModuleSpec(fullname, _ExistingModule(wally_name))


_FINDER = _TorchFinder()
_state = {"on": False}


def is_aliased() -> bool:
    """Whether :func:`alias_torch` is on (then sizes and dtypes print as ``torch.``...)."""
    return _state["on"]


def prefix() -> str:
    """The module name printed forms use: ``torch`` under the switch, else ``wally``."""
    return "torch" if _state["on"] else "wally"


def alias_torch() -> None:
    """Make ``import torch`` (with ``torch.nn``, ``torch.nn.functional``, ``torch.nn.init``,
    ``torch.optim``, ``torch.optim.lr_scheduler``, ``torch.utils.data``, ``torch.onnx``,
    ``torch.autograd``) and ``import torchvision`` (``datasets``, ``transforms``, ``utils``,
    ``models``) give wally's modules, for the rest of this interpreter. Calling it again does
    nothing.

    Refuses (``ImportError``) if the real ``torch`` or ``torchvision`` is already imported: two
    frameworks under one name would mix their tensors.

    >>> import wally
    >>> wally.alias_torch()
    >>> import torch
    >>> torch.zeros(2, 3).shape
    torch.Size([2, 3])
    """
    for root in _ROOTS:
        module = sys.modules.get(root)
        if module is not None and not _is_ours(module):
            where = getattr(module, "__file__", None) or "an unknown place"
            raise AliasError(
                f"wally.alias_torch(): the real {root} is already imported (from {where}); "
                f"call alias_torch() before anything imports {root}, or run the script with "
                "'wally run SCRIPT'")
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _state["on"] = True
