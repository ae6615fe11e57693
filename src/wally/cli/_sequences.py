"""Sequence datasets on the command line: ``--dataset ucr/<Name>`` (a UCR/UEA ``.ts`` dataset),
their default training recipe, and reading a series for ``wally predict``.

Cheap to import (no NumPy at import time), like :mod:`wally.cli._datasets`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wally.cli import CommandError

PREFIX = "ucr/"
RECIPE = {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "epochs": 150,
          "scheduler": "cosine"}
"""The default recipe for ``ucr/...`` datasets: Adam at 1e-3 with batch 16, as Wang et al.
(2017) train their FCN, annealed to 0 along a cosine over 150 epochs (they reduce it on
plateaus over 2,000 epochs; a constant rate leaves GunPoint's test accuracy swinging by 0.2
from one epoch to the next). Text datasets have theirs, :data:`wally.cli._text.RECIPE`; image
datasets keep d2l's (sgd, 10 epochs, batch 256, no scheduler)."""
IMAGE_RECIPE = {"optimizer": "sgd", "batch_size": 256, "epochs": 10, "scheduler": "none"}
SEQUENCE_MODELS = ("fcn1d", "tcn")
SERIES_SUFFIXES = (".ts", ".npy", ".csv")
MAX_SERIES_BYTES = 64 << 20


def is_sequence(dataset: str | None) -> bool:
    return isinstance(dataset, str) and dataset.lower().startswith(PREFIX)


def ucr_name(dataset: str) -> str:
    return dataset[len(PREFIX):]


def dataset_name(text: str) -> str:
    """argparse type for ``--dataset``: an image, graph or text dataset's name, or
    ``ucr/<Name>``."""
    from wally.cli._datasets import DATASET_NAMES, GRAPH_DATASETS, TEXT_DATASET_NAMES

    if text in DATASET_NAMES or text in GRAPH_DATASETS or text in TEXT_DATASET_NAMES:
        return text
    if is_sequence(text):
        name = ucr_name(text)
        if name and name.replace("_", "").replace("-", "").isalnum():
            return PREFIX + name
        raise argparse.ArgumentTypeError(f"expected ucr/<Name> with a UCR dataset name such as "
                                         f"ucr/GunPoint, got {text[:60]!r}")
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text[:60]!r} (choose from "
        f"{', '.join([*DATASET_NAMES, *GRAPH_DATASETS, *TEXT_DATASET_NAMES])}, or "
        "ucr/<Name> for a UCR/UEA time-series dataset such as ucr/GunPoint)")


def apply_recipe(args: argparse.Namespace) -> None:
    """Fill the options left unset (None) from the dataset's default recipe."""
    from wally.cli._datasets import TEXT_DATASETS
    from wally.cli._text import RECIPE as TEXT_RECIPE

    text = args.dataset in TEXT_DATASETS
    recipe = RECIPE if is_sequence(args.dataset) else TEXT_RECIPE if text else IMAGE_RECIPE
    for key in ("optimizer", "batch_size", "epochs", "scheduler"):
        if getattr(args, key, None) is None:
            setattr(args, key, recipe[key])
    if getattr(args, "lr", None) is None and (is_sequence(args.dataset) or text) and \
            args.optimizer == recipe["optimizer"]:
        args.lr = recipe["lr"]


def load(dataset: str, train: bool, data_dir: str | None, download: bool,
         limit: int | None) -> Any:
    """The UCR split, a :class:`wally.data.Subset` of its first ``limit`` items if given;
    errors become one-line :class:`CommandError`\\ s."""
    from wally.data import Subset
    from wally.data.errors import ChecksumError, DatasetFormatError, DatasetNotFoundError
    from wally.data.ucr import UCR

    try:
        data = UCR(ucr_name(dataset), root=data_dir, train=train, download=download)
    except DatasetNotFoundError as error:
        raise CommandError(str(error).splitlines()[0] + " (--data-dir DIR holds UCR/<Name>/ or "
                           "<Name>/ with <Name>_TRAIN.ts and <Name>_TEST.ts)") from None
    except (DatasetFormatError, ChecksumError, ValueError, ConnectionError) as error:
        raise CommandError(str(error)) from None
    if limit is not None and limit < len(data):
        subset = Subset(data, range(limit))
        subset.classes = data.classes  # type: ignore[attr-defined]
        subset.num_channels = data.num_channels  # type: ignore[attr-defined]
        subset.lengths = data.lengths[:limit]  # type: ignore[attr-defined]
        return subset
    return data


