"""``wally explain equivariance [MODEL]``: equivariance measured, and rotation invariance
delivered (see :mod:`wally.analysis.equivariance`).

* With ``MODEL``: layer by layer, how far ``f(T x)`` is from ``T' f(x)`` for shifts, quarter
  turns and small angles, on the units whose receptive field stays inside the image.
* Without: the invariance error of the logits, ``‖f(T x) − f(x)‖ / ‖f(x)‖``, of ``p4cnn``
  (group convolutions on p4, rotation pool, global pool) beside ``z2cnn`` (the same stack of
  plain convolutions, about as many parameters), for turns by 90°, 180° and 270° and for
  15° and 45°. p4cnn gives 0 (to rounding) at every quarter turn, whatever its weights; at
  other angles neither network is invariant (the pixel grid has no 15° symmetry, and the
  bilinear resampling blurs the image), p4cnn usually less far off.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from wally.cli import CommandError
from wally.cli.summary import _positive_int, build_model

COMPARED = ("p4cnn", "z2cnn")
ROTATIONS = (90, 180, 270)
ANGLES = (15.0, 45.0)


def register_topic(topics: Any) -> None:
    """Add the ``equivariance`` topic to ``wally explain``'s sub-parsers."""
    parser = topics.add_parser(
        "equivariance", help="layer-by-layer equivariance to shifts and rotations; without "
                             "MODEL, p4cnn's exact invariance to 90° turns beside a plain CNN",
        description="With MODEL: run it on a smooth random image and on shifted (and rotated) "
                    "copies, and print for every layer the relative error between f(T x) and "
                    "T' f(x) on the units whose receptive field stays inside the image. "
                    "Without MODEL: the invariance error of the logits of p4cnn (group "
                    "convolution on p4) and z2cnn (plain convolutions, about as many "
                    "parameters) for turns by 90, 180 and 270 degrees and by 15 and 45 degrees.",
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", default=None,
                        help="a model name or a .safetensors checkpoint (default: compare "
                             "p4cnn and z2cnn)")
    parser.add_argument("--models", nargs="+", default=list(COMPARED), metavar="NAME",
                        help="without MODEL: the models compared; default p4cnn z2cnn")
    parser.add_argument("--shifts", type=int, nargs="+", default=[1, 2, 4], metavar="S",
                        help="with MODEL: shifts in pixels, along every spatial axis; "
                             "default 1 2 4")
    parser.add_argument("--rotations", type=int, nargs="*", default=None, metavar="DEG",
                        help="quarter turns in degrees; default 90 (with MODEL) or 90 180 270")
    parser.add_argument("--angles", type=float, nargs="*", default=None, metavar="DEG",
                        help="other rotation angles (bilinear, approximate); default 5 (with "
                             "MODEL) or 15 45")
    parser.add_argument("--input-size", type=_positive_int, nargs="+", metavar="N",
                        help="C H W of the input (default: the model's)")
    parser.add_argument("--batch-size", type=_positive_int, default=2)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random image (and, without MODEL, of the weights)")
    parser.add_argument("--float32", action="store_true",
                        help="without MODEL: compute in float32 (default float64, so that "
                             "exact invariance reads about 1e-16)")
    parser.add_argument("--borders", action="store_true",
                        help="compare every unit, not only those whose field is inside the image")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_equivariance)


def smooth_image(shape: tuple[int, ...], seed: int) -> Any:
    """A random image with structure at several scales (white noise blurred by repeated
    3-tap box filters along each spatial axis, normalised to unit variance): interpolation
    for small rotations is meaningful on it, unlike on white noise."""
    from wally.backend import xp

    rng = xp.random.default_rng(seed)
    image = rng.standard_normal(shape)
    for _ in range(4):
        for axis in range(2, len(shape)):
            image = (image + xp.roll(image, 1, axis) + xp.roll(image, -1, axis)) / 3
    return (image - image.mean()) / image.std()


def run_equivariance(args: argparse.Namespace) -> int:
    if args.model is None:
        return run_comparison(args)
    from wally.analysis import equivariance

    model, size = build_model(args.model, args.input_size)
    if size is None:
        raise CommandError(f"{args.model} does not record its input size: pass --input-size C H W")
    dtype = next((p.dtype for p in model.parameters()), None) or "float32"
    x = smooth_image((args.batch_size, *size), args.seed).astype(dtype)
    rotations = [90] if args.rotations is None else args.rotations
    angles = [5.0] if args.angles is None else args.angles
    if len(size) - 1 != 2:
        rotations, angles = [], []
    try:
        report = equivariance(model, x, args.shifts, rotations, angles,
                              interior=not args.borders)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(report.to_json() if args.json else report)
    return 0


def invariance_errors(model: Any, x: Any, rotations: Any, angles: Any) -> dict[str, float]:
    """``‖f(T x) − f(x)‖ / ‖f(x)‖`` of the model's output, per transformation (the last row
    of :func:`wally.analysis.equivariance`'s report)."""
    from wally.analysis import equivariance

    report = equivariance(model, x, shifts=[], rotations=rotations, angles=angles)
    output = report.rows[-1]  # the last layer's output is the model's
    errors = {label: output.errors.get(label) for label in report.transforms}
    return {label: float(error) for label, error in errors.items() if error is not None}


