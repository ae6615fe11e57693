"""``Module``, the Block of the study note: a layer, a group of layers or a whole model.

A Module holds parameters, buffers and sub-modules, registered by plain attribute assignment::

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(20, 256)     # a sub-module
            self.scale = nn.Parameter(wally.ones(1))   # a parameter
            self.register_buffer("calls", wally.zeros((), dtype=wally.int64))

        def forward(self, x):
            return self.scale * self.hidden(x).relu()

and gets from this class everything PyTorch's ``nn.Module`` offers for CNN work: iteration over
parameters, buffers and sub-modules (in PyTorch's order), ``train()``/``eval()``, forward hooks,
dtype conversion, ``state_dict()``/``load_state_dict()`` with PyTorch's keys, and PyTorch's
``repr`` tree. Backward comes from autograd; a Module never writes one.

Lazy layers (``LazyLinear``, ``LazyConv2d``, ...) build on :class:`LazyModuleMixin` below.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from wally import dtypes
from wally.autograd import no_grad
from wally.backend import ndarray, xp
from wally.nn.parameter import Parameter, _raw_array, _set_raw_array, is_lazy
from wally.tensor import Tensor

__all__ = ["Module", "LazyModuleMixin"]

M = TypeVar("M", bound="Module")


class RemovableHandle:
    """What ``register_forward_hook`` and friends return: ``handle.remove()`` unregisters the hook.

    Also a context manager, removing the hook on exit::

        with model.register_forward_hook(print_shapes):
            model(x)
    """

    _next_id = 0

    def __init__(self, *hook_dicts: dict[int, Any]) -> None:
        self._hook_dicts = hook_dicts
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        for hooks in self._hook_dicts:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class _Keys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class _IncompatibleKeys(_Keys):
    """What ``load_state_dict`` returns: ``(missing_keys, unexpected_keys)``."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )

    __str__ = __repr__


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` could not load: keys or shapes do not match.

    A ``RuntimeError`` as in PyTorch, and a ``ValueError`` because the input is at fault.
    """


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (blank lines stay empty), as PyTorch's repr does."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = lines.pop(0)
    return "\n".join([first] + [" " * spaces + line if line.strip() else "" for line in lines])


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _as_state_array(value: Any) -> ndarray:
    """A state_dict value as an array: wally Tensors, NumPy arrays, or anything ``__array__``
    understands (a detached CPU ``torch.Tensor`` included)."""
    if isinstance(value, Tensor):
        return _raw_array(value)
    return xp.asarray(value)


def _parse_to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The dtype asked for by ``Module.to(...)``; device arguments are checked (CPU only)."""
    from wally.device import device as make_device

    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, (xp.dtype, dtypes.dtype)) or (
                isinstance(arg, type) and issubclass(arg, xp.generic)):
            dtype = arg
        elif isinstance(arg, bool):
            continue  # the positional non_blocking flag
        else:
            device = arg
    if device is not None:
        make_device(device)  # raises a clear error for anything but the CPU
    if dtype is not None:
        dtype = xp.dtype(dtype)
        if dtype.kind not in "fc":
            raise TypeError(
                f"Module.to only accepts floating point dtypes, but got desired dtype={dtype}: "
                "integer buffers such as BatchNorm's num_batches_tracked keep their dtype"
            )
    return dtype


class Module:
    """Base class of every layer and model: a Block in the study note's words.

    Subclasses call ``super().__init__()`` first, assign their parameters, buffers and
    sub-modules as attributes, and define ``forward``. Call the module (``model(x)``), not
    ``forward``, so that hooks and lazy initialisation run.

    Shape:
        Whatever ``forward`` computes.

    Example::

        >>> class TwoLayer(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = nn.Linear(4, 8)
        ...         self.out = nn.Linear(8, 1)
        ...     def forward(self, x):
        ...         return self.out(self.hidden(x).relu())
        >>> [name for name, _ in TwoLayer().named_parameters()]
        ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent_buffers_set: set[str]
    _modules: dict[str, Module | None]
    _forward_pre_hooks: OrderedDict[int, Callable[..., Any]]
    _forward_pre_hooks_with_kwargs: set[int]
    _forward_hooks: OrderedDict[int, Callable[..., Any]]
    _forward_hooks_with_kwargs: set[int]

    def __init__(self) -> None:
        # object.__setattr__: our __setattr__ needs these dictionaries to exist already.
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", OrderedDict())
        setattr_(self, "_buffers", OrderedDict())
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", OrderedDict())
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", set())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_hooks_with_kwargs", set())

    def _forward_unimplemented(self, *input: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # A class attribute rather than a method, so that subclasses may give ``forward`` any
    # signature without mypy calling it an incompatible override (PyTorch does the same).
    forward: Callable[..., Any] = _forward_unimplemented

    # ----- registration -------------------------------------------------------------------
    def _check_initialised(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {what} before Module.__init__() call: call super().__init__() "
                f"at the top of {type(self).__name__}.__init__"
            )

    def _check_name(self, name: Any, what: str, registry: Mapping[str, Any]) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{what} name can\'t contain ".", got "{name}"')
        if name == "":
            raise KeyError(f'{what} name can\'t be empty string ""')
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (BatchNorm's ``running_mean``).

        Persistent buffers go into ``state_dict()``; all buffers follow ``to()``/``double()``.
        ``None`` registers the name without a value (left out of ``state_dict``).
        """
        if "_buffers" not in self.__dict__:
            self._check_initialised("buffer")
        self._check_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(wally Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter under ``name``; ``None`` registers the name without a value
        (``Linear(..., bias=False)`` registers ``bias`` as ``None``)."""
        if "_parameters" not in self.__dict__:
            self._check_initialised("parameter")
        self._check_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(wally.nn.Parameter or None required)"
            )
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a sub-module under ``name`` (what ``self.name = module`` does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if "_modules" not in self.__dict__:
            self._check_initialised("module")
        self._check_name(name, "module", self._modules)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        def remove_from(*registries: Any) -> None:
            for registry in registries:
                if name in registry:
                    if isinstance(registry, set):
                        registry.discard(name)
                    else:
                        del registry[name]

        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                self._check_initialised("parameters")
            remove_from(self.__dict__, self._buffers, self._modules,
                        self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' of "
                    f"{type(self).__name__} (wally.nn.Parameter or None expected); "
                    f"to change its values use `with wally.no_grad(): {name}.copy_(value)`"
                )
            self.register_parameter(name, value)
        else:
            modules = self.__dict__.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    self._check_initialised("child module")
                remove_from(self.__dict__, self._parameters, self._buffers,
                            self._non_persistent_buffers_set)
                modules[name] = value  # type: ignore[index]
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{type(value).__name__}' as child module '{name}' "
                        "(wally.nn.Module or None expected)"
                    )
                modules[name] = value
            else:
                buffers = self.__dict__.get("_buffers")
                if buffers is not None and name in buffers:
                    if value is not None and not isinstance(value, Tensor):
                        raise TypeError(
                            f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                            "(wally Tensor or None expected)"
                        )
                    buffers[name] = value
                else:
                    object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: parameters, buffers and modules live in dicts.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = itertools.chain(super().__dir__(), self._parameters, self._buffers, self._modules)
        return sorted(key for key in set(keys) if not key[0].isdigit())

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` (``"features.0"``); ``""`` is ``self``."""
        module: Module = self
        if target == "":
            return module
        walked: list[str] = []
        for item in target.split("."):
            child = module._modules.get(item)
            if child is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"{where} has no sub-module `{item}` (looking up '{target}')")
            module = child
            walked.append(item)
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` (``"features.0.weight"``)."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        param = module._parameters.get(name)
        if param is None:
            raise AttributeError(f"{type(module).__name__} has no parameter `{name}`")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target`` (``"bn.running_mean"``)."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        buffer = module._buffers.get(name)
        if buffer is None:
            raise AttributeError(f"{type(module).__name__} has no buffer `{name}`")
        return buffer

    # ----- calling: forward with hooks ----------------------------------------------------
    def register_forward_pre_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``.

        It may return ``None`` (inputs unchanged) or new positional inputs (a tuple, or one
        value). With ``with_kwargs=True`` it is called as ``hook(module, args, kwargs)`` and
        returns ``None`` or ``(args, kwargs)``. ``prepend=True`` runs it before the others.
        """
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``.

        It may return ``None`` or a replacement output. With ``with_kwargs=True`` it is called
        as ``hook(module, args, kwargs, output)``. ``prepend=True`` runs it before the others.
        A model summary registers one on every layer to record output shapes.
        """
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        # Snapshots: a hook may remove itself (the lazy-initialisation hook does).
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "a forward pre-hook registered with with_kwargs=True must return "
                            f"None or (args, kwargs), got {type(result).__name__}"
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook_id, hook in list(self._forward_hooks.items()):
            if hook_id in self._forward_hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # ----- iteration ----------------------------------------------------------------------
    def _named_members(
        self, members: Callable[[Module], Any], prefix: str = "", recurse: bool = True,
        remove_duplicate: bool = True,
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in members(module):
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (module_prefix + "." if module_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs: this module's own parameters in registration
        order, then each sub-module's, depth first (PyTorch's order). A parameter shared by
        several layers is yielded once, under its first name."""
        return self._named_members(
            lambda m: m._parameters.items(), prefix, recurse, remove_duplicate
        )

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The parameters of :meth:`named_parameters`, for an optimiser.

        For a lazy layer that has not seen an input yet they are
        :class:`~wally.nn.UninitializedParameter` placeholders (as in PyTorch): an optimiser may
        hold them already, since the first forward pass materialises them in place, but their
        shapes cannot be read until then.
        """
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs, persistent or not, in the order of named_parameters."""
        return self._named_members(
            lambda m: m._buffers.items(), prefix, recurse, remove_duplicate
        )

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their attribute names (each module once)."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Every module in the tree, this one first (name ``prefix``), depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    # ----- modes and gradients -------------------------------------------------------------
    def train(self: M, mode: bool = True) -> M:
        """Set training mode here and in every sub-module (Dropout drops, BatchNorm uses batch
        statistics and updates its running ones)."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self: M) -> M:
        """``train(False)``: Dropout is the identity, BatchNorm uses its running statistics."""
        return self.train(False)

    def requires_grad_(self: M, requires_grad: bool = True) -> M:
        """Switch gradient recording for every parameter (freeze a backbone with ``False``)."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``p.grad = None`` (default) or fill them with zeros."""
        for param in self.parameters():
            if param.grad is not None:
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.zero_()

    def apply(self: M, fn: Callable[[Module], Any]) -> M:
        """Call ``fn`` on every sub-module (children first) and then on ``self``; d2l uses it
        to initialise weights: ``net.apply(init_weights)``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ----- dtype and device ---------------------------------------------------------------
    def _apply(self: M, fn: Callable[[ndarray], ndarray]) -> M:
        """Replace every parameter's and buffer's array by ``fn(array)``.

        Parameters keep their identity (the array inside is swapped, as PyTorch's ``param.data
        = ...``), so an optimiser built before ``model.double()`` still updates them.
        """
        for module in self.children():
            module._apply(fn)
        for param in self._parameters.values():
            if param is None:
                continue
            _set_raw_array(param, fn(_raw_array(param)))
            if param.grad is not None:
                param.grad.array = fn(param.grad.array)
        for buffer in self._buffers.values():
            if buffer is not None:
                _set_raw_array(buffer, fn(_raw_array(buffer)))
        return self

    def to(self: M, *args: Any, **kwargs: Any) -> M:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(tensor)``, in place.

        Floating-point parameters and buffers are cast to ``dtype``; integer buffers
        (``num_batches_tracked``) keep theirs, as in PyTorch. wally computes on the CPU only:
        ``'cpu'`` is accepted and changes nothing, other devices raise.
        """
        dtype = _parse_to_args(args, dict(kwargs))
        if dtype is None:
            return self

        def convert(array: ndarray) -> ndarray:
            return array.astype(dtype, copy=False) if array.dtype.kind in "fc" else array

        return self._apply(convert)

    def float(self: M) -> M:
        """Cast floating-point parameters and buffers to float32."""
        return self.to(xp.float32)

    def double(self: M) -> M:
        """Cast floating-point parameters and buffers to float64 (for gradient checks)."""
        return self.to(xp.float64)

    def half(self: M) -> M:
        """Cast floating-point parameters and buffers to float16."""
        return self.to(xp.float16)

    def cpu(self: M) -> M:
        return self

    def cuda(self: M, device: Any = None) -> M:
        from wally.device import device as make_device

        make_device("cuda" if device is None else device)  # raises: CPU only
        return self

    # ----- state_dict ---------------------------------------------------------------------
    def _save_to_state_dict(
        self, destination: dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = (
                    param if keep_vars or is_lazy(param) else param.detach()
                )
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = (
                    buffer if keep_vars or is_lazy(buffer) else buffer.detach()
                )

    def state_dict(
        self, *args: Any, destination: dict[str, Any] | None = None, prefix: str = "",
        keep_vars: bool = False,
    ) -> dict[str, Any]:
        """Everything needed to restore the model: an ordered ``{dotted name: tensor}`` dict of
        parameters and persistent buffers, with PyTorch's keys and shapes.

        Values are detached tensors sharing memory with the model (``keep_vars=True`` gives the
        Parameters themselves). A shared sub-module appears under each of its names, as in
        PyTorch. Lazy placeholders appear as themselves.
        """
        if args:  # PyTorch's deprecated positional form state_dict(destination, prefix, keep_vars)
            destination, *rest = args
            if rest:
                prefix = rest[0]
            if len(rest) > 1:
                keep_vars = rest[1]
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(
        self, state_dict: Mapping[str, Any], prefix: str, missing_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Copy this module's own entries (keys ``prefix + name``) out of ``state_dict``.

        Subclasses may override it to accept older layouts (BatchNorm tolerates a missing
        ``num_batches_tracked``, as PyTorch does).
        """
        local: dict[str, Tensor] = {}
        local.update((k, v) for k, v in self._parameters.items() if v is not None)
        local.update(
            (k, v) for k, v in self._buffers.items()
            if v is not None and k not in self._non_persistent_buffers_set
        )
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            try:
                value = _as_state_array(state_dict[key])
            except Exception as error:  # reported below, with the key
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected a Tensor or array, '
                    f"got {type(state_dict[key]).__name__} ({error})"
                )
                continue
            if is_lazy(target):
                if not is_lazy(state_dict[key]):
                    with no_grad():
                        target.materialize(value.shape)  # type: ignore[attr-defined]
                else:
                    continue
            current = _raw_array(target)
            if value.shape != current.shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{_shape_str(value.shape)} from checkpoint, the shape in current model "
                    f"is {_shape_str(current.shape)}."
                )
                continue
            if value.dtype.kind not in "biufc":
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected numbers, '
                    f"got an array of dtype {value.dtype}"
                )
                continue
            if current is value:
                continue
            with no_grad():
                xp.copyto(current, value, casting="unsafe")
            target._bump_version()

    def _register_load_state_dict_pre_hook(
        self, hook: Callable[[dict[str, Any], str], None]
    ) -> RemovableHandle:
        """Call ``hook(state_dict, prefix)`` before this module's entries are loaded, on the
        loader's own copy of the state dict, which it may edit (rename an older layout's keys:
        weight normalisation reads ``weight_g``/``weight_v`` this way)."""
        hooks = self.__dict__.setdefault("_load_state_dict_pre_hooks", OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _IncompatibleKeys:
        """Copy parameters and buffers from ``state_dict`` into this model, in place.

        Values may be wally Tensors, NumPy arrays or detached CPU ``torch.Tensor`` s (anything
        with ``__array__``); they are cast to each parameter's dtype. Returns the named tuple
        ``(missing_keys, unexpected_keys)``. With ``strict=True`` (the default) any missing or
        unexpected key raises; a shape mismatch always raises, naming each key and both shapes.
        Entries that fit are copied even when others fail (as in PyTorch); all problems are
        listed in one error.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}"
            )
        missing_keys: list[str] = []
        error_msgs: list[str] = []
        state_dict = OrderedDict(state_dict)  # the pre-hooks may rename keys of this copy

        def load(module: Module, prefix: str) -> None:
            for hook in module.__dict__.get("_load_state_dict_pre_hooks", {}).values():
                hook(state_dict, prefix)
            module._load_from_state_dict(state_dict, prefix, missing_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    load(child, prefix + name + ".")

        load(self, "")
        expected = self.state_dict(keep_vars=True)
        unexpected_keys = [key for key in state_dict if key not in expected]
        # A lazy module materialised by the load is complete now: it may become its eager class.
        for module in self.modules():
            if isinstance(module, LazyModuleMixin) and not module.has_uninitialized_params():
                module._lazy_sizes_from_parameters()
                module._lazy_finish()

        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: "
                                  + ", ".join(f'"{k}"' for k in unexpected_keys) + ".")
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: "
                                  + ", ".join(f'"{k}"' for k in missing_keys) + ".")
        if error_msgs:
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(error_msgs)
            )
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # ----- repr ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The layer's own settings for ``repr`` (``in_features=4, out_features=2, bias=True``);
        override it in layers, one line per setting group."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        # PyTorch's format exactly: "Name(extra)" or a tree with "(child): repr" lines.
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"


