"""``wally predict``: the top-k classes of a checkpoint's model for image files."""

from __future__ import annotations

import argparse
import json
from typing import Any

from wally.cli import CommandError, missing_package, printable
from wally.cli.train import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify image files with a checkpoint's model",
        description="Classify image files (PNG, JPEG, BMP, GIF, TIFF, WebP or PBM/PGM/PPM; "
                    "other formats are refused) with the model of a "
                    "checkpoint: each image is converted to the training dataset's channels "
                    "and size, shaped like its images, and the top-k classes are printed "
                    "with their probabilities.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint")
    parser.add_argument("images", metavar="FILE", nargs="*",
                        help="image files; for a model trained on ucr/<Name>: series files "
                             "(.ts: every case; .npy: one (T,) or (C, T) array; .csv: one row "
                             "per channel); for a text model: UTF-8 text files, one text each")
    parser.add_argument("--text", action="append", default=[], metavar="TEXT",
                        help="a text to classify with a text model (textcnn); repeatable")
    parser.add_argument("--topk", type=positive_int, default=3, metavar="K",
                        help="how many classes to print per image (default 3)")
    parser.add_argument("--invert", action="store_true",
                        help="invert the grey levels first (dark digits on white paper, for a "
                             "model trained on MNIST's light-on-dark digits)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per image")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import wally
    from wally.backend import xp
    from wally.cli import _text
    from wally.cli._images import read_image_file
    from wally.cli.evaluate import classes_of, dataset_of, input_size_of, load_model

    model, checkpoint = load_model(args.checkpoint)
    vocab = _text.vocab_of(checkpoint)
    if vocab is None and args.text:
        raise CommandError(f"--text: {args.checkpoint} holds a model without a vocabulary (not "
                           "a text model); give it files")
    if not args.images and not args.text:
        raise CommandError("nothing to classify: give files" + (" or --text" if vocab else ""))
    from wally.cli import _sequences

    if vocab is None and _sequences.is_sequence(dataset_of(checkpoint)):
        return _predict_series(args, model, checkpoint, input_size_of(model, checkpoint)[0])
    batches = []
    if vocab is not None:
        from wally.io.files import read_text

        items = [(f"text {i + 1}", text) for i, text in enumerate(args.text)]
        for path in args.images:
            try:
                items.append((path, read_text(path, "text file", max_bytes=1 << 20)))
            except (OSError, ValueError) as error:
                message = str(error)
                raise CommandError(message if message.startswith(f"{path}:")
                                   else f"cannot read text file {path}: {message}") from None
        batches.append(_text.encode_for_prediction(items, vocab, _text.reading(model,
                                                                                 checkpoint)))
        args.images = [label for label, _ in items]
    input_size = input_size_of(model, checkpoint) if vocab is None else []
    dataset = dataset_of(checkpoint)
    for path in args.images if vocab is None else []:
        try:
            batches.append(read_image_file(path, dataset, input_size, invert=args.invert))
        except ImportError as error:
            raise CommandError(missing_package(error)) from None
        except (OSError, ValueError) as error:  # missing, unreadable or not an image
            message = str(error)  # wally's own errors name the file already
            raise CommandError(message if message.startswith(f"{path}:")
                               else f"cannot read image {path}: {message}") from None
    with wally.no_grad():
        logits = model(wally.from_numpy(xp.concatenate(batches)))
        probabilities = wally.softmax(logits, dim=1).numpy()
    if probabilities.ndim != 2:
        raise CommandError(f"{args.checkpoint}: its model gives outputs of shape "
                           f"{tuple(logits.shape)}, not one row of class scores per image (a "
                           "detector? `wally find` runs the Wally finder)")
    classes = classes_of(checkpoint, probabilities.shape[1])
    k = min(args.topk, probabilities.shape[1])
    for path, row in zip(args.images, probabilities):
        best = xp.argsort(-row, kind="stable")[:k]
        top = [{"class": int(i), "name": classes[i] if i < len(classes) else str(i),
                "probability": float(row[i])} for i in best]
        if args.json:
            print(json.dumps({"text" if vocab is not None else "image": path, "top": top}))
        else:
            print(printable(path))
            for rank, entry in enumerate(top, 1):  # names from a file: escapes shown, not run
                print(f"  {rank}. {entry['probability']:.4f}  {printable(entry['name'])}")
    return 0


def _predict_series(args: argparse.Namespace, model: Any, checkpoint: Any, channels: int) -> int:
    """``wally predict`` for a series model: one block of top-k lines per series."""
    import wally
    from wally.backend import xp
    from wally.cli._sequences import read_series
    from wally.cli.evaluate import classes_of

    for path in args.images:
        for index, series in enumerate(read_series(path, channels)):
            with wally.no_grad():
                logits = model(wally.from_numpy(xp.ascontiguousarray(series[None])))
            row = wally.softmax(logits, dim=1).numpy()[0]
            classes = classes_of(checkpoint, row.shape[0])
            best = xp.argsort(-row, kind="stable")[: min(args.topk, row.shape[0])]
            top = [{"class": int(i), "name": classes[i] if i < len(classes) else str(i),
                    "probability": float(row[i])} for i in best]
            if args.json:
                print(json.dumps({"series": path, "index": index, "length": series.shape[1],
                                  "top": top}))
            else:
                print(f"{printable(path)} [{index}] (length {series.shape[1]})")
                for rank, entry in enumerate(top, 1):
                    print(f"  {rank}. {entry['probability']:.4f}  {printable(entry['name'])}")
    return 0
