"""No code in wally unpickles: a scan of src/ (the syntax tree, not the text) and, at run time,
every loader fed pickle-bearing files refuses them without running the pickle.

Unpickling runs whatever code the file names (``torch.load``'s long history before
``weights_only``); wally's files are safetensors, JSON, IDX, CIFAR binary and images, none of
which needs it.
"""

from __future__ import annotations

import ast
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from _reliability import report

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"

# Modules whose purpose is (un)pickling or loading code-bearing serialisations.
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "pickletools", "copyreg", "marshal",
                  "shelve", "dill", "cloudpickle", "joblib", "jsonpickle", "_compat_pickle"}
# Calls that unpickle (or may): ``module.function`` as written, matched on the last two names.
BANNED_CALLS = {("torch", "load"), ("serialization", "load"), ("pd", "read_pickle"),
                ("pandas", "read_pickle"), ("yaml", "load"), ("yaml", "unsafe_load"),
                ("yaml", "full_load"), ("np", "load"), ("numpy", "load"), ("xp", "load")}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """``a.b.c`` as ("a", "b", "c"); () for anything else."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
        return tuple(reversed(names))
    return ()


def unpickling_sites(tree: ast.AST) -> list[tuple[int, str]]:
    """Every line of ``tree`` that imports a pickling module, calls a loader that unpickles, or
    passes ``allow_pickle`` anything but ``False``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in BANNED_MODULES:
                found.append((node.lineno, f"from {module} import ..."))
            if module.split(".")[0] == "torch":
                for alias in node.names:
                    if alias.name == "load":
                        found.append((node.lineno, f"from {module} import load"))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name[-2:] in BANNED_CALLS:
                allow = [k for k in node.keywords if k.arg == "allow_pickle"]
                plain_numpy_load = name[-2] in ("np", "numpy", "xp") and all(
                    isinstance(k.value, ast.Constant) and k.value.value is False for k in allow)
                if not plain_numpy_load:
                    found.append((node.lineno, ".".join(name) + "(...)"))
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                    found.append((node.lineno, "allow_pickle=" + ast.unparse(keyword.value)))
            if name and name[-1] in ("import_module", "__import__") and node.args:
                target = node.args[0]
                if isinstance(target, ast.Constant) and isinstance(target.value, str) and (
                        target.value.split(".")[0] in BANNED_MODULES):
                    found.append((node.lineno, f"{name[-1]}({target.value!r})"))
    return sorted(set(found))


def test_the_scanner_finds_every_pattern():
    source = """
import pickle
import cPickle as cp
from dill import loads
import shelve, marshal
from joblib import load
from torch import load as tload
import numpy as np
np.load("a.npy", allow_pickle=True)
np.load("a.npy", allow_pickle=flag)
torch.load("m.pt")
torch.serialization.load("m.pt")
pandas.read_pickle("f")
yaml.load(text)
importlib.import_module("pickle")
__import__("cloudpickle")
np.load("fine.npy")
np.load("fine.npy", allow_pickle=False)
"""
    found = unpickling_sites(ast.parse(source))
    lines = sorted({line for line, _ in found})
    assert lines == [*range(2, 8), *range(9, 17)], found


def test_no_module_in_src_unpickles():
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 50, f"expected wally's sources under {SOURCE}"
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        problems += [f"{path.relative_to(ROOT)}:{line}: {what}"
                     for line, what in unpickling_sites(tree)]
    assert not problems, "code that unpickles:\n" + "\n".join(problems)
    report("no_pickle", {"source_files_scanned": len(files)})


