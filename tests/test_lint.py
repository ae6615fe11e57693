"""The code checks CI promises: ruff and mypy run clean as part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "tool, args",
    [("ruff", ["check", "src", "tests"]), ("mypy", [])],
)
def test_tool_is_clean(tool, args):
    pytest.importorskip(tool, reason=f"{tool} is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
