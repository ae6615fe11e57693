"""Kill ``wally train`` with SIGKILL at random moments, and inside checkpoint writes; resume it.

Every chain runs ``wally train`` in a subprocess and kills it again and again (``SIGKILL``: no
handler runs, no buffer is flushed), resuming with ``--resume`` after each kill. After every kill
the checkpoint must load completely (never a torn file), and never go back in time; the chain's
last, uninterrupted resume must end with weights, optimizer and RNG states identical bit for bit,
and a ``metrics.jsonl`` identical but for its wall-clock fields (``seconds``,
``examples_per_s``), to one run that was never interrupted, with the same seed and one BLAS
thread.

Half of the kills land inside a checkpoint write: the subprocess runs with
``WALLY_TEST_ATOMIC_WRITE_PAUSE`` (the test seam of :mod:`wally.io.atomic`), which stops every
atomic write halfway through its temporary file; the test waits until the k-th checkpoint's
temporary file holds some bytes, and kills then. The others land after a random delay, anywhere
from import to the final evaluation.

The kill schedule is random but seeded: ``WALLY_KILL_SEED`` (default 0) picks it, and
``WALLY_KILLS_PER_CHAIN`` (default 8, three chains) sets how many kills each chain takes.

A full disk (``ENOSPC`` halfway through a checkpoint write) and a read-only output folder end
``wally train`` with one line on stderr and exit code 1, and leave the last checkpoint readable
and unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _reliability import report
from wally.io import atomic as atomic_module
from wally.io import load_checkpoint

safetensors_numpy = pytest.importorskip(
    "safetensors.numpy", reason="checkpoints need safetensors: pip install safetensors"
)

if not hasattr(signal, "SIGKILL"):
    pytest.skip("SIGKILL is POSIX-only", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoint.safetensors"
TIMING_FIELDS = ("seconds", "examples_per_s")
# Three small runs (48 images, batches of 8: 6 steps an epoch, a checkpoint every 2 steps) that
# cover momentum, Adam with a per-batch OneCycle schedule, and batch norm's running statistics.
CHAINS = {
    "lenet-sgd-momentum": ["lenet", "--optimizer", "sgd", "--momentum", "0.9"],
    "lenet-adam-onecycle": ["lenet", "--optimizer", "adam", "--scheduler", "onecycle",
                            "--lr", "0.01"],
    "lenet_modern-sgd": ["lenet_modern", "--optimizer", "sgd", "--lr", "0.05"],
}
COMMON = ["--dataset", "synthetic", "--limit", "48", "--batch-size", "8", "--epochs", "3",
          "--checkpoint-every", "2", "--seed", "11"]
PAUSE_SECONDS = 0.25
POLL_SECONDS = 0.005


def _environment(pause: bool) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "OMPI_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    env.pop(atomic_module.PAUSE_ENV, None)
    if pause:
        env[atomic_module.PAUSE_ENV] = str(PAUSE_SECONDS)
    return env


def _start(arguments: list[str], out: Path, resume: bool, pause: bool,
           log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "wally", "train", *arguments, *COMMON, "--out", str(out)]
    if resume:
        command.append("--resume")
    with open(log, "ab") as stream:
        return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT,
                                env=_environment(pause), cwd=ROOT)


def _temporary_checkpoints(out: Path) -> dict[str, int]:
    """The torn-or-in-progress temporary files of checkpoint writes, with their sizes."""
    sizes = {}
    for path in out.glob(f".{CHECKPOINT}.*.tmp"):
        try:
            sizes[path.name] = path.stat().st_size
        except FileNotFoundError:  # renamed into place meanwhile
            pass
    return sizes


def _kill_inside_a_write(process: subprocess.Popen[bytes], out: Path, nth: int,
                         already: set[str]) -> tuple[bool, int]:
    """SIGKILL ``process`` while its ``nth`` checkpoint write has written part of its bytes.

    Returns whether it was killed (it may finish first) and the temporary file's size then.
    """
    seen: set[str] = set()
    while process.poll() is None:
        for name, size in _temporary_checkpoints(out).items():
            if name in already or size == 0:
                continue
            seen.add(name)
            if len(seen) == nth:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return process.returncode == -signal.SIGKILL, size
        time.sleep(POLL_SECONDS)
    return False, 0


def _kill_after(process: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return process.returncode == -signal.SIGKILL


def _finish(process: subprocess.Popen[bytes], log: Path) -> None:
    code = process.wait(timeout=300)
    assert code == 0, f"wally train exited with {code}:\n{log.read_text(errors='replace')}"


def _tensors(path: Path) -> dict[str, np.ndarray]:
    return safetensors_numpy.load_file(str(path))


def _metrics(path: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def _assert_same_run(reference: Path, resumed: Path) -> None:
    expected, actual = _tensors(reference / CHECKPOINT), _tensors(resumed / CHECKPOINT)
    assert sorted(expected) == sorted(actual)
    for key, array in expected.items():  # weights, buffers, optimizer and RNG states
        other = actual[key]
        assert (array.dtype, array.shape) == (other.dtype, other.shape), key
        assert array.tobytes() == other.tobytes(), f"{key} differs after resuming"
    a = load_checkpoint(reference / CHECKPOINT)
    b = load_checkpoint(resumed / CHECKPOINT)
    assert (a.epoch, a.step, a.rng_state, a.loader_rng_state) == (
        b.epoch, b.step, b.rng_state, b.loader_rng_state)
    assert _metrics(reference / "metrics.jsonl") == _metrics(resumed / "metrics.jsonl")


def _check_after_kill(out: Path, last_step: int) -> int:
    """The checkpoint (if any) loads completely and is not older than the last one seen."""
    path = out / CHECKPOINT
    if not path.exists():
        assert last_step < 0, "the checkpoint disappeared"
        return last_step
    checkpoint = load_checkpoint(path)  # raises CheckpointError on a torn file
    step = int(checkpoint.step or 0)
    assert step >= last_step, f"the checkpoint went back from step {last_step} to {step}"
    return step


def test_sigkill_at_random_moments_and_inside_checkpoint_writes_then_resume_is_exact(
        tmp_path, capsys):
    seed = int(os.environ.get("WALLY_KILL_SEED", "0"))
    kills_per_chain = int(os.environ.get("WALLY_KILLS_PER_CHAIN", "8"))
    schedule = random.Random(seed)
    kills = {"total": 0, "inside_checkpoint_write": 0, "at_random_moments": 0}
    completed_runs = 0
    started = time.perf_counter()
    for name, arguments in CHAINS.items():
        log = tmp_path / f"{name}.log"
        reference = tmp_path / f"{name}-reference"
        _finish(_start(arguments, reference, resume=False, pause=False, log=log), log)

        chain_kills, runs = 0, 0
        while chain_kills < kills_per_chain:
            # One run of the chain, killed until it finishes: on its own when a kill comes too
            # late, or by an uninterrupted resume once the chain has taken its kills.
            out = tmp_path / f"{name}-killed-{runs}"
            runs += 1
            last_step, attempt = -1, 0
            torn_names: set[str] = set()
            while True:
                inside_write = attempt % 2 == 0
                final = chain_kills >= kills_per_chain
                process = _start(arguments, out, resume=attempt > 0,
                                 pause=inside_write and not final, log=log)
                attempt += 1
                if final:
                    _finish(process, log)
                    break
                if inside_write:
                    killed, _ = _kill_inside_a_write(
                        process, out, schedule.randint(1, 3), torn_names)
                else:
                    killed = _kill_after(process, schedule.uniform(0.1, 2.2))
                if not killed:  # it finished before the kill came
                    _finish(process, log)
                    break
                chain_kills += 1
                kills["total"] += 1
                kills["inside_checkpoint_write" if inside_write else "at_random_moments"] += 1
                last_step = _check_after_kill(out, last_step)
                if inside_write:
                    torn = _temporary_checkpoints(out)
                    torn_names |= set(torn)
                    assert torn, "the kill should have left the write's temporary file behind"
                    # Usually the kill lands in the paused middle of the write and the temporary
                    # file is torn; on a loaded machine it can land after the pause, before the
                    # rename, leaving a whole but unrenamed file. Either way the kill came inside
                    # atomic_write, and the checkpoint was checked complete above.
            _assert_same_run(reference, out)
            completed_runs += 1

    seconds = time.perf_counter() - started
    assert kills["total"] >= 20
    report("kill_resume", {
        "kills_survived": kills["total"],
        "kills_inside_checkpoint_write": kills["inside_checkpoint_write"],
        "kills_at_random_moments": kills["at_random_moments"],
        "chains": len(CHAINS),
        "interrupted_runs_compared": completed_runs,
        "kill_seed": seed,
        "seconds": round(seconds, 1),
    }, capsys)


# ----- full disk and read-only folder -----------------------------------------------------------
SMALL = ["lenet", "--dataset", "synthetic", "--limit", "24", "--batch-size", "8",
         "--checkpoint-every", "1", "--seed", "3"]


def _train(out: Path, epochs: int, resume: bool = False) -> int:
    from wally.cli import main

    return main(["train", *SMALL, "--epochs", str(epochs), "--out", str(out)]
                + (["--resume"] if resume else []))


def _error_lines(text: str) -> list[str]:
    assert "Traceback" not in text, text
    return [line for line in text.splitlines() if "error" in line.lower()]


class _FullDisk:
    """A file object that writes half of what it is given, then fails with ENOSPC."""

    def __init__(self, file: object, snapshot: dict[str, bytes], target: Path) -> None:
        self._file = file
        self._snapshot = snapshot
        self._target = target

    def write(self, data: bytes) -> int:
        self._file.write(data[:len(data) // 2])  # type: ignore[attr-defined]
        if self._target.exists():
            self._snapshot["checkpoint"] = self._target.read_bytes()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()  # type: ignore[attr-defined]


def test_a_full_disk_gives_one_clear_line_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_mkstemp, real_fdopen = atomic_module.tempfile.mkstemp, os.fdopen
    checkpoint_fds: set[int] = set()
    writes = {"checkpoint": 0}
    snapshot: dict[str, bytes] = {}

    def recording_mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        if Path(name).name.startswith(f".{CHECKPOINT}."):
            checkpoint_fds.add(fd)
        return fd, name

    def filling_fdopen(fd, *args, **kwargs):
        # The checkpoints of steps 1 and 2 fit; then the disk is full (3 steps an epoch).
        file = real_fdopen(fd, *args, **kwargs)
        if fd not in checkpoint_fds:
            return file
        checkpoint_fds.discard(fd)
        writes["checkpoint"] += 1
        return file if writes["checkpoint"] <= 2 else _FullDisk(file, snapshot, out / CHECKPOINT)

    monkeypatch.setattr(atomic_module.tempfile, "mkstemp", recording_mkstemp)
    monkeypatch.setattr(atomic_module.os, "fdopen", filling_fdopen)
    code = _train(out, epochs=1)
    monkeypatch.undo()
    captured = capsys.readouterr()
    errors = _error_lines(captured.err)
    assert code == 1
    assert len(errors) == 1 and "No space left on device" in errors[0], captured.err
    assert "left as it was" in errors[0]
    assert (out / CHECKPOINT).read_bytes() == snapshot["checkpoint"]
    assert load_checkpoint(out / CHECKPOINT).step == 2  # the third step's save failed
    assert not _temporary_checkpoints(out), "a failed write must not leave its temporary file"

    assert _train(out, epochs=1, resume=True) == 0  # space again: the run goes on
    assert load_checkpoint(out / CHECKPOINT).step == 3


def _make_read_only(folder: Path, monkeypatch) -> str:
    """Make ``folder`` refuse writes: by its mode, or (as root, whom modes do not stop) by
    making the temporary file's creation fail as a read-only file system does."""
    folder.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return "mode 0555"
    probe.unlink()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic_module.tempfile, "mkstemp", read_only)
    return "EROFS"


def test_a_read_only_output_folder_gives_one_clear_line_and_keeps_the_checkpoint(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert _train(out, epochs=1) == 0
    before = (out / CHECKPOINT).read_bytes()
    capsys.readouterr()
    how = _make_read_only(out, monkeypatch)
    try:
        code = _train(out, epochs=2, resume=True)
    finally:
        out.chmod(0o755)
        monkeypatch.undo()
    captured = capsys.readouterr()
    errors = _error_lines(captured.err)
    assert code == 1, how
    assert len(errors) == 1, captured.err
    assert f"cannot write to {out}" in errors[0]
    assert any(reason in errors[0] for reason in ("Permission denied", "Read-only file system"))
    assert (out / CHECKPOINT).read_bytes() == before
    assert load_checkpoint(out / CHECKPOINT).epoch == 1
