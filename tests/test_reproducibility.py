"""Same seed, same thread count: bit-identical weights, in two separate processes.

The training below draws randomness everywhere a run does: initialisation, the DataLoader's
shuffle (prepared in its background thread, ``prefetch=2``), random crops and flips applied in
that thread, and dropout in the main thread. Two fresh Python processes with the same seed and
the same BLAS thread count must end with the same weights, bit for bit; another seed must not.
``wally train`` on the synthetic set is held to the same rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _reliability import report

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
                 "OMPI_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = str(threads)
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
