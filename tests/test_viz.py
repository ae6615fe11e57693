"""The pictures: each file exists, is a PNG of the reported size, and shows what it claims where
it claims (kernel tiles, feature maps, the receptive-field box, curve markers, the found box)."""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="wally.viz needs matplotlib: pip install matplotlib")
from PIL import Image  # noqa: E402  (matplotlib brings Pillow)

import wally  # noqa: E402
from wally import nn  # noqa: E402
from wally.apps.finder import Detection  # noqa: E402
from wally.cli import main  # noqa: E402
from wally.models.wally_finder import wally_finder  # noqa: E402
from wally.viz import (  # noqa: E402
    plot_curves,
    plot_detection,
    plot_feature_maps,
    plot_kernels,
    plot_receptive_field,
)
from wally.viz.curves import CURVE_COLORS  # noqa: E402
from wally.viz.receptive_field import BOX_COLOR  # noqa: E402
from wally.viz.scene import FOUND_COLOR, TRUTH_COLOR  # noqa: E402


def _png(picture) -> np.ndarray:
    """The written file's pixels, after checking it is a PNG of the size reported."""
    assert picture.path.exists()
    with open(picture.path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(picture.path) as image:
        assert image.size == (picture.width, picture.height)
        return np.asarray(image.convert("RGB")).astype(np.int32)


def _rgb(color) -> np.ndarray:
    if isinstance(color, str):
        return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return np.round(np.array(color) * 255).astype(int)


def _near(pixels: np.ndarray, column: int, row: int, color, reach: int = 1,
          tolerance: int = 40) -> bool:
    """Some pixel within ``reach`` of (column, row) has ``color``."""
    patch = pixels[max(row - reach, 0):row + reach + 1, max(column - reach, 0):column + reach + 1]
    return bool((np.abs(patch - _rgb(color)).max(axis=-1) <= tolerance).any())


def _no_temporary_files(folder) -> None:
    assert not [name for name in os.listdir(folder) if name.endswith(".tmp")]


# ----- kernels --------------------------------------------------------------------------------
def test_rgb_kernels_grid_has_one_tile_per_kernel_in_its_colour(tmp_path):
    conv = nn.Conv2d(3, 5, 3)
    weight = np.zeros((5, 3, 3, 3), dtype=np.float32)
    for k in range(5):
        weight[k, k % 3] = 1.0            # kernel k looks for red, green, blue, red, green
    conv.weight.array[...] = weight
    model = nn.Sequential(OrderedDict([("conv", conv)]))
    picture = plot_kernels(model, "conv", tmp_path / "k.png")
    pixels = _png(picture)
    assert picture.info["mode"] == "rgb" and picture.info["grid"] == (2, 3)
    panel = picture.panels["kernels"]
    expected = {0: (255, 128, 128), 1: (128, 255, 128), 2: (128, 128, 255)}
    for k in range(5):
        row, col = divmod(k, 3)
        # tile k spans kernel pixels [4·col, 4·col + 2] (one gap pixel between tiles)
        x, y = panel.to_pixel(4 * col + 1, 4 * row + 1)
        assert np.abs(pixels[y, x] - np.array(expected[k % 3])).max() <= 2, (k, pixels[y, x])
    # the sixth place of the grid is empty: gap colour, not a kernel
    x, y = panel.to_pixel(4 * 2 + 1, 4 * 1 + 1)
    assert np.abs(pixels[y, x] - 64).max() <= 2
    # count the tiles along the first row by scanning across it
    x0, _ = panel.to_pixel(-0.4, 1)
    x1, _ = panel.to_pixel(10.4, 1)
    _, y = panel.to_pixel(0, 1)
    line = pixels[y, x0:x1 + 1]
    gap = (np.abs(line - 64).max(axis=-1) <= 2)
    runs = np.count_nonzero(np.diff(gap.astype(int)) == 1) + (not gap[0])
    assert runs == 3
    _no_temporary_files(tmp_path)


def test_channel_kernels_grid_is_out_by_in_with_signs_in_colour(tmp_path):
    conv = nn.Conv2d(2, 3, 5)
    signs = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    conv.weight.array[...] = signs[:, :, None, None] * np.ones((1, 1, 5, 5), np.float32)
    model = nn.Sequential(OrderedDict([("conv", conv)]))
    picture = plot_kernels(model, "conv", tmp_path / "k.png")
    pixels = _png(picture)
    assert picture.info["grid"] == (3, 2) and picture.info["shown"] == (3, 2)
    panel = picture.panels["kernels"]
    for o in range(3):
        for i in range(2):
            x, y = panel.to_pixel(6 * i + 2, 6 * o + 2)
            red, _, blue = pixels[y, x]
            assert (red > blue + 50) if signs[o, i] > 0 else (blue > red + 50), (o, i)


def test_kernels_refuses_a_layer_without_kernels(tmp_path):
    model = wally_finder()
    with pytest.raises(ValueError, match="relu1.*not a convolution"):
        plot_kernels(model, "relu1", tmp_path / "k.png")
    with pytest.raises(ValueError, match="no layer named 'conv9'.*conv1"):
        plot_kernels(model, "conv9", tmp_path / "k.png")


# ----- feature and activation maps --------------------------------------------------------------
def test_feature_and_activation_maps_show_where_the_input_is_red(tmp_path):
    conv = nn.Conv2d(3, 1, 1, bias=False)
    conv.weight.array[...] = np.array([1.0, -1.0, -1.0], np.float32).reshape(1, 3, 1, 1)
    model = nn.Sequential(OrderedDict([("conv", conv), ("act", nn.ReLU())]))
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[:, :15] = (255, 0, 0)            # left: red (feature +1); right: blue (feature −1)
    image[:, 15:] = (0, 0, 255)
    picture = plot_feature_maps(model, "conv", image, tmp_path / "f.png")
    pixels = _png(picture)
    assert picture.info["activation_layer"] == "act" and picture.info["map_size"] == (20, 30)
    features, activations = picture.panels["features"], picture.panels["activations"]
    left, right = features.to_pixel(5, 10), features.to_pixel(25, 10)
    red, _, blue = pixels[left[1], left[0]]
    assert red > blue + 50                     # the red end of the map: +1
    red, _, blue = pixels[right[1], right[0]]
    assert blue > red + 50                     # the blue end: −1
    left, right = activations.to_pixel(5, 10), activations.to_pixel(25, 10)
    assert pixels[left[1], left[0]].sum() > 500     # the top of the colour map: bright
    assert pixels[right[1], right[0]].sum() < 30    # ReLU cut the negative half: black
    shown = picture.panels["input"].to_pixel(5, 10)
    assert _near(pixels, *shown, (1.0, 0.0, 0.0), reach=0, tolerance=3)


def test_feature_maps_of_the_finder_grid(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    picture = plot_feature_maps(wally_finder(), "conv2", image, tmp_path / "f.png", max_maps=10)
    _png(picture)
    assert picture.info["activation_layer"] == "relu2"
    assert picture.info["channels"] == 10 and picture.info["grid"] == (3, 4)
    assert picture.info["map_size"] == (21, 17)


# ----- receptive field --------------------------------------------------------------------------
def test_the_analytic_box_is_drawn_where_the_field_says(tmp_path):
    wally.manual_seed(0)
    model = wally_finder()
    image = np.random.default_rng(1).integers(0, 256, (64, 72, 3), dtype=np.uint8)
    unit = (7, 10)
    picture = plot_receptive_field(model, "conv2", image, tmp_path / "rf.png", unit=unit)
    pixels = _png(picture)
    # by hand: conv 3 (size 3, jump 1), pool 2 (size 4, jump 2), conv 3 (size 8, jump 2)
    rows = (2 * unit[0], 2 * unit[0] + 7)
    cols = (2 * unit[1], 2 * unit[1] + 7)
    assert picture.info["box"] == (rows, cols)
    for name in ("analytic", "effective"):
        panel = picture.panels[name]
        middle_row = (rows[0] + rows[1]) / 2
        middle_col = (cols[0] + cols[1]) / 2
        for x, y in ((cols[0] - 0.5, middle_row), (cols[1] + 0.5, middle_row),
                     (middle_col, rows[0] - 0.5), (middle_col, rows[1] + 0.5)):
            assert _near(pixels, *panel.to_pixel(x, y), BOX_COLOR, tolerance=2), (name, x, y)
        # well inside and well outside the box: not the box colour
        assert not _near(pixels, *panel.to_pixel(middle_col, middle_row), BOX_COLOR, 0, 30)
        assert not _near(pixels, *panel.to_pixel(cols[1] + 6, middle_row), BOX_COLOR, 1, 30)
    # the effective field: heat inside the box, the plain greyed image outside
    effective = picture.panels["effective"]
    outside = pixels[effective.to_pixel(cols[1] + 8, rows[1] + 8)[::-1]]
    assert abs(outside[0] - outside[1]) <= 2 and abs(outside[1] - outside[2]) <= 2
    inside = [pixels[effective.to_pixel(c, r)[::-1]] for r in range(rows[0] + 2, rows[1] - 1)
              for c in range(cols[0] + 2, cols[1] - 1)]
    assert max(int(p[0]) - int(p[2]) for p in inside) > 40   # magma's warm colours


def test_receptive_field_of_lenet_on_a_grey_image(tmp_path):
    image = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    picture = plot_receptive_field(wally.models.lenet(), "5", image, tmp_path / "rf.png")
    _png(picture)
    assert picture.info["unit"] == (2, 2)
    assert picture.info["box"] == ((6, 21), (6, 21))   # 16×16, jump 4, start −2


def test_receptive_field_refuses_a_unit_outside_the_map(tmp_path):
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="outside"):
        plot_receptive_field(wally_finder(), "conv1", image, tmp_path / "rf.png", unit=(50, 0))


# ----- curves -----------------------------------------------------------------------------------
def test_curves_put_a_marker_on_every_epoch(tmp_path):
    records = [
        {"epoch": 1, "train_loss": 0.9, "val_loss": 0.7, "train_accuracy": 0.5,
         "val_accuracy": 0.6},
        {"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "train_accuracy": 0.8,
         "val_accuracy": 0.7},
        {"epoch": 3, "train_loss": 0.2, "val_loss": 0.45, "train_accuracy": 0.9,
         "val_accuracy": 0.75},
    ]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")
    picture = plot_curves(metrics, tmp_path / "curves.png")
    pixels = _png(picture)
    assert picture.info["epochs"] == [1.0, 2.0, 3.0]
    for metric in ("loss", "accuracy"):
        panel = picture.panels[metric]
        for record in records:
            for split in ("train", "val"):
                x, y = panel.to_pixel(record["epoch"], record[f"{split}_{metric}"])
                assert _near(pixels, x, y, CURVE_COLORS[split], reach=1, tolerance=10), (
                    metric, split, record["epoch"])
    # a point where no curve passes: the white background
    x, y = picture.panels["loss"].to_pixel(1.0, 0.2)
    assert not _near(pixels, x, y, CURVE_COLORS["train"], reach=1, tolerance=30)


def test_curves_from_a_history_and_errors(tmp_path):
    from wally.train import History

    picture = plot_curves(History([{"epoch": 1, "train_loss": 1.0}]), tmp_path / "one.png")
    _png(picture)
    assert set(picture.info["series"]) == {"train_loss"}
    with pytest.raises(ValueError, match="no epochs"):
        plot_curves([], tmp_path / "none.png")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        plot_curves(bad, tmp_path / "bad.png")


# ----- the found-Wally picture ------------------------------------------------------------------
def test_found_picture_draws_the_box_where_the_detection_is(tmp_path):
    image = np.full((60, 80, 3), 200, dtype=np.uint8)
    heat = np.full((16, 21), -8.0, dtype=np.float32)
    heat[7, 12] = 6.0
    detection = Detection(center=(48.0, 28.0), box=(42.0, 14.0, 54.0, 42.0), confidence=0.99,
                          logit=6.0, heatmap=heat, start=(-16, -16), jump=(4, 4),
                          patch_size=32)
    truth = (10, 5, 22, 33)
    picture = plot_detection(image, detection, tmp_path / "found.png", truth=truth)
    pixels = _png(picture)
    scene = picture.panels["scene"]
    for x, y in ((42 - 0.5, 28), (54 - 0.5, 28), (48, 14 - 0.5), (48, 42 - 0.5)):
        assert _near(pixels, *scene.to_pixel(x, y), FOUND_COLOR, tolerance=2), (x, y)
    dashes = [_near(pixels, *scene.to_pixel(10 - 0.5, y), TRUTH_COLOR, tolerance=2)
              for y in range(6, 32)]
    assert 3 <= sum(dashes) < len(dashes)            # a dashed line: some on, some off
    assert not _near(pixels, *scene.to_pixel(30, 50), FOUND_COLOR, 1, 60)
    # the heatmap: hot (red) at the peak's window, the grey scene far from it
    heatmap = picture.panels["heatmap"]
    peak = pixels[heatmap.to_pixel(48, 28)[::-1]]
    assert peak[0] > 180 and peak[2] < 120, peak
    cold = pixels[heatmap.to_pixel(10, 50)[::-1]]
    assert np.ptp(cold) <= 12
    assert picture.info["heatmap_extent"][0] == pytest.approx(-2.5)


# ----- the machinery ----------------------------------------------------------------------------
def test_pictures_replace_files_atomically(tmp_path):
    path = tmp_path / "k.png"
    path.write_bytes(b"old")
    picture = plot_kernels(wally_finder(), "conv1", path)
    _png(picture)
    _no_temporary_files(tmp_path)


def test_without_matplotlib_the_error_says_what_to_install(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_kernels(wally_finder(), "conv1", tmp_path / "k.png")


def test_viz_command_line(tmp_path, capsys):
    out = tmp_path / "k.png"
    assert main(["viz", "kernels", "--model", "wally_finder", "--layer", "conv1",
                 "--out", str(out)]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), np.uint8)).save(image)
    assert main(["viz", "receptive-field", "--model", "wally_finder", "--layer", "conv2",
                 "--image", str(image), "--unit", "3", "4", "--out",
                 str(tmp_path / "rf.png")]) == 0
    assert "sees rows 6..13 and columns 8..15" in capsys.readouterr().out
    assert main(["viz", "features", "--model", "lenet", "--layer", "0", "--image", str(image),
                 "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").exists()
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"epoch": 1, "train_loss": 0.5}) + "\n")
    assert main(["viz", "curves", str(metrics.parent)]) == 0
    assert (metrics.parent / "curves.png").exists()
    capsys.readouterr()
    assert main(["viz", "kernels", "--model", "wally_finder", "--layer", "head2",
                 "--out", str(out)]) == 1
    assert "no layer named 'head2'" in capsys.readouterr().err
