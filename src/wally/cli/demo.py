"""``wally demo``: the main job. Train a small fully convolutional network on generated
*Where's Wally* patches, then find Wally in a fresh crowd many times larger than the patches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

from wally.cli import CommandError

CHECKPOINT_NAME = "wally_finder.safetensors"
SCENE_SEED_OFFSET = 500
"""The demo's scene is ``WallyScenes(seed=seed + 500)[0]``: never one the patches came from."""

EPILOG = """\
what it writes to --out (default ./wally-demo/):
  wally_finder.safetensors   the trained finder (wally find IMAGE --checkpoint this)
  scene.png                  the fresh crowd it searched
  found.png                  the scene with the box, the heatmap over it, a close-up
  curves.png                 loss and accuracy per epoch (patches)
  metrics.jsonl              one JSON line per epoch

then try:
  wally find wally-demo/scene.png --checkpoint wally-demo/wally_finder.safetensors
  wally viz receptive-field --checkpoint wally-demo/wally_finder.safetensors \\
      --layer conv3 --image wally-demo/scene.png --out rf.png
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="train a CNN to find Wally in generated crowds, then find him (offline)",
        description="Generate Where's-Wally patches, train a fully convolutional finder on "
                    "them with a progress bar, print its summary, and find Wally in a fresh "
                    "crowd several times larger than the patches. Offline; about a minute "
                    "on two cores.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="wally-demo", metavar="DIR",
                        help="folder for the pictures and the checkpoint (default: wally-demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and weights (0)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs over the patches (3)")
    parser.add_argument("--patches", type=int, default=5000, metavar="N",
                        help="training patches to generate (5000)")
    parser.add_argument("--val-patches", type=int, default=500, metavar="N",
                        help="validation patches (500)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of Adam "
                        "with a one-cycle schedule (0.003)")
    parser.add_argument("--scene-size", type=int, nargs=2, default=(240, 320),
                        metavar=("H", "W"), help="size of the scene to search (240 320)")
    parser.set_defaults(func=run)


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise CommandError(f"--{name} must be at least 1, got {value}")


def _epoch_line(epochs: int) -> Any:
    def report(record: dict[str, Any]) -> None:
        print(f"  epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  "
              f"train acc {record['train_accuracy']:.4f}  val acc "
              f"{record.get('val_accuracy') or float('nan'):.4f}  "
              f"{record['examples_per_s']:,.0f} patches/s", flush=True)

    return report


def _write_png(path: Path, image: Any) -> None:
    import io

    from PIL import Image

    from wally.io import atomic_write

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())


def _available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except OSError as error:  # a full disk, a folder made read-only meanwhile
        from wally.cli import describe_os_error

        raise CommandError(f"cannot write to {args.out}: {describe_os_error(error)}") from None


def _run(args: argparse.Namespace) -> int:
    import math

    from wally.analysis import summary
    from wally.apps.finder import find_wally, train_wally_finder
    from wally.data.wally_scenes import WallyScenes
    from wally.io import save_checkpoint

    for name in ("epochs", "patches", "val_patches", "batch_size"):
        _positive(name.replace("_", "-"), getattr(args, name))
    height, width = (int(n) for n in args.scene_size)
    if height < 40 or width < 20:
        raise CommandError(f"--scene-size must be at least 40 20 (Wally must fit), got "
                           f"{height} {width}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {out}: {error.strerror or error}") from None
    pictures = _available("matplotlib")
    if not pictures:
        print("wally demo: matplotlib is not installed, so no pictures will be drawn "
              "(pip install matplotlib, or pip install 'wally-cnn[train]')", file=sys.stderr)
    started = time.perf_counter()

    print(f"wally demo: where's Wally? training a fully convolutional finder on "
          f"{args.patches:,} generated 32×32 patches, then searching a fresh "
          f"{height}×{width} crowd (seed {args.seed}); writing {out}/", flush=True)
    metrics_path = out / "metrics.jsonl"
    bar_shown = sys.stderr.isatty() and _available("tqdm")
    finder, history = train_wally_finder(
        patches=args.patches, val_patches=args.val_patches, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, metrics_path=metrics_path,
        progress=True, callbacks=[] if bar_shown else [_epoch_line(args.epochs)],
        log=lambda line: print(f"  {line}", flush=True),
    )
    trained = time.perf_counter()

    patch = int(finder.input_size[-1])
    print(f"\nthe finder (per {patch}×{patch} patch; on a {height}×{width} scene the same "
          f"weights give a heatmap, one logit per window):")
    print(summary(finder, (1, 3, patch, patch), verbose=0), flush=True)

    scene = WallyScenes((height, width), length=1, seed=args.seed + SCENE_SEED_OFFSET).scene(0)
    searching = time.perf_counter()
    detection = find_wally(finder, scene.image)
    search_seconds = time.perf_counter() - searching

    written = [metrics_path]
    try:
        save_checkpoint(out / CHECKPOINT_NAME, finder, epoch=len(history),
                        extra={"trained_on": "WallyPatches", "seed": args.seed,
                               "patches": args.patches,
                               "scene_seed": args.seed + SCENE_SEED_OFFSET})
        written.insert(0, out / CHECKPOINT_NAME)
    except ImportError as error:  # safetensors is missing
        print(f"wally demo: the checkpoint was not saved: {error}", file=sys.stderr)
    if pictures:
        from wally.viz import plot_curves, plot_detection

        _write_png(out / "scene.png", scene.image)
        plot_detection(scene.image, detection, out / "found.png", truth=scene.box)
        plot_curves(metrics_path, out / "curves.png", title="wally_finder on WallyPatches")
        written[-1:-1] = [out / "scene.png", out / "found.png", out / "curves.png"]

    x0, y0, x1, y1 = detection.box
    cx, cy = detection.center
    tx, ty = scene.center
    distance = math.hypot(cx - tx, cy - ty)
    verdict = "found him" if distance <= scene.figure_width else "missed him"
    print(f"\nWally is at box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}), centre ({cx:.1f}, "
          f"{cy:.1f}), confidence {detection.confidence:.3f}  [searched {height}×{width} "
          f"pixels, {detection.heatmap.size:,} windows, in {search_seconds:.2f} s]")
    print(f"truth: box {tuple(scene.box)}, centre ({tx:.1f}, {ty:.1f}); {distance:.1f} px "
          f"off, {verdict} (one figure width is {scene.figure_width:.0f} px)")
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(f"done in {time.perf_counter() - started:.0f} s (data and training "
          f"{trained - started:.0f} s)", flush=True)
    return 0
