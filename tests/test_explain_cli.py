"""``wally summary`` and ``wally explain``, and the note's parameter counts behind them."""

from __future__ import annotations

import json

import pytest

from wally.analysis import parameter_counts
from wally.cli import main


# ----- the note's 1000×1000-pixel argument ----------------------------------------------------
def test_parameter_counts_of_the_note():
    counts = parameter_counts(1000, delta=10)
    assert counts.fully_connected.weights == 10**12
    assert counts.fully_connected.biases == 10**6
    assert counts.translation_invariant.weights == 10**6
    assert counts.locally_connected.weights == 441 * 10**6
    assert counts.convolutional.weights == 441 and counts.convolutional.total == 442
    assert counts.reduction("fully_connected", "translation_invariant") == 10**6
    assert counts.reduction("translation_invariant", "convolutional") == pytest.approx(10**6 / 441)
    assert counts.reduction("fully_connected", "locally_connected") == pytest.approx(10**6 / 441)
    assert counts.reduction("fully_connected", "convolutional") == pytest.approx(10**12 / 441)
    assert counts.weights_without_wraparound == 1999 * 1999


def test_parameter_counts_with_channels_and_rectangles():
    counts = parameter_counts((28, 20), delta=1, in_channels=3, out_channels=16)
    pixels = 28 * 20
    assert counts.fully_connected.weights == (pixels * 3) * (pixels * 16)
    assert counts.locally_connected.weights == pixels * 9 * 3 * 16
    assert counts.convolutional.weights == 9 * 3 * 16 and counts.convolutional.biases == 16
    assert counts.to_dict()["layers"]["convolutional"]["total"] == 9 * 3 * 16 + 16
    with pytest.raises(ValueError, match="delta"):
        parameter_counts(10, delta=-1)
    with pytest.raises(TypeError, match="image_size"):
        parameter_counts("big")  # type: ignore[arg-type]


def test_explain_params_prints_the_three_counts_and_the_factors(capsys):
    assert main(["explain", "params"]) == 0
    out = capsys.readouterr().out
    for text in ("1,000,000,000,000", "441,000,000", "fully connected", "locally connected",
                 "convolution", "1,000,000×", "2,268×", "2,267,573,696×"):
        assert text in out, text
    assert main(["explain", "params", "--image-size", "28", "--delta", "2",
                 "--channels", "3", "16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"]["convolutional"]["weights"] == 25 * 3 * 16
    assert data["reductions"]["both"] == pytest.approx((784 * 3 * 784 * 16) / (25 * 3 * 16))


# ----- wally summary --------------------------------------------------------------------------
def test_summary_command_text_json_markdown(capsys):
    assert main(["summary", "lenet"]) == 0
    out = capsys.readouterr().out
    assert "61,706" in out and "416,520" in out and "16x16" in out
    assert main(["summary", "lenet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == 61_706
    assert data["input_shape"] == [[1, 1, 28, 28]]
    assert main(["summary", "resnet18", "--input-size", "1", "3", "32", "32", "--markdown",
                 "--depth", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| Sequential | (1, 10)")
    assert all("conv1" not in row for row in rows)  # deeper than depth 1


def test_summary_rebuilds_a_model_for_another_input_size(capsys):
    assert main(["summary", "lenet", "--input-size", "1", "1", "32", "32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == 61_706 + (16 * 6 * 6 - 16 * 5 * 5) * 120


def test_summary_command_errors(capsys):
    assert main(["summary", "lenet9"]) == 1
    assert "unknown model 'lenet9'" in capsys.readouterr().err
    assert main(["summary", "lenet", "--input-size", "1", "1", "4", "4"]) == 1
    assert "too small" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summary", "lenet", "--input-size", "0", "1", "28", "28"])


@pytest.mark.parametrize("command", [["summary"], ["explain"], ["explain", "params"],
                                     ["explain", "equivariance"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert f"usage: wally {' '.join(command)}" in capsys.readouterr().out


# ----- wally explain equivariance -------------------------------------------------------------
def test_explain_equivariance_table(capsys):
    assert main(["explain", "equivariance", "lenet", "--shifts", "1", "4"]) == 0
    out = capsys.readouterr().out
    assert "shift 1" in out and "rot 90°" in out and "rotate 5°" in out
    conv = next(line for line in out.splitlines() if line.strip().startswith("0: Conv2d"))
    assert conv.split()[7:9] == ["0.00e+00", "0.00e+00"]  # stride 1: exact for both shifts
    assert main(["explain", "equivariance", "lenet", "--shifts", "1", "4", "--rotations",
                 "--angles", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in data["rows"]}
    assert data["transforms"] == ["shift 1", "shift 4"]
    assert rows["2"]["errors"]["shift 1"] > 1e-3 and rows["2"]["aligned"]["shift 1"] is False
    assert rows["5"]["errors"]["shift 4"] < 1e-6 and rows["5"]["aligned"]["shift 4"] is True
    assert rows["11"]["kind"] == "invariance"
