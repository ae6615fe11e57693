"""Speaker identification on UCR JapaneseVowels with an FCN, series of different lengths.

JapaneseVowels: nine male speakers each uttered the vowels /ae/; a series is 12 LPC cepstrum
coefficients (12 channels) over 7 to 29 frames, one length per utterance; 270 training and 370
test series. The task is to name the speaker. Series of different lengths are batched by
:func:`wally.data.pad_collate`, which pads each batch on the right with zeros to its longest
series and returns the true lengths beside it: ``model(x, lengths)``. ``fcn1d`` masks the padding
out of every batch-norm statistic and of its global average pooling, so a padded series gets the
same answer as the series alone. The recipe is ``wally train``'s for ``ucr/...`` datasets: Adam at
1e-3 annealed to 0 along a cosine, batch 16, 150 epochs, seed 0. The issue's target is a test
accuracy of at least 0.97.

The data are the archive's own ``JapaneseVowels_TRAIN.ts``/``_TEST.ts``: in ``--data-dir``
(``DIR/JapaneseVowels/`` or ``DIR/UCR/JapaneseVowels/``), by default aeon's ``datasets/data``
folder, which ships them (``pip install aeon --no-deps``)::

    python examples/speaker_japanese_vowels.py --output figures          # 150 epochs
    python examples/speaker_japanese_vowels.py --quick --output /tmp/jv   # 3 epochs, a look

It prints the train loss and test accuracy after every epoch and writes
``OUTPUT/speaker_japanese_vowels.png``: the train loss (left) and test accuracy (right) per
epoch. The test split is only watched, never used to choose anything.
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
                        help="folder holding JapaneseVowels/ (default: aeon's datasets/data)")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--quick", action="store_true", help="3 epochs, to see it run")
    parser.add_argument("--output", default=".", help="folder for the PNG (default: here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs
    root = args.data_dir or aeon_data_folder()
    if root is None:
        parser.error("no --data-dir, and aeon (whose datasets/data folder ships JapaneseVowels) "
                     "is not installed")

    wally.manual_seed(args.seed)
    train_set = UCR("JapaneseVowels", root=root, train=True)
    test_set = UCR("JapaneseVowels", root=root, train=False)
    longest = int(max(train_set.lengths.max(), test_set.lengths.max()))
    model = get_model("fcn1d", in_channels=train_set.num_channels,
                      num_classes=len(train_set.classes), input_size=longest)
    train_loader = DataLoader(train_set, batch_size=RECIPE["batch_size"], shuffle=True,
                              collate_fn=pad_collate, generator=args.seed)
    test_loader = DataLoader(test_set, batch_size=128, collate_fn=pad_collate)
    optimizer = optim.Adam(model.parameters(), lr=RECIPE["lr"])
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    print(f"JapaneseVowels: {len(train_set)} training and {len(test_set)} test series, "
          f"{train_set.num_channels} channels, {int(train_set.lengths.min())} to {longest} "
          f"steps, {len(train_set.classes)} speakers; fcn1d, Adam {RECIPE['lr']} cosine, batch "
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
        history.records, Path(args.output) / "speaker_japanese_vowels.png", val_label="test",
        title=f"fcn1d, speaker of UCR JapaneseVowels: test accuracy {accuracy:.4f} after "
              f"{epochs} epochs").path
    print(f"fcn1d on JapaneseVowels, {epochs} epochs: test accuracy {accuracy:.4f} (target 0.97), "
          f"{seconds:.0f} s; figure {figure}")
    return {"test_accuracy": accuracy, "epochs": epochs, "figure": str(figure),
            "records": history.records}


if __name__ == "__main__":
    main()
