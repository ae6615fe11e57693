"""``wally find IMAGE --checkpoint C``: find Wally in an image file with a trained finder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError

DEFAULT_CHECKPOINT = "wally-demo/wally_finder.safetensors"
PICTURE_PIXELS = 1 << 20
"""found.png draws at most this many of the image's pixels (every k-th row and column of a
larger image; the picture's panels are 420 pixels tall): matplotlib needs about 130 bytes per
pixel drawn, so drawing takes at most about 130 MB whatever the image's size."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "find", help="find Wally in an image with a trained finder",
        description="Run a trained wally_finder over IMAGE (any size), print where the peak "
                    "of its heatmap is (box, centre, confidence) and draw found.png.",
    )
    parser.add_argument("image", metavar="IMAGE", help="an image file (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, metavar="C",
                        help=f"a finder checkpoint (default: {DEFAULT_CHECKPOINT}, what "
                             "`wally demo` writes)")
    parser.add_argument("--out", default="wally-find", metavar="DIR",
                        help="folder for found.png (default: wally-find)")
    parser.add_argument("--no-picture", action="store_true", help="print only; draw nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wally.apps.finder import check_scene_size, find_wally
    from wally.cli._model_source import load_model, read_image
    from wally.models import model_config

    if not Path(args.checkpoint).exists():
        hint = " (run `wally demo` first)" if args.checkpoint == DEFAULT_CHECKPOINT else ""
        raise CommandError(f"no checkpoint at {args.checkpoint}{hint}")
    model = load_model(args.checkpoint)
    try:
        name = model_config(model)["name"]
    except ValueError:
        name = type(model).__name__
    if name != "wally_finder":
        raise CommandError(f"{args.checkpoint} holds a {name}, not a wally_finder")
    width, height = _image_size(args.image)
    try:  # before decoding: an image the finder would take hours over is refused at once
        check_scene_size(model, height, width)
    except ValueError as error:
        raise CommandError(f"{args.image}: {error}") from None
    image = read_image(args.image)
    patch = int(model.input_size[-1])
    detection = find_wally(model, image)
    x0, y0, x1, y1 = detection.box
    cx, cy = detection.center
    picture = None
    if not args.no_picture:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise CommandError("drawing found.png needs matplotlib: pip install matplotlib "
                               "(or pass --no-picture)")
        from wally.viz import plot_detection

        picture = Path(args.out) / "found.png"
        try:
            drawn, drawn_detection, step = _for_picture(image, detection)
            scale = f" (drawn at 1/{step} scale)" if step > 1 else ""
            plot_detection(drawn, drawn_detection, picture, title=f"{Path(args.image).name}: "
                           f"found at ({cx:.0f}, {cy:.0f}), confidence "
                           f"{detection.confidence:.3f}{scale}")
        except OSError as error:
            raise CommandError(f"cannot write {picture}: {error.strerror or error}") from None
    if args.json:
        print(json.dumps({"image": args.image, "box": [round(v, 2) for v in detection.box],
                          "center": [round(cx, 2), round(cy, 2)],
                          "confidence": round(detection.confidence, 6),
                          "picture": None if picture is None else str(picture)}))
        return 0
    height, width = image.shape[:2]
    print(f"Wally is at box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}), centre ({cx:.1f}, "
          f"{cy:.1f}), confidence {detection.confidence:.3f}  [{width}×{height} image, "
          f"{detection.heatmap.size:,} windows of {patch}×{patch}]")
    if detection.confidence < 0.5:
        print("the finder is not sure: the best window scores below 0.5, so he may not be "
              "in this picture")
    if picture is not None:
        print(f"wrote {picture}")
    return 0


def _image_size(path: str) -> tuple[int, int]:
    """``(width, height)`` from the image's header; a :class:`CommandError` when it can't be
    read (as ``read_image`` words it)."""
    from wally.cli._model_source import require_file
    from wally.io.images import image_size

    require_file(path)
    try:
        return image_size(path)
    except ImportError as error:
        raise CommandError(str(error)) from None
    except (OSError, ValueError) as error:
        message = str(error)  # wally's own errors name the file already
        raise CommandError(message if message.startswith(f"{path}:")
                           else f"cannot read {path} as an image: {message}") from None


def _for_picture(image: Any, detection: Any) -> tuple[Any, Any, int]:
    """The image and the detection to draw, and ``k``: every ``k``-th pixel of an image of more
    than :data:`PICTURE_PIXELS`, with the detection's pixel coordinates divided by ``k``; a
    heatmap of more than a quarter as many units drawn as the maximum of blocks of units (so the
    peak still shows)."""
    import dataclasses
    import math

    from wally.backend import xp

    height, width = image.shape[:2]
    step = math.ceil(math.sqrt(height * width / PICTURE_PIXELS))
    rows, cols = detection.heatmap.shape
    block = math.ceil(math.sqrt(rows * cols / (PICTURE_PIXELS // 4)))
    if step <= 1 and block <= 1:
        return image, detection, 1
    step, block = max(step, 1), max(block, 1)
    heat = detection.heatmap
    if block > 1:
        padded = xp.full((-(-rows // block) * block, -(-cols // block) * block), -xp.inf,
                         dtype=heat.dtype)
        padded[:rows, :cols] = heat
        heat = padded.reshape(padded.shape[0] // block, block, -1, block).max(axis=(1, 3))
    changes: dict[str, Any] = {
        "center": tuple(v / step for v in detection.center),
        "box": tuple(v / step for v in detection.box),
        # a block's unit sits at the centre of the units it stands for
        "start": tuple((v + j * (block - 1) / 2) / step
                       for v, j in zip(detection.start, detection.jump)),
        "jump": tuple(j * block / step for j in detection.jump),
        "patch_size": detection.patch_size / step,
        "heatmap": heat,
    }
    return image[::step, ::step], dataclasses.replace(detection, **changes), step
