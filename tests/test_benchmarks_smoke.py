"""The benchmark suite runs end to end on a tiny case (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_tiny_case_end_to_end(torch, tmp_path):
    output = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", "--threads", "1",
         "--only", "conv/LeNet conv2", "--only", "memory/lenet", "--accel", "both",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text()
    assert "| LeNet conv2 (256,6,14,14)→16 k5 |" in text
    assert "| LeNet conv2 (256,6,14,14)→16 k5 (accel off) |" in text
    assert "| wally's compiled kernels (`--accel`) |" in text
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
