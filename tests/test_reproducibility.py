"""Same seed, same thread count: bit-identical weights, in two separate processes.

The training below draws randomness everywhere a run does: initialisation, the DataLoader's
shuffle (prepared in its background thread, ``prefetch=2``), random crops and flips applied in
that thread, and dropout in the main thread. Two fresh Python processes with the same seed and
the same BLAS thread count must end with the same weights, bit for bit; another seed must not.
``wally train`` on the synthetic set and on the digits is held to the same rule.

The threaded kernels are held to it one by one: with a small memory budget every layer below
splits into many chunks over 2 threads, whose partial weight gradients must be summed in chunk
order (the same bits as one thread taking the chunks one after another), not in the order the
threads finish; under ``wally.use_deterministic_algorithms(True)`` the bits must also be the
same at 1, 2 and 3 threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import wally
import wally.nn.functional as F
from _reliability import report
from wally import _parallel
from wally._parallel import num_threads
from wally.backends import accel
from wally.backends import conv as dispatch
from wally.functional import conv as conv_module
from wally.functional import pool as pool_module

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import wally
    from wally import nn, optim
    from wally.data import DataLoader, Dataset
    from wally.data import transforms as T
    from wally.train import fit

    class Shapes(Dataset):
        # uint8 images transformed one at a time, randomly, in the loader's thread.
        def __init__(self, count):
            rng = np.random.default_rng(123)  # the data itself is fixed
            self.images = rng.integers(0, 256, (count, 12, 12), dtype=np.uint8)
            self.labels = (self.images.mean(axis=(1, 2)) > 127.5).astype(np.int64)
            self.transform = T.Compose([T.ToTensor(), T.RandomCrop(10, padding=1),
                                        T.RandomHorizontalFlip()])

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, index):
            return self.transform(self.images[index]), int(self.labels[index])

    seed = int(sys.argv[1])
    wally.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Dropout(0.3), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 16), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(16, 2))
    loader = DataLoader(Shapes(96), batch_size=16, shuffle=True, prefetch=2)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    fit(model, loader, optimizer=optimizer, epochs=3, progress=False)
    digests = {key: hashlib.sha256(np.ascontiguousarray(value.numpy()).tobytes()).hexdigest()
               for key, value in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                digests[f"optimizer.{index}.{name}"] = hashlib.sha256(value.tobytes()).hexdigest()
    print(json.dumps(digests))
""")


