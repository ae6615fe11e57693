"""``wally.save`` / ``wally.load``: ``torch.save`` and ``torch.load`` for tensors and state_dicts,
in a format that cannot run code.

``save(obj, f)`` writes one safetensors file: every tensor (and NumPy array) of ``obj`` as a
safetensors tensor, and the structure around them (dicts, lists, tuples, numbers, strings,
booleans, ``None``) as one JSON document in the header's ``__metadata__``, where each tensor
is a reference by name. ``load(f)`` reads it back; it never unpickles, so a hostile file can at
worst be refused. Anything else (a model, an optimizer, a function) is refused when saving,
with the hint to save its ``state_dict()``: that is what PyTorch recommends too, and it is what
``load_state_dict`` takes back.

The header and every tensor's byte range are checked before a tensor is read, with the checks
of :mod:`wally.io.checkpoint`, which also says why a ``torch.save`` zip or a pickle is refused.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from wally.backend import ndarray, xp
from wally.io.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    CheckpointError,
    _contiguous,
    _header,
    _safetensors_numpy,
)
from wally.tensor import Tensor

FORMAT = "wally.save"
FORMAT_VERSION = "1"
_PAYLOAD = "wally.save"


# ----- the object as JSON, with its arrays set aside -----------------------------------------
def _refuse(value: Any, where: str) -> TypeError:
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" \
        else kind.__qualname__
    hint = ("save its state_dict() instead (model.state_dict(), optimizer.state_dict()) and "
            "load it back with load_state_dict()")
    return TypeError(
        f"wally.save: cannot store {where} of type {name}: wally.save stores tensors, arrays, "
        f"and dicts, lists and tuples of them with numbers, strings, booleans and None "
        f"(never pickles); {hint}")


def _encode(value: Any, where: str, tensors: dict[str, ndarray]) -> Any:
    """``value`` as JSON, each tensor or array moved into ``tensors`` under a fresh name."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value  # NaN and infinities too: Python's json writes and reads them
    if isinstance(value, Tensor):
        if value.array.dtype.kind not in "biuf":
            raise TypeError(f"wally.save: cannot store {where}, a tensor of dtype "
                            f"{value.dtype}: safetensors files hold real numbers only")
        name = str(len(tensors))
        tensors[name] = _contiguous(value.array)
        entry: dict[str, Any] = {"__tensor__": name}
        if value.requires_grad:
            entry["requires_grad"] = True
        from wally.nn.parameter import Parameter

        if isinstance(value, Parameter):
            entry["parameter"] = True
        return entry
    if isinstance(value, ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"wally.save: cannot store {where}, an array of dtype "
                            f"{value.dtype}: safetensors files hold real numbers only")
        name = str(len(tensors))
        tensors[name] = _contiguous(value)
        return {"__array__": name}
    if isinstance(value, xp.generic) and value.dtype.kind in "biuf":
        return {"__scalar__": value.dtype.str, "value": value.item()}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{where}[{i}]", tensors) for i, v in enumerate(value)]
        return items if type(value) is list else {"__tuple__": items}
    if type(value) in (dict, OrderedDict):
        entries = [[_encode(k, f"a key of {where}", tensors),
                    _encode(v, f"{where}[{k!r}]", tensors)] for k, v in value.items()]
        for key, _ in entries:
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TypeError(f"wally.save: cannot store {where}: its keys must be strings, "
                                f"numbers, booleans or None, got {key!r:.60}")
        ordered = type(value) is OrderedDict
        return {"__dict__": "ordered" if ordered else "plain", "items": entries}
    raise _refuse(value, where)


def _decode(value: Any, tensors: Mapping[str, ndarray], name: str) -> Any:
    """What :func:`_encode` made ``value`` from, refusing anything it would not have written."""
    from wally.creation import from_numpy

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, tensors, name) for v in value]
    if not isinstance(value, dict):
        raise CheckpointError(f"wally.load: {name}: corrupt structure (a {type(value).__name__})")
    for tag in ("__tensor__", "__array__"):
        if tag in value:
            key = value[tag]
            if not isinstance(key, str) or key not in tensors:
                raise CheckpointError(f"wally.load: {name}: the structure refers to a tensor "
                                      f"{str(key)[:40]!r} that the file does not hold")
            array = tensors[key]
            array = array if array.flags.writeable else array.copy()
            if tag == "__array__":
                return array
            tensor = from_numpy(array)
            if value.get("parameter") is True:
                from wally.nn.parameter import Parameter

                return Parameter(tensor, requires_grad=bool(value.get("requires_grad")))
            if value.get("requires_grad") is True and array.dtype.kind == "f":
                tensor.requires_grad_(True)
            return tensor
    if "__scalar__" in value:
        try:
            dtype = xp.dtype(value["__scalar__"])
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in "biuf" or not isinstance(
                value.get("value"), (bool, int, float)):
            raise CheckpointError(f"wally.load: {name}: corrupt scalar {str(value)[:60]}")
        return dtype.type(value["value"])
    if "__tuple__" in value and isinstance(value["__tuple__"], list):
        return tuple(_decode(v, tensors, name) for v in value["__tuple__"])
    if value.get("__dict__") in ("plain", "ordered") and isinstance(value.get("items"), list):
        result: dict[Any, Any] = OrderedDict() if value["__dict__"] == "ordered" else {}
        for entry in value["items"]:
            if not (isinstance(entry, list) and len(entry) == 2):
                raise CheckpointError(f"wally.load: {name}: corrupt dict entry "
                                      f"{str(entry)[:60]}")
            key = _decode(entry[0], tensors, name)
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise CheckpointError(f"wally.load: {name}: a dict key must be a plain value")
            result[key] = _decode(entry[1], tensors, name)
        return result
    raise CheckpointError(f"wally.load: {name}: corrupt structure {str(value)[:60]}")


