"""wally.vision.transforms against torchvision (where it imports): PIL images pixel for pixel,
tensors to float rounding, printed forms exactly; randomness against wally's own generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from _torchvision import import_torchvision
from wally.vision import transforms as T
from wally.vision.transforms import functional as VF

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed: pip install pillow")


@pytest.fixture(scope="module")
def tv():
    return import_torchvision()


def pil_image(height, width, mode, seed):
    rng = np.random.default_rng(seed)
    shape = (height, width) if mode == "L" else (height, width, 3)
    return Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8))


def same_pil(ours, theirs):
    assert ours.mode == theirs.mode and ours.size == theirs.size
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def torch_tensor(array):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


images = st.tuples(st.integers(1, 13), st.integers(1, 13), st.sampled_from(["L", "RGB"]),
                   st.integers(0, 2**16))


# ----- printed forms -----------------------------------------------------------------------------
def test_reprs_match_torchvision(tv):
    import torch

    pairs = [
        ("Compose", lambda m: m.Compose([m.ToTensor(), m.Normalize((0.5,), (0.5,))])),
        ("PILToTensor", lambda m: m.PILToTensor()),
        ("Resize", lambda m: m.Resize(224)),
        ("Resize pair", lambda m: m.Resize((3, 4), antialias=False)),
        ("CenterCrop", lambda m: m.CenterCrop(10)),
        ("RandomCrop", lambda m: m.RandomCrop(32, padding=4)),
        ("RandomResizedCrop", lambda m: m.RandomResizedCrop(8)),
        ("RandomResizedCrop scale", lambda m: m.RandomResizedCrop((3, 5), scale=(0.5, 1))),
        ("RandomHorizontalFlip", lambda m: m.RandomHorizontalFlip()),
        ("RandomVerticalFlip", lambda m: m.RandomVerticalFlip(0.3)),
        ("RandomRotation", lambda m: m.RandomRotation(10)),
        ("RandomRotation all", lambda m: m.RandomRotation((3, 5), expand=True, center=(1, 2),
                                                           fill=3)),
        ("ColorJitter", lambda m: m.ColorJitter(0.5)),
        ("ColorJitter all", lambda m: m.ColorJitter(0.1, 0.2, (0.7, 1.3), 0.4)),
        ("Grayscale", lambda m: m.Grayscale()),
        ("Grayscale 3", lambda m: m.Grayscale(3)),
        ("Normalize list", lambda m: m.Normalize([0.1, 0.2], [1, 2])),
        ("Pad", lambda m: m.Pad(4)),
        ("Pad all", lambda m: m.Pad((1, 2), fill=3, padding_mode="reflect")),
        ("RandomGrayscale", lambda m: m.RandomGrayscale()),
        ("RandomApply", lambda m: m.RandomApply([m.ToTensor(), m.Grayscale()], p=0.3)),
        ("ToPILImage", lambda m: m.ToPILImage()),
        ("ToPILImage L", lambda m: m.ToPILImage("L")),
    ]
    for name, build in pairs:
        assert repr(build(T)) == repr(build(tv.transforms)), name
    assert repr(T.ConvertImageDtype(wally.float32)) == repr(
        tv.transforms.ConvertImageDtype(torch.float32))


# ----- deterministic transforms on PIL images: pixel for pixel -----------------------------------
@settings(max_examples=30)
@given(images, st.integers(1, 16), st.integers(1, 16))
def test_center_crop_matches_torchvision(tv, image, crop_height, crop_width):
    img = pil_image(*image)
    ours = T.CenterCrop((crop_height, crop_width))(img)
    same_pil(ours, tv.transforms.CenterCrop((crop_height, crop_width))(img))
    # the same window of the NumPy image and of the tensor (C, H, W)
    array = np.asarray(img)
    np.testing.assert_array_equal(T.CenterCrop((crop_height, crop_width))(array),
                                  np.asarray(ours))
    chw = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    theirs = tv.transforms.CenterCrop((crop_height, crop_width))(torch_tensor(chw))
    np.testing.assert_array_equal(
        T.CenterCrop((crop_height, crop_width))(wally.from_numpy(chw.copy())).numpy(),
        theirs.numpy())


@settings(max_examples=25)
@given(images, st.integers(1, 20), st.integers(1, 20),
       st.sampled_from(["nearest", "bilinear", "bicubic"]))
def test_resize_pil_matches_torchvision(tv, image, height, width, mode):
    img = pil_image(*image)
    interpolation = T.InterpolationMode(mode)
    theirs_mode = tv.transforms.InterpolationMode(mode)
    for size in ((height, width), height):
        same_pil(T.Resize(size, interpolation)(img),
                 tv.transforms.Resize(size, theirs_mode)(img))


@settings(max_examples=20)
@given(images)
def test_to_tensor_pil_to_tensor_grayscale_match_torchvision(tv, image):
    img = pil_image(*image)
    np.testing.assert_array_equal(T.ToTensor()(img).numpy(), tv.transforms.ToTensor()(img))
    ours = T.PILToTensor()(img)
    assert ours.dtype == wally.uint8
    np.testing.assert_array_equal(ours.numpy(), tv.transforms.PILToTensor()(img).numpy())
    for channels in (1, 3):
        same_pil(T.Grayscale(channels)(img), tv.transforms.Grayscale(channels)(img))
    np.testing.assert_array_equal(VF.hflip(img), tv.transforms.functional.hflip(img))
    np.testing.assert_array_equal(VF.vflip(img), tv.transforms.functional.vflip(img))


def test_pil_to_tensor_other_modes(tv):
    rng = np.random.default_rng(3)
    for array in (rng.integers(-5, 70000, size=(3, 4)).astype(np.int32),
                  rng.random((3, 4)).astype(np.float32)):
        img = Image.fromarray(array)
        ours, theirs = T.PILToTensor()(img), tv.transforms.PILToTensor()(img)
        assert ours.numpy().dtype == theirs.numpy().dtype
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    binary = Image.fromarray(rng.integers(0, 2, size=(3, 5)).astype(bool))
    np.testing.assert_array_equal(T.PILToTensor()(binary).numpy(),
                                  tv.transforms.PILToTensor()(binary).numpy())
    np.testing.assert_array_equal(T.ToTensor()(binary).numpy(),
                                  tv.transforms.ToTensor()(binary).numpy())


@settings(max_examples=30)
@given(images, st.floats(0, 3), st.floats(0, 3), st.floats(0, 3), st.floats(-0.5, 0.5))
def test_adjust_functions_pil_match_torchvision(tv, image, brightness, contrast, saturation,
                                                hue):
    img = pil_image(*image)
    F = tv.transforms.functional
    same_pil(VF.adjust_brightness(img, brightness), F.adjust_brightness(img, brightness))
    same_pil(VF.adjust_contrast(img, contrast), F.adjust_contrast(img, contrast))
    same_pil(VF.adjust_saturation(img, saturation), F.adjust_saturation(img, saturation))
    same_pil(VF.adjust_hue(img, hue), F.adjust_hue(img, hue))


@settings(max_examples=30)
@given(images, st.floats(-360, 360), st.sampled_from(["nearest", "bilinear", "bicubic"]),
       st.booleans(), st.sampled_from([None, (0, 0), (2, 5)]), st.sampled_from([0, 7, None]))
def test_rotate_pil_matches_torchvision(tv, image, angle, mode, expand, center, fill):
    img = pil_image(*image)
    ours = VF.rotate(img, angle, T.InterpolationMode(mode), expand, center, fill)
    theirs = tv.transforms.functional.rotate(img, angle, tv.transforms.InterpolationMode(mode),
                                             expand, center, fill)
    same_pil(ours, theirs)


@settings(max_examples=30)
@given(images, st.integers(-4, 14), st.integers(-4, 14), st.integers(1, 12),
       st.integers(1, 12), st.integers(1, 9))
def test_crop_and_resized_crop_match_torchvision(tv, image, top, left, height, width, size):
    img = pil_image(*image)
    F = tv.transforms.functional
    same_pil(VF.crop(img, top, left, height, width), F.crop(img, top, left, height, width))
    for target in (size, (size, size + 1)):
        same_pil(VF.resized_crop(img, top, left, height, width, target),
                 F.resized_crop(img, top, left, height, width, target))


@settings(max_examples=25)
@given(images, st.sampled_from([1, (2, 0), (0, 1, 2, 3)]),
       st.sampled_from(["constant", "edge", "reflect", "symmetric"]), st.sampled_from([0, 9]))
def test_pad_matches_torchvision(tv, image, padding, mode, fill):
    img = pil_image(*image)
    sides = [padding] * 4 if isinstance(padding, int) else (
        list(padding) * 2 if len(padding) == 2 else list(padding))
    if mode == "reflect" and (max(sides[0], sides[2]) >= img.width
                              or max(sides[1], sides[3]) >= img.height):
        return  # reflecting needs more pixels than the padding (torch refuses it on tensors)
    same_pil(T.Pad(padding, fill, mode)(img), tv.transforms.Pad(padding, fill, mode)(img))
    array = np.asarray(img)
    chw = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    ours = T.Pad(padding, fill, mode)(wally.from_numpy(chw.copy())).numpy()
    try:
        theirs = tv.transforms.Pad(padding, fill, mode)(torch_tensor(chw.copy())).numpy()
    except IndexError:
        # torchvision's tensor path cannot pad 'symmetric' by more than the image's size; wally
        # pads the tensor as both libraries pad the PIL image
        assert mode == "symmetric"
        padded = np.asarray(T.Pad(padding, fill, mode)(img))
        theirs = padded[None] if padded.ndim == 2 else padded.transpose(2, 0, 1)
    np.testing.assert_array_equal(ours, theirs)


def test_random_grayscale_apply_and_to_pil_image(tv):
    img = pil_image(5, 6, "RGB", 3)
    grey = tv.transforms.functional.rgb_to_grayscale(img, num_output_channels=3)
    outcomes = [np.array_equal(np.asarray(T.RandomGrayscale(0.25)(img)), np.asarray(grey))
                for _ in range(1000)]
    assert abs(np.mean(outcomes) - 0.25) < 0.05
    same_pil(T.RandomGrayscale(1.0)(img), grey)  # as many channels as the input
    assert T.RandomGrayscale(1.0)(pil_image(5, 6, "L", 0)).mode == "L"
    applied = [isinstance(T.RandomApply([T.ToTensor()], p=0.7)(img), wally.Tensor)
               for _ in range(1000)]
    assert abs(np.mean(applied) - 0.7) < 0.05
    tensor = wally.from_numpy(np.random.default_rng(0).random((3, 4, 5)).astype(np.float32))
    same_pil(T.ToPILImage()(tensor), tv.transforms.ToPILImage()(torch_tensor(tensor.numpy())))
    same_pil(T.ToPILImage("L")(tensor),
             tv.transforms.ToPILImage()(torch_tensor(tensor.numpy())).convert("L"))


# ----- random transforms: torchvision's draws, from wally's generator ----------------------------
@settings(max_examples=30)
@given(st.tuples(st.integers(3, 13), st.integers(3, 13), st.sampled_from(["L", "RGB"]),
                 st.integers(0, 2**16)), st.integers(0, 1000),
       st.sampled_from([((0.08, 1.0), (3 / 4, 4 / 3)), ((0.5, 0.9), (1.0, 2.0)),
                        ((0.2, 0.3), (0.2, 0.5))]))
def test_random_resized_crop_window_and_pixels(tv, image, seed, scale_ratio):
    scale, ratio = scale_ratio
    img = pil_image(*image)
    wally.manual_seed(seed)
    top, left, height, width = T.RandomResizedCrop.get_params(img, scale, ratio)
    assert 0 <= top and top + height <= img.height and 0 <= left and left + width <= img.width
    assert height > 0 and width > 0
    wally.manual_seed(seed)
    ours = T.RandomResizedCrop(5, scale, ratio)(img)
    same_pil(ours, tv.transforms.functional.resized_crop(img, top, left, height, width, [5, 5]))


@pytest.mark.parametrize("size, ratio", [((4, 30), (3 / 4, 4 / 3)), ((30, 4), (3 / 4, 4 / 3)),
                                         ((10, 12), (0.5, 2.0))])
def test_random_resized_crop_fallback_matches_torchvision(tv, size, ratio):
    """A scale no window can reach: every try fails, and the central window is taken."""
    img = pil_image(*size, "L", 0)
    ours = T.RandomResizedCrop.get_params(img, (5.0, 6.0), ratio)
    assert ours == tuple(tv.transforms.RandomResizedCrop.get_params(img, [5.0, 6.0], ratio))


def test_random_resized_crop_statistics():
    """Areas follow ``U(scale)`` and log aspect ratios ``U(log ratio)`` where they fit."""
    img = np.zeros((200, 200), np.uint8)
    areas, ratios = [], []
    for _ in range(400):
        _, _, height, width = T.RandomResizedCrop.get_params(img, (0.1, 0.5), (0.5, 2.0))
        areas.append(height * width / 40000)
        ratios.append(math.log(width / height))
    assert 0.1 - 0.01 <= min(areas) and max(areas) <= 0.5 + 0.01
    assert abs(np.mean(areas) - 0.3) < 0.02
    assert abs(np.mean(ratios)) < 0.1 and max(ratios) <= math.log(2) + 0.05


def test_random_transforms_repeat_under_manual_seed():
    img = pil_image(16, 16, "RGB", 1)
    pipeline = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(),
                          T.RandomVerticalFlip(), T.RandomRotation(45),
                          T.ColorJitter(0.4, 0.4, 0.4, 0.2), T.ToTensor()])
    wally.manual_seed(7)
    first = [pipeline(img).numpy() for _ in range(3)]
    wally.manual_seed(7)
    second = [pipeline(img).numpy() for _ in range(3)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # the draws do change from call to call


def test_color_jitter_draws_order_and_factors(tv):
    wally.manual_seed(3)
    jitter = T.ColorJitter(0.5, (0.2, 0.4), 0, 0.1)
    seen = set()
    for _ in range(50):
        order, b, c, s, h = jitter.get_params(jitter.brightness, jitter.contrast,
                                              jitter.saturation, jitter.hue)
        assert sorted(order) == [0, 1, 2, 3]
        seen.add(tuple(order))
        assert 0.5 <= b <= 1.5 and 0.2 <= c <= 0.4 and s is None and -0.1 <= h <= 0.1
    assert len(seen) > 10
    # the jitter applies exactly those adjustments in that order
    img = pil_image(6, 7, "RGB", 4)
    wally.manual_seed(11)
    order, *factors = jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation,
                                        jitter.hue)
    expected = img
    F = tv.transforms.functional
    adjust = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for k in order:
        if factors[k] is not None:
            expected = adjust[k](expected, factors[k])
    wally.manual_seed(11)
    same_pil(jitter(img), expected)


def test_random_rotation_angle_and_pixels(tv):
    img = pil_image(9, 11, "RGB", 5)
    rotation = T.RandomRotation((-20, 35), expand=True, fill=(1, 2, 3))
    angles = []
    for seed in range(20):
        wally.manual_seed(seed)
        angle = rotation.get_params(rotation.degrees)
        angles.append(angle)
        wally.manual_seed(seed)
        same_pil(rotation(img), tv.transforms.functional.rotate(img, angle, expand=True,
                                                                fill=[1, 2, 3]))
    assert -20 <= min(angles) and max(angles) <= 35 and len(set(angles)) == 20


def test_flips_probability():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    flips = [not np.array_equal(T.RandomVerticalFlip(0.3)(image), image) for _ in range(2000)]
    assert abs(np.mean(flips) - 0.3) < 0.04
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0)(image), image[::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(0.0)(image), image)


# ----- tensor paths: torchvision's tensor formulas -----------------------------------------------
@settings(max_examples=25)
@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3]),
       st.sampled_from([np.float32, np.float64, np.uint8]), st.floats(0, 2.5),
       st.floats(-0.5, 0.5), st.integers(0, 2**16))
def test_adjust_functions_tensor_match_torchvision(tv, height, width, channels, dtype, factor,
                                                   hue, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        array = rng.integers(0, 256, size=(channels, height, width), dtype=np.uint8)
    else:
        array = rng.random((channels, height, width)).astype(dtype)
    F = tv.transforms.functional
    ours_input, theirs_input = wally.from_numpy(array.copy()), torch_tensor(array)
    tolerance = 1 if dtype == np.uint8 else 1e-5
    cases = [(VF.adjust_brightness, F.adjust_brightness, factor),
             (VF.adjust_contrast, F.adjust_contrast, factor),
             (VF.adjust_saturation, F.adjust_saturation, factor),
             (VF.adjust_hue, F.adjust_hue, hue)]
    for ours_fn, theirs_fn, value in cases:
        ours, theirs = ours_fn(ours_input, value).numpy(), theirs_fn(theirs_input, value).numpy()
        assert ours.dtype == theirs.dtype, ours_fn.__name__
        np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64),
                                   atol=tolerance, rtol=0, err_msg=ours_fn.__name__)
    for out_channels in (1, 3):
        ours = VF.rgb_to_grayscale(ours_input, out_channels).numpy()
        theirs = F.rgb_to_grayscale(theirs_input, out_channels).numpy()
        np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64),
                                   atol=tolerance, rtol=0)


def test_convert_image_dtype_matches_torchvision(tv):
    import torch

    rng = np.random.default_rng(0)
    samples = {
        "uint8": rng.integers(0, 256, size=(2, 3, 4)).astype(np.uint8),
        "int16": rng.integers(0, 2**15, size=(2, 3, 4)).astype(np.int16),
        "int32": rng.integers(0, 2**31 - 1, size=(2, 3, 4)).astype(np.int32),
        "float32": rng.random((2, 3, 4)).astype(np.float32),
        "float64": rng.random((2, 3, 4)),
    }
    samples["float32"][0, 0, :2] = [0.0, 1.0]
    samples["uint8"][0, 0, :2] = [0, 255]
    for source, array in samples.items():
        for target in samples:
            theirs_dtype = getattr(torch, target)
            try:
                theirs = tv.transforms.functional.convert_image_dtype(torch_tensor(array),
                                                                      theirs_dtype)
            except RuntimeError:
                with pytest.raises(RuntimeError, match="ConvertImageDtype.*cannot be performed"):
                    T.ConvertImageDtype(getattr(wally, target))(wally.from_numpy(array))
                continue
            ours = T.ConvertImageDtype(getattr(wally, target))(wally.from_numpy(array))
            assert ours.numpy().dtype == theirs.numpy().dtype, (source, target)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6,
                                       err_msg=f"{source} -> {target}")


def test_tensor_resize_and_rotation_close_to_torchvision(tv):
    """Tensors are resampled by Pillow here, by torch's interpolation and grid sampling in
    torchvision: the same filters, equal to float rounding for resizing; rotations by
    multiples of 90 degrees move whole pixels, so they are equal exactly."""
    rng = np.random.default_rng(1)
    array = rng.random((3, 12, 12)).astype(np.float32)
    ours = T.Resize((7, 5))(wally.from_numpy(array.copy())).numpy()
    theirs = tv.transforms.Resize((7, 5))(torch_tensor(array)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-6)
    for angle in (90, 180, 270):
        ours = VF.rotate(wally.from_numpy(array.copy()), angle).numpy()
        np.testing.assert_array_equal(ours, np.rot90(array, angle // 90, axes=(1, 2)))
        theirs = tv.transforms.functional.rotate(torch_tensor(array), angle).numpy()
        np.testing.assert_array_equal(ours, theirs)


def test_to_pil_image_round_trip(tv):
    array = np.random.default_rng(2).random((3, 4, 5)).astype(np.float32)
    same_pil(VF.to_pil_image(wally.from_numpy(array)),
             tv.transforms.functional.to_pil_image(torch_tensor(array)))
    grey = np.random.default_rng(2).integers(0, 256, size=(1, 4, 5), dtype=np.uint8)
    same_pil(VF.to_pil_image(wally.from_numpy(grey)),
             tv.transforms.functional.to_pil_image(torch_tensor(grey)))


# ----- bad arguments: the message names the transform, the expected and the actual value ---------
def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Grayscale: num_output_channels should be 1 or 3, got 2"):
        T.Grayscale(2)
    with pytest.raises(ValueError, match=r"ColorJitter: hue values should be between "
                                         r"\(-0\.5, 0\.5\), but got \[-0\.7, 0\.7\]"):
        T.ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="ColorJitter: if brightness is a single number, it "
                                         "must be non negative, got -1"):
        T.ColorJitter(brightness=-1)
    with pytest.raises(TypeError, match="ColorJitter: contrast should be a single number or a "
                                        "list/tuple with length 2, got"):
        T.ColorJitter(contrast=(1, 2, 3))
    with pytest.raises(ValueError, match="RandomRotation: if degrees is a single number, it "
                                         "must be positive, got -3"):
        T.RandomRotation(-3)
    with pytest.raises(ValueError, match=r"RandomRotation: center must be a sequence of 2"):
        T.RandomRotation(3, center=(1,))
    with pytest.raises(ValueError, match=r"RandomResizedCrop: scale and ratio should be "
                                         r"\(min, max\), got scale=\(1, 0.5\)"):
        T.RandomResizedCrop(3, scale=(1, 0.5))
    with pytest.raises(ValueError, match=r"CenterCrop: size must be an int or a \(height, "
                                         r"width\) pair, got \(1, 2, 3\)"):
        T.CenterCrop((1, 2, 3))
    with pytest.raises(TypeError, match="PILToTensor: expected a PIL image, got ndarray"):
        T.PILToTensor()(np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError, match="ConvertImageDtype: expected a Tensor, got ndarray"):
        T.ConvertImageDtype(wally.float32)(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"adjust_saturation: expected a tensor image "
                                         r"\(\.\.\., C, H, W\) with 1 or 3 channels, got shape "
                                         r"\(2, 4, 4\)"):
        VF.adjust_saturation(wally.zeros(2, 4, 4), 0.5)
    with pytest.raises(ValueError, match=r"adjust_hue: hue_factor \(0\.9\) is not in"):
        VF.adjust_hue(wally.zeros(3, 4, 4), 0.9)
    with pytest.raises(ValueError, match="adjust_brightness: factor is not non-negative, got -1"):
        VF.adjust_brightness(wally.zeros(3, 4, 4), -1)
    with pytest.raises(ValueError, match="RandomRotation: fill .* has 2 values for an image "
                                         "with 3 channels"):
        VF.rotate(pil_image(4, 4, "RGB", 0), 10, fill=(1, 2))
    with pytest.raises(ValueError, match="Pad: padding must be an int or a sequence of 1, 2 or 4 "
                                         r"ints, got \(1, 2, 3\)"):
        T.Pad((1, 2, 3))
    with pytest.raises(ValueError, match="Pad: padding_mode should be one of"):
        T.Pad(1, padding_mode="wrap")
    with pytest.raises(ValueError, match=r"Pad: fill \(1, 2\) does not match an image of shape"):
        T.Pad(1, fill=(1, 2))(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="RandomGrayscale: p must be a probability in"):
        T.RandomGrayscale(2)
    with pytest.raises(TypeError, match="CenterCrop: expected a NumPy array, a Tensor or a PIL "
                                        "image, got list"):
        T.CenterCrop(2)([[1, 2]])


@settings(max_examples=20)
@given(images, st.integers(1, 9))
def test_functional_wrappers_match_torchvision(tv, image, size):
    import torch

    img = pil_image(*image)
    F = tv.transforms.functional
    np.testing.assert_array_equal(VF.to_tensor(img).numpy(), F.to_tensor(img).numpy())
    np.testing.assert_array_equal(VF.pil_to_tensor(img).numpy(), F.pil_to_tensor(img).numpy())
    same_pil(VF.resize(img, size), F.resize(img, size))
    same_pil(VF.center_crop(img, size), F.center_crop(img, size))
    tensor = VF.to_tensor(img)
    channels = tensor.shape[0]
    mean, std = [0.2] * channels, [0.5] * channels
    np.testing.assert_allclose(VF.normalize(tensor, mean, std).numpy(),
                               F.normalize(F.to_tensor(img), mean, std).numpy(), rtol=1e-6)
    as_uint8 = VF.pil_to_tensor(img)
    np.testing.assert_array_equal(
        VF.convert_image_dtype(as_uint8, wally.float32).numpy(),
        F.convert_image_dtype(F.pil_to_tensor(img), torch.float32).numpy())


@settings(max_examples=20)
@given(images, st.integers(1, 16), st.integers(1, 16))
def test_uint8_tensor_resize_within_one_level(tv, image, height, width):
    """uint8 tensors: Pillow here, torch's antialiased interpolation in torchvision; the same
    filter, rounded differently, so at most one grey level apart."""
    array = np.asarray(pil_image(*image))
    chw = np.ascontiguousarray(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    ours = T.Resize((height, width))(wally.from_numpy(chw.copy())).numpy()
    theirs = tv.transforms.Resize((height, width))(torch_tensor(chw.copy())).numpy()
    if width == 1:
        # torch's antialiased kernel repeats the first row when the output is one column wide
        # (see docs/COMPATIBILITY.md): compare with Pillow on the PIL image instead
        resized = np.asarray(pil_image(*image).resize((width, height), Image.BILINEAR))
        theirs = resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)
    assert ours.dtype == theirs.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
