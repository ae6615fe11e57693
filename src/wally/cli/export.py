"""``wally export``: write a checkpoint's model as an ONNX file for onnxruntime and others."""

from __future__ import annotations

import argparse
from typing import Any

from wally.cli import CommandError, missing_package
from wally.cli.train import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="export a checkpoint's model to ONNX",
        description="Rebuild the model of a checkpoint, trace it on one input of the size it "
                    "records (or --input-size), and write it as an ONNX file that passes "
                    "onnx.checker and runs in onnxruntime. Needs the onnx package "
                    "(pip install onnx).",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a .safetensors checkpoint (pickles and .pt files are refused)")
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx",
                        help="the ONNX file to write (replaced atomically)")
    parser.add_argument("--input-size", type=positive_int, nargs="+", default=None,
                        metavar="N",
                        help="the size of one input without the batch axis, e.g. C H W "
                             "(default: the size the model records)")
    parser.add_argument("--opset", type=int, default=None, metavar="N",
                        help="the ONNX opset to write (default 17)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                        help="fix the batch size to N (default: any batch size)")
    parser.add_argument("--lengths", action="store_true",
                        help="a sequence model on padded batches: add a second input "
                             "'lengths' (int64, one per series: how many of the input's time "
                             "steps are its own), which masks the padding in the graph as "
                             "model(x, lengths) does")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wally.backend import xp
    from wally.cli.evaluate import input_size_of, load_model
    from wally.onnx import DEFAULT_OPSET, UnsupportedOperatorError, export

    model, checkpoint = load_model(args.checkpoint)
    size = args.input_size or input_size_of(model, checkpoint)
    dtype = next((p.dtype for p in model.parameters()), xp.dtype("float32"))
    batch = args.batch_size or 1
    # Tracing reads the shapes, not the values; a fixed draw keeps the export reproducible.
    example = xp.random.default_rng(0).standard_normal((batch, *size)).astype(dtype)
    input_dtype = getattr(model, "input_dtype", None)
    if input_dtype is not None and xp.dtype(input_dtype).kind in "iu":  # a text model's ids
        example = xp.ones((batch, *size), dtype=input_dtype)
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    inputs: Any = example
    names: tuple[str, ...] = ("input",)
    if args.lengths:
        _check_takes_lengths(model, checkpoint)
        # every series full length: tracing reads shapes, and the graph computes the mask
        inputs, names = (example, xp.full(batch, size[-1], dtype=xp.int64)), ("input", "lengths")
    try:
        export(model, inputs, args.onnx, opset_version=opset, input_names=names,
               dynamic_batch=args.batch_size is None)
    except ImportError as error:
        raise CommandError(missing_package(error)) from None
    except (UnsupportedOperatorError, ValueError, TypeError) as error:
        raise CommandError(f"cannot export {args.checkpoint}: {error}") from None
    except OSError as error:
        raise CommandError(f"cannot write {args.onnx}: {error.strerror or error}") from None
    name = (checkpoint.model_config or {}).get("name", type(model).__name__)
    rows = "N" if args.batch_size is None else str(batch)
    shape = ", ".join([rows, *map(str, size)])
    lengths = f" and 'lengths' of shape ({rows},)" if args.lengths else ""
    print(f"wrote {args.onnx}: {name}, input 'input' of shape ({shape}){lengths}, opset {opset}")
    return 0


def _check_takes_lengths(model: Any, checkpoint: Any) -> None:
    """Refuse ``--lengths`` for a model whose ``forward`` takes one input, or whose input is
    not a sequence, in one line."""
    import inspect

    name = (checkpoint.model_config or {}).get("name", type(model).__name__)
    parameters = list(inspect.signature(model.forward).parameters.values())
    takes = len(parameters) >= 2 and parameters[1].kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    input_dtype = getattr(model, "input_dtype", None)
    if input_dtype is not None and getattr(input_dtype, "kind", "") in "iu":
        raise CommandError(f"--lengths: {name} takes no lengths: it reads the padding from "
                           "its token ids (id 0 is <pad>), so its file needs only 'input'")
    if not takes:
        raise CommandError(f"--lengths: {name} takes one input (forward(x)), not (x, lengths); "
                           "only a sequence model such as fcn1d or tcn takes lengths")
