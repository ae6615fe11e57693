"""``wally explain cost MODEL``: the study note's cost formula beside the true count, per
convolution, and the shares of parameters and multiply-adds in the convolutions (see
:mod:`wally.analysis.note_cost`)."""

from __future__ import annotations

import argparse
from typing import Any

from wally.cli import CommandError
from wally.cli.summary import _positive_int, build_model


def register_topic(topics: Any) -> None:
    """Add the ``cost`` topic to ``wally explain``'s sub-parsers."""
    parser = topics.add_parser(
        "cost", help="the note's conv cost k·k·c_l·c_(l-1)·m_(l-1) vs the true count",
        description="Per convolution of MODEL, the study note's multiply-adds "
                    "k·k·c_l·c_(l-1)·m_(l-1) (the previous map's positions) beside the true "
                    "k·k·(c_(l-1)/groups)·c_l·m_l (the output positions, as wally summary "
                    "counts), with the reason where they differ (stride, padding, groups); then "
                    "the shares of parameters and of multiply-adds in the convolutions.",
    )
    parser.add_argument("model", metavar="MODEL", help="a model name or a .safetensors checkpoint")
    parser.add_argument("--input-size", type=_positive_int, nargs="+", metavar="N",
                        help="C H W of one input, no batch axis (default: the model's)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_cost)


def run_cost(args: argparse.Namespace) -> int:
    from wally.analysis.note_cost import cost_formula

    if args.input_size is not None and len(args.input_size) < 2:
        raise CommandError(f"--input-size: expected C H W (no batch axis), got "
                           f"{' '.join(map(str, args.input_size))}")
    model, size = build_model(args.model, args.input_size)
    if size is None:
        raise CommandError(f"{args.model} does not record its input size: pass --input-size C H W")
    try:
        report = cost_formula(model, tuple(size), name=args.model)
    except ValueError as error:
        raise CommandError(f"running {args.model} on an input of size {tuple(size)}: "
                           f"{error}") from None
    print(report.to_json() if args.json else report)
    return 0
