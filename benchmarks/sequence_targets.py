"""Issue 14's sequence targets on the real UCR test splits (aeon's copies of the archive files).

    python benchmarks/sequence_targets.py                 # all three targets
    python benchmarks/sequence_targets.py gunpoint        # fcn1d on GunPoint: test accuracy >= 0.97
    python benchmarks/sequence_targets.py vowels          # fcn1d, JapaneseVowels speaker id >= 0.97
    python benchmarks/sequence_targets.py tcn-field       # TCN field: analysis == probe, causal

Each training run uses the default recipe of ``wally train`` for ``ucr/...`` datasets
(:data:`wally.cli._sequences.RECIPE`): Adam, lr 1e-3 with cosine annealing, batch 16,
150 epochs, seed 0; the test accuracy is printed every 10 epochs. The data folder is
``--data-dir`` or aeon's ``datasets/data`` folder.
"""

from __future__ import annotations

import argparse
import sys
import time

import wally
from wally import optim
from wally.data import UCR, DataLoader, pad_collate
from wally.data.ucr import aeon_data_folder
from wally.models import get_model
from wally.train import evaluate, fit

TARGETS = {
    "gunpoint": ("fcn1d", "GunPoint", 0.97),
    "vowels": ("fcn1d", "JapaneseVowels", 0.97),
}


def train_ucr(model_name: str, name: str, root: object, epochs: int, lr: float = 1e-3,
              batch_size: int = 16, seed: int = 0, every: int = 10) -> dict:
    """Train ``model_name`` on UCR ``name`` with Adam (``lr`` annealed to 0 along a cosine
    over the epochs, as ``wally train --scheduler cosine``) and return the test
    metrics after ``epochs`` epochs; the test accuracy is also printed every ``every`` epochs
    (the curve; evaluation does not touch the training state)."""
    wally.manual_seed(seed)
    train, test = UCR(name, root=root, train=True), UCR(name, root=root, train=False)
    length = int(max(train.lengths.max(), test.lengths.max()))
    model = get_model(model_name, in_channels=train.num_channels,
                      num_classes=len(train.classes), input_size=length)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, collate_fn=pad_collate,
                        drop_last=len(train) % batch_size == 1, generator=seed)
    test_loader = DataLoader(test, batch_size=128, collate_fn=pad_collate)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    start = time.perf_counter()
    for done in range(every, epochs + 1, every):
        history = fit(model, loader, None, optimizer=optimizer, epochs=every,
                      scheduler=scheduler, progress=False)
        result = evaluate(model, test_loader)
        print(f"  {name} epoch {done}: train loss {history.records[-1]['train_loss']:.4f} "
              f"test accuracy {result['accuracy']:.4f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    result["seconds"] = time.perf_counter() - start
    return result


def tcn_field_report(length: int = 300) -> dict:
    """The default TCN's analytic receptive field of its blocks' output against the gradient
    probe's, at every step ``t`` of a ``length``-step series, and the largest gradient any
    output step receives from a later input step (must be exactly 0)."""
    from wally.analysis.receptive_field import input_gradient, probe_receptive_fields
    from wally.analysis.receptive_field import receptive_field as analytic_field

    model = get_model("tcn", input_size=length)
    field = analytic_field(model, (1, length), layer="blocks").axes[0]
    analytic, probe, future_max, ok = [], [], 0.0, True
    boxes = {t: probe_receptive_fields(model, (1, length), ["blocks"], {"blocks": (t,)})[
        "blocks"][0] for t in range(length)}
    probe_model = model.double().eval()
    x = wally.randn(1, 1, length, dtype=wally.float64)
    for t in range(length):
        lo = max(0, field.start + field.jump * t)
        hi = min(length - 1, field.start + field.jump * t + field.size - 1)
        analytic.append((lo, hi))
        probe.append(boxes[t])
        ok &= (lo, hi) == boxes[t] and hi == t
        grad = input_gradient(probe_model, x, layer="blocks", unit=(t,))
        future_max = max(future_max, float(abs(grad[0, :, t + 1:]).max(initial=0.0)))
    ok &= future_max == 0.0
    return {"analytic": f"size {field.size}, step t sees t{field.start:+d}..t",
            "probe": "equal at every step" if analytic == probe else "DIFFERENT",
            "future_max": future_max, "steps": length, "ok": ok, "size": field.size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", default=["gunpoint", "vowels", "tcn-field"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args(argv)
    root = args.data_dir or aeon_data_folder()
    if root is None:
        print("no --data-dir and aeon is not installed (pip install aeon==1.6.0 --no-deps)")
        return 2
    failed = False
    options = (f" --epochs {args.epochs}" if args.epochs else "") + (
        f" --every {args.every}" if args.every != 10 else "") + (
        f" --data-dir {args.data_dir}" if args.data_dir else "")
    for which in args.which:
        command = f"python benchmarks/sequence_targets.py {which}" + (
            "" if which == "tcn-field" else options)
        if which == "tcn-field":
            report = tcn_field_report(length=300)
            print(f"tcn-field: analytic {report['analytic']} probe {report['probe']} "
                  f"future-gradient max {report['future_max']:.1e} over {report['steps']} steps"
                  f"  ({command})")
            failed |= not report["ok"]
            continue
        from wally.cli._sequences import RECIPE

        model_name, name, target = TARGETS[which]
        epochs = args.epochs or RECIPE["epochs"]
        result = train_ucr(model_name, name, root, epochs=epochs, lr=RECIPE["lr"],
                           batch_size=RECIPE["batch_size"], every=args.every)
        ok = result["accuracy"] >= target
        failed |= not ok
        print(f"{which}: {model_name} on {name}, {epochs} epochs: test accuracy "
              f"{result['accuracy']:.4f} (target {target}) loss {result['loss']:.4f} "
              f"{result['seconds']:.0f} s  {'ok' if ok else 'BELOW TARGET'}  ({command})",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
