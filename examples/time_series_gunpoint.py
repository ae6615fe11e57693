"""FCN (Wang et al. 2017) on the UCR GunPoint series, with its learning curves.

GunPoint: 50 training and 150 test series of 150 steps, an actor's hand drawing a gun or
pointing a finger. ``fcn1d`` (three Conv1d–BatchNorm–ReLU blocks, global average pooling) trains
with ``wally train``'s recipe for ``ucr/...`` datasets: Adam at 1e-3 annealed to 0 along a
cosine, batch 16, 150 epochs, seed 0. The issue's target is a test accuracy of at least 0.97.

The data are the archive's own ``GunPoint_TRAIN.ts``/``GunPoint_TEST.ts``: in ``--data-dir``
(``DIR/GunPoint/`` or ``DIR/UCR/GunPoint/``), by default aeon's ``datasets/data`` folder, which
ships them (``pip install aeon --no-deps``)::

    python examples/time_series_gunpoint.py --output figures          # 150 epochs
    python examples/time_series_gunpoint.py --quick --output /tmp/gp   # 3 epochs, a look

It prints the train loss and test accuracy after every epoch and writes
``OUTPUT/time_series_gunpoint.png``: the train loss (left) and test accuracy (right) per epoch.
The test split is only watched, never used to choose anything.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import wally
from wally import optim
from wally.cli._sequences import RECIPE
from wally.data import UCR, DataLoader, pad_collate
from wally.data.ucr import aeon_data_folder
from wally.models import get_model
from wally.train import fit
from wally.viz import plot_curves


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder holding GunPoint/ (default: aeon's datasets/data)")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--quick", action="store_true", help="3 epochs, to see it run")
    parser.add_argument("--output", default=".", help="folder for the PNG (default: here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs
    root = args.data_dir or aeon_data_folder()
    if root is None:
        parser.error("no --data-dir, and aeon (whose datasets/data folder ships GunPoint) is "
                     "not installed")

    wally.manual_seed(args.seed)
    train_set = UCR("GunPoint", root=root, train=True)
    test_set = UCR("GunPoint", root=root, train=False)
    model = get_model("fcn1d", in_channels=train_set.num_channels,
                      num_classes=len(train_set.classes), input_size=int(train_set.lengths[0]))
    train_loader = DataLoader(train_set, batch_size=RECIPE["batch_size"], shuffle=True,
                              collate_fn=pad_collate, generator=args.seed)
    test_loader = DataLoader(test_set, batch_size=150, collate_fn=pad_collate)
    optimizer = optim.Adam(model.parameters(), lr=RECIPE["lr"])
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    print(f"GunPoint: {len(train_set)} training and {len(test_set)} test series of "
          f"{int(train_set.lengths[0])} steps; fcn1d, Adam {RECIPE['lr']} cosine, batch "
          f"{RECIPE['batch_size']}, {epochs} epochs", flush=True)

    def report(record: dict[str, Any]) -> None:
        print(f"  epoch {record['epoch']:3d}: train loss {record['train_loss']:.4f}  "
              f"test accuracy {record['val_accuracy']:.4f}", flush=True)

    start = time.perf_counter()
    history = fit(model, train_loader, test_loader, optimizer=optimizer, epochs=epochs,
                  scheduler=scheduler, callbacks=[report], progress=False)
    seconds = time.perf_counter() - start
    accuracy = history.records[-1]["val_accuracy"]
    figure = plot_curves(
        history.records, Path(args.output) / "time_series_gunpoint.png", val_label="test",
        title=f"fcn1d on UCR GunPoint: test accuracy {accuracy:.4f} after {epochs} epochs").path
    print(f"fcn1d on GunPoint, {epochs} epochs: test accuracy {accuracy:.4f} (target 0.97), "
          f"{seconds:.0f} s; figure {figure}")
    return {"test_accuracy": accuracy, "epochs": epochs, "figure": str(figure),
            "records": history.records}


if __name__ == "__main__":
    main()
