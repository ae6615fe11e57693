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
         "--only", "conv/LeNet conv2", "--only", "memory/lenet", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text()
    assert "| LeNet conv2 (256,6,14,14)→16 k5 |" in text
    assert "Geometric mean of the median ratios" in text
    assert "## Peak resident memory" in text and "| LeNet epoch |" in text
    assert "## Targets (issue 5)" in text
    assert "NumPy float32 GEMM peak" in text
