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
from typing import Any, ParamSpec, TypeVar, overload

from wally.nn.module import Module

__all__ = ["register_model", "get_model", "list_models", "model_config", "check_config",
           "check_input_size", "input_spatial_dims", "suggest", "MAX_INPUT_SIDE",
           "MAX_INPUT_VALUES"]

P = ParamSpec("P")
M = TypeVar("M", bound=Module)

_BUILDERS: dict[str, Callable[..., Module]] = {}
_SPATIAL_DIMS: dict[str, int] = {}  # register_model's spatial_dims, by name
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


@overload
def register_model(builder: Callable[P, M], *, spatial_dims: int = 2) -> Callable[P, M]: ...
@overload
def register_model(builder: None = None, *,
                   spatial_dims: int = 2) -> Callable[[Callable[P, M]], Callable[P, M]]: ...
def register_model(builder: Callable[P, M] | None = None, *,
                   spatial_dims: int = 2) -> Any:
    """File ``builder`` under its ``__name__`` and make its models record their config.

    The returned function builds the model, then stores on it ``{"name": ..., "kwargs": ...}``
    with every argument bound by name, defaults included, as JSON values (tuples become lists):
    what :func:`model_config` returns and :func:`get_model` accepts.

    ``spatial_dims`` is the rank of the model's input past its channels: 2 for an image model
    (the default: an int ``input_size`` is a square side), 1 for a series or text model (an
    int is the length); :func:`input_spatial_dims` reports it, and the input bounds follow it.
    Used bare (``@register_model``) or with it (``@register_model(spatial_dims=1)``).
    """
    if spatial_dims not in (1, 2):
        raise ValueError(f"register_model: spatial_dims must be 1 or 2, got {spatial_dims!r}")
    if builder is None:
        return functools.partial(register_model, spatial_dims=spatial_dims)
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
    _SPATIAL_DIMS[name] = spatial_dims
    return build


def input_spatial_dims(model: str | Module | None) -> int:
    """The rank of the input past its channels of a registered model (by name, or a model it
    built): 1 for a series or a text (``C T``, ``L``), 2 for an image (``C H W``); 2 for
    anything else, as wally's models are image models unless registered otherwise."""
    if isinstance(model, Module):
        config = getattr(model, _CONFIG_ATTRIBUTE, None)
        model = config.get("name") if isinstance(config, Mapping) else None
    return _SPATIAL_DIMS.get(model, 2) if isinstance(model, str) else 2


