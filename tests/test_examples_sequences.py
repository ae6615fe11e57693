"""The sequence examples (``examples/time_series_gunpoint.py``, ``speaker_japanese_vowels.py``,
``text_language_id.py``, ``tcn_receptive_field.py``) run in their ``--quick`` form, write a real
PNG of a sensible size, and return sane figures."""

from __future__ import annotations

import importlib.util
import math
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from _seq_data import aeon_root
from wally.data.text import FORTUNES_ROOT

pytest.importorskip("matplotlib", reason="the examples draw with matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(name: str, argv: list[str]) -> dict[str, Any]:
    """Import ``examples/<name>.py`` as a module and call its ``main(argv)``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        return module.main(argv)
    finally:
        del sys.modules[spec.name]


def check_png(path: str, expected: Path) -> tuple[int, int]:
    """The file is ``expected``, a PNG (signature and IHDR), of a sensible size, not blank."""
    from wally.viz import read_image

    assert Path(path) == expected and expected.is_file()
    data = expected.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 600 <= width <= 2000 and 300 <= height <= 1200, (width, height)
    assert len(data) > 10_000
    pixels = read_image(expected)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0.01  # something drawn
    assert not list(expected.parent.glob("*.tmp*"))  # written atomically: no leftovers
    return width, height


def check_curves(result: dict[str, Any], epochs: int) -> None:
    records = result["records"]
    assert result["epochs"] == epochs and [r["epoch"] for r in records] == list(
        range(1, epochs + 1))
    for record in records:
        assert math.isfinite(record["train_loss"]) and record["train_loss"] > 0
        assert 0.0 <= record["val_accuracy"] <= 1.0
    assert result["test_accuracy"] == records[-1]["val_accuracy"]
    assert records[-1]["train_loss"] < records[0]["train_loss"]  # it learns


def test_time_series_gunpoint_quick(tmp_path, capsys):
    root = aeon_root("GunPoint")
    result = run_example("time_series_gunpoint",
                         ["--quick", "--data-dir", str(root), "--output", str(tmp_path)])
    check_curves(result, 3)
    check_png(result["figure"], tmp_path / "time_series_gunpoint.png")
    out = capsys.readouterr().out
    assert "GunPoint: 50 training and 150 test series of 150 steps" in out
    assert f"test accuracy {result['test_accuracy']:.4f}" in out


def test_speaker_japanese_vowels_quick(tmp_path, capsys):
    root = aeon_root("JapaneseVowels")
    result = run_example("speaker_japanese_vowels",
                         ["--quick", "--data-dir", str(root), "--output", str(tmp_path)])
    check_curves(result, 3)
    assert result["test_accuracy"] > 0.5  # nine speakers: chance is 1/9
    check_png(result["figure"], tmp_path / "speaker_japanese_vowels.png")
    out = capsys.readouterr().out
    assert "270 training and 370 test series, 12 channels, 7 to 29 steps, 9 speakers" in out


@pytest.mark.skipif(not Path(FORTUNES_ROOT, "de").is_dir() or not Path(
    FORTUNES_ROOT, "fortunes").is_file(), reason="Debian's fortunes packages are not installed "
    "(apt-get install fortunes fortunes-de fortunes-it fortunes-es fortunes-ru fortunes-pl "
    "fortunes-cs fortunes-br fortunes-eo)")
def test_text_language_id_quick(tmp_path, capsys):
    sklearn = importlib.util.find_spec("sklearn") is not None
    result = run_example("text_language_id", ["--quick", "--output", str(tmp_path)])
    check_curves(result, 2)
    assert result["test_accuracy"] > 0.2  # nine balanced languages: chance is about 0.11
    if sklearn:
        assert 0.5 < result["baseline"] <= 1.0
    else:
        assert result["baseline"] is None
    check_png(result["figure"], tmp_path / "text_language_id.png")
    out = capsys.readouterr().out
    assert "Fortunes: 600 training and 300 test texts in 9 languages" in out
    assert ("TF-IDF char 1-4-grams + logistic regression: test accuracy" in out) == sklearn


def test_tcn_receptive_field_quick(tmp_path, capsys):
    result = run_example("tcn_receptive_field", ["--quick", "--output", str(tmp_path)])
    assert result["size"] == 1 + 2 * 2 * 63  # the default TCN: 6 blocks, kernel 3
    assert result["probe_equals_analysis"] is True
    assert result["future_max"] == 0.0  # causal: not the least gradient from the future
    assert result["step"] == 105 and result["field_steps"] == 106  # t = 105 sees 0..105
    assert result["nonzero_inside"] > 0.9 * result["field_steps"]
    check_png(result["figure"], tmp_path / "tcn_receptive_field.png")
    out = capsys.readouterr().out
    assert "probe equals it at every step; largest gradient from a future step 0;" in out


def test_examples_refuse_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        run_example("tcn_receptive_field", ["--length", "10", "--step", "9",
                                            "--output", str(tmp_path)])
