"""``wally.save`` / ``wally.load``: round trips of tensors, state_dicts and nested structures
(held against ``torch.save`` / ``torch.load`` of the same objects), refusals of objects that
would need a pickle, and hostile files."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally.io.checkpoint import CheckpointError


def _plain(value, lib):
    """A comparable form of a loaded object: types, dtypes, shapes, values, requires_grad."""
    if isinstance(value, (wally.Tensor, *([lib.Tensor] if lib is not wally else []))):
        array = value.detach().numpy()
        return ("tensor", str(array.dtype), array.shape, array.tolist(), value.requires_grad,
                type(value).__name__ == "Parameter")
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.tolist())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_plain(v, lib) for v in value])
    if isinstance(value, dict):
        return (type(value).__name__, [(k, _plain(v, lib)) for k, v in value.items()])
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return (type(value).__name__, value)


def _roundtrip(lib, obj, tmp_path):
    path = tmp_path / f"{lib.__name__}.pt"
    lib.save(obj, str(path))
    return lib.load(str(path), map_location="cpu", weights_only=lib is wally)


DTYPES = ["float32", "float64", "int64", "int32", "uint8", "bool", "float16", "int8"]
leaf_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2**62, 2**62), st.text(max_size=8),
    st.floats(allow_nan=True, width=64),
    st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(0, 3), max_size=3), st.booleans()),
)
structures = st.recursive(
    leaf_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 9)), inner, max_size=3)),
    max_leaves=8)


def _build(spec, lib, rng):
    """The object a structure spec stands for, with tensors made by ``lib``."""
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] in DTYPES \
            and isinstance(spec[1], list):
        dtype, shape, grad = spec
        array = (rng.standard_normal(shape) * 10).astype(dtype)
        tensor = lib.tensor(array)
        return tensor.requires_grad_(True) if grad and dtype.startswith("float") else tensor
    if isinstance(spec, list):
        return [_build(v, lib, rng) for v in spec]
    if isinstance(spec, tuple):
        return tuple(_build(v, lib, rng) for v in spec)
    if isinstance(spec, dict):
        return {k: _build(v, lib, rng) for k, v in spec.items()}
    return spec


@settings(max_examples=30)
@given(spec=structures, seed=st.integers(0, 100))
def test_nested_structures_round_trip_as_torch_does(torch, tmp_path_factory, spec, seed):
    tmp_path = tmp_path_factory.mktemp("rt")
    ours = _roundtrip(wally, _build(spec, wally, np.random.default_rng(seed)), tmp_path)
    theirs = _roundtrip(torch, _build(spec, torch, np.random.default_rng(seed)), tmp_path)
    assert _plain(ours, wally) == _plain(theirs, torch)


def test_state_dicts_round_trip_and_load_back(tmp_path):
    model = wally.nn.Sequential(wally.nn.Conv2d(1, 2, 3), wally.nn.BatchNorm2d(2),
                                wally.nn.Flatten(), wally.nn.Linear(8, 3))
    optimizer = wally.optim.Adam(model.parameters(), lr=0.01)
    model(wally.randn(2, 1, 4, 4)).sum().backward()
    optimizer.step()
    wally.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4},
               tmp_path / "ckpt.pt")
    loaded = wally.load(tmp_path / "ckpt.pt")
    assert type(loaded["model"]) is OrderedDict and list(loaded["model"]) == \
        list(model.state_dict())
    fresh = wally.nn.Sequential(wally.nn.Conv2d(1, 2, 3), wally.nn.BatchNorm2d(2),
                                wally.nn.Flatten(), wally.nn.Linear(8, 3))
    fresh.load_state_dict(loaded["model"])
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
        assert a.dtype == b.dtype
    again = wally.optim.Adam(fresh.parameters(), lr=0.5)
    again.load_state_dict(loaded["optimizer"])
    assert again.param_groups[0]["lr"] == 0.01 and loaded["epoch"] == 4
    state = again.state_dict()["state"][0]
    np.testing.assert_array_equal(np.asarray(state["exp_avg"]),
                                  np.asarray(optimizer.state_dict()["state"][0]["exp_avg"]))


def test_tensor_details_survive(tmp_path):
    p = wally.nn.Parameter(wally.randn(2, 3))
    x = wally.arange(12).reshape(3, 4)[:, 1:3]  # a non-contiguous view
    buffer = io.BytesIO()
    wally.save([p, x, wally.tensor(3.5, dtype=wally.float64), np.float32(2.5)], buffer)
    buffer.seek(0)
    q, y, z, s = wally.load(buffer)
    assert type(q) is wally.nn.Parameter and q.requires_grad
    np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy())
    assert y.tolist() == x.tolist() and y.dtype is wally.int64 and z.shape == ()
    assert s == np.float32(2.5) and type(s) is np.float32
    y.add_(1)  # loaded tensors are writeable
    assert y.tolist()[0] == [2, 3]


def test_torch_written_safetensors_state_dict_loads(torch, tmp_path):
    from safetensors.torch import save_file

    layer = torch.nn.Linear(3, 2)
    save_file(layer.state_dict(), str(tmp_path / "linear.safetensors"))
    ours = wally.nn.Linear(3, 2)
    ours.load_state_dict(wally.load(tmp_path / "linear.safetensors"))
    np.testing.assert_array_equal(ours.weight.detach().numpy(), layer.weight.detach().numpy())


@pytest.mark.parametrize("obj, kind", [
    (lambda: wally.nn.Linear(2, 2), "wally.nn.linear.Linear"),
    (lambda: {"opt": wally.optim.SGD([wally.nn.Parameter(wally.ones(1))], lr=0.1)},
     "wally.optim.sgd.SGD"),
    (lambda: [1, {"f": print}], "builtin_function_or_method"),
    (lambda: {1, 2}, "set"),
    (lambda: b"bytes", "bytes"),
])
def test_other_objects_are_refused_with_a_hint(tmp_path, obj, kind):
    with pytest.raises(TypeError, match=f"wally.save: cannot store .* of type {kind}: .*"
                                        "save its state_dict\\(\\) instead"):
        wally.save(obj(), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_refusals_of_arguments(tmp_path):
    with pytest.raises(RuntimeError, match="device 'cuda:0' is not available"):
        wally.load(tmp_path / "x.pt", map_location="cuda:0")
    with pytest.raises(ValueError, match="wally.save: pickle_module is not supported"):
        wally.save({}, tmp_path / "x.pt", pickle_module=pickle)
    with pytest.raises(TypeError, match="cannot store the object, a tensor of dtype"):
        wally.save(wally.tensor(np.ones(2, np.complex64)), tmp_path / "x.pt")
    wally.save({"a": 1}, tmp_path / "ok.pt")
    assert wally.load(tmp_path / "ok.pt", map_location=lambda storage, loc: storage) == {"a": 1}


# ----- hostile files --------------------------------------------------------------------------

def _safetensors(header: dict, body: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def _wally_file(payload, tensors=None, body=b""):
    header = {"__metadata__": {"format": "wally.save", "format_version": "1",
                               "wally.save": json.dumps(payload)}}
    header.update(tensors or {})
    return _safetensors(header, body)


HOSTILE = {
    "empty": (b"", "only 0 bytes"),
    "truncated header": (_safetensors({"a": {"dtype": "F32", "shape": [1],
                                             "data_offsets": [0, 4]}}, b"\0" * 4)[:20],
                         "truncated safetensors file"),
    "wrong magic": (b"hello world, not a tensor file", "does not start with a safetensors"),
    "pickle": (pickle.dumps({"a": 1}), "is a pickle .*never unpickles"),
    "torch zip": (b"PK\x03\x04" + b"\0" * 40, "zip archive .*torch.save"),
    "huge header size": (struct.pack("<Q", 2**62) + b"{}", "header declares"),
    "huge tensor": (_safetensors({"a": {"dtype": "F32", "shape": [2**40, 2**20],
                                        "data_offsets": [0, 4]}}, b"\0" * 4),
                    "claims bytes 0 to 4"),
    "offsets outside": (_safetensors({"a": {"dtype": "F32", "shape": [4],
                                            "data_offsets": [0, 16]}}, b"\0" * 4),
                        "corrupt or truncated"),
    "header not json": (struct.pack("<Q", 4) + b"{abc", "header is not JSON"),
    "missing tensor": (_wally_file({"__tensor__": "7"}), "refers to a tensor '7'"),
    "bad scalar": (_wally_file({"__scalar__": "|V8", "value": 1}), "corrupt scalar"),
    "bad structure": (_wally_file({"__dict__": "plain", "items": [[1]]}), "corrupt dict entry"),
    "unknown tag": (_wally_file({"__object__": "os.system"}), "corrupt structure"),
    "deep nesting": (_wally_file(None)[:0] + _safetensors({"__metadata__": {
        "format": "wally.save", "wally.save": "[" * 100000 + "]" * 100000}}),
        "nested too deeply"),
    "complex": (_safetensors({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}},
                             b"\0" * 8), "C64|complex"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_refused_in_one_line(tmp_path, case):
    data, message = HOSTILE[case]
    path = tmp_path / "hostile.pt"
    path.write_bytes(data)
    for source in (path, io.BytesIO(data)):
        with pytest.raises((CheckpointError, TypeError)) as info:
            wally.load(source)
        assert info.match(message) and "\n" not in str(info.value)
        assert str(info.value).startswith("wally.load: ")


def test_a_real_torch_save_file_is_refused(torch, tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "real.pt")
    with pytest.raises(CheckpointError, match="zip archive .*wally never unpickles"):
        wally.load(tmp_path / "real.pt")


def test_non_regular_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="wally.load: "):
        wally.load(tmp_path)  # a directory
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(CheckpointError, match="wally.load: .*fifo"):
            wally.load(tmp_path / "fifo")
