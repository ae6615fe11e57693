"""``wally viz kernels|features|receptive-field|curves``: pictures of what a network sees."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from wally.cli import CommandError, missing_package

EPILOG = """\
examples:
  wally viz kernels --checkpoint wally-demo/wally_finder.safetensors --layer conv1
  wally viz features --checkpoint wally-demo/wally_finder.safetensors --layer conv1 \\
      --image wally-demo/scene.png
  wally viz receptive-field --model lenet --layer 5 --image digit.png --unit 2 2
  wally viz curves runs/lenet-synthetic/metrics.jsonl
Layer names are those of the model's named_modules() (`wally summary MODEL` lists them).
"""


def register(subparsers: Any) -> None:
    from wally.cli._model_source import add_model_arguments

    parser = subparsers.add_parser(
        "viz", help="draw kernels, feature maps, receptive fields or training curves (PNG)",
        description="Draw what a network learned and sees, as PNG pictures (needs matplotlib).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_subparsers(dest="picture", metavar="PICTURE", required=True)

    kernels = kinds.add_parser("kernels", help="the kernels of a convolution layer, as a grid")
    add_model_arguments(kernels)
    kernels.add_argument("--layer", required=True, help="a convolution layer, e.g. conv1")
    kernels.add_argument("--mode", choices=("auto", "rgb", "channels"), default="auto",
                         help="rgb: one colour tile per kernel (3 input channels); channels: "
                              "one tile per (out, in) pair (default: auto)")
    kernels.add_argument("--out", metavar="PNG", help="default: kernels-LAYER.png")
    kernels.set_defaults(func=run_kernels)

    features = kinds.add_parser("features",
                                help="a layer's feature maps and activation maps for an image")
    add_model_arguments(features)
    features.add_argument("--layer", required=True, help="a convolution layer, e.g. conv1")
    features.add_argument("--image", required=True, help="an image file")
    features.add_argument("--activation", metavar="LAYER",
                          help="the activation layer to show (default: the first after --layer)")
    features.add_argument("--max-maps", type=int, default=32, metavar="N",
                          help="channels drawn at most (32)")
    features.add_argument("--out", metavar="PNG", help="default: features-LAYER.png")
    features.set_defaults(func=run_features)

    field = kinds.add_parser("receptive-field",
                             help="one unit's analytic and effective receptive field")
    add_model_arguments(field)
    field.add_argument("--layer", default="",
                       help="the layer whose unit is drawn (default: the model's output)")
    field.add_argument("--image", required=True, help="an image file")
    field.add_argument("--unit", type=int, nargs=2, metavar=("ROW", "COL"),
                       help="the unit in the layer's output (default: the centre)")
    field.add_argument("--channel", type=int,
                       help="back-propagate from this channel only (default: all)")
    field.add_argument("--out", metavar="PNG", help="default: receptive-field-LAYER.png")
    field.set_defaults(func=run_receptive_field)

    curves = kinds.add_parser("curves", help="loss and accuracy per epoch of a run")
    curves.add_argument("metrics", metavar="METRICS",
                        help="a metrics.jsonl, or the run folder that holds one")
    curves.add_argument("--out", metavar="PNG", help="default: curves.png beside METRICS")
    curves.set_defaults(func=run_curves)


def _output(args: argparse.Namespace, default: str) -> Path:
    return Path(args.out) if args.out else Path(default.replace("/", "_").replace(".", "_")
                                                + ".png")


def _draw(what: Any, *arguments: Any, **options: Any) -> Any:
    """Call a ``wally.viz`` function, turning what the user got wrong into a CommandError."""
    try:
        return what(*arguments, **options)
    except ImportError as error:
        raise CommandError(missing_package(error)) from None
    except ValueError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot write the picture: {error.strerror or error}") from None


def _report(picture: Any) -> int:
    print(f"wrote {picture.path} ({picture.width}×{picture.height})")
    return 0


def run_kernels(args: argparse.Namespace) -> int:
    from wally.cli._model_source import load_model
    from wally.viz import plot_kernels

    model = load_model(args.checkpoint, args.model, args.seed)
    out = _output(args, f"kernels-{args.layer}")
    return _report(_draw(plot_kernels, model, args.layer, out, mode=args.mode))


def run_features(args: argparse.Namespace) -> int:
    from wally.cli._model_source import image_for_model, load_model, read_image
    from wally.viz import plot_feature_maps

    model = load_model(args.checkpoint, args.model, args.seed)
    image = image_for_model(model, read_image(args.image))
    out = _output(args, f"features-{args.layer}")
    activation = args.activation if args.activation else "auto"
    return _report(_draw(plot_feature_maps, model, args.layer, image, out,
                         activation=activation, max_maps=args.max_maps))


def run_receptive_field(args: argparse.Namespace) -> int:
    from wally.cli._model_source import image_for_model, load_model, read_image
    from wally.viz import plot_receptive_field

    model = load_model(args.checkpoint, args.model, args.seed)
    image = image_for_model(model, read_image(args.image))
    out = _output(args, f"receptive-field-{args.layer or 'output'}")
    picture = _draw(plot_receptive_field, model, args.layer, image, out, unit=args.unit,
                    channel=args.channel)
    (row0, row1), (col0, col1) = picture.info["box"]
    unit = picture.info["unit"]
    print(f"unit {list(unit)} of {args.layer or 'the output'} sees rows {row0}..{row1} and "
          f"columns {col0}..{col1} of the input")
    return _report(picture)


def run_curves(args: argparse.Namespace) -> int:
    from wally.viz import plot_curves

    metrics = Path(args.metrics)
    if metrics.is_dir():
        metrics = metrics / "metrics.jsonl"
    if not metrics.exists():
        raise CommandError(f"no metrics at {metrics}")
    out = Path(args.out) if args.out else metrics.with_name("curves.png")
    return _report(_draw(plot_curves, os.fspath(metrics), out))
