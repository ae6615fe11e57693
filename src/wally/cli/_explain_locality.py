"""``wally explain locality``: the study note's MLP argument, run.

Trains an MLP and a CNN of similar parameter count on the original images and on the same
images with one fixed random permutation of their pixels (4 trainings), prints the test
accuracies and writes a picture (``locality.png`` in ``--out``). See
:mod:`wally.analysis.locality`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError
from wally.cli.summary import _positive_int


def register_topic(topics: Any) -> None:
    parser = topics.add_parser(
        "locality", help="an MLP and a CNN on original and pixel-permuted images",
        description="Permute the pixels of every image by one fixed random permutation (the "
                    "same for training and test), train an MLP and a CNN of similar size on the "
                    "original and on the permuted images, and compare their test accuracies: "
                    "the MLP's does not change (its first-layer initial weights are permuted "
                    "the same way, so both trainings are one up to float rounding), the CNN's "
                    "drops. Writes a picture of a few images and the accuracies to --out.",
    )
    parser.add_argument("--dataset", choices=["digits", "fashion-mnist"], default="digits",
                        help="digits: scikit-learn's 8x8 (built in, fast); fashion-mnist: "
                             "28x28 from --data-dir or Debian's dataset-fashion-mnist")
    parser.add_argument("--epochs", type=_positive_int, default=5, help="default 5")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the permutation, the initial weights and the batches")
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--train-limit", type=_positive_int, default=None, metavar="N",
                        help="train on the first N training images only")
    parser.add_argument("--data-dir", default=None, metavar="DIR")
    parser.add_argument("--out", default="wally-locality", metavar="DIR",
                        help="where locality.png is written; default ./wally-locality/")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_locality)


def run_locality(args: argparse.Namespace) -> int:
    from wally.analysis.locality import draw_locality, locality_experiment
    from wally.data.errors import DatasetFormatError, DatasetNotFoundError

    try:
        report = locality_experiment(args.dataset, args.epochs, args.seed,
                                     batch_size=args.batch_size, lr=args.lr,
                                     data_dir=args.data_dir, train_limit=args.train_limit)
    except (ValueError, DatasetNotFoundError, DatasetFormatError, ImportError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    try:
        picture = draw_locality(report, Path(args.out) / "locality.png")
    except (ImportError, OSError) as error:
        raise CommandError(f"explain locality: cannot write the picture: {error}") from None
    if args.json:
        print(json.dumps({**report.to_dict(), "picture": str(picture.path)}, indent=2))
    else:
        print(report)
        print(f"\npicture: {picture.path}")
    return 0
