"""``wally explain erf``: the effective receptive field, measured (Luo et al. 2016).

* ``wally explain erf MODEL [--layer NAME] [--share 0.95] [--images N] [--out plot.png]
  [--json]``: for the centre unit of a layer, the share of the averaged gradient mass inside
  the analytic box and the Chebyshev radius holding ``--share`` of it; for a checkpoint, both
  for its trained weights and for a freshly initialised copy.
* ``wally explain erf --stack N``: stacks of 1 … N random 3×3 convolutions (linear and with
  ReLU): the analytic radius grows like n, the effective one like √n.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError
from wally.cli._datasets import DATASET_NAMES
from wally.cli.summary import _positive_int, build_model


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], got {text}")
    return value


def register_topic(topics: Any) -> None:
    erf = topics.add_parser(
        "erf", help="the effective receptive field: gradient mass and radius (Luo et al. 2016)",
        description="Average |d unit / d x| over inputs for the centre unit of a layer and "
                    "report the share of that gradient mass inside the analytic receptive "
                    "field and the Chebyshev radius holding a given share; for a checkpoint, "
                    "trained and freshly initialised weights side by side. With --stack N: the "
                    "radii of stacks of 1..N random 3x3 convolutions (analytic ~ n, "
                    "effective ~ sqrt n).",
    )
    erf.add_argument("model", metavar="MODEL", nargs="?",
                     help="a model name or a .safetensors checkpoint")
    erf.add_argument("--layer", default=None, metavar="NAME",
                     help="a layer name as in named_modules (default: the model's output)")
    erf.add_argument("--share", type=_share, default=0.95,
                     help="share of the gradient mass the radius holds; default 0.95")
    erf.add_argument("--images", type=_positive_int, default=16, metavar="N",
                     help="inputs to average over; default 16")
    erf.add_argument("--dataset", choices=DATASET_NAMES, metavar="NAME",
                     help="take the inputs from this dataset's test split (default: the "
                          "checkpoint's dataset where it can be read, else random inputs)")
    erf.add_argument("--data-dir", default=None, help="where the dataset lies")
    erf.add_argument("--input-size", type=_positive_int, nargs="+", metavar="N",
                     help="C H W of the input (default: the model's)")
    erf.add_argument("--metric", choices=("chebyshev", "euclidean"), default="chebyshev",
                     help="the distance of the radius; default chebyshev")
    erf.add_argument("--seed", type=int, default=0, help="seed of the inputs and fresh weights")
    erf.add_argument("--stack", type=_positive_int, metavar="N",
                     help="the theory: stacks of 1..N random 3x3 convolutions instead of MODEL")
    erf.add_argument("--seeds", type=_positive_int, default=8,
                     help="with --stack: random draws to average over; default 8")
    erf.add_argument("--out", metavar="PNG", help="write a picture")
    erf.add_argument("--json", action="store_true", help="print JSON")
    erf.set_defaults(func=run_erf)


def _real_inputs(args: argparse.Namespace, checkpoint_dataset: str | None,
                 size: tuple[int, ...]) -> tuple[Any, str | None]:
    """The first ``--images`` test images of the chosen dataset, or ``None`` (random)."""
    from wally.cli import _images

    name = args.dataset or checkpoint_dataset
    if name is None or len(size) != 3:
        if args.dataset is not None:
            raise CommandError(f"--dataset needs a model taking C H W images, got input size "
                               f"{size}")
        return None, None
    try:
        images = _images.load(name, False, size, data_dir=args.data_dir, limit=args.images)
    except Exception as error:  # a missing or unreadable dataset
        if args.dataset is not None:
            raise CommandError(f"cannot read dataset {name}: {error}") from None
        return None, None
    from wally.backend import xp

    batch = images._get_batch(xp.arange(len(images)))[0]
    return batch.array, name


def run_erf(args: argparse.Namespace) -> int:
    if args.stack is not None:
        if args.model is not None:
            raise CommandError("give MODEL or --stack N, not both")
        return _run_stack(args)
    if args.model is None:
        raise CommandError("expected MODEL (a model name or a checkpoint) or --stack N")
    from wally.analysis.effective_field import effective_field, reinitialised

    model, size = build_model(args.model, args.input_size)
    if size is None:
        raise CommandError(f"{args.model} does not record its input size: pass --input-size C H W")
    is_checkpoint = Path(args.model).exists() and not Path(args.model).is_dir()
    recorded = None
    if is_checkpoint:
        from wally.io import load_checkpoint

        recorded = load_checkpoint(args.model).extra.get("dataset")
        recorded = recorded if isinstance(recorded, str) and recorded in DATASET_NAMES else None
    x, dataset = _real_inputs(args, recorded, tuple(size))
    if args.layer is not None and args.layer not in dict(model.named_modules()):
        raise CommandError(f"{args.model} has no layer named {args.layer!r}")
    variants = {"trained": model, "untrained": reinitialised(model, args.seed)} \
        if is_checkpoint else {"untrained": model}
    fields = {}
    try:
        for name, variant in variants.items():
            fields[name] = effective_field(variant, tuple(size), args.layer, x=x,
                                           images=args.images, share=args.share,
                                           metric=args.metric, seed=args.seed)
    except ValueError as error:
        raise CommandError(str(error)) from None
    inputs = f"{dataset} test images" if dataset else "random normal inputs"
    if args.json:
        print(json.dumps({"model": args.model, "inputs": inputs,
                          **{name: f.to_dict() for name, f in fields.items()}}, indent=2))
    else:
        for name, f in fields.items():
            print(f"{name}: {f}")
        print(f"(inputs: {inputs}; radius from the unit's analytic centre, in pixels)")
    if args.out:
        if any(f.map.ndim != 2 for f in fields.values()):
            raise CommandError("--out draws 2-D maps only")
        from wally.viz.effective_field import plot_effective_field

        picture = plot_effective_field(fields, args.out)
        if not args.json:
            print(f"wrote {picture.path}")
    return 0


def _run_stack(args: argparse.Namespace) -> int:
    from wally.analysis.effective_field import stack_radii

    if args.stack < 2:
        raise CommandError(f"--stack needs N ≥ 2 to fit an exponent, got {args.stack}")
    results = [stack_radii(args.stack, relu, seeds=args.seeds, share=args.share, seed=args.seed)
               for relu in (False, True)]
    if args.json:
        print(json.dumps({"linear": results[0].to_dict(), "relu": results[1].to_dict()},
                         indent=2))
    else:
        for item in results:
            print(item)
    if args.out:
        from wally.viz.effective_field import plot_stack_radii

        picture = plot_stack_radii(results, args.out)
        if not args.json:
            print(f"wrote {picture.path}")
    return 0
