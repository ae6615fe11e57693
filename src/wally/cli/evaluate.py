"""``wally eval``: a checkpoint's loss and accuracy on a dataset's test split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError
from wally.cli._datasets import DATASET_NAMES, DATASETS
from wally.cli.train import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a checkpoint on a dataset's test split",
        description="Load a checkpoint written by `wally train` (or save_checkpoint), rebuild "
                    "its model, and report its loss and accuracy on a dataset's test split. "
                    "The images are shaped to the model's input as in training.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a .safetensors checkpoint (pickles and .pt files are refused)")
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES, metavar="NAME",
                        help="one of: " + ", ".join(DATASETS))
    parser.add_argument("--split", choices=["test", "train"], default="test")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="evaluate on the first N examples only")
    parser.add_argument("--data-dir", default=None, metavar="DIR")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON object")
    parser.set_defaults(func=run)


def load_model(path: str) -> tuple[Any, Any]:
    """The checkpoint's rebuilt model (in eval mode) and the checkpoint itself."""
    from wally.io import CheckpointError, load_checkpoint

    if not Path(path).is_file():
        raise CommandError(f"no checkpoint at {path}")
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    model = checkpoint.model
    model.eval()
    return model, checkpoint


def input_size_of(model: Any, checkpoint: Any) -> list[int]:
    size = getattr(model, "input_size", None) or checkpoint.extra.get("input_size")
    if size is None:
        raise CommandError(f"{checkpoint.path} does not say what input size its model takes")
    return [int(n) for n in size]


def run(args: argparse.Namespace) -> int:
    from wally.cli import _images
    from wally.data import DataLoader, DatasetNotFoundError
    from wally.data.errors import DatasetFormatError
    from wally.train import evaluate

    model, checkpoint = load_model(args.checkpoint)
    input_size = input_size_of(model, checkpoint)
    try:
        dataset = _images.load(args.dataset, args.split == "train", input_size,
                                 data_dir=args.data_dir, download=args.download,
                                 limit=args.limit)
    except (DatasetNotFoundError, DatasetFormatError, ImportError, ValueError) as error:
        raise CommandError(str(error)) from None
    try:
        result = evaluate(model, DataLoader(dataset, batch_size=args.batch_size), progress=True)
    except ValueError as error:  # e.g. a model trained for other classes than the dataset's
        raise CommandError(f"evaluating {args.checkpoint} on {args.dataset}: {error}") from None
    result = {"checkpoint": args.checkpoint, "dataset": args.dataset, "split": args.split,
              **result}
    if args.json:
        print(json.dumps(result))
    else:
        accuracy = result["accuracy"] if result["accuracy"] is not None else float("nan")
        print(f"{args.split} accuracy {accuracy:.4f}  loss {result['loss']:.4f}  "
              f"({result['count']:,} images, {result['examples_per_s']:,.0f} examples/s)")
    return 0
