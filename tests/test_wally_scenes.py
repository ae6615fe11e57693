"""The Where's-Wally scene generator: determinism, boxes, Wally's own pixels, any size, patches."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally.data import DataLoader, WallyPatches, WallyScenes
from wally.data.wally_scenes import (
    _SHIRT_BOTTOM,
    _SHIRT_TOP,
    _TORSO,
    DECOY_KINDS,
    FIGURE_HEIGHT,
    FIGURE_WIDTH,
    _crowd_look,
    _render,
    make_scene,
    wally_look,
)


def _red(pixels: np.ndarray) -> np.ndarray:
    """Wally's red: strong red, little green and blue."""
    p = pixels.astype(np.int32)
    return (p[..., 0] > 150) & (p[..., 1] < 90) & (p[..., 2] < 90)


def _white(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.int32) > 200).all(axis=-1)


def _variation(shirt: np.ndarray) -> tuple[float, float]:
    """How much the colour changes along each row, and how much from row to row."""
    pixels = shirt.astype(np.float64)
    along_rows = float(pixels.std(axis=1).mean())
    down_columns = float(pixels.std(axis=0).mean())
    return along_rows, down_columns


def _shirt_rows_cols(box: tuple[int, int, int, int], scale: float) -> tuple[slice, slice]:
    """The inside of Wally's torso (a margin of a pixel kept clear of anti-aliased edges)."""
    x0, y0, _, _ = box
    rows = slice(y0 + int(np.ceil(_SHIRT_TOP * scale)) + 1, y0 + int(_SHIRT_BOTTOM * scale) - 1)
    cols = slice(x0 + int(np.ceil((_TORSO[0] - 0.6) * scale)) + 1,
                 x0 + int((_TORSO[1] - 0.6) * scale) - 1)
    return rows, cols


# ----- determinism -------------------------------------------------------------------------------
def test_same_seed_same_scene_in_any_reading_order():
    a = WallyScenes((96, 128), length=6, seed=3, format="hwc")
    b = WallyScenes((96, 128), length=6, seed=3, format="hwc")
    later = b[5]
    for i in range(6):
        image, box = a[i]
        assert image.dtype == np.uint8 and image.shape == (96, 128, 3)
        assert box.dtype == np.int64 and box.shape == (4,)
    image5, box5 = a[5]
    np.testing.assert_array_equal(image5, later[0])
    np.testing.assert_array_equal(box5, later[1])
    np.testing.assert_array_equal(a[-1][0], image5)


def test_different_seeds_and_indices_differ():
    a = WallyScenes((96, 128), length=3, seed=3, format="hwc")
    b = WallyScenes((96, 128), length=3, seed=4, format="hwc")
    assert not np.array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[0][0], a[1][0])