# ----- save and load -------------------------------------------------------------------------
def save(obj: Any, f: Any, pickle_module: Any = None, pickle_protocol: Any = None,
         _use_new_zipfile_serialization: Any = True) -> None:
    """Write ``obj`` (a tensor, a state_dict, or dicts, lists and tuples of tensors, arrays and
    plain values) to ``f``, a path or a binary file object, as ``torch.save`` does, but as
    safetensors plus JSON: never a pickle. A path is written atomically.

    >>> wally.save(model.state_dict(), "model.pt")
    >>> model.load_state_dict(wally.load("model.pt"))
    """
    if pickle_module is not None:
        raise ValueError("wally.save: pickle_module is not supported: wally never pickles "
                         f"(got {pickle_module!r:.60})")
    tensors: dict[str, ndarray] = {}
    try:
        payload = _encode(obj, "the object", tensors)
    except RecursionError:
        raise ValueError("wally.save: the object is nested too deeply (or contains itself)") \
            from None
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                _PAYLOAD: json.dumps(payload, separators=(",", ":"))}
    data = _safetensors_numpy().save(tensors, metadata=metadata)
    if isinstance(f, (str, os.PathLike)):
        from wally.io.atomic import atomic_write

        atomic_write(f, data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"wally.save: expected a path or a binary file object, got "
                        f"{type(f).__name__}")


def _map_location_checked(map_location: Any) -> None:
    """Every tensor is loaded onto the CPU; a ``map_location`` naming another device is refused,
    while a dict or a function (``lambda storage, loc: storage``) changes nothing here."""
    if map_location is None or callable(map_location) or isinstance(map_location, Mapping):
        return
    from wally.device import device

    device(map_location)


def _read_bytes(f: Any) -> tuple[str, bytes]:
    """A name for messages, and the bytes of ``f`` (a path or a binary file object)."""
    if isinstance(f, (str, os.PathLike)):
        from wally.io.files import RefusedFileError, open_regular

        name = os.fspath(f)
        try:
            file = open_regular(name, "file", max_bytes=MAX_CHECKPOINT_BYTES)
        except RefusedFileError as error:
            raise CheckpointError(f"wally.load: {error}") from None
        with file:
            return str(name), file.read(MAX_CHECKPOINT_BYTES + 1)
    if hasattr(f, "read"):
        data = f.read(MAX_CHECKPOINT_BYTES + 1)
        if not isinstance(data, bytes):
            raise TypeError(f"wally.load: expected a binary file object, got one that reads "
                            f"{type(data).__name__}")
        return getattr(f, "name", "the file object"), data
    raise TypeError(f"wally.load: expected a path or a binary file object, got "
                    f"{type(f).__name__}")


def load(f: Any, map_location: Any = None, pickle_module: Any = None, *,
         weights_only: bool | None = True, mmap: Any = None, **pickle_load_args: Any) -> Any:
    """Read back what :func:`save` wrote: the same structure, with tensors (and arrays) in it.

    A plain safetensors file (``safetensors.torch.save_file`` or a wally checkpoint) gives its
    tensors as a dict, a state_dict that ``load_state_dict`` takes. Nothing is ever unpickled:
    ``weights_only=False`` reads the same, safe format, and a ``torch.save`` zip or pickle is
    refused with a line that says how to convert it. ``map_location`` may name the CPU (or be a
    dict or function); every tensor is on the CPU.
    """
    if pickle_module is not None or pickle_load_args:
        raise ValueError("wally.load: pickle options are not supported: wally never unpickles")
    _map_location_checked(map_location)
    name, data = _read_bytes(f)
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"wally.load: {name} is over the {MAX_CHECKPOINT_BYTES:,}-byte "
                              "limit")
    try:
        _, header = _header(name, io.BytesIO(data), len(data))
    except CheckpointError as error:
        raise CheckpointError(f"wally.load: {error}") from None
    try:
        arrays = _safetensors_numpy().load(data)
    except Exception as error:  # safetensors raises its own Rust-side error type
        raise CheckpointError(f"wally.load: {name}: corrupt or truncated safetensors file "
                              f"({error})") from None
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise CheckpointError(f"wally.load: {name}: {key[:80]} holds {array.dtype} values; "
                                  "only real numbers are read")
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        # A plain safetensors file: its tensors are a state_dict.
        return OrderedDict((key, _decode({"__tensor__": key}, arrays, name)) for key in arrays)
    try:
        payload = json.loads(metadata.get(_PAYLOAD, "null"))
        return _decode(payload, arrays, name)
    except (ValueError, RecursionError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"wally.load: {name}: its structure is not valid JSON or is "
                              f"nested too deeply ({str(error)[:80]})") from None