def list_models(*, buildable: bool = False, classifiers: bool = False) -> list[str]:
    """The names :func:`get_model` knows, sorted.

    ``buildable``: only those built without arguments (not ``resnet`` and ``vgg``, which need
    ``arch``). ``classifiers``: only those that also take ``in_channels``, ``num_classes`` and
    ``input_size``, as ``wally train`` builds them (not ``wally_finder``, a detector).
    """
    names = []
    for name in sorted(_BUILDERS):
        parameters = inspect.signature(_BUILDERS[name]).parameters
        required = [p for p in parameters.values() if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if (buildable or classifiers) and required:
            continue
        if classifiers and not {"in_channels", "num_classes", "input_size"} <= set(parameters):
            continue
        names.append(name)
    return names


def suggest(name: str, names: list[str]) -> str:
    """``" (did you mean 'lenet'?)"`` for the closest of ``names`` to ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name).lower(), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# Bounds on the sizes a model config (from a checkpoint, say) may ask for, checked before anything
# is built: an input drives every activation, so one input is at most 4 Mi values (16 MiB in
# float32; 3x1024x1024 fits, and so does a series of 4 Mi steps); an image's sides are at most
# 4096 each; a series' or a text's length is bounded by the value count alone; channels by
# MAX_CHANNELS. The other sizes drive weights, which load_checkpoint also bounds by the bytes
# the file holds.
MAX_INPUT_SIDE = 4096
MAX_INPUT_VALUES = 4 << 20
MAX_CHANNELS = 4096
MAX_CLASSES = 100_000
MAX_INT = 1_000_000      # any other integer argument (widths, depths, hidden features)
MAX_LIST = 1_000         # items in a list argument (an arch of stages)
_INPUT_KEYS = ("input_size", "patch_size")


def check_input_size(size: Any, where: str = "input_size", *,
                     spatial_dims: int = 2) -> tuple[int, ...]:
    """One input's size as a tuple of ints, refused (``ValueError`` naming ``where``, the
    value and the limit) past wally's bounds.

    ``spatial_dims`` is the rank of the model's input (:func:`input_spatial_dims`):

    - 2, an image: ``size`` is ``C H W``, ``H W``, or ``H`` or an int for a square side (which
      is returned as ``(H, H)``); every side at most :data:`MAX_INPUT_SIDE`;
    - 1, a series or a text: ``size`` is ``C T``, ``T``, or an int, the length; the length is
      bounded by :data:`MAX_INPUT_VALUES` only and the channels by ``MAX_CHANNELS``.

    Either way the whole input holds at most :data:`MAX_INPUT_VALUES` values."""
    values = list(size) if isinstance(size, list | tuple) else [size]
    most = 4 if spatial_dims == 2 else 2
    if not values or len(values) > most or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in values):
        expected = "1 to 4 integers (C H W, H W or a square side H)" if spatial_dims == 2 \
            else "1 or 2 integers (C T or the length T)"
        raise ValueError(f"{where}: expected {expected}, got {_short(size)}")
    if spatial_dims == 2:
        if len(values) == 1:
            values *= 2  # a square side
        for n in values:
            if not 1 <= n <= MAX_INPUT_SIDE:
                raise ValueError(f"{where}: every size must be from 1 to {MAX_INPUT_SIDE:,}, "
                                 f"got {_short(size)}")
    else:
        if len(values) == 2 and not 1 <= values[0] <= MAX_CHANNELS:
            raise ValueError(f"{where}: expected 1 to {MAX_CHANNELS:,} channels, got "
                             f"{_short(size)}")
        if not 1 <= values[-1] <= MAX_INPUT_VALUES:
            raise ValueError(f"{where}: the length must be from 1 to {MAX_INPUT_VALUES:,} "
                             f"steps, got {_short(size)}")
    total = 1
    for n in values:
        total *= n
    if total > MAX_INPUT_VALUES:
        raise ValueError(f"{where}: {_short(size)} is {total:,} values per input, over "
                         f"wally's limit of {MAX_INPUT_VALUES:,} (e.g. 3x1024x1024 fits)")
    return tuple(values)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _check_value(key: str, value: Any, depth: int = 0) -> None:
    if depth > 4:
        raise ValueError(f"{key} is nested more than 4 deep")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        if isinstance(value, str) and len(value) > 200:
            raise ValueError(f"{key} is a string of {len(value):,} characters (at most 200)")
        return
    if isinstance(value, int):
        if key in _INPUT_KEYS:  # bounded by check_input_size, for the model's input rank
            return
        limit = {"in_channels": MAX_CHANNELS, "num_classes": MAX_CLASSES}.get(key, MAX_INT)
        if abs(value) > limit:
            raise ValueError(f"{key} is {_short(value) if abs(value) < 10**50 else 'huge'}: "
                             f"at most {limit:,}")
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{key} is {value}, not a finite number")
        return
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise ValueError(f"{key} has {len(value):,} items, at most {MAX_LIST:,}")
        for item in value:
            _check_value(key, item, depth + 1)
        return
    raise ValueError(f"{key} is a {type(value).__name__}, not a number, string or list")


def check_config(config: Any) -> None:
    """Refuse (``ValueError``: the key, the value and the limit) a ``{"name", "kwargs"}`` config
    that names no registered model or asks for sizes past wally's bounds, before anything is
    built: the input size (:func:`check_input_size`, channels included), channels, classes and
    every other integer, list and string."""
    if not (isinstance(config, Mapping) and isinstance(config.get("name"), str)
            and isinstance(config.get("kwargs", {}), Mapping)):
        raise ValueError(f"is not {{'name': str, 'kwargs': dict}}: {_short(config)}")
    name, kwargs = config["name"], dict(config.get("kwargs") or {})
    if name not in _BUILDERS:
        raise ValueError(f"names the model {_short(name)!r}, which wally does not know"
                         + suggest(name, list_models()))
    parameters = inspect.signature(_BUILDERS[name]).parameters
    unknown = [str(k)[:40] for k in kwargs if k not in parameters]
    if unknown:
        raise ValueError(f"gives {name} arguments it does not take: {', '.join(unknown)}")
    for key, value in kwargs.items():
        _check_value(key, value)
        if key in ("in_channels", "num_classes") and (
                isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{key} is {_short(value)}, not an integer")
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if key == "in_channels" and not 1 <= value <= MAX_CHANNELS:
            raise ValueError(f"in_channels is {value}: expected 1 to {MAX_CHANNELS:,}")
        if key == "num_classes" and not 1 <= value <= MAX_CLASSES:
            raise ValueError(f"num_classes is {value}: expected 1 to {MAX_CLASSES:,}")
    dims = _SPATIAL_DIMS[name]
    for key in _INPUT_KEYS:
        if kwargs.get(key) is None:
            continue
        sides = kwargs[key]
        spatial = check_input_size(sides, f"{key} {_short(sides)}", spatial_dims=dims)
        channels = kwargs.get("in_channels", parameters["in_channels"].default
                              if "in_channels" in parameters else 1)
        total = channels if isinstance(channels, int) else 1
        for n in spatial:
            total *= n
        if total > MAX_INPUT_VALUES:
            raise ValueError(f"{key} is {_short(sides)} with {channels} input channels: "
                             f"{total:,} values per input, over wally's limit of "
                             f"{MAX_INPUT_VALUES:,} (e.g. 3x1024x1024 fits)")


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
