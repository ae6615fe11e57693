"""Checkpoints: round trips, torch interop through safetensors, atomic writes, refusals."""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest

import wally
from wally import nn, optim
from wally.io import CheckpointError, load_checkpoint, save_checkpoint
from wally.io import atomic as atomic_module
from wally.models import get_model

safetensors_numpy = pytest.importorskip(
    "safetensors.numpy", reason="checkpoints need safetensors: pip install safetensors"
)


def _train_steps(model, optimizer, scheduler=None, steps=3):
    for _ in range(steps):
        x = wally.randn(8, *model.input_size)
        y = wally.randint(0, 10, (8,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def _assert_state_equal(a, b, where="state"):
    """Exact equality of nested states: same types for arrays, same values bit for bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: {list(a)} != {list(b)}"
        for key in a:
            _assert_state_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_state_equal(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_round_trip_restores_model_optimizer_scheduler_and_positions(tmp_path, kind):
    model = get_model("lenet_modern")
    if kind == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    else:
        optimizer = optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.99))
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    _train_steps(model, optimizer, scheduler)
    extra = {"note": "hello", "array": np.arange(6, dtype=np.float32).reshape(2, 3),
             "pair": (1, 2.5), "by_int": {3: "three"}, "scalar": np.float32(0.1)}
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, optimizer, scheduler, epoch=4, step=12, extra=extra)

    wally.manual_seed(1)  # fresh objects with other weights and empty states
    model2 = get_model("lenet_modern")
    optimizer2 = (optim.SGD(model2.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
                  if kind == "sgd" else optim.Adam(model2.parameters(), lr=0.5,
                                                   betas=(0.8, 0.99)))
    scheduler2 = optim.lr_scheduler.StepLR(optimizer2, step_size=2, gamma=0.5)
    checkpoint = load_checkpoint(path, model2, optimizer2, scheduler2)

    assert checkpoint.model is model2
    _assert_state_equal(_weights(model), _weights(model2), "weights")
    assert model2.state_dict()["1.num_batches_tracked"].shape == ()
    _assert_state_equal(optimizer.state_dict(), optimizer2.state_dict(), "optimizer")
    _assert_state_equal(scheduler.state_dict(), scheduler2.state_dict(), "scheduler")
    assert (checkpoint.epoch, checkpoint.step) == (4, 12)
    assert checkpoint.model_config == {"name": "lenet_modern",
                                       "kwargs": get_model("lenet_modern")._model_config["kwargs"]}
    _assert_state_equal(checkpoint.extra, extra, "extra")
    assert checkpoint.wally_version == wally.__version__

    # The restored pair keeps training exactly as the original does.
    state = wally.creation.get_rng_state()
    _train_steps(model, optimizer, scheduler, steps=2)
    wally.creation.set_rng_state(state)
    _train_steps(model2, optimizer2, scheduler2, steps=2)
    _assert_state_equal(_weights(model), _weights(model2), "weights after more steps")


def test_optimizer_arrays_are_tensors_under_a_reserved_prefix(tmp_path):
    model = get_model("lenet")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, optimizer, steps=1)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, optimizer)
    arrays = safetensors_numpy.load_file(str(path))
    model_keys = set(model.state_dict())
    assert model_keys <= set(arrays)
    assert "__optim__.state.0.momentum_buffer" in arrays
    assert all(k.startswith("__") for k in set(arrays) - model_keys)


def test_load_without_a_model_rebuilds_it_from_its_config(tmp_path):
    model = get_model("lenet", num_classes=7)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model)
    checkpoint = load_checkpoint(path)
    rebuilt = checkpoint.model
    assert rebuilt is not model and rebuilt.input_size == (1, 28, 28)
    x = wally.randn(3, 1, 28, 28)
    with wally.no_grad():
        np.testing.assert_array_equal(model.eval()(x).numpy(), rebuilt.eval()(x).numpy())
    assert checkpoint.optimizer_state is None and checkpoint.epoch is None


def test_a_hand_built_model_needs_to_be_passed(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model)
    with pytest.raises(CheckpointError, match="no wally model config.*model="):
        load_checkpoint(path)
    assert load_checkpoint(path, model=nn.Sequential(nn.Linear(3, 2))).model_config is None


def test_rng_states_round_trip(tmp_path):
    from wally.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(wally.arange(10)), batch_size=2, shuffle=True, generator=3)
    list(loader)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, nn.Linear(2, 2), loader=loader)
    expected_global, expected_order = wally.rand(4).numpy(), [b[0].tolist() for b in loader]
    wally.manual_seed(99)
    list(loader)
    load_checkpoint(path, model=nn.Linear(2, 2)).restore_rng(loader)
    np.testing.assert_array_equal(wally.rand(4).numpy(), expected_global)
    assert [b[0].tolist() for b in loader] == expected_order


# ----- interop with PyTorch ---------------------------------------------------------------
def _torch_lenet(torch):
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 6, kernel_size=5, padding=2), tnn.Sigmoid(),
        tnn.AvgPool2d(kernel_size=2, stride=2),
        tnn.Conv2d(6, 16, kernel_size=5), tnn.Sigmoid(),
        tnn.AvgPool2d(kernel_size=2, stride=2),
        tnn.Flatten(),
        tnn.Linear(16 * 5 * 5, 120), tnn.Sigmoid(),
        tnn.Linear(120, 84), tnn.Sigmoid(),
        tnn.Linear(84, 10),
    )


def test_wally_checkpoint_loads_into_torch(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = get_model("lenet").eval()
    path = tmp_path / "wally_lenet.safetensors"
    save_checkpoint(path, model)
    state_dict = safetensors_torch.load_file(str(path))
    torch_model = _torch_lenet(torch).eval()
    torch_model.load_state_dict(state_dict, strict=True)
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    expected = model(wally.from_numpy(x)).detach().numpy()
    with torch.no_grad():
        np.testing.assert_allclose(torch_model(torch.from_numpy(x)).numpy(), expected,
                                   rtol=1e-5, atol=1e-6)


def test_full_checkpoint_loads_into_torch_once_reserved_entries_are_dropped(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = get_model("lenet")
    optimizer = optim.Adam(model.parameters())
    _train_steps(model, optimizer, steps=1)
    path = tmp_path / "full.safetensors"
    save_checkpoint(path, model, optimizer, epoch=1)
    loaded = safetensors_torch.load_file(str(path))
    weights = {k: v for k, v in loaded.items() if not k.startswith("__")}
    _torch_lenet(torch).load_state_dict(weights, strict=True)


def test_torch_checkpoint_loads_into_wally(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    torch_model = _torch_lenet(torch).eval()
    path = tmp_path / "torch_lenet.safetensors"
    safetensors_torch.save_file(torch_model.state_dict(), str(path))
    model = get_model("lenet").eval()
    checkpoint = load_checkpoint(path, model=model)
    assert checkpoint.model_config is None and checkpoint.optimizer_state is None
    x = np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(wally.from_numpy(x)).detach().numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(CheckpointError, match="no wally model config"):
        load_checkpoint(path)


# ----- atomic writes ----------------------------------------------------------------------
def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_failed_rename_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    first = get_model("lenet")
    save_checkpoint(path, first, epoch=1)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(atomic_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, get_model("lenet"), epoch=2)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    checkpoint = load_checkpoint(path)
    assert checkpoint.epoch == 1
    _assert_state_equal(_weights(first), _weights(checkpoint.model))


def test_failure_while_writing_the_bytes_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, get_model("lenet"), epoch=1)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("I/O error (simulated)")

    monkeypatch.setattr(atomic_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, get_model("lenet"), epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_unstorable_extra_fails_before_touching_the_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, get_model("lenet"), epoch=1)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="cannot store .*function"):
        save_checkpoint(path, get_model("lenet"), extra={"hook": print})
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_written_files_get_ordinary_permissions(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, nn.Linear(2, 2))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ----- files that are not checkpoints -----------------------------------------------------
def test_pickle_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weights": Boom()}, protocol=2))
    with pytest.raises(CheckpointError, match="never unpickles") as info:
        load_checkpoint(path, model=get_model("lenet"))
    assert "save_file(model.state_dict()" in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_torch_zip_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
        archive.writestr("model/data.pkl", pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match=r"zip archive .*torch\.save.*never unpickles"):
        load_checkpoint(path, model=get_model("lenet"))


def test_real_torch_save_file_is_refused(tmp_path, torch):
    path = tmp_path / "real.pt"
    torch.save(_torch_lenet(torch).state_dict(), path)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(path)


def test_keys_and_shapes_that_do_not_fit_are_named(tmp_path):
    path = tmp_path / "lenet.safetensors"
    save_checkpoint(path, get_model("lenet"))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model=get_model("lenet", num_classes=5))
    message = str(info.value)
    assert "11.weight: checkpoint (10, 84), model (5, 84)" in message
    assert "11.bias: checkpoint (10,), model (5,)" in message

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model=get_model("lenet_modern"))
    message = str(info.value)
    assert "missing from the checkpoint: " in message and "1.running_mean" in message
    assert "not in the model: " in message

    partial = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2))
    load_checkpoint(path, model=partial, strict=False)  # unexpected keys are fine then
    np.testing.assert_array_equal(partial[0].weight.detach().numpy(),
                                  safetensors_numpy.load_file(str(path))["0.weight"])
    with pytest.raises(CheckpointError, match="not in the model"):
        load_checkpoint(path, model=partial)


def test_optimizer_state_that_does_not_fit_is_a_checkpoint_error(tmp_path):
    model = get_model("lenet")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, optimizer, steps=1)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, optimizer)
    other = get_model("lenet")
    groups = [{"params": list(other.parameters())[:2]}, {"params": list(other.parameters())[2:]}]
    with pytest.raises(CheckpointError, match="optimizer state does not fit"):
        load_checkpoint(path, other, optim.SGD(groups, lr=0.1, momentum=0.9))
    with pytest.raises(CheckpointError, match="no scheduler state"):
        load_checkpoint(path, other, scheduler=optim.lr_scheduler.StepLR(
            optim.SGD(other.parameters(), lr=0.1), step_size=1))


@pytest.mark.parametrize("cut", [0, 5, 8, 20, "header", "half", -1])
def test_truncated_file_is_a_checkpoint_error(tmp_path, cut):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, get_model("lenet"), epoch=3)
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    end = {"header": header_end - 10, "half": len(data) // 2}.get(cut, cut)
    path.write_bytes(data[:end])
    with pytest.raises(CheckpointError, match=r"truncated|not a safetensors|corrupt"):
        load_checkpoint(path, model=get_model("lenet"))


def test_corrupted_bytes_are_a_checkpoint_error(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, get_model("lenet"))
    data = bytearray(path.read_bytes())
    data[8 + 20:8 + 30] = b"\xff" * 10  # inside the JSON header
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, model=get_model("lenet"))
    path.write_text("just some text, long enough to have a header")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_checkpoint(path, model=get_model("lenet"))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.safetensors")
