"""The Wally finder (fully convolutional: trained on patches, run on scenes of any size) and
``wally demo`` / ``wally find`` end to end, in a reduced configuration."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import wally
from wally import nn
from wally.apps.finder import PatchClassifier, find_wally, heatmap
from wally.cli import main
from wally.models import get_model, model_config
from wally.models.wally_finder import wally_finder


# ----- the finder -------------------------------------------------------------------------------
def test_the_finder_is_fully_convolutional_with_a_1x1_head():
    finder = wally_finder()
    kinds = {type(m) for m in finder.modules()}
    assert nn.Linear not in kinds and nn.Flatten not in kinds
    assert not any("Adaptive" in kind.__name__ for kind in kinds)
    head = finder.head
    assert isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1) and head.out_channels == 1
    assert list(dict(finder.named_children()))[-1] == "head"


@pytest.mark.parametrize("height, width", [(32, 32), (33, 47), (64, 96), (120, 37)])
def test_the_heatmap_size_follows_the_input_size(height, width):
    finder = wally_finder().eval()
    with wally.no_grad():
        out = finder(wally.randn(2, 3, height, width))
    # one unit per window of the receptive field (30 pixels), every 4 pixels
    assert tuple(out.shape) == (2, 1, (height - 30) // 4 + 1, (width - 30) // 4 + 1)


def test_every_heatmap_unit_is_the_patch_under_it():
    """Translation invariance: unit (i, j) of a scene gives the logit of the patch at
    (4i, 4j) on its own; the same weights look at every window."""
    finder = wally_finder()
    for p in finder.parameters():       # weights and batch-norm statistics of a trained look
        p.array[...] = np.random.default_rng(p.array.size).normal(0, 0.3, p.shape)
    finder.bn2.running_mean.array[...] = 0.1
    finder.eval()
    scene = wally.randn(1, 3, 72, 88)
    with wally.no_grad():
        logits = finder(scene).numpy()[0, 0]
        for i, j in [(0, 0), (3, 5), (10, 14), (7, 2)]:
            patch = scene[:, :, 4 * i:4 * i + 32, 4 * j:4 * j + 32]
            np.testing.assert_allclose(finder(patch).numpy()[0, 0, 0, 0], logits[i, j],
                                       rtol=1e-4, atol=1e-5)


def test_registry_rebuilds_the_finder_and_other_patch_sizes():
    finder = get_model("wally_finder", patch_size=40)
    config = model_config(finder)
    assert config["name"] == "wally_finder" and config["kwargs"]["patch_size"] == 40
    assert json.loads(json.dumps(config)) == config
    assert finder.input_size == (3, 40, 40)
    with wally.no_grad():
        assert tuple(finder.eval()(wally.randn(1, 3, 40, 40)).shape) == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="patch_size"):
        wally_finder(patch_size=8)


def test_patch_classifier_is_binary_cross_entropy_on_the_logit():
    finder = wally_finder()
    x = wally.randn(4, 3, 32, 32)
    y = wally.tensor([0, 1, 1, 0])
    two = PatchClassifier(finder)(x)
    assert tuple(two.shape) == (4, 2)
    z = finder(x).flatten()
    expected = nn.functional.binary_cross_entropy_with_logits(z, y.float())
    np.testing.assert_allclose(nn.functional.cross_entropy(two, y).item(), expected.item(),
                               rtol=1e-5)


def test_the_heatmap_covers_the_whole_image_up_to_its_border():
    finder = wally_finder()
    logits, pad = heatmap(finder, np.zeros((50, 70, 3), dtype=np.uint8))
    assert pad == 16 and logits.shape == ((50 + 2) // 4 + 1, (70 + 2) // 4 + 1)
    detection = find_wally(finder, np.zeros((50, 70, 3), dtype=np.uint8))
    assert detection.unit_center(0, 0) == (0.0, 0.0)        # unit (0, 0): the corner pixel
    assert detection.unit_center(2, 3) == (12.0, 8.0)
    x0, y0, x1, y1 = detection.box
    assert (x0 + x1) / 2 == pytest.approx(detection.center[0])
    assert 0 < detection.confidence < 1


# ----- the demo and find, end to end --------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    pytest.importorskip("matplotlib")
    pytest.importorskip("safetensors")
    out = tmp_path_factory.mktemp("demo")
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--out", str(out), "--patches", "600", "--val-patches", "100",
                     "--epochs", "2", "--scene-size", "96", "128", "--seed", "3"])
    return code, out, buffer.getvalue()


def test_demo_writes_its_pictures_and_checkpoint(demo_run):
    code, out, printed = demo_run
    assert code == 0
    for name in ("found.png", "curves.png", "scene.png", "wally_finder.safetensors",
                 "metrics.jsonl"):
        assert (out / name).exists(), name
    from PIL import Image

    with Image.open(out / "found.png") as image:
        assert image.format == "PNG" and image.size[0] > 600
    with Image.open(out / "scene.png") as image:
        assert image.size == (128, 96)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["train_accuracy"] is not None


def test_demo_prints_the_summary_and_where_it_found_him(demo_run):
    _, _, printed = demo_run
    assert "conv3: Conv2d" in printed and "Parameters: 79,169" in printed
    match = re.search(r"Wally is at box \((-?\d+), (-?\d+), (-?\d+), (-?\d+)\), centre "
                      r"\((-?[\d.]+), (-?[\d.]+)\), confidence ([\d.]+)", printed)
    assert match, printed[-600:]
    x0, y0, x1, y1 = (int(v) for v in match.groups()[:4])
    assert x1 - x0 == pytest.approx(11, abs=1) and y1 - y0 == pytest.approx(28, abs=1)
    assert 0 < float(match.group(7)) <= 1
    assert "truth: box" in printed and "wrote" in printed


def test_find_reuses_the_demo_checkpoint(demo_run, tmp_path, capsys):
    _, out, printed = demo_run
    capsys.readouterr()
    code = main(["find", str(out / "scene.png"), "--checkpoint",
                 str(out / "wally_finder.safetensors"), "--json", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (tmp_path / "found.png").exists() and result["picture"] == str(tmp_path / "found.png")
    # the same finder on the same pixels: the same place as the demo said
    centre = re.search(r"centre \((-?[\d.]+), (-?[\d.]+)\)", printed)
    assert centre is not None
    assert result["center"] == pytest.approx([float(centre.group(1)), float(centre.group(2))],
                                             abs=0.06)


def test_find_explains_what_is_wrong(tmp_path, capsys):
    assert main(["find", str(tmp_path / "none.png"), "--checkpoint",
                 str(tmp_path / "none.safetensors")]) == 1
    assert "no checkpoint at" in capsys.readouterr().err
    pytest.importorskip("safetensors")
    from wally.io import save_checkpoint

    save_checkpoint(tmp_path / "lenet.safetensors", wally.models.lenet())
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["find", str(tmp_path / "x.png"), "--checkpoint",
                 str(tmp_path / "lenet.safetensors")]) == 1
    assert "holds a lenet, not a wally_finder" in capsys.readouterr().err


def test_demo_refuses_bad_sizes(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--scene-size", "30", "30"]) == 1
    assert "--scene-size" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--epochs", "0"]) == 1
