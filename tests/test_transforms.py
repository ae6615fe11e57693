"""Image transforms (wally.data.transforms), checked against NumPy by hand and Pillow directly."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import wally
from wally.data import transforms as T


def pil():
    return pytest.importorskip("PIL.Image", reason="Pillow is not installed: pip install pillow")


def random_image(*shape, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


# ----- ToTensor ----------------------------------------------------------------------------------
def test_to_tensor_uint8_gray_and_colour():
    gray = random_image(5, 7)
    out = T.ToTensor()(gray)
    assert isinstance(out, wally.Tensor) and out.dtype == wally.float32 and out.shape == (1, 5, 7)
    np.testing.assert_array_equal(out.numpy()[0], gray.astype(np.float32) / np.float32(255))
    colour = random_image(4, 6, 3)
    out = T.ToTensor()(colour)
    assert out.shape == (3, 4, 6)
    np.testing.assert_array_equal(out.numpy(), colour.transpose(2, 0, 1) / np.float32(255))
    assert out.numpy().min() >= 0 and out.numpy().max() <= 1
    assert out.numpy().flags["C_CONTIGUOUS"]


def test_to_tensor_keeps_float_values_and_dtype():
    image = random_image(4, 5, 2, dtype=np.float64) * 10
    out = T.ToTensor()(image)
    assert out.dtype == wally.float64 and out.shape == (2, 4, 5)
    np.testing.assert_array_equal(out.numpy(), image.transpose(2, 0, 1))
    assert T.ToTensor()(np.array([[True, False]])).tolist() == [[[1.0, 0.0]]]


def test_to_tensor_pil_images():
    image_module = pil()
    colour = random_image(4, 6, 3)
    out = T.ToTensor()(image_module.fromarray(colour))
    np.testing.assert_array_equal(out.numpy(), colour.transpose(2, 0, 1) / np.float32(255))
    gray = random_image(3, 3)
    assert T.ToTensor()(image_module.fromarray(gray)).shape == (1, 3, 3)


def test_to_tensor_rejects_bad_input():
    with pytest.raises(ValueError, match=r"ToTensor.*\(H, W\) or \(H, W, C\).*\(2, 3, 4, 5\)"):
        T.ToTensor()(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="ToTensor.*Tensor"):
        T.ToTensor()(wally.zeros(1, 2, 2))


# ----- Normalize ---------------------------------------------------------------------------------
def test_normalize_by_hand():
    x = wally.from_numpy(random_image(3, 4, 5, dtype=np.float32))
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = T.Normalize(mean, std)(x)
    expected = (x.numpy() - np.array(mean, np.float32)[:, None, None]) / np.array(
        std, np.float32)[:, None, None]
    assert out.dtype == wally.float32
    np.testing.assert_array_equal(out.numpy(), expected)
    assert T.Normalize(0.5, 0.5)(wally.ones(2, 1, 1)).tolist() == [[[1.0]], [[1.0]]]


def test_normalize_errors():
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize((0.5,), (0.0,))
    with pytest.raises(TypeError, match="float tensor"):
        T.Normalize((0.5,), (0.5,))(wally.zeros(1, 2, 2, dtype=wally.uint8))
    with pytest.raises(ValueError, match="2 values for an image with 3 channels"):
        T.Normalize((0.5, 0.5), (1.0, 1.0))(wally.zeros(3, 2, 2))
    with pytest.raises(TypeError, match="apply ToTensor first"):
        T.Normalize((0.5,), (0.5,))(np.zeros((1, 2, 2), np.float32))


# ----- Resize ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(28, 28), (20, 40), (45, 30)])
def test_resize_uint8_matches_pillow(shape):
    image_module = pil()
    image = random_image(*shape, seed=1)
    out = T.Resize(14)(image)
    height, width = shape
    # One int sets the shorter side; the longer is int(size * long / short).
    if width <= height:
        expected_size = (14, int(14 * height / width))
    else:
        expected_size = (int(14 * width / height), 14)
    reference = np.asarray(image_module.fromarray(image).resize(
        expected_size, image_module.Resampling.BILINEAR))
    assert out.dtype == np.uint8 and out.shape == reference.shape
    np.testing.assert_array_equal(out, reference)


def test_resize_rgb_and_pair_size_match_pillow():
    image_module = pil()
    image = random_image(32, 24, 3, seed=2)
    out = T.Resize((16, 20))(image)
    reference = np.asarray(image_module.fromarray(image).resize(
        (20, 16), image_module.Resampling.BILINEAR))
    assert out.shape == (16, 20, 3)
    np.testing.assert_array_equal(out, reference)


def test_resize_float_images_and_tensors_match_pillow_float_mode():
    image_module = pil()
    image = random_image(3, 10, 12, dtype=np.float32)

    def reference(plane, size):
        return np.asarray(image_module.fromarray(plane).resize(
            size, image_module.Resampling.BILINEAR))

    out = T.Resize((5, 7))(wally.from_numpy(image))
    assert isinstance(out, wally.Tensor) and out.shape == (3, 5, 7)
    assert out.dtype == wally.float32
    for c in range(3):
        np.testing.assert_array_equal(out.numpy()[c], reference(image[c], (7, 5)))
    hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
    out = T.Resize((5, 7))(hwc)
    assert out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out[:, :, 1], reference(image[1], (7, 5)))


def test_resize_pil_input_and_max_size():
    image_module = pil()
    picture = image_module.fromarray(random_image(10, 20))
    out = T.Resize(5)(picture)
    assert out.size == (10, 5)
    assert T.Resize(10, max_size=15)(random_image(10, 40)).shape == (3, 15)
    with pytest.raises(ValueError, match="max_size"):
        T.Resize((10, 10), max_size=20)


def test_resize_without_pillow_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"pillow.*wally-cnn\[data\]"):
        T.Resize(4)(random_image(8, 8))


# ----- RandomCrop --------------------------------------------------------------------------------
def replay_corner(state, height, width, size):
    """The (i, j) that RandomCrop should draw from a generator in ``state``."""
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return (int(rng.integers(0, height - size[0] + 1)), int(rng.integers(0, width - size[1] + 1)))


def test_random_crop_window_is_the_drawn_one():
    image = random_image(10, 12, 3)
    wally.manual_seed(4)
    state = wally.get_rng_state()
    out = T.RandomCrop((6, 5))(image)
    i, j = replay_corner(state, 10, 12, (6, 5))
    np.testing.assert_array_equal(out, image[i:i + 6, j:j + 5])
    assert out.flags["C_CONTIGUOUS"]


def test_random_crop_padding_forms_and_fill():
    image = np.full((4, 5), 9, np.uint8)
    crop = T.RandomCrop((4 + 2 + 6, 5 + 1 + 3), padding=(1, 2, 3, 6), fill=7)
    out = crop(image)  # the window is the whole padded image: no draw
    expected = np.full((12, 9), 7, np.uint8)
    expected[2:6, 1:6] = 9
    np.testing.assert_array_equal(out, expected)
    assert T.RandomCrop(6, padding=1)(image[:4, :4]).shape == (6, 6)
    assert T.RandomCrop(8, padding=(2, 1))(np.zeros((6, 4), np.uint8)).shape == (8, 8)
    colour = np.zeros((2, 2, 3), np.uint8)
    padded = T.RandomCrop(4, padding=1, fill=(1, 2, 3))(colour)
    assert padded[0, 0].tolist() == [1, 2, 3] and padded[1, 1].tolist() == [0, 0, 0]


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric"])
def test_random_crop_padding_modes_match_numpy_pad(mode):
    image = random_image(5, 6)
    out = T.RandomCrop((9, 10), padding=2, padding_mode=mode)(image)
    np.testing.assert_array_equal(out, np.pad(image, 2, mode=mode))


def test_random_crop_tensor_and_pad_if_needed():
    x = wally.from_numpy(random_image(2, 3, 4, dtype=np.float32))
    state = wally.get_rng_state()
    out = T.RandomCrop((3, 8), pad_if_needed=True)(x)
    assert isinstance(out, wally.Tensor) and out.shape == (2, 3, 8)
    # As torchvision: a too-narrow image is padded by the shortfall on *both* sides.
    padded = np.zeros((2, 3, 12), np.float32)
    padded[:, :, 4:8] = x.numpy()
    i, j = replay_corner(state, 3, 12, (3, 8))
    np.testing.assert_array_equal(out.numpy(), padded[:, i:i + 3, j:j + 8])


def test_random_crop_errors_and_no_draw_for_whole_image():
    with pytest.raises(ValueError, match=r"crop size \(5, 5\) is larger.*\(4, 4\)"):
        T.RandomCrop(5)(np.zeros((4, 4), np.uint8))
    state = wally.get_rng_state()
    T.RandomCrop(4)(np.zeros((4, 4), np.uint8))
    assert wally.get_rng_state() == state


# ----- RandomHorizontalFlip ----------------------------------------------------------------------
def test_random_horizontal_flip():
    image = random_image(3, 4, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(image), image[:, ::-1])
    assert T.RandomHorizontalFlip(0.0)(image) is image
    x = wally.from_numpy(random_image(2, 3, 4, dtype=np.float32))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x).numpy(), x.numpy()[..., ::-1])
    wally.manual_seed(0)
    flips = [T.RandomHorizontalFlip()(image) is not image for _ in range(200)]
    assert 60 < sum(flips) < 140
    wally.manual_seed(0)
    assert [T.RandomHorizontalFlip()(image) is not image for _ in range(200)] == flips


# ----- Compose, Lambda and the batched path ------------------------------------------------------
def test_compose_and_lambda():
    pipeline = T.Compose([T.ToTensor(), T.Lambda(lambda x: x * 2), T.Normalize((1.0,), (1.0,))])
    out = pipeline(np.full((2, 2), 255, np.uint8))
    assert out.tolist() == [[[1.0, 1.0], [1.0, 1.0]]]
    with pytest.raises(TypeError, match="callable"):
        T.Lambda(3)
    assert "ToTensor" in repr(pipeline)


@pytest.mark.parametrize("shape", [(6, 9, 9), (6, 9, 9, 3)])
def test_batched_transform_equals_stacked_items(shape):
    pil()
    images = random_image(*shape, seed=5)
    pipeline = T.Compose([T.Resize(5), T.ToTensor(), T.Normalize(0.5, 0.25)])
    batch, channel_first = pipeline._batch((images, False))
    items = np.stack([pipeline(image).numpy() for image in images])
    assert channel_first and batch.dtype == items.dtype
    np.testing.assert_array_equal(batch, items)
    assert T.Compose([T.RandomHorizontalFlip(), T.ToTensor()])._batch((images, False)) is None
