"""Checkpoints: weights in safetensors, everything else as JSON beside them; never pickle.

One checkpoint is one ``.safetensors`` file:

- the model's weights under exactly its ``state_dict`` keys (``0.weight``, ``0.bias``, ...), so
  ``safetensors.torch.load_file`` gives a state_dict that the PyTorch model of the same layout
  loads, and a file that PyTorch wrote with ``safetensors.torch.save_file`` loads into wally;
- the arrays inside the optimizer, scheduler, RNG and ``extra`` states, under reserved prefixes
  that no model key can have (``__optim__.state.0.momentum_buffer``, ``__sched__.``,
  ``__rng__.``, ``__extra__.``);
- in the header's ``__metadata__`` (strings only): ``format`` = ``wally.checkpoint``, the wally
  version and, under ``wally``, one JSON document holding the model config
  (``wally.models.model_config``), the optimizer and scheduler states with their arrays replaced
  by references to the tensors above, epoch, step, the global RNG state, the data loader's
  generator state and ``extra``.

Files are written atomically (:func:`wally.io.atomic.atomic_write`), so a failed save leaves the
previous checkpoint as it was. Loading reads only safetensors, whose header is JSON and whose
body is raw array bytes: nothing in a checkpoint can run code. A pickle or a ``torch.save`` zip
is refused with a message that says how to convert it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wally.backend import ndarray, xp
from wally.io.atomic import atomic_write
from wally.tensor import Tensor

FORMAT = "wally.checkpoint"
FORMAT_VERSION = "1"
RESERVED_PREFIX = "__"
_OPTIM, _SCHED, _RNG, _EXTRA = "__optim__", "__sched__", "__rng__", "__extra__"
_CONVERT_HINT = (
    "Convert it once, in PyTorch, on a machine where you trust the file: "
    "`from safetensors.torch import save_file; "
    "save_file(model.state_dict(), 'model.safetensors')`, then load that file."
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "loader_rng_state",
    "save_checkpoint",
    "set_loader_rng_state",
]


def _contiguous(array: ndarray) -> ndarray:
    # Not xp.ascontiguousarray, which turns a 0-d array (num_batches_tracked) into shape (1,).
    return array if array.flags.c_contiguous else array.copy(order="C")


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read: which file, and what is wrong with it."""


# ----- the loader's random generator --------------------------------------------------------
def _loader_generator(loader: Any) -> Any:
    """The object that shuffles ``loader``: its own ``generator``, or its sampler's."""
    for owner in (loader, getattr(loader, "sampler", None),
                  getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        generator = getattr(owner, "generator", None)
        if generator is not None:
            return generator
    return None


def loader_rng_state(loader: Any) -> Any:
    """The state of the generator that shuffles ``loader`` (JSON-able), or ``None``.

    A loader without a generator of its own shuffles with wally's global generator, whose state
    the checkpoint stores anyway.
    """
    if loader is None:
        return None
    if callable(getattr(loader, "rng_state", None)):
        return loader.rng_state()
    generator = _loader_generator(loader)
    if generator is None:
        return None
    if hasattr(generator, "bit_generator"):  # a numpy.random.Generator
        return dict(generator.bit_generator.state)
    if callable(getattr(generator, "get_state", None)):
        return generator.get_state()
    return None


def set_loader_rng_state(loader: Any, state: Any) -> None:
    """Put back a state that :func:`loader_rng_state` returned."""
    if loader is None or state is None:
        return
    if callable(getattr(loader, "set_rng_state", None)):
        loader.set_rng_state(state)
        return
    generator = _loader_generator(loader)
    if generator is None:
        raise CheckpointError(
            "the checkpoint holds the state of a data loader's own generator, but this loader "
            "has none: pass a loader built with generator=... as the one that was saved"
        )
    if hasattr(generator, "bit_generator"):
        generator.bit_generator.state = state
    else:
        generator.set_state(state)


# ----- JSON with arrays set aside ------------------------------------------------------------
def _encode(value: Any, key: str, tensors: dict[str, ndarray]) -> Any:
    """``value`` as JSON, with every array moved to ``tensors[key...]`` and referenced by name.

    Tuples, numpy scalars and dicts whose keys are not plain strings are tagged so that
    :func:`_decode` gives back exactly what went in (``betas`` stay a tuple, ``state`` keeps its
    integer keys).
    """
    if isinstance(value, Tensor):
        value = value.array
    if isinstance(value, ndarray):
        name = key
        while name in tensors:  # "0" and 0 in one dict would otherwise collide
            name += "_"
        tensors[name] = _contiguous(value)
        return {"__tensor__": name}
    if isinstance(value, xp.generic):
        return {"__scalar__": value.dtype.str, "value": value.item()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        plain = all(isinstance(k, str) and not k.startswith("__") for k in value)
        if plain:
            return {k: _encode(v, f"{key}.{k}", tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, f"{key}.key", tensors), _encode(v, f"{key}.{k}", tensors)]
                              for k, v in value.items()]}
    raise CheckpointError(
        f"save_checkpoint: cannot store {key.lstrip('_')} of type {type(value).__name__}: "
        "a checkpoint holds arrays, numbers, strings, lists and dicts only (never pickles)"
    )


