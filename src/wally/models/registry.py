"""The model registry: build a model by name, and rebuild it from the config it records.

Every builder in :mod:`wally.models` is decorated with :func:`register_model`, which files it
under its function name and makes each model it builds remember how it was built::

    >>> model = get_model("lenet", num_classes=5)
    >>> config = model_config(model)
    >>> config
    {'name': 'lenet', 'kwargs': {'in_channels': 1, 'num_classes': 5, 'input_size': 28}}
    >>> json.loads(json.dumps(config)) == config        # a checkpoint stores it as JSON
    True
    >>> rebuilt = get_model(**config)                    # same architecture, fresh weights
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from wally.nn.module import Module

__all__ = ["register_model", "get_model", "list_models", "model_config"]

P = ParamSpec("P")
M = TypeVar("M", bound=Module)

_BUILDERS: dict[str, Callable[..., Module]] = {}
_CONFIG_ATTRIBUTE = "_model_config"


def _jsonable(value: Any, where: str) -> Any:
    """``value`` with tuples turned into lists, so that ``json.loads(json.dumps(v)) == v``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item, where) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, where) for key, item in value.items()}
    raise TypeError(
        f"{where}: model arguments must be JSON values (numbers, strings, lists), "
        f"got {type(value).__name__} {value!r}"
    )


def register_model(builder: Callable[P, M]) -> Callable[P, M]:
    """File ``builder`` under its ``__name__`` and make its models record their config.

    The returned function builds the model, then stores on it ``{"name": ..., "kwargs": ...}``
    with every argument bound by name, defaults included, as JSON values (tuples become lists):
    what :func:`model_config` returns and :func:`get_model` accepts.
    """
    name = builder.__name__
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def build(*args: P.args, **kwargs: P.kwargs) -> M:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        config = {"name": name, "kwargs": _jsonable(dict(bound.arguments), name)}
        model = builder(*args, **kwargs)
        setattr(model, _CONFIG_ATTRIBUTE, config)
        return model

    _BUILDERS[name] = build
    return build


def list_models() -> list[str]:
    """The names :func:`get_model` knows, sorted."""
    return sorted(_BUILDERS)


def get_model(name: str, kwargs: Mapping[str, Any] | None = None, **overrides: Any) -> Module:
    """Build the model registered as ``name``.

    Arguments come as keywords (``get_model("resnet18", num_classes=100)``), or as the
    ``kwargs`` mapping of a config, so that ``get_model(**model_config(model))`` rebuilds a
    model; keywords given beside ``kwargs`` override it.

    Raises:
        ValueError: ``name`` is not registered (the message lists the known names).
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"get_model: unknown model {name!r}; known models: {list_models()}")
    arguments = {**(kwargs or {}), **overrides}
    return builder(**arguments)


def model_config(model: Module) -> dict[str, Any]:
    """How ``model`` was built: ``{"name": ..., "kwargs": {...}}``, JSON-serialisable.

    Raises:
        ValueError: ``model`` was not built by a :mod:`wally.models` builder.
    """
    config = getattr(model, _CONFIG_ATTRIBUTE, None)
    if config is None:
        raise ValueError(
            f"model_config: this {type(model).__name__} was not built by wally.models "
            f"(get_model or one of {list_models()}), so it has no recorded config"
        )
    return copy.deepcopy(config)
