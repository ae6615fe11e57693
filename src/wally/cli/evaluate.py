"""``wally eval``: a checkpoint's loss and accuracy on a dataset's test split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError, missing_package, printable
from wally.cli._datasets import DATASETS, GRAPH_DATASETS, TEXT_DATASET_NAMES
from wally.cli._sequences import dataset_name
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
    parser.add_argument("--dataset", required=True, type=dataset_name, metavar="NAME",
                        help="one of: " + ", ".join([*DATASETS, *GRAPH_DATASETS,
                                                     *TEXT_DATASET_NAMES])
                        + " (a graph: its test accuracy, or Recall@20/NDCG@20), or ucr/<Name>")
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

    if not Path(path).exists():  # a FIFO or a device is refused by load_checkpoint, by name
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
    """The ``C H W`` (or ``C T``, ``L``) the model takes, as recorded, refused past wally's
    input bounds for its rank (a series may be longer than an image is wide)."""
    from wally.models.registry import check_input_size, input_spatial_dims

    size = getattr(model, "input_size", None) or checkpoint.extra.get("input_size")
    if size is None:
        raise CommandError(f"{checkpoint.path} does not say what input size its model takes")
    values = list(size) if isinstance(size, list | tuple) else [size]
    try:
        values = [int(n) if not isinstance(n, bool) and float(n) == int(n) else n
                  for n in values]
        return list(check_input_size(values, f"{checkpoint.path}: its input_size",
                                     spatial_dims=input_spatial_dims(model)))
    except (TypeError, ValueError, OverflowError) as error:
        raise CommandError(str(error)) from None


def classes_of(checkpoint: Any, count: int) -> list[str]:
    """The class names a checkpoint records (``extra["classes"]``), or ``"0"``, ``"1"``, ...:
    refused unless a list of strings."""
    classes = checkpoint.extra.get("classes")
    if classes is None:
        return [str(i) for i in range(count)]
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise CommandError(f"{checkpoint.path}: its classes are {type(classes).__name__} "
                           f"{printable(str(classes)[:60])}, not a list of class names")
    return classes


def dataset_of(checkpoint: Any) -> str | None:
    """The dataset a checkpoint was trained on (``extra["dataset"]``), refused unless a name."""
    dataset = checkpoint.extra.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise CommandError(f"{checkpoint.path}: its dataset is {type(dataset).__name__} "
                           f"{printable(str(dataset)[:60])}, not a dataset name")
    return dataset


def check_classifier(model: Any, checkpoint: Any, dataset: Any, what: str) -> None:
    """Refuse a model that does not give one row of class scores per image (the Wally finder
    gives a heatmap), before a whole dataset is run through it."""
    import wally
    from wally.backend import xp

    config = checkpoint.model_config if isinstance(checkpoint.model_config, dict) else {}
    name = config.get("name", type(model).__name__)
    first = dataset[0][0]
    array = xp.asarray(getattr(first, "array", first))[None]
    with wally.no_grad():
        output = model(wally.from_numpy(xp.ascontiguousarray(array)))
    if output.ndim != 2:
        hint = "; it is a detector: use `wally find IMAGE --checkpoint ...`" \
            if name == "wally_finder" else ""
        raise CommandError(f"{checkpoint.path}: its model ({printable(name)}) gives outputs of "
                           f"shape {tuple(output.shape)} for one image, not one row of class "
                           f"scores, so it cannot be scored on {what}{hint}")


def run(args: argparse.Namespace) -> int:
    from wally.cli import _images, _sequences, _text
    from wally.data import DataLoader, DatasetNotFoundError
    from wally.data.errors import DatasetFormatError
    from wally.train import evaluate

    model, checkpoint = load_model(args.checkpoint)
    if args.dataset in GRAPH_DATASETS:
        from wally.cli._graphs import evaluate_graph

        return evaluate_graph(args, model, checkpoint)
    vocab = _text.vocab_of(checkpoint)  # a text model's: texts are encoded as in training
    if (vocab is not None) != (args.dataset in TEXT_DATASET_NAMES):
        raise CommandError(f"{args.checkpoint} holds a {'text' if vocab else 'non-text'} model, "
                           f"and {args.dataset} is not a {'text' if vocab else 'non-text'} "
                           "dataset")
    loader_kwargs: dict[str, Any] = {}
    if _sequences.is_sequence(args.dataset):
        from wally.data import pad_collate

        input_size = input_size_of(model, checkpoint)
        dataset = _sequences.load(args.dataset, args.split == "train", args.data_dir,
                                  args.download, args.limit)
        loader_kwargs["collate_fn"] = pad_collate
        if dataset.num_channels != input_size[0]:
            raise CommandError(f"{args.checkpoint}: its model takes {input_size[0]} channels, "
                               f"{args.dataset} has {dataset.num_channels}")
    try:
        if vocab is not None:
            dataset = _text.load(args.dataset, args.split == "train", vocab,
                                 _text.reading(model, checkpoint), data_dir=args.data_dir,
                                 download=args.download, limit=args.limit,
                                 classes=checkpoint.extra.get("classes")
                                 if args.dataset == "fortunes" else None)
        elif not loader_kwargs:
            dataset = _images.load(args.dataset, args.split == "train",
                                   input_size_of(model, checkpoint), data_dir=args.data_dir,
                                   download=args.download, limit=args.limit)
    except ImportError as error:
        raise CommandError(missing_package(error)) from None
    except (DatasetNotFoundError, DatasetFormatError, ValueError) as error:
        raise CommandError(str(error)) from None
    if len(dataset) and not loader_kwargs:
        check_classifier(model, checkpoint, dataset, f"{args.dataset}'s classes")
    try:
        loader = (_text.eval_loader(dataset, args.batch_size) if vocab is not None else
                  DataLoader(dataset, batch_size=args.batch_size, **loader_kwargs))
        result = evaluate(model, loader, progress=True)
    except ValueError as error:  # e.g. a model trained for other classes than the dataset's
        raise CommandError(f"evaluating {args.checkpoint} on {args.dataset}: {error}") from None
    result = {"checkpoint": args.checkpoint, "dataset": args.dataset, "split": args.split,
              **result}
    if args.json:
        print(json.dumps(result))
    else:
        accuracy = result["accuracy"] if result["accuracy"] is not None else float("nan")
        unit = "series" if loader_kwargs else "texts" if vocab is not None else "images"
        print(f"{args.split} accuracy {accuracy:.4f}  loss {result['loss']:.4f}  "
              f"({result['count']:,} {unit}, "
              f"{result['examples_per_s']:,.0f} examples/s)")
    return 0
