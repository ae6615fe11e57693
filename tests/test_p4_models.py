"""p4cnn and z2cnn in the zoo, the p4 Wally finder, WallyScenes(cues="invariant"), `wally explain
equivariance` without a model, and benchmarks/p4_targets.py at CI size."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import models, nn
from wally.cli import main
from wally.data.wally_scenes import INVARIANT_DECOY_KINDS, WallyPatches, WallyScenes


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with wally.no_grad():
        return model(wally.tensor(np.ascontiguousarray(x))).numpy()


# ----- p4cnn: exact invariance to quarter turns -----------------------------------------------
@settings(max_examples=8, deadline=None)
@given(h=st.integers(3, 12), w=st.integers(3, 12), k=st.sampled_from([1, 3, 5]),
       pool=st.sampled_from(["max", "mean"]), seed=st.integers(0, 2**16))
def test_p4cnn_logits_are_invariant_to_quarter_turns(h, w, k, pool, seed):
    """Odd and even sizes alike (no spatial pooling before the global one): float64 to
    rounding, i.e. 1e-12 relative, for every quarter turn."""
    wally.manual_seed(seed)
    net = models.p4cnn(in_channels=2, channels=(3, 4), kernel_size=k, pool=pool).double()
    # batch statistics (train mode) and running ones (eval) both keep the invariance
    net.train()
    x = np.random.default_rng(seed).standard_normal((3, 2, h, w))
    upright = logits(net, x)
    for quarters in (1, 2, 3):
        turned = logits(net, np.rot90(x, quarters, axes=(2, 3)))
        np.testing.assert_allclose(turned, upright, rtol=1e-12, atol=1e-12)
    net.eval()
    np.testing.assert_allclose(logits(net, np.rot90(x, 1, axes=(2, 3))), logits(net, x),
                               rtol=1e-12, atol=1e-12)


def test_p4cnn_float32_invariance_and_z2cnn_not_invariant():
    wally.manual_seed(0)
    p4, z2 = models.p4cnn().eval(), models.z2cnn().eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    turned = np.rot90(x, 1, axes=(2, 3))
    scale = np.abs(logits(p4, x)).max()
    assert np.abs(logits(p4, turned) - logits(p4, x)).max() <= 1e-5 * scale
    assert np.abs(logits(z2, turned) - logits(z2, x)).max() > 1e-3


def test_zoo_registry_and_summary():
    assert {"p4cnn", "z2cnn", "p4_wally_finder"} <= set(models.list_models())
    net = models.get_model("p4cnn", num_classes=5)
    config = models.model_config(net)
    assert config == {"name": "p4cnn", "kwargs": {
        "in_channels": 1, "num_classes": 5, "channels": [8, 16, 32], "kernel_size": 3,
        "pool": "max", "input_size": 28}}
    assert net.input_size == (1, 28, 28)
    p4_params = sum(p.numel() for p in models.p4cnn().parameters())
    z2_params = sum(p.numel() for p in models.z2cnn().parameters())
    assert (p4_params, z2_params) == (23_610, 24_170)
    report = wally.summary(net, (1, 1, 28, 28), verbose=0)
    rows = {row.name: row for row in report.layers if row.kind == "layer"}
    assert rows["lift_conv"].output_shape == [(1, 32, 28, 28)]
    assert rows["rotation_pool"].output_shape == [(1, 32, 28, 28)]
    assert rows["block2_conv"].receptive_field.size == (7, 7)
    assert report.total_params == 23_610 - 32 * 10 - 10 + 5 * 32 + 5
    with pytest.raises(ValueError, match=r"p4cnn: kernel_size must be odd"):
        models.p4cnn(kernel_size=4)
    with pytest.raises(ValueError, match=r"p4cnn: pool must be 'max' or 'mean'"):
        models.p4cnn(pool="sum")
    with pytest.raises(ValueError, match=r"z2cnn: channels must be one or more positive"):
        models.z2cnn(channels=())


# ----- the p4 finder --------------------------------------------------------------------------
def test_p4_finder_geometry_and_near_invariance():
    from wally.analysis import receptive_field

    wally.manual_seed(0)
    p4, plain = models.p4_wally_finder().eval(), models.wally_finder().eval()
    assert p4(wally.randn(1, 3, 64, 96)).shape == plain(wally.randn(1, 3, 64, 96)).shape
    field = receptive_field(p4, (3, 32, 32))
    assert (field.size, field.jump, field.start) == ((30, 30), (4, 4), (0, 0))
    p4_params = sum(p.numel() for p in p4.parameters())
    plain_params = sum(p.numel() for p in plain.parameters())
    assert 0.9 < p4_params / plain_params < 1.1
    patches = np.random.default_rng(0).random((4, 3, 30, 30)).astype(np.float32)
    # 30×30: every pool lands on an even map (30 → 15, 13 → 6 drops a row): close, not exact
    for net, bound in ((p4, 0.05), (plain, None)):
        upright = logits(net, patches).ravel()
        turned = logits(net, np.rot90(patches, 1, axes=(2, 3))).ravel()
        error = np.abs(turned - upright).max() / np.abs(upright).max()
        if bound is not None:
            assert error < bound
    with pytest.raises(ValueError, match=r"p4_wally_finder: channels must be three"):
        models.p4_wally_finder(channels=(1, 2))


# ----- WallyScenes(cues="invariant") ----------------------------------------------------------
def test_invariant_scenes_tell_wally_apart_without_stripe_direction():
    scenes = WallyScenes((160, 200), length=6, seed=4, cues="invariant")
    assert repr(scenes).endswith("cues='invariant')")
    red_white_patterns = set()
    kinds = set()
    for i in range(6):
        scene = scenes.scene(i)
        for figure in scene.figures:
            kinds.add(figure.kind)
            look = figure.look
            assert figure.kind in INVARIANT_DECOY_KINDS or figure.kind in ("crowd", "occluder")
            red, white = look.shirt
            red_and_white = (max(red) - min(red) > 120 and min(white) > 200) or \
                            (max(white) - min(white) > 120 and min(red) > 200)
            if red_and_white and look.pattern in ("horizontal", "vertical"):
                red_white_patterns.add(look.pattern)
                # no one else wears his shirt with his bobble hat
                assert look.headwear != "bobble"
    assert "vertical" not in kinds and "lookalike" in kinds
    assert red_white_patterns == {"horizontal", "vertical"}  # stripes run either way
    patches = WallyPatches(24, 6, seed=1, cues="invariant")
    assert patches.arrays()[0].shape == (6, 3, 24, 24)


def test_default_scenes_are_unchanged_by_the_option():
    default, explicit = WallyScenes((96, 128), 2, seed=3), WallyScenes(
        (96, 128), 2, seed=3, cues="orientation")
    for i in range(2):
        np.testing.assert_array_equal(default.scene(i).image, explicit.scene(i).image)
    invariant = WallyScenes((96, 128), 2, seed=3, cues="invariant")
    assert not np.array_equal(default.scene(0).image, invariant.scene(0).image)
    assert repr(default) == "WallyScenes(size=(96, 128), length=2, seed=3, format='chw')"
    with pytest.raises(ValueError, match=r"WallyScenes: cues must be one of 'orientation', "
                                         r"'invariant', got 'colour'"):
        WallyScenes(cues="colour")


# ----- wally explain equivariance (no model) --------------------------------------------------
def test_explain_equivariance_compares_p4cnn_and_z2cnn(capsys):
    assert main(["explain", "equivariance", "--input-size", "1", "12", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["model"]: row["errors"] for row in data["rows"]}
    assert list(rows["p4cnn"]) == ["rot 90°", "rot 180°", "rot 270°", "rotate 15°",
                                   "rotate 45°"]
    for label in ("rot 90°", "rot 180°", "rot 270°"):
        assert rows["p4cnn"][label] < 1e-12
        assert rows["z2cnn"][label] > 1e-4
    assert rows["p4cnn"]["rotate 15°"] > 1e-4  # no exact invariance off the quarter turns
    layers = {row["model"]: row["p4_layers"] for row in data["rows"]}
    assert layers["z2cnn"] == []
    names = [name for name, _ in layers["p4cnn"]]
    assert names[:2] == ["lift_conv: P4ConvZ2", "lift_bn: P4BatchNorm2d"]
    assert all(error < 1e-12 for _, error in layers["p4cnn"])  # equivariant layer by layer
    assert main(["explain", "equivariance", "--input-size", "1", "12", "12",
                 "--angles"]) == 0
    out = capsys.readouterr().out
    assert "p4cnn" in out and "rot 270°" in out and "rotate" not in out.splitlines()[3]
    assert main(["explain", "equivariance", "--rotations", "45"]) == 1
    assert "multiples of 90 degrees, got 45" in capsys.readouterr().err


# ----- benchmarks/p4_targets.py at CI size ----------------------------------------------------
def test_turn_scene_moves_the_box_centre():
    from benchmarks.p4_targets import turn_scene

    image = np.zeros((6, 10, 3), dtype=np.uint8)
    image[1, 7] = 255  # the pixel [7, 8) × [1, 2): centre (7.5, 1.5)
    box = (7, 1, 8, 2)
    for quarters in range(4):
        turned, (cx, cy) = turn_scene(image, box, quarters)
        row, col = (int(v) for v in np.argwhere(turned[..., 0] == 255)[0])
        assert (cx, cy) == (col + 0.5, row + 0.5)


def test_digits_target_ci_size():
    pytest.importorskip("sklearn")
    from benchmarks.p4_targets import digits_target

    result = digits_target(epochs=1, limit=120, channels=(4, 8))
    p4, z2 = result["models"]["p4cnn"], result["models"]["z2cnn"]
    assert p4["turned"] == p4["upright"]  # invariant: the same predictions
    assert 0.4 < p4["parameters"] / z2["parameters"] < 1.1