def _environment(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "OMPI_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                 "WALLY_NUM_THREADS"):
        env[name] = str(threads)
    # A small budget splits every convolution into many chunks, so the threads share each one.
    env["WALLY_CONV_MEMORY_BUDGET"] = "16K"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "random"  # nothing may depend on the order of a set of strings
    return env


def _train(script: Path, seed: int, threads: int) -> dict[str, str]:
    result = subprocess.run([sys.executable, str(script), str(seed)], capture_output=True,
                            text=True, env=_environment(threads), cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_and_threads_give_bit_identical_weights_in_two_processes(tmp_path, threads):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    first = _train(script, seed=5, threads=threads)
    second = _train(script, seed=5, threads=threads)
    assert first == second, [key for key in first if first[key] != second.get(key)]
    other = _train(script, seed=6, threads=threads)
    assert other != first, "another seed should give other weights (or the test sees nothing)"
    report("reproducibility", {f"identical_tensors_threads_{threads}": len(first)})


def _checkpoint_digest(out: Path) -> str:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = safetensors_numpy.load_file(str(out / "checkpoint.safetensors"))
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(arrays[key].tobytes())
    return digest.hexdigest()


def test_wally_train_twice_with_one_seed_gives_the_same_checkpoint(tmp_path):
    digests = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        result = subprocess.run(
            [sys.executable, "-m", "wally", "train", "lenet_modern", "--dataset", "synthetic",
             "--limit", "64", "--batch-size", "16", "--epochs", "2", "--optimizer", "adam",
             "--seed", "9", "--out", str(out)],
            capture_output=True, text=True, env=_environment(1), cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
        digests.append(_checkpoint_digest(out))
    assert digests[0] == digests[1]
    report("reproducibility", {"wally_train_runs_identical": True})


def test_wally_train_on_the_digits_at_two_threads_gives_the_same_checkpoint(tmp_path):
    """The issue's case: LeNet (batch norm) on the digits at 2 threads, Adam, twice."""
    pytest.importorskip("sklearn")
    digests = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        result = subprocess.run(
            [sys.executable, "-m", "wally", "train", "lenet_modern", "--dataset", "digits",
             "--limit", "256", "--batch-size", "128", "--epochs", "1", "--optimizer", "adam",
             "--lr", "0.002", "--seed", "3", "--out", str(out)],
            capture_output=True, text=True, env=_environment(2), cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
        digests.append(_checkpoint_digest(out))
    assert digests[0] == digests[1]
    report("reproducibility", {"wally_train_digits_2_threads_identical": True})


# ----- the threaded kernels, one by one ---------------------------------------------------------
@contextlib.contextmanager
def _setting(threads: int, budget: int, deterministic: bool = False) -> Iterator[None]:
    previous = conv_module.get_memory_budget(), wally.are_deterministic_algorithms_enabled()
    conv_module.set_memory_budget(budget)
    wally.use_deterministic_algorithms(deterministic)
    try:
        with num_threads(threads):
            yield
    finally:
        conv_module.set_memory_budget(previous[0])
        wally.use_deterministic_algorithms(previous[1])


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


# (x shape, w shape, keyword arguments, the weight-gradient kernel it takes): every kernel that
# sums its chunks' partials, and every other threaded path of forward and backward.
LAYERS = {
    "1 to 16, 5x5 (im2col, wide rows)": ((64, 1, 28, 28), (16, 1, 5, 5), {"padding": 2},
                                         "weight_grad"),
    "LeNet conv1 (rows, wide rows)": ((64, 1, 28, 28), (6, 1, 5, 5), {"padding": 2},
                                      "_rows_weight_grad"),
    "LeNet conv2 (rows)": ((64, 6, 14, 14), (16, 6, 5, 5), {}, "_rows_weight_grad"),
    # im2col under this budget; the rows layout under the default one, and Winograd forward
    # on one thread (see test_deterministic_algorithms_keep_the_kernel_of_several_threads).
    "64 to 64, 3x3": ((8, 64, 16, 16), (64, 64, 3, 3), {"padding": 1}, "weight_grad"),
    "strided (exact columns, col2im)": ((16, 8, 20, 20), (8, 8, 3, 3),
                                        {"stride": 2, "padding": 1}, "weight_grad"),
    "groups": ((16, 8, 16, 16), (8, 4, 3, 3), {"padding": 1, "groups": 2}, "weight_grad"),
    "depthwise": ((16, 8, 16, 16), (8, 1, 3, 3), {"padding": 1, "groups": 8},
                  "_depthwise_weight_grad"),
    "one image split by rows, padded by rows": ((2, 3, 96, 96), (4, 3, 3, 3), {"padding": 1},
                                                "weight_grad"),
    "short columns in 4096-column blocks": ((8, 1, 160, 160), (12, 1, 3, 3), {"padding": 1},
                                            "weight_grad"),
}
# The budget (bytes) at 2 threads that splits each layer into several chunks per thread; short
# columns take blocks only in chunks of over 8192 columns.
BUDGET = 64 << 10
BUDGETS = {"short columns in 4096-column blocks": 4 << 20}


def _conv_bits(name: str) -> list[bytes]:
    """Output, input, weight and bias gradients of one forward and backward, as bytes."""
    x_shape, w_shape, kwargs, _ = LAYERS[name]
    rng = np.random.default_rng(0)
    x = wally.tensor(rng.standard_normal(x_shape, dtype=np.float32), requires_grad=True)
    w = wally.tensor(rng.standard_normal(w_shape, dtype=np.float32) * 0.1, requires_grad=True)
    b = wally.tensor(rng.standard_normal(w_shape[0], dtype=np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, **kwargs)
    y.backward(wally.tensor(rng.standard_normal(y.shape, dtype=np.float32)))
    return [t.detach().numpy().tobytes() for t in (y, x.grad, w.grad, b.grad)]


# The weight-gradient kernel of each layer, as the table (wally.backends.conv) names it.
_KERNEL_NAMES = {"weight_grad": "im2col", "_rows_weight_grad": "rows",
                 "_depthwise_weight_grad": "depthwise"}


@pytest.mark.parametrize("name", LAYERS)
def test_each_convolution_kernel_takes_the_path_it_tests(name, monkeypatch):
    kernel = _KERNEL_NAMES[LAYERS[name][3]]
    chunks = []
    original_sum = conv_module.sum_chunks
    monkeypatch.setattr(conv_module, "sum_chunks",
                        lambda work, jobs, fold, parts, **k: chunks.append(parts)
                        or original_sum(work, jobs, fold, parts, **k))
    # NumPy's kernels: with numba a stride-1 depthwise layer's weight gradient is compiled
    # (depthwise-direct, whose chunks test_accel.py holds to the same bits at every count)
    with _setting(2, BUDGETS.get(name, BUDGET)), dispatch.trace() as ran, accel.flags(False):
        _conv_bits(name)
    assert ("weight-grad", kernel) in ran, ran
    assert chunks[0] >= 4, chunks  # several chunks for each of 2 threads


class _Jittered(list):
    """Chunks handed out after a random pause each: which thread takes which is left to chance
    (a small layer is otherwise often done by the calling thread before another one wakes)."""

    def __iter__(self):
        for item in super().__iter__():
            time.sleep(random.random() * 3e-4)
            yield item


@contextlib.contextmanager
def _jitter() -> Iterator[None]:
    original = _parallel.run_chunks

    def jittered(work, chunks, **kwargs):
        return original(work, _Jittered(chunks), **kwargs)

    modules = [_parallel, conv_module, pool_module]
    patched = [m for m in modules if getattr(m, "run_chunks", None) is original]
    for module in patched:
        module.run_chunks = jittered
    try:
        yield
    finally:
        for module in patched:
            module.run_chunks = original


@pytest.mark.parametrize("name", LAYERS)
def test_threaded_convolution_sums_its_chunks_in_order(name):
    """At 2 threads, six runs (four with chunks handed out at random moments) give one set of
    bits: the one a single thread gets taking the same chunks one after another (half the
    budget on one thread plans the same chunks)."""
    budget = BUDGETS.get(name, BUDGET)
    with _setting(2, budget):
        runs = [_conv_bits(name) for _ in range(2)]
        with _jitter():
            runs += [_conv_bits(name) for _ in range(4)]
    with _setting(1, budget // 2), _one_blas_thread():
        in_order = _conv_bits(name)
    labels = ("output", "input gradient", "weight gradient", "bias gradient")
    for run in runs:
        assert run == in_order, [label for label, a, b in zip(labels, run, in_order) if a != b]


@pytest.mark.parametrize("name", LAYERS)
def test_deterministic_algorithms_give_the_same_bits_at_any_thread_count(name):
    bits = {}
    for threads in (1, 2, 3):
        with _setting(threads, BUDGETS.get(name, BUDGET), deterministic=True):
            bits[threads] = _conv_bits(name)
    assert bits[1] == bits[2] == bits[3]


def test_deterministic_algorithms_keep_winograds_chunks_at_any_thread_count(monkeypatch):
    """A 128-channel 3×3 layer takes Winograd at every thread count; by default its chunks
    give each thread work (8 images a chunk at 1 and 2 threads, 6 at 3: batch 16), under
    deterministic algorithms they are those of one thread, and the bits are the same at 1, 2
    and 3 threads."""
    from wally import _winograd

    splits: list[list[int]] = []
    run_chunks = _winograd.run_chunks

    def recording(work, chunks, **kwargs):
        splits.append([c[0].stop - c[0].start for c in chunks])
        return run_chunks(work, chunks, **kwargs)

    monkeypatch.setattr(_winograd, "run_chunks", recording)
    budget = conv_module.DEFAULT_MEMORY_BUDGET
    rng = np.random.default_rng(3)
    x = wally.tensor(rng.standard_normal((16, 128, 16, 16), dtype=np.float32))
    w = wally.tensor(rng.standard_normal((128, 128, 3, 3), dtype=np.float32))
    by_default, bits = {}, {}
    for deterministic in (False, True):
        for threads in (1, 2, 3):
            splits.clear()
            with _setting(threads, budget, deterministic=deterministic), dispatch.trace() as ran:
                y = F.conv2d(x, w, padding=1).numpy()
            assert ran == [("forward", "winograd")], ran
            (by_default if not deterministic else bits)[threads] = (splits[0], y.tobytes())
    assert by_default[1][0] == by_default[2][0] == [8, 8] and by_default[3][0] == [6, 6, 4]
    assert bits[1][0] == bits[2][0] == bits[3][0] == [8, 8]
    assert bits[1][1] == bits[2][1] == bits[3][1]


def _lenet_after_two_steps() -> str:
    from wally import optim
    from wally.models import lenet_modern

    wally.manual_seed(0)
    model = lenet_modern()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = wally.tensor(rng.standard_normal((96, 1, 28, 28), dtype=np.float32))
        target = wally.tensor(rng.integers(0, 10, 96))
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()
    digest = hashlib.sha256()
    for value in model.state_dict().values():
        digest.update(np.ascontiguousarray(value.numpy()).tobytes())
    return digest.hexdigest()


def test_deterministic_algorithms_train_lenet_to_the_same_bits_at_any_thread_count():
    """Batch norm, pooling, linear layers and Adam too: two training steps of LeNet."""
    digests = set()
    for threads in (1, 2, 3):
        with _setting(threads, BUDGET, deterministic=True):
            digests.add(_lenet_after_two_steps())
    assert len(digests) == 1


def test_deterministic_algorithms_api():
    assert wally.are_deterministic_algorithms_enabled() is False
    try:
        wally.use_deterministic_algorithms(True, warn_only=True)
        assert wally.are_deterministic_algorithms_enabled() is True
    finally:
        wally.use_deterministic_algorithms(False)
    assert wally.are_deterministic_algorithms_enabled() is False
    with pytest.raises(TypeError, match="use_deterministic_algorithms"):
        wally.use_deterministic_algorithms(1)


def _pool_and_linear_bits() -> list[bytes]:
    rng = np.random.default_rng(1)
    x = wally.tensor(rng.standard_normal((32, 16, 24, 24), dtype=np.float32),
                     requires_grad=True)
    pooled = [F.max_pool2d(x, 3, stride=2, padding=1), F.avg_pool2d(x, 3, stride=2, padding=1),
              F.adaptive_avg_pool2d(x, 1)]
    total = sum((p * wally.tensor(rng.standard_normal(p.shape, dtype=np.float32))).sum()
                for p in pooled)
    a = wally.tensor(rng.standard_normal((256, 400), dtype=np.float32), requires_grad=True)
    w = wally.tensor(rng.standard_normal((120, 400), dtype=np.float32), requires_grad=True)
    y = F.linear(a, w)
    (total + (y * wally.tensor(rng.standard_normal(y.shape, dtype=np.float32))).sum()).backward()
    return [t.detach().numpy().tobytes() for t in (*pooled, y, x.grad, a.grad, w.grad)]


def test_pooling_and_linear_layers_give_the_same_bits_at_a_thread_count_and_across():
    with _setting(2, BUDGET):
        runs = [_pool_and_linear_bits()]
        with _jitter():
            runs += [_pool_and_linear_bits() for _ in range(2)]
    assert runs[0] == runs[1] == runs[2]
    bits = []
    for threads in (1, 2, 3):
        with _setting(threads, BUDGET, deterministic=True):
            bits.append(_pool_and_linear_bits())
    assert bits[0] == bits[1] == bits[2]


# Partial sizes that take each way of sum_chunks: kept and folded at the end; folded as they
# come, with room for many or (16 MiB each) one per thread waiting.
PARTIALS = pytest.mark.parametrize("partial_bytes", [8, 1 << 20, 16 << 20],
                                   ids=["kept", "folded as they come", "little room"])


@PARTIALS
def test_sum_chunks_folds_in_order_whoever_finishes_first(partial_bytes):
    order: list[int] = []
    jobs = [[2 * job, 2 * job + 1] for job in range(30)]  # two partials per job

    def work(items, put):
        for job in items:
            for index in job:
                time.sleep(random.random() * 0.002)  # threads finish in a random order
                put(index, index)

    with _setting(4, BUDGET):
        _parallel.sum_chunks(work, jobs, order.append, 60, partial_bytes=partial_bytes)
    assert order == list(range(60))


@PARTIALS
def test_sum_chunks_raises_the_error_of_a_failing_thread_and_does_not_hang(partial_bytes):
    def failing(items, put):
        for index in items:
            if index == 3:
                raise ValueError("chunk 3 failed")
            time.sleep(0.001)
            put(index, index)

    def passing(items, put):
        for index in items:
            put(index, index)

    errors: list[BaseException] = []
    order: list[int] = []

    def run() -> None:
        with _setting(3, BUDGET):
            for _ in range(3):
                try:
                    _parallel.sum_chunks(failing, list(range(20)), lambda _: None, 20,
                                         partial_bytes=partial_bytes)
                except ValueError as error:
                    errors.append(error)
            # No pool thread is left waiting for chunk 3: the next sum runs to its end.
            _parallel.sum_chunks(passing, list(range(20)), order.append, 20,
                                 partial_bytes=partial_bytes)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "sum_chunks hung after a failing chunk"
    assert [str(error) for error in errors] == ["chunk 3 failed"] * 3
    assert order == list(range(20))