def p4_layer_errors(model: Any, x: Any) -> list[tuple[str, float]]:
    """For a ``Sequential`` with a :class:`~wally.nn.RotationPool`: every layer's relative
    error ``‖f(rot x) − T' f(x)‖ / ‖T' f(x)‖`` under a 90° turn, with ``T'`` = turn the maps
    and shift the rotation axis cyclically (p4 maps, before the rotation pool), or turn the
    maps (after it, while they have spatial axes), or nothing (the logits)."""
    from wally import nn
    from wally.autograd import no_grad
    from wally.backend import xp
    from wally.tensor import Tensor

    if not isinstance(model, nn.Sequential) or not any(
            isinstance(m, nn.RotationPool) for m in model.children()):
        return []
    upright, turned = Tensor(x), Tensor(xp.ascontiguousarray(xp.rot90(x, 1, axes=(2, 3))))
    rows, p4 = [], True
    with no_grad():
        for name, layer in model.named_children():
            upright, turned = layer(upright), layer(turned)
            p4 = p4 and not isinstance(layer, nn.RotationPool)
            y, y_turned = upright.array, turned.array
            if y.ndim == 4:
                expected = xp.rot90(y, 1, axes=(2, 3))
                if p4:
                    n, channels, height, width = expected.shape
                    fields = expected.reshape(n, channels // 4, 4, height, width)
                    expected = xp.roll(fields, 1, axis=2).reshape(expected.shape)
            else:
                expected = y
            scale = float(xp.linalg.norm(expected)) or 1.0
            rows.append((f"{name}: {type(layer).__name__}",
                         float(xp.linalg.norm(y_turned - expected)) / scale))
    return rows


def run_comparison(args: argparse.Namespace) -> int:
    from wally.creation import manual_seed

    rotations = list(ROTATIONS) if args.rotations is None else args.rotations
    angles = list(ANGLES) if args.angles is None else args.angles
    bad = [r for r in rotations if r % 90]
    if bad:
        raise CommandError(f"--rotations: quarter turns are multiples of 90 degrees, got {bad[0]}")
    if not rotations and not angles:
        raise CommandError("nothing to compare: give --rotations or --angles")
    dtype = "float32" if args.float32 else "float64"
    rows = []
    for name in args.models:
        manual_seed(args.seed)  # the same random weights on every run
        model, size = build_model(name, args.input_size)
        if size is None or len(size) != 3:
            raise CommandError(f"{name}: expected an image model with an input size C H W, "
                               "pass --input-size C H W")
        if dtype == "float64":
            model = model.double()
        model.eval()
        x = smooth_image((args.batch_size, *size), args.seed).astype(dtype)
        try:
            errors = invariance_errors(model, x, rotations, angles)
        except ValueError as error:
            raise CommandError(f"{name}: {error}") from None
        rows.append({"model": name, "parameters": sum(p.numel() for p in model.parameters()),
                     "input_shape": list(x.shape), "errors": errors,
                     "p4_layers": p4_layer_errors(model, x)})
    if args.json:
        print(json.dumps({"dtype": dtype, "seed": args.seed, "rows": rows}, indent=2))
        return 0
    labels = list(rows[0]["errors"])
    table = [["Model", "Params", *labels]]
    for row in rows:
        table.append([row["model"], f"{row['parameters']:,}",
                      *(f"{row['errors'][label]:.1e}" for label in labels)])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in table]
    rule = "-" * max(len(line) for line in lines)
    print(f"Invariance of the logits to turns of the input, ‖f(T x) − f(x)‖ / ‖f(x)‖: "
          f"{args.batch_size} smooth random images {tuple(rows[0]['input_shape'][1:])}, "
          f"seeded random weights (seed {args.seed}), eval mode, {dtype}")
    print("rot: an exact quarter turn (numpy.rot90); rotate: bilinear resampling about the "
          "centre (corners filled with 0)")
    print("\n".join([rule, lines[0], rule, *lines[1:], rule]))
    for row in rows:
        if row["p4_layers"]:
            print(f"{row['model']} layer by layer at 90°: ‖f(rot x) − T' f(x)‖ / ‖T' f(x)‖, T' = "
                  "turn the maps and shift each field's 4 rotation maps by one (before the "
                  "rotation pool), turn the maps (after it), identity (logits)")
            width = max(len(layer) for layer, _ in row["p4_layers"])
            for layer, value in row["p4_layers"]:
                print(f"  {layer.ljust(width)}  {value:.1e}")
    print("p4cnn: every layer before its rotation pool turns with the input and shifts its "
          "4 rotation maps cyclically; the pool over rotations and positions undoes both, so "
          "its logits do not move at 90°, 180°, 270° (0 to rounding), whatever the weights. "
          "At other angles the pixel grid itself is not symmetric: no network on it is "
          "exactly invariant there.")
    return 0
