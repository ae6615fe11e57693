"""``wally explain``: the study note's arguments, computed.

* ``wally explain params``: parameters of a fully connected, a translation-invariant, a
  locally connected and a convolutional layer for an image, with the reduction factors (the
  note's 1000×1000-pixel argument).
* ``wally explain equivariance MODEL``: layer by layer, how far ``f(shift(x))`` is from
  ``shift(f(x))`` (and the same for rotations).
* ``wally explain cost MODEL``: per convolution, the note's cost formula (previous map's
  positions) beside the true count (output positions), with the reason they differ.
* ``wally explain erf MODEL`` / ``--stack N``: the effective receptive field (Luo et al. 2016),
  its share inside the analytic box and its radius; √n against n for a stack of convolutions.
* ``wally explain locality``: an MLP and a CNN on images and on the same images with their
  pixels permuted: the MLP does not notice, the CNN does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from wally.cli import CommandError
from wally.cli._explain_cost import register_topic as register_cost
from wally.cli._explain_erf import register_topic as register_erf
from wally.cli._explain_graph import register_topic as register_graph
from wally.cli._explain_locality import register_topic as register_locality
from wally.cli.summary import _positive_int, build_model


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain", help="the study note's arguments: parameters, equivariance, cost, effective "
                        "receptive field, locality",
        description="Compute the study note's arguments: why a convolution has so few "
                    "parameters, how translation equivariance holds layer by layer, what a "
                    "layer costs, how far a unit really sees, and why locality matters.",
    )
    topics = parser.add_subparsers(dest="topic", metavar="TOPIC")
    topics.required = True

    params = topics.add_parser(
        "params", help="fully connected vs locally connected vs convolution parameter counts",
        description="Parameters of one layer from an image to a hidden map of the same size: "
                    "fully connected, translation invariant, locally connected (locality "
                    "only) and convolutional (both), with the reduction factors.",
    )
    params.add_argument("--image-size", type=_positive_int, nargs="+", default=[1000],
                        metavar="N", help="N (square) or H W; default 1000")
    params.add_argument("--delta", type=_positive_int, default=10,
                        help="half-width Δ ≥ 1 of the window, (2Δ+1)×(2Δ+1) kernels; default 10")
    params.add_argument("--channels", type=_positive_int, nargs=2, default=[1, 1],
                        metavar=("C_IN", "C_OUT"), help="input and output channels; default 1 1")
    params.add_argument("--json", action="store_true", help="print JSON")
    params.set_defaults(func=run_params)

    equiv = topics.add_parser(
        "equivariance", help="layer-by-layer equivariance to shifts and rotations",
        description="Run MODEL on a smooth random image and on shifted (and rotated) copies, "
                    "and print for every layer the relative error between f(T x) and T' f(x) "
                    "on the units whose receptive field stays inside the image.",
    )
    equiv.add_argument("model", metavar="MODEL", help="a model name or a .safetensors checkpoint")
    equiv.add_argument("--shifts", type=int, nargs="+", default=[1, 2, 4], metavar="S",
                       help="shifts in pixels, along every spatial axis; default 1 2 4")
    equiv.add_argument("--rotations", type=int, nargs="*", default=[90], metavar="DEG",
                       help="quarter turns in degrees; default 90")
    equiv.add_argument("--angles", type=float, nargs="*", default=[5.0], metavar="DEG",
                       help="small rotation angles (bilinear, approximate); default 5")
    equiv.add_argument("--input-size", type=_positive_int, nargs="+", metavar="N",
                       help="C H W of the input (default: the model's)")
    equiv.add_argument("--batch-size", type=_positive_int, default=2)
    equiv.add_argument("--seed", type=int, default=0, help="seed of the random image")
    equiv.add_argument("--borders", action="store_true",
                       help="compare every unit, not only those whose field is inside the image")
    equiv.add_argument("--json", action="store_true", help="print JSON")
    equiv.set_defaults(func=run_equivariance)
    register_cost(topics)
    register_erf(topics)
    register_locality(topics)
    register_graph(topics)


def run_params(args: argparse.Namespace) -> int:
    from wally.analysis import parameter_counts

    if len(args.image_size) not in (1, 2):
        raise CommandError(f"--image-size takes N or H W, got {len(args.image_size)} numbers")
    size = args.image_size[0] if len(args.image_size) == 1 else tuple(args.image_size)
    counts = parameter_counts(size, args.delta, *args.channels)
    print(json.dumps(counts.to_dict(), indent=2) if args.json else counts)
    return 0


def smooth_image(shape: tuple[int, ...], seed: int) -> Any:
    """A random image with structure at several scales (white noise blurred by repeated
    3-tap box filters along each spatial axis, normalised to unit variance): interpolation
    for small rotations is meaningful on it, unlike on white noise."""
    from wally.backend import xp

    rng = xp.random.default_rng(seed)
    image = rng.standard_normal(shape)
    for _ in range(4):
        for axis in range(2, len(shape)):
            image = (image + xp.roll(image, 1, axis) + xp.roll(image, -1, axis)) / 3
    return (image - image.mean()) / image.std()


def run_equivariance(args: argparse.Namespace) -> int:
    from wally.analysis import equivariance

    model, size = build_model(args.model, args.input_size)
    if size is None:
        raise CommandError(f"{args.model} does not record its input size: pass --input-size C H W")
    dtype = next((p.dtype for p in model.parameters()), None) or "float32"
    x = smooth_image((args.batch_size, *size), args.seed).astype(dtype)
    spatial = len(size) - 1
    if spatial != 2 and (args.rotations or args.angles):
        args.rotations, args.angles = [], []
    try:
        report = equivariance(model, x, args.shifts, args.rotations, args.angles,
                              interior=not args.borders)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(report.to_json() if args.json else report)
    return 0
