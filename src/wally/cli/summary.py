"""``wally summary MODEL``: the layer-by-layer table of a model (shapes, parameters, MACs and
FLOPs, memory, receptive fields), as text, markdown or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wally.cli import CommandError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "summary", help="per-layer shapes, parameters, MACs/FLOPs, memory and receptive fields",
        description="Run one forward pass of a model and print, for every layer (as a tree, "
                    "merges in forward code included), its output shape, parameters, "
                    "multiply-accumulates and FLOPs, activation memory and the receptive "
                    "field of one output unit, with the totals.",
    )
    parser.add_argument("model", metavar="MODEL",
                        help="a model name (lenet, lenet_modern, alexnet, vgg11, nin, "
                             "googlenet, resnet18, densenet, ...) or a .safetensors checkpoint")
    parser.add_argument("--input-size", type=_positive_int, nargs="+", metavar="N",
                        help="C H W of one input (default: the size the model was built for); "
                             "a named model is rebuilt for it")
    parser.add_argument("--batch-size", type=_positive_int, default=1,
                        help="images per batch; costs and memory are for the whole batch")
    parser.add_argument("--depth", type=_non_negative_int, default=None,
                        help="show rows down to this depth only, 0 being the model (totals "
                             "count everything)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print a markdown table")
    output.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def _bounded(size: list[int]) -> tuple[int, ...]:
    """``--input-size`` refused past wally's input bounds (a forward pass allocates for it)."""
    from wally.models.registry import check_input_size

    try:
        return check_input_size(list(size), "--input-size")
    except ValueError as error:
        raise CommandError(str(error)) from None


def build_model(name: str, input_size: list[int] | None) -> tuple[Any, tuple[int, ...] | None]:
    """The model ``name`` (registered, or a checkpoint file) and the input size to run it at:
    a registered model is rebuilt for ``input_size`` (``C H W``) where its builder allows."""
    if Path(name).exists() and not Path(name).is_dir():
        from wally.io import CheckpointError, load_checkpoint

        try:
            checkpoint = load_checkpoint(name)
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot read {name}: {error.strerror or error}") from None
        if input_size is not None:
            return checkpoint.model, _bounded(input_size)
        if getattr(checkpoint.model, "input_size", None) is None \
                and checkpoint.extra.get("input_size") is None:
            return checkpoint.model, None
        from wally.cli.evaluate import input_size_of

        return checkpoint.model, tuple(input_size_of(checkpoint.model, checkpoint))

    from wally.models import get_model, list_models
    from wally.models.registry import suggest

    if input_size is not None:
        _bounded(input_size)
    names = list_models(buildable=True)
    if name not in names:
        why = (" (it needs an arch: build it in Python)" if name in list_models()
               else suggest(name, names))
        raise CommandError(f"unknown model {name!r}{why}; known models: {', '.join(names)} "
                           "(or give a .safetensors checkpoint)")
    kwargs: dict[str, Any] = {}
    if input_size is not None and len(input_size) == 3:
        kwargs = {"in_channels": input_size[0], "input_size": tuple(input_size[1:])}
    try:
        model = get_model(name, **kwargs)
    except TypeError as error:
        if not kwargs:
            raise CommandError(f"cannot build {name}: {error}") from None
        try:  # a builder without these arguments: run the model as it is built
            model = get_model(name)
        except (TypeError, ValueError) as again:
            raise CommandError(f"cannot build {name}: {again}") from None
    except ValueError as error:
        raise CommandError(str(error)) from None
    size = input_size or getattr(model, "input_size", None)
    return model, None if size is None else tuple(int(n) for n in size)


def run(args: argparse.Namespace) -> int:
    from wally.analysis import summary

    model, size = build_model(args.model, args.input_size)
    if size is None:
        raise CommandError(f"{args.model} does not record its input size: pass --input-size C H W")
    try:
        result = summary(model, size, batch_size=args.batch_size, depth=args.depth)
    except ValueError as error:
        raise CommandError(f"running {args.model} on an input of size {size}: {error}") from None
    if args.json:
        print(result.to_json())
    elif args.markdown:
        print(result.to_markdown(), end="")
    else:
        print(result)
    return 0