class LazyModuleMixin:
    """Mix into a layer to infer its input size from the first batch (PyTorch's LazyModuleMixin).

    The layer is built with placeholder :class:`~wally.nn.UninitializedParameter` (and
    :class:`~wally.nn.UninitializedBuffer`) attributes. A forward pre-hook registered here calls
    ``initialize_parameters(*args, **kwargs)`` before the first ``forward``; that method reads
    the input's size, calls ``placeholder.materialize(shape)`` for each placeholder, and then
    ``reset_parameters()``. The hook then removes itself and the module's class becomes
    ``cls_to_become``, so a ``LazyLinear`` is a plain ``Linear`` afterwards (``repr``,
    ``type(m) == nn.Linear`` and all).

    Before the first batch, ``parameters()`` yields the placeholders (as PyTorch does): an
    optimiser may already hold them, because materialising happens in place, but their shapes
    cannot be read. ``load_state_dict`` also materialises placeholders from the checkpoint's
    shapes; then ``_lazy_sizes_from_parameters()`` recovers the layer's sizes from them.

    How to write a lazy layer (``LazyConv2d`` in the same way)::

        class LazyLinear(LazyModuleMixin, Linear):
            cls_to_become = Linear

            def __init__(self, out_features, bias=True, device=None, dtype=None):
                super().__init__(0, 0, False, dtype=dtype)   # Linear.__init__, with nothing to init
                self.out_features = out_features
                self.weight = UninitializedParameter(dtype=dtype)
                if bias:
                    self.bias = UninitializedParameter(dtype=dtype)

            def reset_parameters(self):
                if not self.has_uninitialized_params() and self.in_features != 0:
                    super().reset_parameters()

            def initialize_parameters(self, input):
                if self.has_uninitialized_params():
                    self.in_features = input.shape[-1]
                    self.weight.materialize((self.out_features, self.in_features))
                    if self.bias is not None:
                        self.bias.materialize((self.out_features,))
                    self.reset_parameters()

            def _lazy_sizes_from_parameters(self):
                self.in_features = self.weight.shape[1]

    The mixin must come first in the bases so that its ``__init__`` runs around the layer's.
    """

    cls_to_become: type[Module] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        module: Module = self  # type: ignore[assignment]
        handle = module.register_forward_pre_hook(_lazy_initialize, with_kwargs=True)
        object.__setattr__(self, "_lazy_hook_id", handle.id)

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        """Materialise every placeholder from the first input (subclasses implement this)."""
        raise NotImplementedError(
            f"initialize_parameters is not implemented for {type(self).__name__}"
        )

    def has_uninitialized_params(self) -> bool:
        """Whether any of this module's own parameters or buffers is still a placeholder."""
        module: Module = self  # type: ignore[assignment]
        return any(
            is_lazy(value)
            for value in itertools.chain(module._parameters.values(), module._buffers.values())
        )

    def _lazy_sizes_from_parameters(self) -> None:
        """Set size attributes (``in_features``, ``in_channels``, ``num_features``) from the
        materialised parameters, after ``load_state_dict`` materialised them. Override it."""

    def _lazy_finish(self) -> None:
        """Drop the initialisation hook and become the eager class."""
        module: Module = self  # type: ignore[assignment]
        hook_id = module.__dict__.pop("_lazy_hook_id", None)
        if hook_id is None:
            return
        module._forward_pre_hooks.pop(hook_id, None)
        module._forward_pre_hooks_with_kwargs.discard(hook_id)
        if self.cls_to_become is not None:
            module.__class__ = self.cls_to_become


def _lazy_initialize(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The forward pre-hook of lazy modules: infer shapes from the first input, once."""
    if module.has_uninitialized_params():
        with no_grad():
            module.initialize_parameters(*args, **kwargs)
        if module.has_uninitialized_params():
            raise RuntimeError(
                f"{module._get_name()}.initialize_parameters left parameters uninitialised"
            )
    module._lazy_finish()