def _decode(value: Any, tensors: Mapping[str, ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__scalar__" in value:
        dtype = xp.dtype(value["__scalar__"])
        if dtype.kind not in "biufc":  # np.void(10**12) would allocate a terabyte
            raise ValueError(f"a scalar of dtype {dtype} is not a number")
        return dtype.type(value["value"])
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    return {k: _decode(v, tensors) for k, v in value.items()}


# ----- saving --------------------------------------------------------------------------------
def _model_weights(model: Any) -> dict[str, ndarray]:
    from wally.nn.parameter import is_lazy

    weights: dict[str, ndarray] = {}
    for key, value in model.state_dict().items():
        if is_lazy(value):
            raise CheckpointError(
                f"save_checkpoint: {key} is not materialised yet (a lazy layer): run one batch "
                "through the model before saving it"
            )
        if key.startswith(RESERVED_PREFIX):
            raise CheckpointError(
                f"save_checkpoint: the model key {key!r} starts with {RESERVED_PREFIX!r}, "
                "which checkpoints reserve for optimizer and RNG state"
            )
        array = value.array if isinstance(value, Tensor) else xp.asarray(value)
        weights[key] = _contiguous(array)
    return weights


def _model_config(model: Any) -> dict[str, Any] | None:
    """The zoo's ``{"name", "kwargs"}`` for ``model``, or ``None`` for a model built by hand."""
    try:
        from wally.models import model_config
    except ImportError:
        return None
    try:
        config = model_config(model)
    except (LookupError, TypeError, ValueError, AttributeError):
        return None
    return dict(config) if config is not None else None


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any,
    optimizer: Any = None,
    scheduler: Any = None,
    epoch: int | None = None,
    step: int | None = None,
    extra: Mapping[str, Any] | None = None,
    *,
    loader: Any = None,
) -> None:
    """Write ``model`` (and optionally the optimizer, scheduler and loop position) to ``path``.

    The weights keep the model's ``state_dict`` keys, so the file is also a plain safetensors
    state_dict for PyTorch. ``extra`` holds anything JSON-like (arrays allowed). ``loader`` is
    the training DataLoader whose shuffling generator should be saved too. The write is atomic:
    if anything fails, the file that was at ``path`` is left as it was.

    >>> save_checkpoint("run/checkpoint.safetensors", model, optimizer, epoch=3)
    """
    from wally import __version__
    from wally.creation import get_rng_state

    tensors = _model_weights(model)
    payload: dict[str, Any] = {
        "model_config": _model_config(model),
        "epoch": epoch,
        "step": step,
        "optimizer": None if optimizer is None else _encode(optimizer.state_dict(), _OPTIM,
                                                            tensors),
        "scheduler": None if scheduler is None else _encode(scheduler.state_dict(), _SCHED,
                                                            tensors),
        "rng": _encode({"wally": get_rng_state(), "loader": loader_rng_state(loader)}, _RNG,
                       tensors),
        "extra": _encode(dict(extra or {}), _EXTRA, tensors),
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "wally_version": __version__,
        "wally": json.dumps(payload, separators=(",", ":")),
    }
    atomic_write(path, _safetensors_numpy().save(tensors, metadata=metadata))


def _safetensors_numpy() -> Any:
    """safetensors' NumPy API, or an ImportError that says how to install it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            "wally checkpoints are safetensors files and need the safetensors package: "
            "pip install safetensors (or pip install 'wally-cnn[train]')"
        ) from None
    return safetensors.numpy


# ----- loading -------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read: the model (rebuilt or filled in) and the saved states.

    ``state_dict`` holds the weights as arrays; ``optimizer_state`` and ``scheduler_state`` are
    what ``state_dict()`` returned when saving (arrays as NumPy arrays). Fields the file does not
    hold are ``None`` (a plain safetensors state_dict from PyTorch has weights only).
    """

    path: str
    model: Any
    state_dict: dict[str, ndarray]
    model_config: dict[str, Any] | None = None
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    epoch: int | None = None
    step: int | None = None
    rng_state: dict[str, Any] | None = None
    loader_rng_state: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    wally_version: str | None = None

    def restore_rng(self, loader: Any = None) -> None:
        """Put wally's global generator (and ``loader``'s own, if saved) back as they were."""
        from wally.creation import set_rng_state

        if self.rng_state is not None:
            set_rng_state(self.rng_state)
        if loader is not None:
            set_loader_rng_state(loader, self.loader_rng_state)


def _refusal(path: str, data: bytes) -> str | None:
    """Why ``data`` is not a safetensors file, when its magic bytes say what it is instead."""
    if data[:4] == b"PK\x03\x04":
        return (f"{path} is a zip archive (what torch.save writes, e.g. a .pt/.pth file), whose "
                "weights are pickled: wally never unpickles, because loading a pickle can run "
                f"arbitrary code. {_CONVERT_HINT}")
    if data[:1] == b"\x80":
        return (f"{path} is a pickle (a legacy torch.save .pt/.pth file or pickle.dump output): "
                "wally never unpickles, because loading a pickle can run arbitrary code. "
                f"{_CONVERT_HINT}")
    if data[:6] == b"\x93NUMPY":
        return (f"{path} is a NumPy .npy file, not a safetensors checkpoint: write it with "
                "safetensors.numpy.save_file({'name': array}, 'file.safetensors')")
    return None


# Bounds on what a file may make wally read: the whole file (a VGG-11 with Adam's two moments is
# about 1.5 GB), and its JSON header (safetensors' own limit is 100 MB).
MAX_CHECKPOINT_BYTES = 4 << 30
MAX_HEADER_BYTES = 100 << 20
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
                "C64": 8, "C128": 16}
