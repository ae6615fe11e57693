"""``wally demo``: the main job — train a small CNN to find Wally in generated crowds."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="train a small CNN to find Wally in generated crowds (offline)",
        description="Generate crowds, train a small CNN to tell whether Wally is in them, "
                    "and report its test accuracy.",
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-count", type=int, default=3000)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wally.examples.find_wally import train

    metrics = train(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    train_count=args.train_count)
    print(f"test accuracy: {metrics['test_accuracy']:.3f}")
    return 0
