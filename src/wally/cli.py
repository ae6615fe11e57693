"""The ``wally`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wally", description="Convolutional neural networks on NumPy, PyTorch's API."
    )
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train a small CNN to find Wally in generated crowds")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--batch-size", type=int, default=64)
    demo.add_argument("--lr", type=float, default=0.05)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--train-count", type=int, default=3000)
    args = parser.parse_args(argv)

    if args.command in (None, "demo"):
        from wally.examples.find_wally import train

        if args.command is None:
            args = demo.parse_args([])
        metrics = train(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        seed=args.seed, train_count=args.train_count)
        print(f"test accuracy: {metrics['test_accuracy']:.3f}")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