# The largest epoch and step a checkpoint may claim (a run of ten million epochs is not real).
MAX_EPOCH = 10_000_000
MAX_STEP = 10**15


def _check_header(path: str, header: Any, body_bytes: int) -> None:
    """Refuse a header whose tensors don't lie inside the file's ``body_bytes`` bytes, with the
    size their dtype and shape say, before any tensor is read."""
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors file (the header is not a JSON "
                              "object)")
    for key, entry in header.items():
        if key == "__metadata__":
            if entry is not None and not (isinstance(entry, dict) and all(
                    isinstance(v, str) for v in entry.values())):
                raise CheckpointError(f"{path}: corrupt safetensors file (__metadata__ must "
                                      "map names to strings)")
            continue
        shown = key[:80]
        if not isinstance(entry, dict):
            raise CheckpointError(f"{path}: corrupt safetensors file (tensor {shown!r} is "
                                  "not described by an object)")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPE_BYTES:
            raise CheckpointError(f"{path}: tensor {shown!r} has dtype {str(dtype)[:20]!r}, "
                                  "which safetensors does not define")
        if not (isinstance(shape, list) and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise CheckpointError(f"{path}: tensor {shown!r} has shape {str(shape)[:80]}, not "
                                  "a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(n, int) and not isinstance(n, bool) for n in offsets)):
            raise CheckpointError(f"{path}: tensor {shown!r} has data_offsets "
                                  f"{str(offsets)[:80]}, not [begin, end]")
        begin, end = offsets
        count = 1
        for n in shape:
            count *= n
        needed = count * _DTYPE_BYTES[dtype]
        if not 0 <= begin <= end <= body_bytes or end - begin != needed:
            raise CheckpointError(
                f"{path}: tensor {shown!r} ({dtype} {tuple(shape)}, {needed:,} bytes) claims "
                f"bytes {begin:,} to {end:,} of a {body_bytes:,}-byte body: corrupt or "
                "truncated file"
            )


def _header(path: str, file: Any, size: int) -> tuple[bytes, dict[str, Any]]:
    """The first 8 bytes and header of an open safetensors ``file`` of ``size`` bytes,
    checked against the size (every tensor inside the body) before the body is read."""
    start = file.read(9)
    looks_safetensors = len(start) >= 9 and start[8:9] == b"{"
    if not looks_safetensors:
        data = start + file.read(16)
        reason = _refusal(path, data)
        if reason is not None:
            raise CheckpointError(reason)
        if size < 9:
            raise CheckpointError(
                f"{path}: not a safetensors checkpoint: the file has only {size} bytes "
                "(empty or truncated)"
            )
        raise CheckpointError(
            f"{path}: not a safetensors checkpoint: it does not start with a safetensors "
            "header (8-byte length, then '{')"
        )
    header_size = int.from_bytes(start[:8], "little")
    if header_size < 2:
        raise CheckpointError(f"{path}: corrupt safetensors file (its header declares "
                              f"{header_size} bytes)")
    if 8 + header_size > size:
        raise CheckpointError(
            f"{path}: truncated safetensors file: its header declares {header_size:,} "
            f"bytes, but the whole file has {size:,}"
        )
    if header_size > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: its safetensors header declares {header_size:,} bytes, over the "
            f"{MAX_HEADER_BYTES:,}-byte limit safetensors itself sets"
        )
    header_bytes = start[8:] + file.read(header_size - 1)
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(
            f"{path}: corrupt safetensors file (its header is not JSON: {error})"
        ) from None
    _check_header(path, header, size - 8 - header_size)
    return start[:8] + header_bytes, header


def _read(path: str, max_bytes: int = MAX_CHECKPOINT_BYTES
          ) -> tuple[dict[str, ndarray], dict[str, str]]:
    """The arrays and the ``__metadata__`` of a safetensors file, or a :class:`CheckpointError`.

    Only a regular file of at most ``max_bytes`` is read (a FIFO, a device or a 6 GB sparse
    file is refused before its body is read); the header's length and every tensor's byte range
    are checked against the file's size first."""
    from wally.io.files import RefusedFileError, open_regular

    try:
        file = open_regular(path, "checkpoint", max_bytes=max_bytes)
    except RefusedFileError as error:
        raise CheckpointError(str(error)) from None
    with file:
        size = os.fstat(file.fileno()).st_size
        head, header = _header(path, file, size)
        data = head + file.read(size - len(head))
    if len(data) != size:  # the file shrank while it was read
        raise CheckpointError(f"{path}: truncated safetensors file (it changed while read)")
    safetensors_numpy = _safetensors_numpy()
    try:
        arrays = safetensors_numpy.load(data)
    except Exception as error:  # safetensors raises its own Rust-side error type
        raise CheckpointError(
            f"{path}: corrupt or truncated safetensors file ({error})"
        ) from None
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise CheckpointError(
                f"{path}: {key[:80]} holds {array.dtype} values; wally checkpoints hold real "
                "numbers only (complex weights are refused, not cast)"
            )
    metadata = header.get("__metadata__") or {}
    return arrays, metadata


def read_metadata(path: str | os.PathLike[str], max_bytes: int = MAX_CHECKPOINT_BYTES
                  ) -> dict[str, Any]:
    """The wally metadata of a checkpoint (epoch, step, ``extra``, ... as saved, arrays as
    references), read from its header only: no tensor is read and no model is built.
    ``{}`` for a plain safetensors file."""
    from wally.io.files import RefusedFileError, open_regular

    name = os.fspath(path)
    try:
        file = open_regular(name, "checkpoint", max_bytes=max_bytes)
    except RefusedFileError as error:
        raise CheckpointError(str(error)) from None
    with file:
        _, header = _header(name, file, os.fstat(file.fileno()).st_size)
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        return {}
    try:
        payload = json.loads(metadata.get("wally", "{}"))
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{name}: its wally metadata is not valid JSON ({error})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{name}: its wally metadata is not a JSON object")
    return payload


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (an int of 10**5000 digits has no repr)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**50:
        return f"an integer of about 10**{value.bit_length() * 30103 // 100000}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_fit(path: str, model: Any, weights: Mapping[str, ndarray], strict: bool) -> None:
    """Raise naming every key and shape of the checkpoint that does not fit ``model``."""
    from wally.nn.parameter import is_lazy

    expected = {k: None if is_lazy(v) else tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(weights[k].shape)}, model {expected[k]}"
        for k, shape in expected.items()
        if shape is not None and k in weights and tuple(weights[k].shape) != shape
    ]
    problems = []
    if strict and missing:
        problems.append("missing from the checkpoint: " + ", ".join(missing))
    if strict and unexpected:
        problems.append("not in the model: " + ", ".join(unexpected))
    if mismatched:
        problems.append("shapes differ for " + "; ".join(mismatched))
    if problems:
        raise CheckpointError(
            f"{path} does not fit {type(model).__name__}: " + ". ".join(problems)
        )


