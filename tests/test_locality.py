"""``wally explain locality``: an MLP ignores a fixed permutation of its pixels, a CNN does not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wally import manual_seed
from wally.analysis.locality import (
    draw_locality,
    locality_cnn,
    locality_experiment,
    locality_mlp,
    matching_hidden,
    permute_pixels,
    pixel_permutation,
)
from wally.autograd import no_grad
from wally.cli import main
from wally.creation import from_numpy


# ----- the permutation -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 1, 5, 7), (2, 4, 4), (1, 2, 3, 3)])
def test_permute_pixels_matches_a_loop(shape):
    rng = np.random.default_rng(1)
    images = rng.standard_normal(shape)
    height, width = shape[-2:]
    permutation = pixel_permutation(height, width, seed=3)
    out = permute_pixels(images, permutation)
    assert out.shape == images.shape
    for index in np.ndindex(*shape[:-2]):
        for j in range(height * width):
            source = permutation[j]
            assert out[index][j // width, j % width] == images[index][source // width,
                                                                      source % width]
    assert sorted(permutation.tolist()) == list(range(height * width))
    assert not np.array_equal(permutation, np.arange(height * width))  # a real shuffle
    assert np.array_equal(pixel_permutation(height, width, seed=3), permutation)


def test_permute_pixels_refuses_a_non_permutation():
    with pytest.raises(ValueError, match=r"permute_pixels: expected a permutation of 4 .*got 3"):
        permute_pixels(np.zeros((1, 2, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="permute_pixels"):
        permute_pixels(np.zeros((1, 2, 2)), np.array([0, 1, 1, 2]))


# ----- why the MLP cannot tell --------------------------------------------------------------
def test_permuted_first_layer_makes_the_same_function():
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 4, 4))
    permutation = pixel_permutation(4, 4, seed=7)
    manual_seed(0)
    mlp = locality_mlp(16, 6).double()
    with no_grad():
        plain = mlp(from_numpy(x)).numpy()
        shuffled_input = from_numpy(permute_pixels(x, permutation))
        unadjusted = mlp(shuffled_input).numpy()
        mlp[1].weight.copy_(mlp[1].weight[:, permutation.tolist()])
        adjusted = mlp(shuffled_input).numpy()
    np.testing.assert_allclose(adjusted, plain, rtol=1e-12, atol=1e-12)
    assert np.abs(unadjusted - plain).max() > 1e-3  # without W[:, π] the function changes


def test_models_have_similar_sizes():
    for channels, size in ((1, 8), (1, 28)):
        cnn = sum(p.numel() for p in locality_cnn(channels, size).parameters())
        hidden = matching_hidden(channels * size * size, cnn)
        mlp = sum(p.numel() for p in locality_mlp(channels * size * size, hidden).parameters())
        assert abs(mlp - cnn) <= channels * size * size + 11  # within one hidden unit
    assert matching_hidden(64, 6090) == 81


# ----- the experiment --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report():
    return locality_experiment("digits", epochs=5, seed=0)


def test_mlp_unchanged_cnn_drops(report):
    mlp_original, mlp_permuted = report.row("mlp", False), report.row("mlp", True)
    cnn_original, cnn_permuted = report.row("cnn", False), report.row("cnn", True)
    assert mlp_original.count == 360 and cnn_permuted.count == 360
    # the same training up to float rounding: at most one test image may flip
    assert abs(mlp_original.correct - mlp_permuted.correct) <= 1
    assert report.mlp_disagreements <= 1
    assert report.mlp_max_logit_difference < 1e-3
    assert mlp_original.accuracy > 0.85 and cnn_original.accuracy > 0.85  # both learned
    # the CNN loses its locality prior: at least 3 points (11 test images) lower
    assert report.drop("cnn") >= 0.03
    assert report.drop("cnn") > abs(report.drop("mlp")) + 0.02
    assert abs(mlp_original.parameters - cnn_original.parameters) <= 75


def test_report_text_json_and_picture(report, tmp_path):
    text = str(report)
    assert "MLP" in text and "CNN" in text and "permuted" in text
    assert f"{report.accuracy('cnn', True):.2%}" in text
    assert f"{report.row('mlp', False).parameters:,}" in text
    data = json.loads(report.to_json())
    assert {(run["model"], run["permuted"]) for run in data["runs"]} == {
        ("mlp", False), ("mlp", True), ("cnn", False), ("cnn", True)}
    assert data["drop"]["cnn"] == pytest.approx(report.drop("cnn"))
    picture = draw_locality(report, tmp_path / "sub" / "locality.png")
    assert picture.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"original_0", "permuted_0", "bars"} <= set(picture.panels)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"locality: dataset must be one of digits, "
                                         r"fashion-mnist, got 'cifar'"):
        locality_experiment("cifar")
    with pytest.raises(ValueError, match=r"locality: epochs must be a positive integer, got 0"):
        locality_experiment("digits", epochs=0)


# ----- the command line -------------------------------------------------------------------------
def test_explain_locality_command(capsys, tmp_path):
    out_dir = tmp_path / "run"
    args = ["explain", "locality", "--epochs", "1", "--train-limit", "300", "--seed", "2",
            "--out", str(out_dir)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "MLP" in text and "CNN" in text and "original" in text and "permuted" in text
    assert f"picture: {out_dir / 'locality.png'}" in text
    assert (out_dir / "locality.png").read_bytes()[:4] == b"\x89PNG"
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dataset"] == "digits" and data["epochs"] == 1 and data["seed"] == 2
    assert len(data["runs"]) == 4 and data["picture"] == str(out_dir / "locality.png")
    mlp = {run["permuted"]: run["correct"] for run in data["runs"] if run["model"] == "mlp"}
    assert abs(mlp[False] - mlp[True]) <= 1
    for run in data["runs"]:
        assert f"{run['accuracy']:.2%}" in text  # the table printed the same numbers


def test_explain_locality_rejects_bad_options(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "locality", "--dataset", "cifar10"])
    with pytest.raises(SystemExit):
        main(["explain", "locality", "--epochs", "0"])
    assert "locality" in capsys.readouterr().err
