"""The benchmark suite runs end to end on a tiny case (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_one_tiny_case_end_to_end(torch, tmp_path):
    output = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", "--threads", "1",
         "--only", "conv/LeNet conv2", "--only", "memory/lenet", "--accel", "both",
         "--onednn", "both", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text()
    assert "| LeNet conv2 (256,6,14,14)→16 k5 |" in text
    assert "| LeNet conv2 (256,6,14,14)→16 k5 (accel off) |" in text
    assert "| LeNet conv2 (256,6,14,14)→16 k5 (oneDNN off) |" in text
    assert "| wally's compiled kernels (`--accel`) |" in text
    assert "| oneDNN's convolutions (`--onednn`) |" in text
    assert "Geometric mean of the median ratios" in text
    assert "## Peak resident memory" in text and "| LeNet epoch |" in text
    assert "## Targets (issue 5)" in text
    assert "NumPy float32 GEMM peak" in text


def test_profile_epoch_reports_every_table(tmp_path):
    output = tmp_path / "PROFILE.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_epoch", "--batches", "2", "--repeats", "1",
         "--threads", "1,2", "--accel", "both", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text()
    assert "| 1 | " in text and "| 2 | " in text
    assert "## How the chunked kernels' threads shared their chunks" in text
    assert "| ConvNd.backward | 256×16×10×10 |" in text and "| outside the ops |" in text
    assert "| predicted |" in text
    assert "## With and without the compiled kernels (`--accel both`)" in text
    assert "WALLY_ACCEL=0 (NumPy alone)" in text


def test_amdahl_serial_fraction():
    from benchmarks.profile_epoch import amdahl

    assert amdahl(2.0, 2) == 0.0  # perfect scaling: nothing serial
    assert amdahl(1.0, 2) == 1.0  # no gain: all serial
    assert abs(amdahl(1.6, 4) - 0.5) < 1e-12  # 1 / (0.5 + 0.5 / 4) = 1.6


def test_thread_scaling_prints_its_table():
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.thread_scaling", "--seconds", "0.05"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert "| LeNet conv1 forward (256,1,28,28)→6 k5 p2 |" in completed.stdout
    assert "each (" in completed.stdout


def test_gemm_floor_times_every_pass(torch, tmp_path):
    output = tmp_path / "floor.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.gemm_floor", "--repeats", "1", "--only",
         "LeNet conv2", "--json", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    found = json.loads(output.read_text())
    passes = found["layers"]["LeNet conv2 (256,6,14,14)→16 k5"]
    assert sorted(passes) == ["forward", "input-grad", "weight-grad"]
    for timings in passes.values():
        assert timings["gemm"]["ms"] > 0 and timings["wally"]["ms"] > 0
        assert timings["gemm"]["min"] <= timings["gemm"]["median"] <= timings["gemm"]["max"]


def test_process_isolation_times_every_worker(torch):
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.process_isolation", "--case", "lenet", "--rounds",
         "2", "--batches", "1", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    # each framework's own worker never imports the other
    for kind, holds in (("wally", "wally"), ("torch", "torch"), ("both", "torch,wally")):
        assert f"the {kind} worker holds {holds}" in lines, completed.stdout
    for key in ("wally in the wally worker", "torch in the torch worker",
                "wally in the both worker", "torch in the both worker"):
        assert any(line.startswith(f"lenet {key}: median") and "(2 rounds)" in line
                   for line in lines), (key, completed.stdout)
    assert "wally / PyTorch: separate processes" in lines[-1]


def test_onednn_passes_times_every_pass(torch, tmp_path):
    from wally.backends import onednn

    if not onednn.is_available():
        pytest.skip(f"oneDNN is not available: {onednn.unavailable_reason()}")
    output = tmp_path / "passes.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.onednn_passes", "--repeats", "1", "--only",
         "LeNet conv2", "--json", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    passes = json.loads(output.read_text())["layers"]["LeNet conv2 (256,6,14,14)→16 k5"]
    assert sorted(passes) == ["forward", "input-grad", "weight-grad"]
    for found in passes.values():
        assert found["implementation"] and found["table"]
        for ratios in (found["without"], found["torch"]):
            assert ratios["ms"] > 0 and ratios["min"] <= ratios["median"] <= ratios["max"]


def test_engine_targets_are_judged_per_thread_count_and_by_the_epochs_gain():
    """Issue 12's table from made-up timings: each goal is met or not on its own, and the
    LeNet speed-up is the 1-thread epoch over the 2-thread one (wally's, beside PyTorch's)."""
    from types import SimpleNamespace

    from benchmarks._harness import Timing
    from benchmarks.run import _engine_targets

    def row(group, name, wally, torch):
        return {"case": SimpleNamespace(group=group, name=name),
                "timing": Timing(wally=[wally], torch=[torch])}

    one = {"threads": 1, "rows": [row("train", "LeNet epoch", 4.0, 5.0),
                                  row("train", "ResNet-18 step", 1.3, 1.0),
                                  row("conv", "a", 1.0, 1.0), row("conv", "b", 4.0, 1.0)]}
    two = {"threads": 2, "rows": [row("train", "LeNet epoch", 2.4, 2.5),
                                  row("conv", "a", 1.0, 2.0)]}
    lines = _engine_targets([one, two], [], None)
    table = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "| 0.80 | yes |" in table["LeNet epoch, 1 thread"]
    assert "| 1.30 | **no** |" in table["ResNet-18 step, 1 thread"]
    assert "| 2.00 | **no** |" in table["convolution fwd+bwd, geometric mean, 1 thread"]
    assert "| 4.00 | **no** |" in table["convolution fwd+bwd, worst case, 1 thread"]
    assert "| 0.50 | yes |" in table["convolution fwd+bwd, worst case, 2 threads"]
    gain = table["LeNet epoch from 1 to 2 threads, speed-up"]
    assert "1.67× (PyTorch 2.00×) | yes |" in gain