def _build_model(path: str, config: Any, max_bytes: int | None) -> Any:
    """The model ``config`` names; with ``max_bytes``, refused once its parameters and buffers
    would need more (a hostile config must not make wally allocate terabytes)."""
    if not config:
        raise CheckpointError(
            f"{path} holds weights but no wally model config (the model was not built by "
            "wally.models.get_model, or the file was written elsewhere): build the model and "
            "pass it, load_checkpoint(path, model=...)"
        )
    if not (isinstance(config, dict) and isinstance(config.get("name"), str)
            and isinstance(config.get("kwargs", {}), dict)):
        raise CheckpointError(f"{path}: its model config is not {{'name': str, 'kwargs': "
                              f"dict}}: {str(config)[:200]}")
    from wally.creation import _allocation_limit
    from wally.models import get_model
    from wally.models.registry import check_config

    try:
        check_config(config)
    except ValueError as error:  # before anything is built
        raise CheckpointError(f"{path}: its model config {error}") from None
    try:
        with _allocation_limit(max_bytes) if max_bytes is not None else contextlib.nullcontext():
            return get_model(config["name"], **config.get("kwargs", {}))
    except MemoryError:
        raise CheckpointError(
            f"{path}: its model config {str(config)[:200]} asks for a model larger than the "
            f"{max_bytes}-byte bound its weights allow"
        ) from None
    except Exception as error:  # a hostile config may trip any check of any builder
        raise CheckpointError(
            f"{path}: cannot rebuild the model {config['name']!r} from its config "
            f"({type(error).__name__}: {error})"
        ) from error