def check_model(model: str, dataset: str) -> None:
    """Refuse an image model on a series dataset and a series model on images, by name."""
    if is_sequence(dataset) and model not in SEQUENCE_MODELS:
        raise CommandError(f"{model} is an image model; {dataset} holds series: train one of "
                           + ", ".join(SEQUENCE_MODELS))
    if not is_sequence(dataset) and model in SEQUENCE_MODELS:
        raise CommandError(f"{model} is a series model; {dataset} holds images: use "
                           "--dataset ucr/<Name>")


def prepare(args: argparse.Namespace) -> tuple[Any, Any, Any, list[int]]:
    """Train and test splits and the model for ``wally train MODEL --dataset ucr/<Name>``:
    built for the dataset's channels and classes, ``input_size`` its longest series."""
    train_set = load(args.dataset, True, args.data_dir, args.download, args.limit)
    test_set = load(args.dataset, False, args.data_dir, args.download, args.limit)
    if train_set.num_channels != test_set.num_channels:
        raise CommandError(f"{args.dataset}: the training split has {train_set.num_channels} "
                           f"channels, the test split {test_set.num_channels}")
    length = int(max(train_set.lengths.max(), test_set.lengths.max()))
    model = build_sequence_model(args.model, train_set.num_channels, len(train_set.classes),
                                 length)
    return train_set, test_set, model, [int(n) for n in model.input_size]


def build_sequence_model(name: str, channels: int, num_classes: int, length: int) -> Any:
    from wally.models import get_model

    try:
        return get_model(name, in_channels=channels, num_classes=num_classes,
                         input_size=length)
    except (TypeError, ValueError) as error:
        raise CommandError(str(error)) from None


def read_series(path: str, channels: int) -> list[Any]:
    """The series in ``path`` as ``(C, T)`` float32 arrays: every case of a ``.ts`` file, or
    one series from a ``.npy`` file (``(T,)`` or ``(C, T)``, numbers only, no pickles) or a
    ``.csv`` file (one row per channel, comma-separated). Refused, naming the file, unless it
    has ``channels`` channels."""
    from wally.backend import xp
    from wally.data.errors import DatasetFormatError
    from wally.data.ucr import read_ts
    from wally.io.files import open_regular

    suffix = Path(path).suffix.lower()
    if suffix not in SERIES_SUFFIXES:
        raise CommandError(f"{path}: expected a .ts, .npy or .csv series file, got "
                           f"{suffix or 'no suffix'!r}")
    try:
        if suffix == ".ts":
            series = read_ts(path).series
        else:
            with open_regular(path, "series file", MAX_SERIES_BYTES) as stream:
                raw = stream.read()
            if suffix == ".npy":
                import io

                array = xp.load(io.BytesIO(raw), allow_pickle=False)
            else:
                rows = [line for line in raw.decode("utf-8").splitlines() if line.strip()]
                array = xp.asarray([[float(v) for v in line.split(",")] for line in rows])
            if array.dtype.kind not in "iuf":
                raise ValueError(f"expected numbers, got dtype {array.dtype}")
            array = xp.asarray(array, dtype=xp.float32)
            if array.ndim == 1:
                array = array[None]
            if array.ndim != 2 or array.shape[1] == 0:
                raise ValueError(f"expected a series of shape (T,) or (C, T), got "
                                 f"{tuple(array.shape)}")
            if not xp.isfinite(array).all():
                raise ValueError("holds values that are not finite numbers")
            series = [array]
    except (OSError, DatasetFormatError) as error:
        raise CommandError(str(error)) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise CommandError(f"{path}: {error}") from None
    for i, s in enumerate(series):
        if s.shape[0] != channels:
            raise CommandError(f"{path}: series {i} has {s.shape[0]} channels, the model "
                               f"expects {channels} (shape {tuple(s.shape)})")
    return series
