"""Hostile input to the command line: every failure one line with the right exit code, never a
traceback; checkpoints that can't make wally allocate or read what their weights don't justify;
one run per output folder.

Each test asserts the outcome exactly: the words that name the problem, the exit code, no
"Traceback", and (where memory or time is the issue) a bound. In-process ``main([...])`` calls
where possible; subprocesses only for locks, kills, Ctrl-C and memory.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import wally
from wally.cli import main

pytest.importorskip("safetensors", reason="checkpoints need safetensors")
import safetensors.numpy as stnp  # noqa: E402
from safetensors import safe_open  # noqa: E402

from _reliability import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--dataset", "digits", "--limit", "64", "--batch-size", "32"]
CASES: dict[str, int] = {}


def count(kind: str) -> None:
    CASES[kind] = CASES.get(kind, 0) + 1


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("wally")]
    assert lines, err
    return lines[-1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "run"
    assert main(["train", "lenet", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(np.full((28, 28, 3), 200, np.uint8)).save(path)
    return path


def rewrite(source: Path, dest: Path, change) -> Path:
    """A copy of checkpoint ``source`` whose wally metadata ``change(payload, arrays)`` edited."""
    arrays = stnp.load_file(str(source))
    with safe_open(str(source), "np") as handle:
        metadata = dict(handle.metadata())
    payload = json.loads(metadata["wally"])
    change(payload, arrays)
    metadata["wally"] = json.dumps(payload)
    stnp.save_file(arrays, str(dest), metadata=metadata)
    return dest


# ----- part 4: a checkpoint can't make wally allocate what its weights don't justify ---------
@pytest.fixture(scope="module")
def nin_checkpoint(tmp_path_factory):
    from wally.io import save_checkpoint
    from wally.models import get_model

    folder = tmp_path_factory.mktemp("nin")
    wally.manual_seed(0)
    save_checkpoint(folder / "nin.safetensors", get_model("nin", input_size=96),
                    extra={"dataset": "digits"})
    return rewrite(folder / "nin.safetensors", folder / "huge.safetensors",
                   lambda p, a: p["model_config"]["kwargs"].update(input_size=20000))


@pytest.mark.parametrize("command", ["predict", "summary"])
def test_a_checkpoint_asking_for_a_huge_input_is_refused_before_allocating(
        command, nin_checkpoint, image, capsys):
    tracemalloc.start()
    started = time.perf_counter()
    argv = [command, nin_checkpoint] + ([image] if command == "predict" else [])
    code, _, err = run_cli(capsys, *argv)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    line = one_line(err)
    assert code == 1
    assert str(nin_checkpoint) in line and "input_size" in line and "20000" in line
    assert "4,096" in line
    assert peak < 200 << 20 and time.perf_counter() - started < 10
    count("checkpoint_sizes")


@pytest.mark.parametrize("kwargs, words", [
    ({"num_classes": 10**9}, "num_classes"), ({"in_channels": 10**6}, "in_channels"),
    ({"in_channels": 2000, "input_size": 2000}, "values per input"),
    ({"dropout": float("inf")}, "dropout"), ({"bogus": 1}, "bogus"),
])
def test_model_config_sizes_are_bounded_before_building(kwargs, words, nin_checkpoint,
                                                        tmp_path):
    from wally.io import CheckpointError, load_checkpoint

    path = rewrite(nin_checkpoint, tmp_path / "c.safetensors",
                   lambda p, a: p["model_config"]["kwargs"].update(kwargs))
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    count("checkpoint_sizes")


def test_a_sparse_6_gb_checkpoint_is_refused_without_reading_it(tmp_path, capsys):
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as file:
        file.write((16).to_bytes(8, "little") + b'{"a": 1}        ')
        file.truncate(6 << 30)
    tracemalloc.start()
    code, _, err = run_cli(capsys, "summary", path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 1 and "checkpoint limit" in one_line(err) and str(path) in one_line(err)
    assert peak < 50 << 20
    count("checkpoint_reads")


def test_tensor_ranges_outside_the_file_are_refused_before_reading(tmp_path):
    from wally.io import CheckpointError, load_checkpoint

    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000],
                               "data_offsets": [0, 4_000_000]}}).encode()
    path = tmp_path / "short.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    with pytest.raises(CheckpointError, match="claims bytes 0 to 4,000,000 of a 16-byte body"):
        load_checkpoint(path)
    count("checkpoint_reads")


def test_a_fifo_checkpoint_is_refused_without_hanging(tmp_path, capsys):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "eval", fifo, "--dataset", "digits")
    assert code == 1 and "FIFO" in one_line(err)
    assert time.perf_counter() - started < 5
    count("checkpoint_reads")


def test_complex_weights_are_refused(run_dir, tmp_path):
    from wally.io import CheckpointError, load_checkpoint

    def complexify(payload, arrays):
        arrays["0.weight"] = arrays["0.weight"].astype(np.complex64)

    path = rewrite(run_dir / "checkpoint.safetensors", tmp_path / "c.safetensors", complexify)
    with pytest.raises(CheckpointError, match="0.weight holds complex64"):
        load_checkpoint(path)
    count("checkpoint_values")


@pytest.mark.parametrize("epoch", [10**30, -5])
def test_an_impossible_epoch_is_refused(epoch, run_dir, tmp_path, capsys):
    path = rewrite(run_dir / "checkpoint.safetensors", tmp_path / "c.safetensors",
                   lambda p, a: p.update(epoch=epoch))
    code, _, err = run_cli(capsys, "eval", path, "--dataset", "digits", "--limit", "8")
    assert code == 1 and "its epoch is" in one_line(err) and "0 to 10,000,000" in one_line(err)
    count("checkpoint_values")


# ----- part 5: one run per output folder -----------------------------------------------------
def _spawn_train(out: Path, *extra: str, env: dict[str, str] | None = None):
    return subprocess.Popen(
        [sys.executable, "-m", "wally", "train", "lenet", *QUICK, "--epochs", "1",
         "--out", str(out), *extra],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def test_a_second_run_on_a_locked_folder_is_refused_and_a_killed_run_leaves_no_lock(
        tmp_path, capsys):
    out = tmp_path / "run"
    # The first run stops 20 s halfway through writing config.json, holding the lock.
    first = _spawn_train(out, env={"WALLY_TEST_ATOMIC_WRITE_PAUSE": "20"})
    try:
        deadline = time.monotonic() + 30
        while not any(p.name.startswith(".config.json") for p in out.glob(".*")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--epochs", "1",
                               "--out", out)
        line = one_line(err)
        assert code == 1 and "in use by another wally train run" in line
        assert f"process {first.pid}" in line
        assert not (out / "checkpoint.safetensors").exists()
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--epochs", "1", "--out", out)
    assert code == 0, err
    assert (out / "checkpoint.safetensors").is_file() and not (out / ".wally.lock").exists()
    count("locks")


def test_two_runs_started_together_one_refused(tmp_path):
    out = tmp_path / "run"
    runs = [_spawn_train(out), _spawn_train(out)]
    results = [run.communicate(timeout=120) + (run.returncode,) for run in runs]
    codes = sorted(code for _, _, code in results)
    errors = [err for _, err, code in results if code]
    # Either one refused (they overlapped), or the second found the first's finished run.
    assert codes == [0, 1], results
    assert "Traceback" not in errors[0]
    assert "in use by another wally train run" in errors[0] or "already holds a run" in errors[0]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # one run's metrics, not two interleaved
    count("locks")


def test_resume_without_config_json_refuses_other_settings(run_dir, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    (out / "config.json").unlink()
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--epochs", "2", "--out", out,
                           "--resume", "--lr", "0.5", "--seed", "7", "--optimizer", "adam")
    line = one_line(err)
    assert code == 1 and "config.json is missing" in line
    assert "--lr 0.1 (given 0.5)" in line and "--seed 0 (given 7)" in line
    assert "--optimizer sgd (given adam)" in line
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1
    count("resume_settings")


# ----- part 6: one clear line, never a traceback ---------------------------------------------
def test_batch_norm_drops_a_last_batch_of_one(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "lenet_modern", "--dataset", "digits",
                             "--batch-size", "1436", "--epochs", "1", "--out", tmp_path / "r")
    assert code == 0
    assert "would hold 1 image" in err and "1,436 of 1,437 images" in err
    count("batch_norm")


def test_batch_norm_refuses_a_training_set_of_one(tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "train", "lenet_modern", "--dataset", "digits",
                           "--limit", "1", "--epochs", "1", "--out", out)
    assert code == 1 and "batch norm" in one_line(err) and "--limit 1" in one_line(err)
    assert not out.exists()  # the folder this failed run created is gone
    count("batch_norm")


def test_negative_seeds_work_as_in_pytorch(tmp_path, capsys):
    import torch

    wally.manual_seed(-1)
    a = wally.rand(3).numpy()
    wally.manual_seed(2**64 - 1)
    assert np.array_equal(a, wally.rand(3).numpy())
    torch.manual_seed(-1)
    assert torch.initial_seed() == 2**64 - 1
    with pytest.raises(ValueError, match="from -2\\*\\*63 to 2\\*\\*64 - 1"):
        wally.manual_seed(2**64)
    code, _, _ = run_cli(capsys, "train", "lenet", *QUICK, "--epochs", "1", "--seed", "-1",
                         "--out", tmp_path / "r")
    assert code == 0
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--seed", str(2**64),
                           "--out", tmp_path / "s")
    assert code == 2 and "--seed" in err
    count("seeds")


def test_huge_input_sizes_are_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--input-size", "100000",
                           "--out", tmp_path / "r")
    assert code == 2 and "--input-size: expected at most 4,096 pixels for lenet" in err
    assert len(err.strip().splitlines()[-1]) > 40 and not (tmp_path / "r").exists()
    # a text model's length is bounded by the value count only; past it, any model is refused
    code, _, err = run_cli(capsys, "train", "textcnn", "--dataset", "fortunes",
                           "--input-size", str((4 << 20) + 1), "--out", tmp_path / "t")
    assert code == 2 and "--input-size: expected at most 4,194,304" in err
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--input-size", "9" * 5000,
                           "--out", tmp_path / "u")
    assert code == 2 and "--input-size: expected a positive integer" in err
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--input-size", "4000",
                           "--out", tmp_path / "s")
    assert code == 1 and "16,000,000 values per input" in one_line(err)
    assert not (tmp_path / "s").exists()
    tracemalloc.start()
    code, _, err = run_cli(capsys, "summary", "lenet", "--input-size", "1", "1", "100000",
                           "100000")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 1 and "--input-size" in one_line(err) and "4,096" in one_line(err)
    assert peak < 50 << 20
    count("input_sizes")


LONG = "a" * 300


@pytest.mark.parametrize("argv", [
    ["train", "lenet", *QUICK, "--epochs", "1", "--out", LONG],
    ["eval", LONG + ".safetensors", "--dataset", "digits"],
    ["summary", LONG],
    ["find", "x.png", "--checkpoint", LONG + ".safetensors"],
    ["viz", "features", "--model", "lenet", "--layer", "0", "--image", LONG + ".png",
     "--out", "x.png"],
])
def test_a_path_component_too_long(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 1, err
    line = one_line(err)
    assert "longer than the file system allows" in line or "File name too long" in line
    assert list(tmp_path.iterdir()) == []
    count("long_names")


def test_a_full_disk_under_demo(tmp_path, monkeypatch, capsys):
    import wally.io.atomic as atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    code, _, err = run_cli(capsys, "demo", "--out", tmp_path / "demo", "--epochs", "1",
                           "--patches", "32", "--val-patches", "8", "--batch-size", "16",
                           "--scene-size", "40", "40")
    line = one_line(err)
    assert code == 1 and "no space left on the device" in line and "demo" in line
    count("full_disk")


@pytest.mark.parametrize("field, value, words", [
    ("history", "not a list", "history"),
    ("history", [{"epoch": "x"}], "history[0]"),
    ("batches_done", 10**40, "batches_done"),
    ("meter", {"loss_sum": "x"}, "meter"),
    ("epoch_start_rng", {"wally": {"bit_generator": "nope"}}, "epoch_start_rng"),
    ("rng", {"wally": {"bit_generator": "MT19937", "state": 5}, "loader": None}, "RNG state"),
    ("rng", {"wally": None, "loader": {"bit_generator": "PCG64", "state": "x"}}, "RNG state"),
])
def test_hostile_resume_metadata(field, value, words, run_dir, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)

    def change(payload, arrays):
        if field == "rng":
            payload["rng"] = value
        else:
            payload["extra"]["fit"][field] = value
            if field == "epoch_start_rng":
                payload["extra"]["fit"]["batches_done"] = 1

    rewrite(run_dir / "checkpoint.safetensors", out / "checkpoint.safetensors", change)
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--epochs", "2", "--out", out,
                           "--resume")
    line = one_line(err)
    assert code == 1 and words in line and "checkpoint.safetensors" in line
    count("resume_metadata")


@pytest.mark.parametrize("key, value, words", [
    ("classes", "0123456789", "its classes are str"),
    ("classes", {"a": 1}, "its classes are dict"),
    ("dataset", 5, "its dataset is int"),
])
def test_predict_with_hostile_extra(key, value, words, run_dir, image, tmp_path, capsys):
    path = rewrite(run_dir / "checkpoint.safetensors", tmp_path / "c.safetensors",
                   lambda p, a: p["extra"].update({key: value}))
    code, _, err = run_cli(capsys, "predict", path, image)
    assert code == 1 and words in one_line(err)
    count("predict_metadata")


def test_class_names_are_escaped(run_dir, image, tmp_path, capsys):
    names = [f"\x1b[2Jclass{i}\x07" for i in range(10)]
    path = rewrite(run_dir / "checkpoint.safetensors", tmp_path / "c.safetensors",
                   lambda p, a: p["extra"].update(classes=names))
    code, out, _ = run_cli(capsys, "predict", path, image, "--topk", "10")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2Jclass" in out
    count("escapes")


def _interrupting_import(module: str) -> str:
    return (
        "import sys\n"
        "class Stop:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r}: raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Stop())\n"
        "sys.argv = ['wally', 'train', 'lenet', '--dataset', 'digits']\n"
        "import wally_cli\n"
        "sys.exit(wally_cli.main())\n"
    )


@pytest.mark.parametrize("module", ["wally.autograd", "numpy", "wally.cli.train"])
def test_ctrl_c_during_start_up(module):
    result = subprocess.run([sys.executable, "-c", _interrupting_import(module)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("interrupted")
    count("ctrl_c")


def _swallowing_import(module: str, how: str) -> str:
    """A start-up whose import of ``module`` takes a real Ctrl-C and drops it, as Python's
    weak-reference callbacks do (``how="callback"``: "Exception ignored") and as a compiled
    module's set-up can (``how="silently"``: NumPy's ``random`` did once in 200 tries)."""
    return (
        "import os, signal, sys, time, weakref\n"
        "def ctrl_c():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(1000): time.sleep(0.001)\n"
        "class Thing: pass\n"
        "class Swallow:\n"
        "    done = False\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name != {module!r} or Swallow.done: return None\n"
        "        Swallow.done = True\n"
        f"        if {how!r} == 'callback':\n"
        "            thing = Thing(); ref = weakref.ref(thing, lambda r: ctrl_c())\n"
        "            del thing\n"
        "        else:\n"
        "            try: ctrl_c()\n"
        "            except KeyboardInterrupt: pass\n"
        "        return None\n"
        "sys.meta_path.insert(0, Swallow())\n"
        f"sys.argv = ['wally', 'train', 'lenet', {', '.join(map(repr, QUICK))}, '--epochs', "
        "'3', '--out', sys.argv[1]]\n"
        "import wally_cli\n"
        "sys.exit(wally_cli.main())\n"
    )


@pytest.mark.parametrize("how", ["callback", "silently"])
@pytest.mark.parametrize("module", ["numpy.random", "wally.cli.train", "safetensors"])
def test_a_ctrl_c_that_an_import_swallows_still_stops(module, how, tmp_path):
    """numpy.random: while wally is imported; wally.cli.train: while the commands are;
    safetensors: inside the command, when the training saves its first checkpoint."""
    pytest.importorskip("safetensors")
    result = subprocess.run([sys.executable, "-c", _swallowing_import(module, how),
                             str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 130, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].endswith("interrupted"), result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    if module == "safetensors":  # the first epoch ends, and its checkpoint is kept
        assert (tmp_path / "r" / "checkpoint.safetensors").exists()
        assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1
    count("ctrl_c")


def _mapped(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("when", ["importing NumPy", "training"])
def test_a_real_sigint_soon_after_start(when, tmp_path):
    """A real Ctrl-C to the installed command, sent once the process is inside wally's
    start-up (NumPy's core is being loaded: the interpreter's own start-up, which no code of
    wally's can guard, is over) or once its training has begun (its config.json is written)."""
    command = shutil.which("wally") or ""
    if not command or "wally_cli" not in Path(command).read_text(errors="replace"):
        pytest.skip("the installed wally command predates wally_cli (reinstall: pip install -e .)")
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc to see where the process is")
    out = tmp_path / "r"
    process = subprocess.Popen([command, "train", "lenet", *QUICK, "--epochs", "50",
                                "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if (_mapped(process.pid, "_multiarray_umath") if when == "importing NumPy"
                else (out / "config.json").exists()):
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Exception ignored" not in err and "interrupted" in err
    count("ctrl_c")


@pytest.mark.parametrize("argv, package, extra", [
    (["train", "lenet", *QUICK, "--out", "{tmp}/r"], "safetensors", "train"),
    (["predict", "{ckpt}", "{image}"], "safetensors", "train"),
    (["eval", "{ckpt}", "--dataset", "digits"], "safetensors", "train"),
    (["export", "{ckpt}", "--onnx", "{tmp}/m.onnx"], "onnx", "onnx"),
    (["viz", "kernels", "--model", "lenet", "--layer", "0", "--out", "{tmp}/k.png"],
     "matplotlib", "train"),
])
def test_a_missing_optional_package_names_the_extra(argv, package, extra, run_dir, image,
                                                    tmp_path, monkeypatch, capsys):
    argv = [a.format(tmp=tmp_path, ckpt=run_dir / "checkpoint.safetensors", image=image)
            for a in argv]
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and f"pip install 'wally-cnn[{extra}]'" in one_line(err)
    assert list(tmp_path.iterdir()) == [image]
    count("missing_extra")


def test_explain_params_refuses_delta_0(capsys):
    code, _, err = run_cli(capsys, "explain", "params", "--delta", "0")
    assert code == 2 and "--delta" in err
    count("nonsense_refused")


def test_an_empty_dataset_is_not_blamed_on_batch_size(tmp_path, monkeypatch, capsys):
    from wally.cli import _images

    real = _images.load

    def empty(*args, **kwargs):
        kwargs["limit"] = None
        dataset = real(*args, **kwargs)
        return _images.ImageSet(dataset.images[:0], dataset.labels[:0], dataset.classes,
                                "digits", args[2])

    monkeypatch.setattr(_images, "load", empty)
    code, _, err = run_cli(capsys, "train", "lenet", *QUICK, "--out", tmp_path / "r")
    line = one_line(err)
    assert code == 1 and "empty" in line and "--batch-size" not in line
    assert not (tmp_path / "r").exists()
    count("nonsense_refused")


def test_viz_curves_errors_name_the_file(tmp_path, capsys):
    empty = tmp_path / "metrics.jsonl"
    empty.write_text("")
    code, _, err = run_cli(capsys, "viz", "curves", empty, "--out", tmp_path / "c.png")
    assert code == 1 and str(empty) in one_line(err)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": "x", "train_loss": 1.0}\n')
    code, _, err = run_cli(capsys, "viz", "curves", bad, "--out", tmp_path / "c.png")
    assert code == 1 and str(bad) in one_line(err) and "epoch" in one_line(err)
    count("viz_messages")


def test_viz_features_on_a_one_pixel_wide_image(tmp_path, capsys):
    from PIL import Image

    thin = tmp_path / "thin.png"
    Image.fromarray(np.full((40, 1, 3), 120, np.uint8)).save(thin)
    code, _, err = run_cli(capsys, "viz", "features", "--model", "wally_finder", "--layer",
                           "conv1", "--image", thin, "--out", tmp_path / "f.png")
    assert code == 1 and "channels" not in one_line(err)
    assert "kernel" in one_line(err)
    code, _, err = run_cli(capsys, "viz", "features", "--model", "lenet", "--layer", "0",
                           "--image", thin, "--out", tmp_path / "g.png")
    assert code == 0, err
    count("viz_messages")


def test_eval_of_a_finder_checkpoint_is_refused(tmp_path, capsys):
    from wally.io import save_checkpoint
    from wally.models import get_model

    path = tmp_path / "finder.safetensors"
    save_checkpoint(path, get_model("wally_finder"))
    code, _, err = run_cli(capsys, "eval", path, "--dataset", "digits", "--limit", "8")
    line = one_line(err)
    assert code == 1 and "not one row of class scores" in line and "wally find" in line
    count("model_names")


@pytest.mark.parametrize("argv, code_expected, words", [
    (["train", "resnet", *QUICK], 2, "needs an arch"),
    (["train", "vgg", *QUICK], 2, "needs an arch"),
    (["train", "wally_finder", *QUICK], 2, "wally demo"),
    (["train", "lenett", *QUICK], 2, "did you mean 'lenet'?"),
    (["summary", "resnet"], 1, "needs an arch"),
    (["summary", "resnet_18"], 1, "did you mean 'resnet18'?"),
    (["viz", "kernels", "--model", "alexnt", "--layer", "0"], 1, "did you mean 'alexnet'?"),
])
def test_model_names(argv, code_expected, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == code_expected and words in err
    choices = err.split("choose from")[-1] if "choose from" in err else err.split("models:")[-1]
    assert "resnet," not in choices and "vgg," not in choices
    count("model_names")


def test_an_unexpected_error_is_one_line_unless_wally_debug(monkeypatch, capsys):
    import wally.cli.summary as summary

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(summary, "build_model", broken)
    code, _, err = run_cli(capsys, "summary", "lenet")
    line = one_line(err)
    assert code == 1 and "internal error" in line and "WALLY_DEBUG=1" in line
    monkeypatch.setenv("WALLY_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["summary", "lenet"])
    count("generic")


@pytest.mark.parametrize("error, words", [
    (MemoryError(), "out of memory"),
    (OSError(errno.ENOSPC, "No space left on device", "x.bin"), "no space left"),
    (PermissionError(errno.EACCES, "Permission denied", "x.bin"), "x.bin: Permission denied"),
])
def test_expected_failures_are_one_line(error, words, monkeypatch, capsys):
    import wally.cli.summary as summary

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(summary, "build_model", fails)
    code, _, err = run_cli(capsys, "summary", "lenet")
    assert code == 1 and words in one_line(err)
    count("generic")


def test_zz_report():
    report("hostile_cli", {"cases": sum(CASES.values()), **CASES})


def test_the_ctrl_c_watch_is_put_back_and_forgotten(capsys):
    """In-process (a notebook, these tests), ``main`` leaves Python's handler and hook as it
    found them, and a noted Ctrl-C does not outlive the command that got it."""
    import wally_cli

    handler, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    restore = wally_cli.watch()
    assert restore is not None and wally_cli.watch() is None  # one watcher at a time
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
        time.sleep(1)
    assert wally_cli.interrupted()
    restore()
    assert not wally_cli.interrupted()
    assert signal.getsignal(signal.SIGINT) is handler and sys.unraisablehook is hook
    code, out, _ = run_cli(capsys, "summary", "lenet")
    assert code == 0 and "Conv2d" in out
    assert signal.getsignal(signal.SIGINT) is handler and sys.unraisablehook is hook