# What load_state_dict raises on a state of the wrong shape (a damaged or hostile file).
_STATE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    strict: bool = True,
    *,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
) -> Checkpoint:
    """Read a checkpoint: fill ``model`` (or rebuild it from the saved config), and restore the
    optimizer's and scheduler's states into the objects given.

    With ``strict=True`` the checkpoint's weight keys must equal the model's; shapes must always
    agree. Every misfit is named in one :class:`CheckpointError`. A pickle or ``torch.save``
    file is refused without being opened as one. The RNG states are not touched here; call
    :meth:`Checkpoint.restore_rng` to resume a run exactly. Only a regular file of at most
    ``max_bytes`` (4 GiB) is read, and its header is checked against its size first.

    >>> checkpoint = load_checkpoint("run/checkpoint.safetensors")   # rebuilds the model
    >>> checkpoint.model, checkpoint.epoch
    """
    name = os.fspath(path)
    arrays, metadata = _read(name, max_bytes)
    payload: dict[str, Any] = {}
    if metadata.get("format") == FORMAT:
        try:
            payload = json.loads(metadata.get("wally", "{}"))
        except (ValueError, RecursionError) as error:
            raise CheckpointError(
                f"{name}: its wally metadata is not valid JSON ({error})"
            ) from None
        if not isinstance(payload, dict):
            raise CheckpointError(f"{name}: its wally metadata is not a JSON object")
    weights = {k: v for k, v in arrays.items() if not k.startswith(RESERVED_PREFIX)}
    try:
        rng = _decode(payload.get("rng"), arrays) or {}
        optimizer_state = _decode(payload.get("optimizer"), arrays)
        scheduler_state = _decode(payload.get("scheduler"), arrays)
        extra = _decode(payload.get("extra"), arrays) or {}
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as error:
        raise CheckpointError(f"{name}: its wally metadata is damaged ({error!r})") from None
    for field_name, limit in (("epoch", MAX_EPOCH), ("step", MAX_STEP)):
        value = payload.get(field_name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise CheckpointError(f"{name}: its {field_name} is {_shown(value)}, not an integer")
        if value is not None and not 0 <= value <= limit:
            raise CheckpointError(f"{name}: its {field_name} is {_shown(value)}; expected an "
                                  f"integer from 0 to {limit:,}")

    if not isinstance(rng, dict) or not isinstance(extra, dict) or not all(
            state is None or isinstance(state, dict)
            for state in (optimizer_state, scheduler_state)):
        raise CheckpointError(f"{name}: its wally metadata is damaged (rng, extra, optimizer "
                              "and scheduler states must be JSON objects)")
    if model is None:
        # A model that fits strictly holds what the file holds: allow twice that (float16
        # weights into float32) and a megabyte for the small buffers.
        weight_bytes = sum(int(array.nbytes) for array in weights.values())
        model = _build_model(name, payload.get("model_config"),
                             2 * weight_bytes + (1 << 20) if strict else None)
    _check_fit(name, model, weights, strict)
    try:
        model.load_state_dict({k: v for k, v in weights.items()
                               if k in model.state_dict()}, strict=False)
    except (RuntimeError, ValueError) as error:  # e.g. an array of strings or of bytes
        raise CheckpointError(f"{name}: {error}") from error
    if optimizer is not None:
        if optimizer_state is None:
            raise CheckpointError(f"{name} holds no optimizer state to restore")
        try:
            optimizer.load_state_dict(optimizer_state)
        except _STATE_ERRORS as error:
            raise CheckpointError(
                f"{name}: the saved optimizer state does not fit this optimizer ({error!r})"
            ) from error
    if scheduler is not None:
        if scheduler_state is None:
            raise CheckpointError(f"{name} holds no scheduler state to restore")
        try:
            scheduler.load_state_dict(scheduler_state)
        except _STATE_ERRORS as error:
            raise CheckpointError(
                f"{name}: the saved scheduler state does not fit this scheduler ({error!r})"
            ) from error
    return Checkpoint(
        path=name,
        model=model,
        state_dict=weights,
        model_config=payload.get("model_config"),
        optimizer_state=optimizer_state,
        scheduler_state=scheduler_state,
        epoch=payload.get("epoch"),
        step=payload.get("step"),
        rng_state=rng.get("wally"),
        loader_rng_state=rng.get("loader"),
        extra=extra,
        wally_version=metadata.get("wally_version"),
    )
