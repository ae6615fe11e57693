"""Parametrizations, PyTorch's ``torch.nn.utils.parametrize``: a tensor of a module computed
from others each time it is read.

``register_parametrization(module, "weight", P)`` removes the parameter ``weight``, keeps what
``P.right_inverse(weight)`` returns (``weight`` itself without one) as
``module.parametrizations.weight.original``, or ``original0``, ``original1``, ... when it
returns several tensors, and makes ``module.weight`` compute ``P(original)`` on every read, so
that gradients reach the originals and the optimiser updates them::

    >>> layer = nn.Linear(3, 4)
    >>> parametrize.register_parametrization(layer, "weight", Symmetric())  # doctest: +SKIP
    >>> list(layer.state_dict())
    ['bias', 'parametrizations.weight.original']

As in PyTorch, the module's class becomes a subclass ``Parametrized<Class>`` (so that
``weight`` can be a property of it); :func:`type_before_parametrizations` gives the class it
had, and :func:`remove_parametrizations` puts it back. Assigning ``module.weight = value``
sets the originals through ``right_inverse``. Inside ``with parametrize.cached():`` each
parametrized tensor is computed once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from wally.autograd import no_grad
from wally.nn.container import ModuleDict, ModuleList
from wally.nn.module import Module
from wally.nn.parameter import Parameter, _set_raw_array
from wally.tensor import Tensor

__all__ = ["ParametrizationList", "register_parametrization", "remove_parametrizations",
           "is_parametrized", "type_before_parametrizations", "cached"]

_cache_depth = 0
_cache: dict[tuple[int, str], Tensor] = {}


@contextmanager
def cached() -> Iterator[None]:
    """Within this block, compute each parametrized tensor once, on its first read (for a
    forward pass that reads a weight many times); the results are dropped on leaving it."""
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _register(module: Module, name: str, tensor: Tensor) -> None:
    if isinstance(tensor, Parameter):
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


def _set(target: Tensor, value: Tensor, what: str) -> None:
    """Give ``target`` the values of ``value`` (PyTorch's ``target.set_(value)``, as a copy)."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{what}: right_inverse must return tensors, got "
                         f"{type(value).__name__}")
    if value.dtype != target.dtype:
        raise ValueError(f"{what}: right_inverse returned dtype {value.dtype}, the original "
                         f"has {target.dtype}")
    _set_raw_array(target, value.array.copy())
    target._bump_version()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and the ``original`` tensor (or
    ``original0``, ``original1``, ...) they are computed from: what
    ``module.parametrizations.<name>`` holds. Calling it computes the parametrized tensor."""

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        with no_grad():
            new: Any = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    new = module.right_inverse(new)
        if not isinstance(new, Tensor | tuple | list):
            raise ValueError(f"'right_inverse' must return a Tensor or a Sequence of tensors "
                             f"(list, tuple...). Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if isinstance(new, Tensor):
            if new is not original:
                _set(original, new, "register_parametrization")
            _register(self, "original", original)
        else:
            for i, tensor in enumerate(new):
                if not isinstance(tensor, Tensor):
                    raise ValueError(f"'right_inverse' must return a sequence of tensors, got "
                                     f"{type(tensor).__name__} at position {i}")
                tensor = tensor.detach()
                tensor = (Parameter(tensor, original.requires_grad)
                          if isinstance(original, Parameter) else tensor)
                _register(self, f"original{i}", tensor)
        if not unsafe:
            _check_same(self(), original, "registering a parametrization")

    def right_inverse(self, value: Tensor) -> None:
        """Set the originals so that the parametrized tensor becomes ``value`` (what
        ``module.<name> = value`` does), through each parametrization's ``right_inverse``."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not "
                                       "implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                _set(self.original, value, "assigning a parametrized tensor")
                return
            if not isinstance(value, tuple | list) or len(value) != self.ntensors:
                raise ValueError(f"'right_inverse' must return a sequence of {self.ntensors} "
                                 f"tensors, got {type(value).__name__}")
            for i, tensor in enumerate(value):
                _set(getattr(self, f"original{i}"), tensor, "assigning a parametrized tensor")

    def forward(self) -> Tensor:
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _check_same(value: Any, original: Tensor, when: str) -> None:
    """A safe parametrization gives a tensor of the original's shape and dtype."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{when}: a parametrization must return a tensor, got "
                         f"{type(value).__name__}")
    if value.dtype != original.dtype or value.shape != original.shape:
        raise ValueError(f"{when}: the parametrization may not change the tensor's shape or "
                         f"dtype: {tuple(original.shape)} {original.dtype} became "
                         f"{tuple(value.shape)} {value.dtype} (pass unsafe=True to allow it)")


def _deepcopy(self: Module, memo: dict[int, Any]) -> Module:
    """A deep copy with a class of its own, so that removing a parametrization from one copy
    (which deletes the property from its class) leaves the other as it was."""
    replica: Module = object.__new__(type(self).__bases__[0])
    memo[id(self)] = replica
    replica.__dict__.update(copy.deepcopy(self.__dict__, memo))
    _inject_new_class(replica)
    for name in replica.parametrizations:
        _inject_property(replica, name)
    return replica


def _inject_new_class(module: Module) -> None:
    cls = type(module)
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {"__deepcopy__": _deepcopy})


def _inject_property(module: Module, tensor_name: str) -> None:
    def get_parametrized(self: Module) -> Tensor:
        parametrization = self.parametrizations[tensor_name]
        if not _cache_depth:
            return parametrization()
        key = (id(self), tensor_name)
        if key not in _cache:
            _cache[key] = parametrization()
        return _cache[key]

    def set_original(self: Module, value: Tensor) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(type(module), tensor_name, property(get_parametrized, set_original))


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization (on ``tensor_name``, when given)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def type_before_parametrizations(module: Module) -> type:
    """The class ``module`` had before its first parametrization."""
    return type(module).__bases__[0] if is_parametrized(module) else type(module)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` the output of ``parametrization`` (module docs); a second
    one on the same tensor is applied after the first. ``unsafe=True`` skips the check that
    the result keeps the tensor's shape and dtype. Returns ``module``."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be a Module, got "
                        f"{type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            current = getattr(module, tensor_name)
            _check_same(parametrization(current), current, "registering a parametrization")
        module.parametrizations[tensor_name].append(parametrization)
        module.parametrizations[tensor_name].unsafe |= unsafe
        return module
    owners = (module.__dict__.get("_parameters", {}), module.__dict__.get("_buffers", {}))
    if not any(tensor_name in owner for owner in owners):
        raise ValueError(f"Module '{type(module).__name__}' does not have a parameter, a buffer, "
                         f"or a parametrized element with name '{tensor_name}'")
    original = getattr(module, tensor_name)
    if original is None:
        raise ValueError(f"register_parametrization: {type(module).__name__}.{tensor_name} is "
                         "None, there is no tensor to parametrize")
    parametrizations = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_new_class(module)
        module.parametrizations = ModuleDict()
    _inject_property(module, tensor_name)
    module.parametrizations[tensor_name] = parametrizations
    return module


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo :func:`register_parametrization` on ``tensor_name``: the tensor becomes a plain
    parameter (or buffer) again, holding its current parametrized value
    (``leave_parametrized=True``) or the original. The last one removed gives the module its
    class back. Returns ``module``."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {type(module).__name__} does not have a parametrization on "
                         f"{tensor_name}")
    parametrizations = module.parametrizations[tensor_name]
    if parametrizations.is_tensor:
        original = parametrizations.original
        if leave_parametrized:
            with no_grad():
                _set(original, getattr(module, tensor_name), "remove_parametrizations")
    elif leave_parametrized:
        value = getattr(module, tensor_name)
        original = (Parameter(value.detach().clone(), value.requires_grad)
                    if value.requires_grad else value.detach().clone())
    else:
        raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                         "that is parametrized in terms of a sequence of tensors.")
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    _register(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type(module).__bases__[0]
    return module