# ----- at run time: pickle-bearing files are refused by every loader -----------------------------
class _Payload:
    """Unpickling this makes a folder: the proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _pickle_files(folder: Path, marker: Path) -> dict[str, Path]:
    payload = _Payload(marker)
    files = {}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        files[f"pickle protocol {protocol}"] = folder / f"p{protocol}.pkl"
        files[f"pickle protocol {protocol}"].write_bytes(pickle.dumps({"w": payload}, protocol))
    buffer = io.BytesIO()
    np.save(buffer, np.array([payload, 1], dtype=object), allow_pickle=True)
    files[".npy of objects"] = folder / "objects.npy"
    files[".npy of objects"].write_bytes(buffer.getvalue())
    archive = folder / "archive.pt"  # what torch.save writes: a zip holding data.pkl
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("archive/data.pkl", pickle.dumps({"w": payload}, 2))
        zip_file.writestr("archive/version", "3\n")
    files["torch.save zip"] = archive
    return files


def _guard_pickle(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a wally loader called the unpickler")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def _loaders() -> dict[str, tuple[object, type[BaseException]]]:
    from wally.cli._images import read_image_file
    from wally.data import DatasetFormatError
    from wally.data.cifar import read_cifar_binary
    from wally.data.mnist import read_idx
    from wally.io import CheckpointError, load_checkpoint
    from wally.io.metrics import MetricsFormatError, read_metrics

    return {
        "load_checkpoint": (load_checkpoint, CheckpointError),
        "read_idx": (read_idx, DatasetFormatError),
        "read_cifar_binary": (read_cifar_binary, DatasetFormatError),
        "read_image_file": (lambda p: read_image_file(p, "mnist", (1, 28, 28)),
                            DatasetFormatError),
        "read_metrics": (read_metrics, MetricsFormatError),
    }


def test_every_loader_refuses_pickle_bearing_files_without_running_them(tmp_path, monkeypatch):
    pytest.importorskip("safetensors", reason="checkpoints need safetensors")
    pytest.importorskip("PIL", reason="image files are read with Pillow")
    marker = tmp_path / "pickle-ran"
    files = _pickle_files(tmp_path, marker)
    _guard_pickle(monkeypatch)
    refused = 0
    for loader_name, (load, error_type) in _loaders().items():
        for kind, path in files.items():
            with pytest.raises(error_type) as caught:
                load(path)
            assert str(path) in str(caught.value), (loader_name, kind, str(caught.value))
            assert not marker.exists(), f"{loader_name} ran the code in a {kind}"
            refused += 1
    report("no_pickle", {"pickle_files_refused": refused,
                         "loaders": sorted(_loaders()), "pickle_kinds": sorted(files)})


@pytest.mark.parametrize("kind", ["pickle protocol 2", "torch.save zip"])
def test_checkpoint_refusal_says_why_and_how_to_convert(tmp_path, monkeypatch, kind):
    from wally.io import CheckpointError, load_checkpoint

    files = _pickle_files(tmp_path, tmp_path / "pickle-ran")
    _guard_pickle(monkeypatch)
    with pytest.raises(CheckpointError, match="never unpickles") as caught:
        load_checkpoint(files[kind])
    assert "save_file" in str(caught.value)


def test_a_real_torch_save_file_is_refused(tmp_path, monkeypatch, torch):
    from wally.io import CheckpointError, load_checkpoint

    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(tmp_path / "ran")}, path)
    _guard_pickle(monkeypatch)
    with pytest.raises(CheckpointError, match="zip archive"):
        load_checkpoint(path)
    assert not (tmp_path / "ran").exists()


def test_the_command_line_refuses_a_pickle_checkpoint_with_one_line(tmp_path, monkeypatch,
                                                                     capsys):
    from wally.cli import main

    files = _pickle_files(tmp_path, tmp_path / "pickle-ran")
    _guard_pickle(monkeypatch)
    image = tmp_path / "digit.png"
    pil = pytest.importorskip("PIL.Image")
    pil.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(image)
    code = main(["predict", str(files["pickle protocol 4"]), str(image)])
    err = capsys.readouterr().err
    assert code == 1 and "never unpickles" in err and "Traceback" not in err
    assert not (tmp_path / "pickle-ran").exists()


def test_cifar10_never_reads_the_pickled_python_version(tmp_path):
    from wally.data import CIFAR10, DatasetNotFoundError

    folder = tmp_path / "CIFAR10" / "cifar-10-batches-py"  # the pickled distribution's layout
    folder.mkdir(parents=True)
    marker = tmp_path / "pickle-ran"
    for name in ("data_batch_1", "test_batch"):
        (folder / name).write_bytes(pickle.dumps({"data": _Payload(marker)}, 2))
    with pytest.raises(DatasetNotFoundError):
        CIFAR10(root=tmp_path, train=False)
    assert not marker.exists()
