"""``wally find IMAGE --checkpoint C``: find Wally in an image file with a trained finder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError

DEFAULT_CHECKPOINT = "wally-demo/wally_finder.safetensors"


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
    from wally.cli._model_source import load_model, read_image
    from wally.models import model_config
    from wally.models.wally_finder import find_wally

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
            plot_detection(image, detection, picture, title=f"{Path(args.image).name}: found "
                           f"at ({cx:.0f}, {cy:.0f}), confidence {detection.confidence:.3f}")
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