def test_float_chw_matches_uint8_hwc():
    tensor, box = WallyScenes((64, 80), length=1, seed=1)[0]
    stored, same_box = WallyScenes((64, 80), length=1, seed=1, format="hwc")[0]
    assert isinstance(tensor, wally.Tensor) and tensor.dtype == wally.float32
    assert tuple(tensor.shape) == (3, 64, 80)
    np.testing.assert_allclose(tensor.numpy(), stored.transpose(2, 0, 1) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(box, same_box)


# ----- the box and Wally's pixels ---------------------------------------------------------------
@pytest.mark.parametrize("size", [(40, 20), (64, 200), (257, 129), (31, 300)])
def test_any_size_and_the_box_is_inside(size):
    scenes = WallyScenes(size, length=4, seed=11, scale=(0.8, 1.0))
    for i in range(4):
        scene = scenes.scene(i)
        assert scene.image.shape == (*size, 3)
        x0, y0, x1, y1 = scene.box
        assert 0 <= x0 < x1 <= size[1] and 0 <= y0 < y1 <= size[0]
        # the box is one figure at Wally's scale, give or take the anti-aliased border
        assert abs((x1 - x0) - FIGURE_WIDTH * scene.scale) <= 2
        assert abs((y1 - y0) - FIGURE_HEIGHT * scene.scale) <= 2


def test_too_small_a_scene_is_refused_with_the_size_needed():
    with pytest.raises(ValueError, match="too small for Wally"):
        WallyScenes((20, 20), length=1, scale=1.0).scene(0)
    with pytest.raises(ValueError, match="size must be"):
        WallyScenes((0, 20))


def test_wallys_visible_pixels_lie_in_his_box_and_nowhere_else():
    scenes = WallyScenes((120, 160), length=12, seed=5)
    for i in range(12):
        scene = scenes.scene(i)
        x0, y0, x1, y1 = scene.box
        outside = scene.visible.copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() <= 0.25  # only anti-aliased fringes may poke out
        inside = scene.visible[y0:y1, x0:x1]
        assert inside.sum() > 0.5 * (1 - scene.occluded) * (x1 - x0) * (y1 - y0) * 0.5
        assert 0 <= scene.occluded < 0.75


def test_his_shirt_is_red_and_white_with_horizontal_stripes():
    for seed in range(4):
        rng = np.random.default_rng(seed)
        # drawn big (stripes 4 to 5 pixels wide) so that most pixels are pure red or white
        scene = make_scene(rng, 100, 60, density=0.0, occlusion=0.0, scale=(2.0, 2.4))
        rows, cols = _shirt_rows_cols(scene.box, scene.scale)
        shirt = scene.image[rows, cols]
        red, white = _red(shirt), _white(shirt)
        assert red.mean() > 0.2 and white.mean() > 0.2
        # horizontal stripes: colours change down the shirt, not across it
        along_rows, down_columns = _variation(shirt)
        assert down_columns > 5 * along_rows, (along_rows, down_columns)
        assert _red(shirt).any(axis=1).sum() < len(shirt)   # some rows hold no red at all
        # under the hat: his blue trousers
        x0, _, x1, y1 = scene.box
        legs = scene.image[y1 - int(5 * scene.scale):y1 - int(3 * scene.scale), x0:x1]
        blue = (legs[..., 2].astype(int) > 120) & (legs[..., 0].astype(int) < 90)
        assert blue.mean() > 0.3


def test_vertical_decoy_stripes_run_the_other_way():
    rng = np.random.default_rng(0)
    look = _crowd_look(rng, "vertical")
    premultiplied, alpha = _render(look, 1.2)
    top, bottom = int(np.ceil(_SHIRT_TOP * 1.2)) + 1, int(_SHIRT_BOTTOM * 1.2) - 1
    left, right = int(np.ceil(_TORSO[0] * 1.2)) + 1, int(_TORSO[1] * 1.2) - 1
    shirt = premultiplied[top:bottom, left:right]
    along_rows, down_columns = _variation(shirt)
    assert along_rows > 5 * down_columns, (along_rows, down_columns)
    assert _red(shirt).mean() > 0.2 and _white(shirt).mean() > 0.2


def _dressed_as_wally(look) -> bool:
    red, white = np.array([205, 30, 40]), np.array([242, 242, 238])

    def near(colour, target):
        return np.abs(np.array(colour) - target).max() <= 30

    return (look.headwear == "bobble" and look.pattern == "horizontal"
            and {near(look.shirt[0], red), near(look.shirt[1], red)} == {True, False}
            and any(near(c, white) for c in look.shirt)
            and look.trousers[2] > 140 and look.trousers[0] < 80)


def test_exactly_one_wally_among_decoys():
    scenes = WallyScenes((160, 200), length=3, seed=2, decoys=1.0)
    assert _dressed_as_wally(wally_look())
    assert _dressed_as_wally(wally_look(np.random.default_rng(1)))
    for i in range(3):
        scene = scenes.scene(i)
        kinds = {figure.kind for figure in scene.figures}
        assert kinds - {"occluder"} <= set(DECOY_KINDS) and len(kinds) >= 4
        assert not any(_dressed_as_wally(f.look) for f in scene.figures)
    lookalikes = [f for f in scenes.scene(0).figures if f.kind == "lookalike"] + [
        f for f in scenes.scene(1).figures if f.kind == "lookalike"]
    assert lookalikes and all(f.look.pattern == "horizontal" for f in lookalikes)


def test_occlusion_hides_part_of_him_sometimes():
    hidden = [WallyScenes((120, 160), 1, seed=s, occlusion=1.0).scene(0).occluded
              for s in range(8)]
    assert all(h > 0.05 for h in hidden) and max(hidden) < 0.75
    none = [WallyScenes((120, 160), 1, seed=s, density=0.0, occlusion=0.0).scene(0).occluded
            for s in range(4)]
    assert max(none) < 1e-6


def test_a_crowd_without_wally():
    scene = make_scene(np.random.default_rng(0), 80, 80, wally=False)
    assert scene.box == (0, 0, 0, 0) and scene.visible.max() == 0


# ----- patches -----------------------------------------------------------------------------------
def test_patches_are_deterministic_and_labelled():
    patches = WallyPatches(32, length=40, seed=0, positive_fraction=0.5)
    images, labels = patches.arrays()
    assert images.shape == (40, 3, 32, 32) and images.dtype == np.float32
    assert set(labels.tolist()) == {0, 1}
    again, same = WallyPatches(32, length=40, seed=0, positive_fraction=0.5).arrays()
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, same)
    x, y = patches[3]
    np.testing.assert_allclose(x.numpy(), images[3])
    assert y == labels[3]


def test_positive_patches_have_his_shirt_in_the_middle():
    patches = WallyPatches(32, length=30, seed=1, positive_fraction=1.0, edge_fraction=0.0,
                           occlusion=0.0)
    for i in range(30):
        image, label = patches.patch(i)
        assert label == 1
        middle = image[15:21, 13:19]       # his shirt, just below his box centre
        assert _red(middle).mean() > 0.15 and _white(middle).mean() > 0.08


def test_patches_batch_with_a_data_loader():
    loader = DataLoader(WallyPatches(32, length=20, seed=2), batch_size=8)
    images, labels = next(iter(loader))
    assert tuple(images.shape) == (8, 3, 32, 32) and tuple(labels.shape) == (8,)
    scenes = DataLoader(WallyScenes((48, 64), length=4, seed=2), batch_size=4)
    images, boxes = next(iter(scenes))
    assert tuple(images.shape) == (4, 3, 48, 64) and tuple(boxes.shape) == (4, 4)


def test_bad_patch_options_are_refused():
    with pytest.raises(ValueError, match="near"):
        WallyPatches(32, near=2, jitter=2)
    with pytest.raises(ValueError, match="positive_fraction"):
        WallyPatches(32, positive_fraction=1.5)
    with pytest.raises(ValueError, match="format"):
        WallyScenes(format="nhwc")
