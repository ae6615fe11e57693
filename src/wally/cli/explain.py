"""``wally explain``: the study note's arguments, computed.

* ``wally explain params``: parameters of a fully connected, a translation-invariant, a
  locally connected and a convolutional layer for an image, with the reduction factors (the
  note's 1000×1000-pixel argument).
* ``wally explain equivariance MODEL``: layer by layer, how far ``f(shift(x))`` is from
  ``shift(f(x))`` (and the same for rotations); without MODEL, p4cnn's logits, exactly
  invariant to 90° turns, beside a plain CNN's, at 90°, 180°, 270°, 15° and 45°.
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
from wally.cli._explain_equivariance import register_topic as register_equivariance
from wally.cli._explain_equivariance import run_equivariance, smooth_image  # noqa: F401
from wally.cli._explain_erf import register_topic as register_erf
from wally.cli._explain_graph import register_topic as register_graph
from wally.cli._explain_locality import register_topic as register_locality
from wally.cli.summary import _positive_int


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

    register_equivariance(topics)
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
