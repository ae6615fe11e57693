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


def _column_names() -> list[str]:
    from wally.analysis.summary import COLUMNS

    return list(COLUMNS)


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
                        help="N C H W of the input, the batch axis first, as torchinfo's "
                             "input_size (default: 1 and the size the model was built for); "
                             "a named model is rebuilt for C H W; costs and memory are for "
                             "the whole batch")
    parser.add_argument("--dataset", default=None, metavar="GRAPH",
                        choices=["karate", "debian", "movielens-100k"],
                        help="a graph model (gcn, lightgcn) runs on this graph and also shows "
                             "its k-hop receptive field: karate (default for gcn), debian "
                             "(default for lightgcn) or movielens-100k")
    parser.add_argument("--depth", type=_non_negative_int, default=3,
                        help="show rows down to this depth only, 0 being the model "
                             "(default 3, as torchinfo; the totals count everything)")
    parser.add_argument("--col-names", nargs="+", metavar="NAME", choices=_column_names(),
                        help="the columns to show, in order, by torchinfo's names "
                             "(input_size output_size num_params params_percent kernel_size "
                             "mult_adds trainable) or wally's (trainable_params "
                             "non_trainable_params flops output_bytes saved_bytes "
                             "receptive_field receptive_field_jump receptive_field_start "
                             "input_grad_mult_adds weight_grad_mult_adds); "
                             "default: all of wally's")
    parser.add_argument("--training", action="store_true",
                        help="the cost of one training step: the forward pass in training "
                             "mode, and per layer the backward multiply-adds of the input "
                             "gradient (dX) and of the weight gradient (dW), where autograd "
                             "computes them (not the first layer's dX, not a frozen layer's "
                             "dW); columns input_grad_mult_adds and weight_grad_mult_adds")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print a markdown table")
    output.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def _bounded(size: list[int], model: Any) -> tuple[int, ...]:
    """``--input-size`` refused past wally's input bounds for ``model`` (a name or a model:
    its input's rank decides), before a forward pass allocates for it."""
    from wally.models.registry import check_input_size, input_spatial_dims

    try:
        return check_input_size(list(size), "--input-size",
                                spatial_dims=input_spatial_dims(model))
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
            return checkpoint.model, _bounded(input_size, checkpoint.model)
        if getattr(checkpoint.model, "input_size", None) is None \
                and checkpoint.extra.get("input_size") is None:
            return checkpoint.model, None
        from wally.cli.evaluate import input_size_of

        return checkpoint.model, tuple(input_size_of(checkpoint.model, checkpoint))

    from wally.models import get_model, list_models
    from wally.models.registry import suggest

    if input_size is not None:
        _bounded(input_size, name)
    names = list_models(buildable=True)
    if name not in names:
        why = (" (it needs an arch: build it in Python)" if name in list_models()
               else suggest(name, names))
        raise CommandError(f"unknown model {name!r}{why}; known models: {', '.join(names)} "
                           "(or give a .safetensors checkpoint)")
    kwargs: dict[str, Any] = {}
    if input_size is not None and len(input_size) == 3:
        kwargs = {"in_channels": input_size[0], "input_size": tuple(input_size[1:])}
    elif input_size is not None and len(input_size) == 2:  # a series model: C T
        kwargs = {"in_channels": input_size[0], "input_size": input_size[1]}
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

    sample = None
    if args.input_size is not None:
        if len(args.input_size) < 2:
            raise CommandError(
                f"--input-size: expected N C H W, the batch axis first (as torchinfo's "
                f"input_size), got {' '.join(map(str, args.input_size))}"
            )
        sample = args.input_size[1:]
    model, size = build_model(args.model, sample)
    from wally.cli._graphs import is_graph_model, summary_graph

    if is_graph_model(model):
        return summary_graph(args, model)
    if args.dataset is not None:
        raise CommandError(f"--dataset {args.dataset}: {args.model} is not a graph model")
    if size is None:
        raise CommandError(f"{args.model} does not record its input size: pass --input-size "
                           "N C H W")
    batch = args.input_size[0] if args.input_size is not None else 1
    input_size = (batch, *size)
    try:
        result = summary(model, input_size, depth=args.depth, col_names=args.col_names,
                         verbose=0, training=args.training)
    except ValueError as error:
        hint = ""
        if args.training and batch == 1 and "more than 1 value" in str(error):
            hint = (f" (training mode normalises over the batch: pass --input-size 2 "
                    f"{' '.join(map(str, size))})")
        raise CommandError(f"running {args.model} on an input of size {input_size}: "
                           f"{error}{hint}") from None
    if args.json:
        print(result.to_json())
    elif args.markdown:
        print(result.to_markdown(), end="")
    else:
        print(result)
    if not args.json and len(size) == 2:
        line = time_field_line(result)
        if line:
            print(line)
    return 0


def time_field_line(result: Any) -> str | None:
    """For a model over series ``(N, C, T)``: the receptive field in time steps of the last
    layer whose output still has a time axis, and whether it is causal (no output step sees a
    later input step): ``start + size − 1 ≤ 0`` with jump 1, i.e. step ``t``'s field ends at
    or before ``t``."""
    last = None
    for row in result.layers:
        field = row.receptive_field
        if row.kind == "op" or field is None or len(field.axes) != 1:
            continue
        if field.axes[0].jump and row.output_shape and len(row.output_shape[0]) == 3:
            last = row
    if last is None:
        return None
    axis = last.receptive_field.axes[0]
    end = axis.start + axis.size - 1  # step t's field: [t + start, t + end] when jump is 1
    ahead = end if axis.jump == 1 else None
    name = last.name or "the model"
    text = (f"Time axis: {name}'s output step t sees {axis.size} input steps, "
            f"t{axis.start:+d} … t{end:+d}" if axis.jump == 1 else
            f"Time axis: {name}: receptive field {axis.size} steps, jump {axis.jump}")
    if ahead is not None and ahead <= 0:
        return text.replace("t+0", "t") + ": causal (no output step sees a later input step)"
    if ahead is not None:
        return text + f": not causal (it sees {ahead} steps ahead)"
    return text
